"""Attention units of CMN, in the form of MCAN (Yu et al. 2019), which the paper cites.

Paper, section 2: Self-Attention (SA, eq. 1-3) and Guide-Attention (GA, eq. 4)::

    (1)  Att(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
    (2)  MHA(Q, K, V) = Concat(head_1, ..., head_h) W^O
    (3)  head_j = Att(Q W_j^Q, K W_j^K, V W_j^V),     d_h = d / h
    (4)  GA_{b->a} = softmax(F_a W_Q (F_b W_K)^T / sqrt(d_k)) F_b W_V

Each unit is a post-LayerNorm residual block (``x = norm(x + dropout(sublayer(x)))``) as in
MCAN's ``core/model/mca.py``; parameter names follow MCAN (``linear_q``, ``mhatt1``,
``norm2`` ...) so that its weights load by name. Every attention module can return its
weights (batch, head, query, key) without changing its output: with
``return_attention=True`` the explicit equations run; otherwise the fused
``scaled_dot_product_attention`` kernel computes the same function faster.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MASK_FILL = -1e9  # MCAN fills masked scores with -1e9 before the softmax


class MCANLayerNorm(nn.Module):
    """MCAN's LayerNorm: ``a * (x - mean) / (std + eps) + b`` with the *unbiased* std.

    It differs from ``torch.nn.LayerNorm`` (biased variance, eps inside the square root)
    by a factor sqrt(d / (d - 1)) and the place of eps; kept to match the published
    implementation exactly.
    """

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.a_2 = nn.Parameter(torch.ones(size))
        self.b_2 = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


def make_norm(kind: str, size: int) -> nn.Module:
    """'mcan' (the reference's formula) or 'torch' (``nn.LayerNorm``, fused, slightly different)."""
    if kind == "mcan":
        return MCANLayerNorm(size)
    if kind == "torch":
        return nn.LayerNorm(size, eps=1e-6)
    raise ValueError(f"layer_norm must be 'mcan' or 'torch', got {kind!r}")


def scaled_dot_product(q, k, v, key_padding_mask=None, dropout: nn.Dropout | None = None):
    """Eq. (1), written out: returns (output, weights). Shapes (B, H, T, d)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if key_padding_mask is not None:  # (B, T_k) True at padding -> (B, 1, 1, T_k)
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], MASK_FILL)
    weights = scores.softmax(dim=-1)
    attended = dropout(weights) if dropout is not None else weights
    return attended @ v, weights


class MultiHeadAttention(nn.Module):
    """Eq. (2)-(3): h heads of width d/h, MCAN's ``MHAtt`` (separate Q/K/V projections)."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.linear_v = nn.Linear(hidden, hidden)
        self.linear_k = nn.Linear(hidden, hidden)
        self.linear_q = nn.Linear(hidden, hidden)
        self.linear_merge = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, v, k, q, key_padding_mask=None, return_attention: bool = False):
        """Queries ``q`` attend to keys ``k`` / values ``v``; mask True = padding key."""
        qh, kh, vh = self._split(self.linear_q(q)), self._split(self.linear_k(k)), self._split(self.linear_v(v))
        if return_attention:
            out, weights = scaled_dot_product(qh, kh, vh, key_padding_mask, self.dropout)
        else:
            # The fused kernel computes eq. (1) with the same masking (-1e9 additive bias,
            # so a row whose keys are all padding still averages them, as MCAN does).
            bias = None
            if key_padding_mask is not None:
                bias = torch.zeros(key_padding_mask.shape, dtype=qh.dtype, device=qh.device)
                bias = bias.masked_fill(key_padding_mask, MASK_FILL)[:, None, None, :]
            out = F.scaled_dot_product_attention(
                qh, kh, vh, attn_mask=bias, dropout_p=self.dropout.p if self.training else 0.0)
            weights = None
        b, h, t, dh = out.shape
        merged = self.linear_merge(out.transpose(1, 2).reshape(b, t, h * dh))
        return (merged, weights) if return_attention else merged


class FeedForward(nn.Module):
    """MCAN's FFN: Linear(d, ff) -> ReLU -> Dropout -> Linear(ff, d) (names mlp.fc.linear, mlp.linear)."""

    def __init__(self, hidden: int, ff_size: int, dropout: float):
        super().__init__()
        self.mlp = MLP(hidden, ff_size, hidden, dropout)

    def forward(self, x):
        return self.mlp(x)


