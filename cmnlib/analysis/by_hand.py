"""Eq. (1)-(4) written out with plain tensor operations, checked against cmnlib's
units in notebooks 02-03, and the helpers that show them (code, small tables, masking)."""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..model.attention import GA, MCANLayerNorm, MultiHeadAttention, SA, SGA, capture_attention


# ======================================================================================
# Showing code in a notebook
# ======================================================================================

def show_code(*functions):
    """The source of cmnlib functions as a Markdown code block (for the notebooks, which
    show the code that implements an equation right after the equation)."""
    from IPython.display import Markdown  # deliberate: only a notebook displays code
    sources = "\n\n".join(inspect.getsource(f).rstrip() for f in functions)
    return Markdown(f"```python\n{sources}\n```")


# ======================================================================================
# Eq. (1)-(4) by hand
# ======================================================================================

@dataclass
class ToyExample:
    """A tiny, seeded example: features of two modalities and the units that use them.

    ``a`` (n_a, d) are the features of modality a (the queries), ``b`` (n_b, d) those of
    modality b (keys and values in guided attention). The modules are in eval mode
    (dropout off), so their outputs are deterministic.
    """

    a: torch.Tensor
    b: torch.Tensor
    mha: MultiHeadAttention
    sa: SA
    ga: GA
    sga: SGA


def toy_example(seed: int = 0, n_a: int = 3, n_b: int = 4, hidden: int = 4, heads: int = 2,
                ff_size: int = 8) -> ToyExample:
    """A :class:`ToyExample` with ``n_a`` queries, ``n_b`` keys, width ``hidden`` and ``heads``
    heads; weights and features drawn from ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    a, b = torch.randn(n_a, hidden), torch.randn(n_b, hidden)
    mha = MultiHeadAttention(hidden, heads, dropout=0.0).eval()
    sa = SA(hidden, heads, ff_size, dropout=0.0).eval()
    ga = GA(hidden, heads, ff_size, dropout=0.0).eval()
    sga = SGA(hidden, heads, ff_size, dropout=0.0).eval()
    return ToyExample(a, b, mha, sa, ga, sga)


def mha_by_hand(mha: MultiHeadAttention, queries: torch.Tensor, keys: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None):
    """Eq. (1)-(3) for ONE utterance with plain tensor operations and the weights of ``mha``.

    ``queries`` (T_q, d) and ``keys`` (T_k, d); the keys are also the values (self-attention:
    ``keys = queries``; guided attention, eq. (4): queries from modality a, keys from b).
    ``key_padding_mask`` (T_k,) is True at padding keys. Returns the output (T_q, d) and the
    attention weights (h, T_q, T_k). ``nn.Linear`` stores W^T and adds a bias: MCAN's
    projections have biases, which the paper's equations leave out.
    """
    d = queries.shape[-1]
    h = mha.heads
    d_h = d // h
    Q = queries @ mha.linear_q.weight.T + mha.linear_q.bias      # F W^Q  (T_q, d)
    K = keys @ mha.linear_k.weight.T + mha.linear_k.bias         # F W^K  (T_k, d)
    V = keys @ mha.linear_v.weight.T + mha.linear_v.bias         # F W^V  (T_k, d)
    heads, weights = [], []
    for j in range(h):
        cols = slice(j * d_h, (j + 1) * d_h)  # W_j^Q, W_j^K, W_j^V: the j-th block of d_h columns
        scores = Q[:, cols] @ K[:, cols].T / math.sqrt(d_h)      # eq. (1), d_k = d_h per head
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[None, :], float("-inf"))
        e = (scores - scores.max(dim=-1, keepdim=True).values).exp()
        a = e / e.sum(dim=-1, keepdim=True)                      # softmax over the keys
        heads.append(a @ V[:, cols])                             # eq. (3): head_j
        weights.append(a)
    concat = torch.cat(heads, dim=-1)                            # eq. (2): Concat(head_1..h)
    out = concat @ mha.linear_merge.weight.T + mha.linear_merge.bias   # ... W^O
    return out, torch.stack(weights)


def layer_norm_by_hand(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MCAN's LayerNorm ``a * (x - mean) / (std + eps) + b`` with the unbiased std (for an
    :class:`MCANLayerNorm`), or the textbook one (biased variance, eps inside the root) for
    ``nn.LayerNorm``."""
    d = x.shape[-1]
    mean = x.sum(-1, keepdim=True) / d
    centred = x - mean
    if isinstance(norm, MCANLayerNorm):
        std = (centred.pow(2).sum(-1, keepdim=True) / (d - 1)).sqrt()
        return norm.a_2 * centred / (std + norm.eps) + norm.b_2
    var = centred.pow(2).sum(-1, keepdim=True) / d
    return norm.weight * centred / (var + norm.eps).sqrt() + norm.bias


