"""The plain reference CMN: the same function as cmnlib's CMN written with explicit
matmul attention and plain torch.nn modules, MCAN-style, with an identical parameter layout
so that the same weights load into both.

One reference serves everyone who needs to know that the fast CMN computes the paper's
function: the benchmark (speed is measured against it, :mod:`cmnlib.bench`), notebook 04's
whole-model check, and the tests. :func:`compare_outputs` and :func:`equality_report` are
that check; :func:`make_batch` draws the padded inputs it runs on."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import DATASETS, DEFAULT_DATASET
from . import heads as H
from .attention import MASK_FILL
from .cmn import CMN, CMNConfig


DIMS = DATASETS[DEFAULT_DATASET].feature_dims  # MOSEI-like feature sizes


# ======================================================================================
# The plain reference CMN
# ======================================================================================

class RefLayerNorm(nn.Module):
    """MCAN's LayerNorm, written out: ``a * (x - mean) / (std + eps) + b``, unbiased std."""

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.a_2 = nn.Parameter(torch.ones(size))
        self.b_2 = nn.Parameter(torch.zeros(size))

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


class RefFC(nn.Module):
    def __init__(self, in_size, out_size, dropout):
        super().__init__()
        self.linear = nn.Linear(in_size, out_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(torch.relu(self.linear(x)))


class RefMLP(nn.Module):
    def __init__(self, in_size, mid_size, out_size, dropout):
        super().__init__()
        self.fc = RefFC(in_size, mid_size, dropout)
        self.linear = nn.Linear(mid_size, out_size)

    def forward(self, x):
        return self.linear(self.fc(x))


class RefFFN(nn.Module):
    def __init__(self, hidden, ff_size, dropout):
        super().__init__()
        self.mlp = RefMLP(hidden, ff_size, hidden, dropout)

    def forward(self, x):
        return self.mlp(x)


class RefMHAtt(nn.Module):
    """MCAN's ``MHAtt``: separate Q/K/V projections, explicit ``softmax(QK^T/sqrt(d)) V``
    over (batch, head, step, width) tensors, scores of padding keys set to -1e9."""

    def __init__(self, hidden, heads, dropout):
        super().__init__()
        self.hidden, self.heads = hidden, heads
        self.linear_v = nn.Linear(hidden, hidden)
        self.linear_k = nn.Linear(hidden, hidden)
        self.linear_q = nn.Linear(hidden, hidden)
        self.linear_merge = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, v, k, q, mask):
        b = q.size(0)
        d_head = self.hidden // self.heads
        v = self.linear_v(v).view(b, -1, self.heads, d_head).transpose(1, 2)
        k = self.linear_k(k).view(b, -1, self.heads, d_head).transpose(1, 2)
        q = self.linear_q(q).view(b, -1, self.heads, d_head).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_head)
        scores = scores.masked_fill(mask, MASK_FILL)  # mask: (B, 1, 1, T_k), True = padding
        att = self.dropout(torch.softmax(scores, dim=-1))
        out = torch.matmul(att, v).transpose(1, 2).contiguous().view(b, -1, self.hidden)
        return self.linear_merge(out)


class RefSA(nn.Module):
    def __init__(self, hidden, heads, ff_size, dropout):
        super().__init__()
        self.mhatt = RefMHAtt(hidden, heads, dropout)
        self.ffn = RefFFN(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), RefLayerNorm(hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), RefLayerNorm(hidden)

    def forward(self, x, x_mask):
        x = self.norm1(x + self.dropout1(self.mhatt(x, x, x, x_mask)))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class RefSGA(nn.Module):
    def __init__(self, hidden, heads, ff_size, dropout):
        super().__init__()
        self.mhatt1 = RefMHAtt(hidden, heads, dropout)
        self.mhatt2 = RefMHAtt(hidden, heads, dropout)
        self.ffn = RefFFN(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), RefLayerNorm(hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), RefLayerNorm(hidden)
        self.dropout3, self.norm3 = nn.Dropout(dropout), RefLayerNorm(hidden)

    def forward(self, x, y, x_mask, y_mask):
        x = self.norm1(x + self.dropout1(self.mhatt1(x, x, x, x_mask)))
        x = self.norm2(x + self.dropout2(self.mhatt2(y, y, x, y_mask)))
        return self.norm3(x + self.dropout3(self.ffn(x)))


class RefAttFlat(nn.Module):
    def __init__(self, hidden, mid_size, out_size, glimpses, dropout):
        super().__init__()
        self.glimpses = glimpses
        self.mlp = RefMLP(hidden, mid_size, glimpses, dropout)
        self.linear_merge = nn.Linear(hidden * glimpses, out_size)

    def forward(self, x, x_mask):
        att = self.mlp(x)
        att = att.masked_fill(x_mask.squeeze(1).squeeze(1).unsqueeze(2), MASK_FILL)
        att = torch.softmax(att, dim=1)
        pooled = [torch.sum(att[:, :, i:i + 1] * x, dim=1) for i in range(self.glimpses)]
        return self.linear_merge(torch.cat(pooled, dim=1))