class FC(nn.Module):
    """Linear -> ReLU -> Dropout (MCAN's ``FC``)."""

    def __init__(self, in_size: int, out_size: int, dropout: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(in_size, out_size)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.dropout(torch.relu(self.linear(x)))


class MLP(nn.Module):
    """FC then a plain Linear (MCAN's ``MLP``)."""

    def __init__(self, in_size: int, mid_size: int, out_size: int, dropout: float = 0.0):
        super().__init__()
        self.fc = FC(in_size, mid_size, dropout)
        self.linear = nn.Linear(mid_size, out_size)

    def forward(self, x):
        return self.linear(self.fc(x))


class SA(nn.Module):
    """Self-Attention unit (paper Fig. 4; MCAN ``SA``): MHA over one modality, then FFN."""

    def __init__(self, hidden: int, heads: int, ff_size: int, dropout: float, norm: str = "mcan"):
        super().__init__()
        self.mhatt = MultiHeadAttention(hidden, heads, dropout)
        self.ffn = FeedForward(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), make_norm(norm, hidden)

    def forward(self, x, x_mask=None, return_attention: bool = False):
        attended = self.mhatt(x, x, x, x_mask, return_attention)
        attended, weights = attended if return_attention else (attended, None)
        x = self.norm1(x + self.dropout1(attended))
        x = self.norm2(x + self.dropout2(self.ffn(x)))
        return (x, {"self": weights}) if return_attention else x


class GA(nn.Module):
    """Guide-Attention unit (paper Fig. 5, eq. 4): queries from ``x``, keys/values from ``y``, then FFN."""

    def __init__(self, hidden: int, heads: int, ff_size: int, dropout: float, norm: str = "mcan"):
        super().__init__()
        self.mhatt = MultiHeadAttention(hidden, heads, dropout)
        self.ffn = FeedForward(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), make_norm(norm, hidden)

    def forward(self, x, y, y_mask=None, return_attention: bool = False):
        attended = self.mhatt(y, y, x, y_mask, return_attention)
        attended, weights = attended if return_attention else (attended, None)
        x = self.norm1(x + self.dropout1(attended))
        x = self.norm2(x + self.dropout2(self.ffn(x)))
        return (x, {"guided": weights}) if return_attention else x


class SGA(nn.Module):
    """SA followed by GA with one shared FFN (MCAN's ``SGA``, the decoder unit of MCA_ED)."""

    def __init__(self, hidden: int, heads: int, ff_size: int, dropout: float, norm: str = "mcan"):
        super().__init__()
        self.mhatt1 = MultiHeadAttention(hidden, heads, dropout)
        self.mhatt2 = MultiHeadAttention(hidden, heads, dropout)
        self.ffn = FeedForward(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout3, self.norm3 = nn.Dropout(dropout), make_norm(norm, hidden)

    def forward(self, x, y, x_mask=None, y_mask=None, return_attention: bool = False):
        self_att = self.mhatt1(x, x, x, x_mask, return_attention)
        self_att, w_self = self_att if return_attention else (self_att, None)
        x = self.norm1(x + self.dropout1(self_att))
        guided = self.mhatt2(y, y, x, y_mask, return_attention)
        guided, w_guided = guided if return_attention else (guided, None)
        x = self.norm2(x + self.dropout2(guided))
        x = self.norm3(x + self.dropout3(self.ffn(x)))
        return (x, {"self": w_self, "guided": w_guided}) if return_attention else x


class AttFlat(nn.Module):
    """Attentional reduction (MCAN ``AttFlat``): MLP scores per step, masked softmax over
    time, weighted sum per glimpse, then a linear layer."""

    def __init__(self, hidden: int, mid_size: int, out_size: int, glimpses: int = 1, dropout: float = 0.1):
        super().__init__()
        self.glimpses = glimpses
        self.mlp = MLP(hidden, mid_size, glimpses, dropout)
        self.linear_merge = nn.Linear(hidden * glimpses, out_size)

    def forward(self, x, x_mask=None, return_attention: bool = False):
        scores = self.mlp(x)  # (B, T, G)
        if x_mask is not None:
            scores = scores.masked_fill(x_mask[:, :, None], MASK_FILL)
        weights = scores.softmax(dim=1)
        pooled = torch.einsum("btg,btd->bgd", weights, x).flatten(1)
        out = self.linear_merge(pooled)
        return (out, weights) if return_attention else out