def ffn_by_hand(ffn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feed-forward sub-layer: ``max(0, x W_1 + b_1) W_2 + b_2`` (dropout off)."""
    first, second = ffn.mlp.fc.linear, ffn.mlp.linear
    return torch.clamp(x @ first.weight.T + first.bias, min=0) @ second.weight.T + second.bias


def unit_by_hand(unit: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
                 x_mask: torch.Tensor | None = None, y_mask: torch.Tensor | None = None):
    """An SA, GA or SGA unit for ONE utterance (eval mode), written out: every sub-layer is
    ``x = LayerNorm(x + sublayer(x))`` (post-norm residual, as MCAN).

    SA: self-attention, then FFN. GA: guided attention (queries ``x``, keys/values ``y``,
    eq. (4)), then FFN. SGA: self-attention, guided attention, then FFN. Returns the output
    and a dict of attention weights (h, T_q, T_k) by kind ('self', 'guided').
    """
    weights = {}
    if isinstance(unit, SA):
        att, weights["self"] = mha_by_hand(unit.mhatt, x, x, x_mask)
        x = layer_norm_by_hand(unit.norm1, x + att)
        x = layer_norm_by_hand(unit.norm2, x + ffn_by_hand(unit.ffn, x))
    elif isinstance(unit, GA):
        att, weights["guided"] = mha_by_hand(unit.mhatt, x, y, y_mask)
        x = layer_norm_by_hand(unit.norm1, x + att)
        x = layer_norm_by_hand(unit.norm2, x + ffn_by_hand(unit.ffn, x))
    elif isinstance(unit, SGA):
        att, weights["self"] = mha_by_hand(unit.mhatt1, x, x, x_mask)
        x = layer_norm_by_hand(unit.norm1, x + att)
        att, weights["guided"] = mha_by_hand(unit.mhatt2, x, y, y_mask)
        x = layer_norm_by_hand(unit.norm2, x + att)
        x = layer_norm_by_hand(unit.norm3, x + ffn_by_hand(unit.ffn, x))
    else:
        raise TypeError(f"expected an SA, GA or SGA unit, got {type(unit).__name__}")
    return x, weights


def as_table(tensor: torch.Tensor, row: str = "query", column: str = "key", decimals: int = 3,
             column_labels=None) -> pd.DataFrame:
    """A 2-d tensor (or a 3-d one, heads first) as a rounded DataFrame for display."""
    t = tensor.detach().cpu()
    if t.dim() == 2:
        t = t[None]
        index = pd.Index(range(t.shape[1]), name=row)
    else:
        index = pd.MultiIndex.from_product([range(1, t.shape[0] + 1), range(t.shape[1])], names=["head", row])
    columns = column_labels or [f"{column} {k}" for k in range(t.shape[-1])]
    values = np.round(t.reshape(-1, t.shape[-1]).numpy().astype(np.float64), decimals) + 0.0
    return pd.DataFrame(values, index=index, columns=columns)


def masking_table(mha: MultiHeadAttention, queries: torch.Tensor, keys: torch.Tensor,
                  key_padding_mask: torch.Tensor, decimals: int = 3) -> pd.DataFrame:
    """cmnlib's attention weights (head, query) x key for one utterance whose keys are
    partly padding, with the sum of each row; padding keys are labelled '(pad)'."""
    with torch.no_grad(), capture_attention(mha):
        mha(keys[None], keys[None], queries[None], key_padding_mask[None])
    w = mha.weights
    labels = [f"key {k}" + (" (pad)" if bool(key_padding_mask[k]) else "") for k in range(keys.shape[0])]
    table = as_table(w[0], column_labels=labels, decimals=decimals)
    table["row sum"] = np.round(w[0].sum(-1).reshape(-1).numpy().astype(np.float64), decimals)
    return table


def masking_checks(mha: MultiHeadAttention, queries: torch.Tensor, keys: torch.Tensor,
                   key_padding_mask: torch.Tensor, seed: int = 0) -> dict[str, bool]:
    """Three properties of the key padding mask, checked on cmnlib's attention:

    * every padding key gets weight exactly 0;
    * every row of weights sums to 1 (over the real keys);
    * replacing the padding keys' contents by noise changes no output (explicit path and
      the fused kernel).
    """
    g = torch.Generator().manual_seed(seed)
    noisy = keys.clone()
    noisy[key_padding_mask] = 10 * torch.randn(noisy[key_padding_mask].shape, generator=g)
    with torch.no_grad():
        with capture_attention(mha):
            out = mha(keys[None], keys[None], queries[None], key_padding_mask[None])
            w = mha.weights
            out_noisy = mha(noisy[None], noisy[None], queries[None], key_padding_mask[None])
        fused = mha(keys[None], keys[None], queries[None], key_padding_mask[None])
        fused_noisy = mha(noisy[None], noisy[None], queries[None], key_padding_mask[None])
    return {"padding keys get exactly 0 weight": bool((w[..., key_padding_mask] == 0).all()),
            "rows sum to 1": bool(torch.allclose(w.sum(-1), torch.ones(()), atol=1e-6)),
            "padding contents change nothing (explicit)": bool(torch.allclose(out, out_noisy, atol=1e-6)),
            "padding contents change nothing (fused)": bool(torch.allclose(fused, fused_noisy, atol=1e-6))}
