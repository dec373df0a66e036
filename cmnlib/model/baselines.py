"""Baselines on the same batch interface as CMN: MulT, LSTMs, and a trivial predictor.

Every model here is called as ``model(features, lengths)`` with the loader's right-padded
(B, T, D) tensors and true lengths, and returns the head's output (see :mod:`heads`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..config import DATASETS, DEFAULT_DATASET, parse_modalities
from . import heads
from .attention import word_aligned
from .mult import MulT, MulTConfig


def right_to_left_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Move each row's valid steps to the end (MulT reads the last step, as its pickles
    are left-padded): x[b, :len] -> out[b, T-len:]."""
    t = x.shape[1]
    steps = torch.arange(t, device=x.device)[None, :]
    source = steps - (t - lengths[:, None])           # where output step j comes from
    valid = source >= 0
    gathered = torch.gather(x, 1, source.clamp(min=0)[:, :, None].expand(-1, -1, x.shape[2]))
    return gathered * valid[:, :, None]


class MulTModel(nn.Module):
    """The faithful MulT (:mod:`cmnlib.model.mult`) on the shared batch interface."""

    LETTER = {"text": "l", "audio": "a", "vision": "v"}

    def __init__(self, config: MulTConfig, head: str):
        super().__init__()
        self.head = head
        self.config = config
        self.modalities = parse_modalities(config.modalities)
        self.mult = MulT(config)

    def forward(self, features: dict, lengths: dict):
        inputs = {f"x_{self.LETTER[m]}": right_to_left_padded(features[m], lengths[m]) for m in self.modalities}
        output, _ = self.mult(**inputs)
        return heads.shape_output(self.head, output)


@dataclass
class LSTMConfig:
    """Unimodal LSTM (one modality) or early-fusion LSTM (the modalities' features
    concatenated step by step; word-aligned data only)."""

    modalities: str = "L"
    input_dims: dict = field(default_factory=lambda: dict(DATASETS[DEFAULT_DATASET].feature_dims))
    hidden: int = 128
    dropout: float = 0.1
    head: str = "regression"

    def to_dict(self) -> dict:
        return asdict(self)


class LSTMBaseline(nn.Module):
    """LSTM over the (concatenated) features; the state at each row's last valid step
    feeds a dropout + linear head."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.modalities = parse_modalities(config.modalities)
        size = sum(config.input_dims[m] for m in self.modalities)
        self.lstm = nn.LSTM(size, config.hidden, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, heads.output_size(config.head))

    def forward(self, features: dict, lengths: dict):
        first = self.modalities[0]
        if len(self.modalities) > 1 and not word_aligned(features, lengths, self.modalities):
            raise ValueError("early fusion needs word-aligned modalities (same lengths)")
        x = torch.cat([features[m] for m in self.modalities], dim=-1)
        out, _ = self.lstm(x)  # right-padded: the state at a valid step never saw padding
        last = (lengths[first].clamp(min=1) - 1)[:, None, None].expand(-1, 1, out.shape[2])
        state = out.gather(1, last).squeeze(1)
        return heads.shape_output(self.config.head, self.out(self.dropout(state)))


class ConstantPredictor(nn.Module):
    """Predicts one constant: the training mean for regression, the majority class
    otherwise. ``fit`` sets it from the training targets; it has no trainable weights."""

    def __init__(self, head: str):
        super().__init__()
        self.head = head
        self.register_buffer("value", torch.zeros(heads.output_size(head)))

    def fit(self, targets: torch.Tensor) -> "ConstantPredictor":
        if self.head == "regression":
            self.value = targets.float().mean().reshape(1)
        elif self.head == "binary4":
            majority = (targets.float().mean(0) >= 0.5).long()  # per emotion
            logits = torch.zeros(4, 2)
            logits[torch.arange(4), majority] = 1.0
            self.value = logits.flatten()
        else:
            counts = torch.bincount(targets, minlength=self.value.numel())
            self.value = nn.functional.one_hot(counts.argmax(), self.value.numel()).float()
        return self

    def forward(self, features: dict, lengths: dict):
        batch = next(iter(lengths.values())).shape[0]
        return heads.shape_output(self.head, self.value.expand(batch, -1))