class RefBackbone(nn.Module):
    def __init__(self, config: CMNConfig):
        super().__init__()
        self.config = config
        names = config.modality_names
        self.guide = config.guide if config.guide in names else names[0]
        self.others = [m for m in names if m != self.guide]
        unit = (config.hidden, config.heads, config.ff_size, config.dropout)
        if config.mua == "symmetric" and self.others:
            self.encoder = None
            self.blocks = nn.ModuleDict({m: nn.ModuleList(RefSGA(*unit) for _ in range(config.layers))
                                         for m in names})
        else:
            self.encoder = nn.ModuleList(RefSA(*unit) for _ in range(config.layers))
            self.blocks = nn.ModuleDict({m: nn.ModuleList(RefSGA(*unit) for _ in range(config.layers))
                                         for m in self.others})

    def forward(self, seqs, masks):
        seqs = dict(seqs)
        if self.encoder is None:
            for i in range(self.config.layers):
                new = {}
                for m in seqs:
                    others = [o for o in seqs if o != m]
                    y = torch.cat([seqs[o] for o in others], dim=1)
                    y_mask = torch.cat([masks[o] for o in others], dim=-1)
                    new[m] = self.blocks[m][i](seqs[m], y, masks[m], y_mask)
                seqs = new
            return seqs
        x, guide_layers = seqs[self.guide], []
        for layer in self.encoder:
            x = layer(x, masks[self.guide])
            guide_layers.append(x)
        seqs[self.guide] = x
        for m in self.others:
            y = seqs[m]
            for i, layer in enumerate(self.blocks[m]):
                y = layer(y, guide_layers[i] if self.config.mua == "stacked" else x, masks[m], masks[self.guide])
            seqs[m] = y
        return seqs


class ReferenceCMN(nn.Module):
    """CMN written plainly, MCAN-style: the benchmark's baseline for speed and for outputs.

    Same parameter names as :class:`cmnlib.model.cmn.CMN`, so ``load_state_dict`` copies a
    CMN's weights by name (strict). No fused kernels: per-head explicit attention with
    ``masked_fill(-1e9)`` and softmax, the LayerNorm formula written out, ``nn.LSTM`` over
    the padded sequences, fp32. Supports the MCAN LayerNorm only (the default).
    """

    def __init__(self, config: CMNConfig):
        super().__init__()
        if config.layer_norm != "mcan":
            raise ValueError("the reference implements the MCAN LayerNorm only")
        if config.alignment != "none":
            raise ValueError("the reference implements the paper's model only (alignment='none')")
        self.config = config
        names = config.modality_names
        flat_mid = config.flat_mid or config.ff_size
        flat_out = config.flat_out or 2 * config.hidden
        self.lstm = nn.ModuleDict({m: nn.LSTM(config.input_dims[m], config.hidden, batch_first=True)
                                   for m in names})
        self.backbone = RefBackbone(config)
        self.attflat = nn.ModuleDict({m: RefAttFlat(config.hidden, flat_mid, flat_out, config.glimpses,
                                                    config.dropout) for m in names})
        self.proj_norm = RefLayerNorm(flat_out)
        self.proj_drop = nn.Dropout(config.output_dropout)
        self.proj = nn.Linear(flat_out, H.output_size(config.head))

    def forward(self, features: dict, lengths: dict):
        names = self.config.modality_names
        masks = {}
        for m in names:
            steps = torch.arange(features[m].shape[1], device=lengths[m].device)
            masks[m] = (steps[None, :] >= lengths[m][:, None]).unsqueeze(1).unsqueeze(2)  # (B, 1, 1, T)
        seqs = {m: self.lstm[m](features[m])[0] for m in names}
        seqs = self.backbone(seqs, masks)
        fused = sum(self.attflat[m](seqs[m], masks[m]) for m in names)
        return H.shape_output(self.config.head, self.proj(self.proj_drop(self.proj_norm(fused))))


def reference_from(model: CMN) -> ReferenceCMN:
    """A :class:`ReferenceCMN` with ``model``'s config and a copy of its weights (by name, strict)."""
    reference = ReferenceCMN(model.config)
    reference.load_state_dict(model.state_dict(), strict=True)
    return reference.to(next(model.parameters()).device).train(model.training)


def make_batch(lengths: dict, batch: int, input_dims: dict = DIMS, seed: int = 0):
    """Right-padded random features (zeros at padding, as the loader gives) and true lengths
    drawn in [T/2, T] with the first row full, for each modality in ``lengths`` {name: T}."""
    g = torch.Generator().manual_seed(seed)
    features, true_lengths = {}, {}
    for m, t in lengths.items():
        length = torch.randint(max(1, t // 2), t + 1, (batch,), generator=g)
        length[0] = t
        x = torch.randn(batch, t, input_dims[m], generator=g)
        features[m] = x * (torch.arange(t)[None, :, None] < length[:, None, None])
        true_lengths[m] = length
    return features, true_lengths



# ======================================================================================
# Equality of fast and reference
# ======================================================================================

EQUALITY_CONFIGS = [
    dict(modalities="LA"),
    dict(modalities="LAV", mua="stacked", heads=2),
    dict(modalities="LAV", mua="symmetric", layers=1),
    dict(modalities="A", head="4class"),
    dict(modalities="LV", head="binary4", glimpses=2, pack_lstm=True),
]


def compare_outputs(config: CMNConfig, batch: int = 5, max_len: int = 9, seed: int = 0) -> float:
    """Max |CMN - ReferenceCMN| over the outputs (eval mode) of one padded batch, same weights."""
    torch.manual_seed(seed)
    model = CMN(config).eval()
    reference = reference_from(model).eval()
    names = config.modality_names
    features, lengths = make_batch({m: max_len + i for i, m in enumerate(names)}, batch,
                                   config.input_dims, seed)
    with torch.no_grad():
        return float((model(features, lengths) - reference(features, lengths)).abs().max())


def equality_report() -> list[dict]:
    """:func:`compare_outputs` on :data:`EQUALITY_CONFIGS` (small models, with padding)."""
    rows = []
    for overrides in EQUALITY_CONFIGS:
        kw = dict(input_dims={"text": 12, "audio": 7, "vision": 5}, hidden=16, layers=2, heads=4, ff_size=24,
                  dropout=0.1, output_dropout=0.3, head="regression")
        kw.update(overrides)
        rows.append({"config": overrides, "max_abs_diff": compare_outputs(CMNConfig(**kw))})
    return rows
