"""CMN, the Cross-module converged network: per-modality LSTMs, a stack of MUA layers, an
attentional reduction per modality, fusion by sum, and an output head.

The paper gives the two stages (LSTM per modality, then transformer units built from SA and
GA) and says only that "each MUA combines the two units modularly". What it leaves open is
a named field of :class:`CMNConfig`, with the published implementation of this exact
architecture (Delbrouck, Tits & Dupont 2020, MCAN's encoder-decoder) as the default:

* ``mua``: ``encoder_decoder`` (default; MCAN's MCA_ED: language through L SA layers; every
  other modality through L SGA layers, each guided by the *final* language output),
  ``stacked`` (layer i of audio guided by layer i of language), or ``symmetric`` (in every
  layer each modality is guided by the others, co-attention both ways);
* ``layer_norm``: ``mcan`` (default: the reference's unbiased-std formula, so its weights
  reproduce its outputs exactly) or ``torch`` (``nn.LayerNorm``);
* fusion: MCAN's AttFlat per modality (MLP width ``flat_mid`` = ``ff_size``, one glimpse,
  output 2 x hidden), summed, LayerNorm, dropout ``output_dropout``, linear head.

Beyond the paper, ``alignment`` (one of :data:`ALIGNMENTS`) lets the model use word
alignment, which the paper's content-based guided attention cannot see (notebook 08):

* ``none`` (default): the paper's model, unchanged (same parameters, same outputs);
* ``shared_positions``: the same sinusoidal position code added to every modality's LSTM
  output, so that step i means word i in every stream;
* ``diagonal_prior``: a fixed score bias ``-alignment_strength * |i - j|`` in every guided
  attention, so that audio step i prefers the words near word i;
* ``relative_bias``: a learned bias per head and clipped offset ``i - j`` (within
  ``alignment_window``) in every guided attention, initialised at 0 (the paper's model);
* ``stepwise_fusion``: before the MUA stack, each non-guiding stream is replaced by a linear
  map of its steps concatenated with the aligned language steps (early fusion, step by step).

Every variant but ``none`` needs word-aligned input (one length per utterance in every
modality) and refuses anything else with a ValueError.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..config import DATASETS, DEFAULT_DATASET, PAPER_CMN, parse_modalities
from . import heads
from .attention import SA, SGA, AttFlat, dropout, make_norm, padding_mask, word_aligned

MUA_WIRINGS = ("encoder_decoder", "stacked", "symmetric")
ALIGNMENTS = ("none", "shared_positions", "diagonal_prior", "relative_bias", "stepwise_fusion")


@dataclass
class CMNConfig:
    """Every choice of the model. Defaults: the paper profile (section 4.1 + the published
    implementation's IEMOCAP settings)."""

    modalities: str = "LA"
    input_dims: dict = field(default_factory=lambda: dict(DATASETS[DEFAULT_DATASET].feature_dims))
    hidden: int = PAPER_CMN["hidden"]            # LSTM hidden size = transformer width (paper: 512)
    layers: int = PAPER_CMN["layers"]            # MUA layers
    heads: int = PAPER_CMN["heads"]
    ff_size: int = PAPER_CMN["ff_size"]
    dropout: float = PAPER_CMN["dropout"]
    output_dropout: float = PAPER_CMN["output_dropout"]
    mua: str = "encoder_decoder"
    layer_norm: str = "mcan"
    flat_mid: int | None = None  # AttFlat MLP width; None -> ff_size (published implementation)
    flat_out: int | None = None  # AttFlat output; None -> 2 * hidden
    glimpses: int = 1
    guide: str = "text"          # the modality that guides the others (language in the paper)
    pack_lstm: bool = False      # right-padded input: real steps never see padding either way
    head: str = "regression"
    alignment: str = "none"      # beyond the paper: how word alignment is used (ALIGNMENTS)
    alignment_strength: float = 0.3  # diagonal_prior: the score penalty per step of distance
    alignment_window: int = 8        # relative_bias: offsets beyond +-window share one bias

    def __post_init__(self):
        if self.mua not in MUA_WIRINGS:
            raise ValueError(f"mua must be one of {MUA_WIRINGS}, got {self.mua!r}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        heads.output_size(self.head)
        parse_modalities(self.modalities)

    @property
    def modality_names(self) -> tuple[str, ...]:
        return parse_modalities(self.modalities)

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoidal_positions(steps: int, width: int) -> torch.Tensor:
    """The Transformer's position code (Vaswani et al. 2017), (steps, width):
    ``PE[i, 2k] = sin(i / 10000^(2k/width))``, ``PE[i, 2k+1] = cos(i / 10000^(2k/width))``."""
    position = torch.arange(steps, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    code = torch.zeros(steps, width)
    code[:, 0::2] = torch.sin(position * frequency)
    code[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return code


def distance(t_q: int, t_k: int, device=None) -> torch.Tensor:
    """(T_q, T_k) signed offsets ``i - j`` between query step i and key step j."""
    return torch.arange(t_q, device=device)[:, None] - torch.arange(t_k, device=device)[None, :]


class MUA(nn.Module):
    """The stack of MUA layers: SA and GA units wired per ``config.mua``."""

    def __init__(self, config: CMNConfig):
        super().__init__()
        self.config = config
        names = config.modality_names
        self.guide = config.guide if config.guide in names else names[0]
        self.others = [m for m in names if m != self.guide]
        unit = dict(hidden=config.hidden, heads=config.heads, ff_size=config.ff_size,
                    dropout=config.dropout, norm=config.layer_norm)
        if config.mua == "symmetric" and self.others:
            self.encoder = None
            self.blocks = nn.ModuleDict({m: nn.ModuleList(SGA(**unit) for _ in range(config.layers))
                                         for m in names})
        else:
            self.encoder = nn.ModuleList(SA(**unit) for _ in range(config.layers))
            self.blocks = nn.ModuleDict({m: nn.ModuleList(SGA(**unit) for _ in range(config.layers))
                                         for m in self.others})
        if config.alignment == "relative_bias":  # one learned bias per head and clipped offset
            self.relative_bias = nn.Parameter(torch.zeros(config.heads, 2 * config.alignment_window + 1))

    def guided_bias(self, t_q: int, t_k: int, device) -> torch.Tensor | None:
        """The position bias of the guided attention, (1 or H, T_q, T_k) broadcast over the
        batch, or None (the paper). In the symmetric wiring the keys are the other modalities
        concatenated, each aligned with the queries, so the offsets repeat per modality."""
        if self.config.alignment not in ("diagonal_prior", "relative_bias"):
            return None
        offset = distance(t_q, t_q, device).repeat(1, t_k // t_q)  # t_k is a multiple of t_q
        if self.config.alignment == "diagonal_prior":
            return (-self.config.alignment_strength * offset.abs().float())[None]
        window = self.config.alignment_window
        return self.relative_bias[:, offset.clamp(-window, window) + window]

    def forward(self, seqs: dict, masks: dict) -> dict:
        seqs = dict(seqs)
        if self.encoder is None:  # symmetric: every modality guided by all the others
            for i in range(self.config.layers):
                new = {}
                for m in seqs:
                    y, y_mask = self._others(seqs, masks, m)
                    bias = self.guided_bias(seqs[m].shape[1], y.shape[1], y.device)
                    new[m] = self.blocks[m][i](seqs[m], y, masks[m], y_mask, bias)
                seqs = new
            return seqs
        guide_layers = []
        x = seqs[self.guide]
        for layer in self.encoder:
            x = layer(x, masks[self.guide])
            guide_layers.append(x)
        seqs[self.guide] = x
        for m in self.others:
            bias = self.guided_bias(seqs[m].shape[1], x.shape[1], x.device)
            for i, layer in enumerate(self.blocks[m]):
                guide = guide_layers[i] if self.config.mua == "stacked" else x
                seqs[m] = layer(seqs[m], guide, masks[m], masks[self.guide], bias)
        return seqs

    @staticmethod
    def _others(seqs: dict, masks: dict, modality: str):
        """The other modalities' steps (and masks), concatenated along time."""
        others = [o for o in seqs if o != modality]
        return torch.cat([seqs[o] for o in others], dim=1), torch.cat([masks[o] for o in others], dim=1)

    def attention_units(self):
        """(modality, kind, layer, MultiHeadAttention) in the order the forward runs them:
        kind 'self' (SA, or an SGA's first sub-layer) or 'guided' (an SGA's second)."""
        if self.encoder is None:
            for i in range(self.config.layers):
                for m, blocks in self.blocks.items():
                    yield m, "self", i, blocks[i].mhatt1
                    yield m, "guided", i, blocks[i].mhatt2
            return
        for i, unit in enumerate(self.encoder):
            yield self.guide, "self", i, unit.mhatt
        for m in self.others:
            for i, unit in enumerate(self.blocks[m]):
                yield m, "self", i, unit.mhatt1
                yield m, "guided", i, unit.mhatt2


class CMN(nn.Module):
    """The whole model. ``forward(features, lengths)`` takes right-padded (B, T, D) tensors
    and true lengths per modality (the loader's batch) and returns the head's output."""

    def __init__(self, config: CMNConfig):
        super().__init__()
        self.config = config
        names = config.modality_names
        flat_mid = config.flat_mid or config.ff_size
        flat_out = config.flat_out or 2 * config.hidden
        self.lstm = nn.ModuleDict({m: nn.LSTM(config.input_dims[m], config.hidden, batch_first=True)
                                   for m in names})
        self.backbone = MUA(config)
        if config.alignment == "stepwise_fusion":  # each other stream sees the aligned words
            self.stepwise = nn.ModuleDict({m: nn.Linear(2 * config.hidden, config.hidden)
                                           for m in self.backbone.others})
        self.attflat = nn.ModuleDict({m: AttFlat(config.hidden, flat_mid, flat_out, config.glimpses,
                                                 config.dropout) for m in names})
        self.proj_norm = make_norm(config.layer_norm, flat_out)
        self.proj_drop = nn.Dropout(config.output_dropout)
        self.proj = nn.Linear(flat_out, heads.output_size(config.head))

    def encode(self, x: torch.Tensor, lengths: torch.Tensor, modality: str) -> torch.Tensor:
        """Stage 1: the modality's LSTM over its sequence."""
        lstm = self.lstm[modality]
        if not self.config.pack_lstm:
            # batch-first LSTM output is a transposed view: copied once here, not by every
            # projection that reads it, forward and backward
            return lstm(x)[0].contiguous()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def check_aligned(self, features: dict, lengths: dict) -> None:
        """The alignment variants need word-aligned input: one step count and, per utterance,
        one length in every modality."""
        names = self.config.modality_names
        if not word_aligned(features, lengths, names):
            steps = {m: features[m].shape[1] for m in names}
            raise ValueError(f"alignment={self.config.alignment!r} needs word-aligned input (the same steps and "
                             f"lengths in every modality); got steps {steps}. Use alignment='none' (the "
                             "paper's model) on unaligned data")

    def align(self, seqs: dict) -> dict:
        """Stage 1b, beyond the paper: what ``config.alignment`` does before the MUA stack."""
        if self.config.alignment == "shared_positions":
            x = next(iter(seqs.values()))
            code = sinusoidal_positions(x.shape[1], self.config.hidden).to(device=x.device, dtype=x.dtype)
            return {m: x + code for m, x in seqs.items()}
        if self.config.alignment == "stepwise_fusion":
            guide = seqs[self.backbone.guide]
            return {m: x if m == self.backbone.guide else self.stepwise[m](torch.cat([x, guide], dim=-1))
                    for m, x in seqs.items()}
        return seqs

    def forward(self, features: dict, lengths: dict) -> torch.Tensor:
        names = self.config.modality_names
        if self.config.alignment != "none":
            self.check_aligned(features, lengths)
        masks = {m: padding_mask(lengths[m], features[m].shape[1]) for m in names}
        seqs = self.align({m: self.encode(features[m], lengths[m], m) for m in names})
        seqs = self.backbone(seqs, masks)
        fused = sum(self.attflat[m](seqs[m], masks[m]) for m in names)
        raw = self.proj(dropout(self.proj_norm(fused), self.proj_drop))
        return heads.shape_output(self.config.head, raw)

    def attention_maps(self) -> dict:
        """The weights kept by the last forward run under :func:`capture_attention`:
        ``'<modality>/self'`` and ``'<modality>/guided'``, a list over layers of (B, H, T_q,
        T_k) tensors, and ``'<modality>/flat'``, the AttFlat pooling weights (B, T, glimpses).
        The guided maps' keys are the guiding modality's steps (in the symmetric wiring, the
        other modalities' steps, concatenated)."""
        maps: dict = {}
        for m, kind, _, unit in self.backbone.attention_units():
            if unit.weights is None:
                raise RuntimeError("no attention weights kept: run the forward inside capture_attention(model)")
            maps.setdefault(f"{m}/{kind}", []).append(unit.weights)
        for m in self.config.modality_names:
            maps[f"{m}/flat"] = self.attflat[m].weights
        return maps
