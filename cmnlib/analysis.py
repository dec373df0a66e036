"""Analyses behind notebooks 02-04: the attention equations written out by hand, the
attention maps of one utterance, how much attention falls on the words that only the audio
disambiguates, the MUA wiring read off the code, a shape trace through CMN, and model sizes.

Every function here is pure computation (no plotting; the figures are in
:mod:`cmnlib.plots_attention`) and returns tensors, numbers or pandas DataFrames.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import findings
from .config import IEMOCAP_EMOTIONS, default_head, parse_modalities
from .data.loader import make_loader
from .data.split import Split
from .model import build_model, count_flops, count_parameters, transformer_modules
from .model.attention import GA, SA, SGA, MCANLayerNorm, MultiHeadAttention, padding_mask
from .model.cmn import CMN, CMNConfig
from .model.mult import MultiheadAttention as MulTAttention
from .model.mult import TransformerEncoderLayer

__all__ = [
    "show_code", "ToyExample", "toy_example", "mha_by_hand", "layer_norm_by_hand", "ffn_by_hand",
    "unit_by_hand", "as_table", "masking_table", "masking_checks", "seeded_cmn", "pick_example",
    "utterance_inputs", "utterance_attention", "cue_share", "uniform_share", "collect_cue_shares",
    "summarise_cue_shares", "compare_cue_shares", "cue_shares_by_class", "flat_attention_by_class",
    "mua_guidance", "example_batch", "shape_trace", "complexity_table", "complexity_claims",
    "run_metrics", "cue_of", "describe_utterance", "attention_entropy", "cue_findings",
    "compare_to_ceilings", "aligned_attention", "best_cue_ratio", "aligned_findings", "ceiling_findings",
    "CONCENTRATION",
]


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
        index = pd.MultiIndex.from_product([range(t.shape[0]), range(t.shape[1])], names=["head", row])
    columns = column_labels or [f"{column} {k}" for k in range(t.shape[-1])]
    values = np.round(t.reshape(-1, t.shape[-1]).numpy().astype(np.float64), decimals) + 0.0
    return pd.DataFrame(values, index=index, columns=columns)


def masking_table(mha: MultiHeadAttention, queries: torch.Tensor, keys: torch.Tensor,
                  key_padding_mask: torch.Tensor, decimals: int = 3) -> pd.DataFrame:
    """cmnlib's attention weights (head, query) x key for one utterance whose keys are
    partly padding, with the sum of each row; padding keys are labelled '(pad)'."""
    with torch.no_grad():
        _, w = mha(keys[None], keys[None], queries[None], key_padding_mask[None], return_attention=True)
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
        out, w = mha(keys[None], keys[None], queries[None], key_padding_mask[None], return_attention=True)
        out_noisy, _ = mha(noisy[None], noisy[None], queries[None], key_padding_mask[None],
                           return_attention=True)
        fused = mha(keys[None], keys[None], queries[None], key_padding_mask[None])
        fused_noisy = mha(noisy[None], noisy[None], queries[None], key_padding_mask[None])
    return {"padding keys get exactly 0 weight": bool((w[..., key_padding_mask] == 0).all()),
            "rows sum to 1": bool(torch.allclose(w.sum(-1), torch.ones(()), atol=1e-6)),
            "padding contents change nothing (explicit)": bool(torch.allclose(out, out_noisy, atol=1e-6)),
            "padding contents change nothing (fused)": bool(torch.allclose(fused, fused_noisy, atol=1e-6))}


# ======================================================================================
# Attention maps of one utterance
# ======================================================================================

def seeded_cmn(bundle, modalities: str = "LA", profile: str = "quick", seed: int = 0,
               **overrides) -> CMN:
    """An UNTRAINED CMN for ``bundle`` (its feature sizes and default head) whose weights
    come from ``torch.manual_seed(seed)``, in eval mode."""
    torch.manual_seed(seed)
    return build_model("cmn", default_head(bundle.dataset), bundle.feature_dims, modalities, profile,
                       **overrides).eval()


def pick_example(split: Split, max_len: int = 20, min_len: int = 8) -> int:
    """The row of ``split`` with the most cue words (ambiguous words) among those of
    ``min_len`` to ``max_len`` words (the first on ties); without a cue mask, the first row
    of that length. Short rows give readable heatmaps."""
    lengths = split.lengths[split.modalities[0]]
    eligible = (lengths >= min_len) & (lengths <= max_len)
    if not eligible.any():
        eligible = np.ones_like(lengths, dtype=bool)
    cue = split.extras.get("cue_mask")
    score = cue.sum(axis=1).astype(np.int64) if cue is not None else np.zeros(len(split), np.int64)
    return int(np.argmax(np.where(eligible, score, -1)))


def cue_of(split: Split, index: int) -> np.ndarray | None:
    """The cue mask (1 at ambiguous words) of row ``index`` cut to its length, or None
    when the data has none (real data, IEMOCAP-like)."""
    cue = split.extras.get("cue_mask")
    if cue is None:
        return None
    return np.asarray(cue[index, :int(split.lengths[split.modalities[0]][index])], dtype=bool)


def describe_utterance(split: Split, index: int) -> str:
    """One line about row ``index``: id, length, label and the positions of its ambiguous words."""
    label = split.labels[index]
    label = (IEMOCAP_EMOTIONS[int(np.argmax(label))] if np.ndim(label) else f"sentiment {float(label):+.2f}")
    n = int(split.lengths[split.modalities[0]][index])
    text = f"{split.name} utterance {split.ids[index]}: {n} words, {label}"
    cue = cue_of(split, index)
    if cue is not None:
        text += f", ambiguous words at positions {np.flatnonzero(cue).tolist()}"
    return text


def utterance_inputs(split: Split, index: int, modalities: str = "LA"):
    """Row ``index`` of ``split`` as a batch of one, cut to its length: (features, lengths)."""
    features, lengths = {}, {}
    for m in parse_modalities(modalities):
        n = int(split.lengths[m][index])
        features[m] = torch.from_numpy(split.features[m][index:index + 1, :max(n, 1)].copy())
        lengths[m] = torch.tensor([n])
    return features, lengths


@torch.no_grad()
def utterance_attention(model: CMN, split: Split, index: int) -> dict[str, np.ndarray]:
    """Every attention map of ``model`` (eval mode) for row ``index`` of ``split``.

    Keys are '<modality>/<kind>': 'self' and 'guided' maps are (layers, heads, T_q, T_k);
    'flat' (the AttFlat pooling weights) is (glimpses, T).
    """
    model.eval()
    features, lengths = utterance_inputs(split, index, model.config.modalities)
    _, attention = model(features, lengths, return_attention=True)
    maps = {}
    for key, value in attention.items():
        if key.endswith("/flat"):
            maps[key] = value[0].T.numpy()
        else:
            maps[key] = torch.stack([w[0] for w in value]).numpy()
    return maps


def attention_entropy(maps: np.ndarray, decimals: int | None = 3) -> pd.DataFrame:
    """Mean normalised entropy of the attention rows of maps (layers, heads, T_q, T_k):
    H(row) / log(T_k), 1 for uniform attention, 0 for attention on a single key. Also the
    mean largest weight of a row times T_k (1 for uniform). Rows: layer (1-based), head."""
    maps = np.asarray(maps, dtype=np.float64)
    t_k = maps.shape[-1]
    entropy = -(maps * np.log(np.where(maps > 0, maps, 1.0))).sum(-1) / np.log(t_k)
    peak = maps.max(-1) * t_k
    index = pd.MultiIndex.from_product([range(1, maps.shape[0] + 1), range(maps.shape[1])],
                                       names=["layer", "head"])
    table = pd.DataFrame({"entropy / log T": entropy.mean(-1).reshape(-1),
                          "max weight × T": peak.mean(-1).reshape(-1)}, index=index)
    return table.round(decimals) if decimals is not None else table


# ======================================================================================
# Attention on the cue words (synthetic data: the ambiguous words)
# ======================================================================================

def cue_share(weights: torch.Tensor, key_cue: torch.Tensor,
              query_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Share of attention mass that falls on cue keys, averaged over the valid queries.

    ``weights`` (B, H, T_q, T_k), rows summing to 1; ``key_cue`` (B, T_k) 1 at cue keys
    (0 at padding); ``query_valid`` (B, T_q) True at real queries (None: all). Returns (B, H):
    mean over valid queries q of sum over cue keys k of weights[b, h, q, k].
    """
    mass = (weights * key_cue[:, None, None, :].to(weights.dtype)).sum(-1)   # (B, H, T_q)
    if query_valid is None:
        return mass.mean(-1)
    valid = query_valid[:, None, :].to(weights.dtype)
    return (mass * valid).sum(-1) / valid.sum(-1).clamp(min=1)


def uniform_share(key_cue: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """What uniform attention over the real keys puts on the cue keys: n_cue / length, (B,)."""
    return key_cue.sum(-1).to(torch.float64) / lengths.clamp(min=1).to(torch.float64)


def _key_modalities(model: CMN, modality: str, kind: str) -> list[str]:
    """The modalities whose steps are the keys of attention map ``modality/kind``."""
    if kind in ("self", "flat"):
        return [modality]
    if model.backbone.encoder is None:  # symmetric: keys = the other modalities, concatenated
        return [m for m in model.config.modality_names if m != modality]
    return [model.backbone.guide]


def _attention_batches(model: CMN, split: Split, batch_size: int):
    """The length-bucketed batches of ``split`` through ``model`` (eval mode) with their
    attention maps. Yields ``(index, lengths, attention, valid, cue)``: ``valid[m]`` (B, T)
    True at the real steps of modality m, ``cue[m]`` True at its real cue (ambiguous-word)
    steps, or ``cue`` None when the split has no cue mask (real data)."""
    model.eval()
    cue_all = split.extras.get("cue_mask")
    for batch in make_loader(split, model.config.modalities, "regression", batch_size=batch_size, bucket=True):
        features, lengths, index = batch["features"], batch["lengths"], batch["index"]
        _, attention = model(features, lengths, return_attention=True)
        valid = {m: ~padding_mask(lengths[m], x.shape[1]) for m, x in features.items()}
        cue = None if cue_all is None else {
            m: torch.from_numpy(np.asarray(cue_all)[index.numpy(), :x.shape[1]] > 0) & valid[m]
            for m, x in features.items()}
        yield index, lengths, attention, valid, cue


@torch.no_grad()
def collect_cue_shares(model: CMN, split: Split, batch_size: int = 200) -> pd.DataFrame:
    """Per utterance of ``split`` and per attention map (kind, layer, head): the share of
    attention on the cue words, and what uniform attention would give.

    Needs ``split.extras['cue_mask']`` (synthetic data) and word-aligned modalities (step t
    of every modality is word t). Kinds: 'text/self', 'audio/self', 'audio/guided' (keys:
    the guiding language output; in the symmetric wiring also 'text/guided'), and
    'text/flat', 'audio/flat' (AttFlat pooling, one "head" per glimpse, layer 0).
    Returns a long DataFrame: utterance, label, n_words, n_cue, attention, layer, head,
    share, uniform; None when the split has no cue mask (real data).
    """
    if "cue_mask" not in split.extras:
        return None
    frames = []
    for index, lengths, attention, valid, cue in _attention_batches(model, split, batch_size):
        first = next(iter(lengths))
        base = {"utterance": index.numpy(), "label": split.labels[index.numpy()],
                "n_words": lengths[first].numpy(), "n_cue": cue[first].sum(-1).numpy().astype(int)}
        for key, value in attention.items():
            modality, kind = key.split("/")
            key_mods = _key_modalities(model, modality, kind)
            key_cue = torch.cat([cue[m] for m in key_mods], dim=1)
            key_len = sum(lengths[m] for m in key_mods)
            uniform = uniform_share(key_cue, key_len).numpy()
            if kind == "flat":
                maps, query_valid = [value.permute(0, 2, 1)[:, :, None, :]], None
            else:
                maps, query_valid = value, valid[modality]
            for layer, w in enumerate(maps):
                share = cue_share(w, key_cue, query_valid).numpy()
                for head in range(share.shape[1]):
                    frames.append(pd.DataFrame({**base, "attention": key, "layer": layer, "head": head,
                                                "share": share[:, head].astype(np.float64),
                                                "uniform": uniform}))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["attention", "layer", "head", "utterance"], kind="stable").reset_index(drop=True)


def summarise_cue_shares(shares: pd.DataFrame, decimals: int | None = 3) -> pd.DataFrame:
    """Mean over the utterances with at least one cue word, per (attention, layer, head):
    the share on cue words, the uniform share (n_cue / length), their ratio, and the % of
    utterances whose share is above their uniform share. None in, None out."""
    if shares is None:
        return None
    with_cue = shares[shares["n_cue"] > 0].assign(above=lambda d: d["share"] > d["uniform"])
    grouped = with_cue.groupby(["attention", "layer", "head"], sort=True)
    table = grouped[["share", "uniform"]].mean()
    table["ratio"] = table["share"] / table["uniform"]
    table["above uniform %"] = 100 * grouped["above"].mean()
    table["utterances"] = grouped.size()
    if decimals is not None:
        table = table.round({"share": decimals, "uniform": decimals, "ratio": 2, "above uniform %": 1})
    return table


def compare_cue_shares(tables: dict[str, pd.DataFrame], decimals: int = 3) -> pd.DataFrame:
    """Summaries (from :func:`summarise_cue_shares`, unrounded) of several models side by
    side: the uniform share once, then each model's share and ratio (None if any is None)."""
    if any(t is None for t in tables.values()):
        return None
    first = next(iter(tables.values()))
    out = pd.DataFrame({"uniform": first["uniform"]})
    for name, table in tables.items():
        out[f"{name} share"] = table["share"]
        out[f"{name} ratio"] = table["share"] / table["uniform"]
    return out.round({c: (2 if c.endswith("ratio") else decimals) for c in out.columns})


def cue_shares_by_class(shares: pd.DataFrame, attention=("text/flat", "audio/flat"),
                        decimals: int | None = 3) -> pd.DataFrame:
    """Cue share of the given attention maps (mean over heads and layers) by sentiment sign
    (label < 0: negative; >= 0: non-negative), utterances with at least one cue word."""
    if shares is None:
        return None
    part = shares[(shares["n_cue"] > 0) & shares["attention"].isin(list(attention))]
    part = part.assign(sentiment=np.where(part["label"] < 0, "negative", "non-negative"))
    table = part.groupby(["sentiment", "attention"])[["share", "uniform"]].mean().unstack("attention")
    table.columns = [f"{a} {q}" for q, a in table.columns]
    table = table[sorted(table.columns)]
    table["utterances"] = part.groupby("sentiment")["utterance"].nunique()
    return table.round(decimals) if decimals is not None else table


@torch.no_grad()
def flat_attention_by_class(model: CMN, split: Split, batch_size: int = 200,
                            decimals: int | None = 3) -> pd.DataFrame:
    """AttFlat pooling weight of an ambiguous word and of another word, relative to uniform
    pooling, by sentiment sign (label < 0: negative; >= 0: non-negative).

    Per utterance with n real words, at least one cue word and one other word: the mean
    AttFlat weight (mean over glimpses) of its cue words times n, and of its other words
    times n (both 1 for uniform pooling), and the ratio of the two; each then averaged over
    the utterances. None without a cue mask."""
    if "cue_mask" not in split.extras:
        return None
    records = []
    for index, lengths, attention, valid, cues in _attention_batches(model, split, batch_size):
        labels = split.labels[index.numpy()]
        for m in lengths:
            cue = cues[m]
            other = valid[m] & ~cue
            w = attention[f"{m}/flat"].mean(-1).double() * lengths[m][:, None].double()   # 1 = uniform
            n_cue, n_other = cue.sum(-1), other.sum(-1)
            cue_w = (w * cue).sum(-1) / n_cue.clamp(min=1)
            other_w = (w * other).sum(-1) / n_other.clamp(min=1)
            keep = ((n_cue > 0) & (n_other > 0)).numpy()
            records.append(pd.DataFrame({
                "sentiment": np.where(labels < 0, "negative", "non-negative")[keep], "modality": m,
                "cue word": cue_w.numpy()[keep], "other word": other_w.numpy()[keep],
                "ratio": (cue_w / other_w).numpy()[keep]}))
    data = pd.concat(records, ignore_index=True)
    table = data.groupby(["sentiment", "modality"])[["cue word", "other word", "ratio"]].mean().unstack("modality")
    table.columns = [f"{m}: {q} × n" if q != "ratio" else f"{m}: ratio" for q, m in table.columns]
    order = [c for m in model.config.modality_names for c in table.columns if c.startswith(f"{m}:")]
    table = table[order]
    table["utterances"] = data[data["modality"] == model.config.modality_names[0]].groupby("sentiment").size()
    return table.round(decimals) if decimals is not None else table


@torch.no_grad()
def aligned_attention(model: CMN, split: Split, batch_size: int = 200, decimals: int | None = 3) -> pd.DataFrame:
    """Guided attention on the aligned word: for word-aligned data, the weight that audio
    step t puts on word t, times the number of words n (1 for uniform attention), averaged
    over all real steps ('all steps') and over the steps of ambiguous words only ('ambiguous
    steps', when the split has a cue mask). Rows: layer (1-based), head. Encoder-decoder
    and stacked wirings (one guide), equal lengths per modality."""
    guide = model.backbone.guide
    other = model.backbone.others[0]
    sums = {}
    for _, lengths, attention, valid, cue in _attention_batches(model, split, batch_size):
        n = lengths[guide]
        groups = {"all steps": valid[guide]}
        if cue is not None:
            groups["ambiguous steps"] = cue[guide]
        for layer, w in enumerate(attention[f"{other}/guided"]):
            relative = torch.diagonal(w, dim1=-2, dim2=-1).double() * n[:, None, None].double()  # (B, H, T)
            for name, where in groups.items():
                total = (relative * where[:, None, :]).sum((0, 2))
                entry = sums.setdefault((name, layer), [torch.zeros_like(total), 0])
                entry[0] += total
                entry[1] += int(where.sum())
    index = pd.MultiIndex.from_product([range(1, len(model.backbone.blocks[other]) + 1),
                                        range(model.config.heads)], names=["layer", "head"])
    table = pd.DataFrame({name: torch.cat([sums[(name, layer)][0] / max(sums[(name, layer)][1], 1)
                                           for layer in range(len(index.levels[0]))]).numpy()
                          for name in dict.fromkeys(k[0] for k in sums)}, index=index)
    return table.round(decimals) if decimals is not None else table


# ======================================================================================
# The MUA wiring, read off the code
# ======================================================================================

_PROBE_DIMS = {"text": 6, "audio": 5, "vision": 4}
_PROBE_LENGTHS = {"text": 5, "audio": 6, "vision": 7}


@torch.no_grad()
def mua_guidance(mua: str = "encoder_decoder", layers: int = 2, modalities: str = "LA") -> pd.DataFrame:
    """Which stream feeds which MUA unit, read off the code rather than the docs.

    Builds a tiny CMN with the given wiring, runs it once on random inputs (each modality a
    different length) with forward hooks, and matches each unit's inputs, by value, to the
    outputs of the LSTMs and of the other units. Returns one row per unit, in call order:
    unit, modality, layer (1-based), kind (SA or SGA), 'queries from' and 'guided by'
    (keys/values of the guided attention; several sources joined by ' + ' when
    concatenated; '' for SA).
    """
    names = parse_modalities(modalities)
    torch.manual_seed(0)
    config = CMNConfig(modalities=modalities, input_dims=dict(_PROBE_DIMS), hidden=8, layers=layers,
                       heads=2, ff_size=16, dropout=0.0, output_dropout=0.0, mua=mua)
    model = CMN(config).eval()
    produced: list[tuple[str, torch.Tensor]] = []
    calls: list[tuple[str, nn.Module, tuple]] = []
    hooks = []

    def lstm_hook(name):
        return lambda module, args, output: produced.append((name, output[0]))

    def unit_hook(name):
        def hook(module, args, output):
            calls.append((name, module, args))
            produced.append((name, output))
        return hook

    for m in names:
        hooks.append(model.lstm[m].register_forward_hook(lstm_hook(f"{m} LSTM")))
    units = []
    if model.backbone.encoder is not None:
        units += [(f"{model.backbone.guide} SA {i + 1}", u) for i, u in enumerate(model.backbone.encoder)]
    for m, blocks in model.backbone.blocks.items():
        units += [(f"{m} SGA {i + 1}", u) for i, u in enumerate(blocks)]
    hooks += [u.register_forward_hook(unit_hook(name)) for name, u in units]
    g = torch.Generator().manual_seed(1)
    features = {m: torch.randn(1, _PROBE_LENGTHS[m], _PROBE_DIMS[m], generator=g) for m in names}
    lengths = {m: torch.tensor([_PROBE_LENGTHS[m]]) for m in names}
    try:
        model(features, lengths)
    finally:
        for hook in hooks:
            hook.remove()

    def identify(tensor: torch.Tensor) -> str:
        parts, offset = [], 0
        while offset < tensor.shape[1]:
            for name, out in produced:
                n = out.shape[1]
                if offset + n <= tensor.shape[1] and torch.equal(tensor[:, offset:offset + n], out):
                    parts.append(name)
                    offset += n
                    break
            else:
                return "?"
        return " + ".join(parts)

    rows = []
    for name, module, args in calls:
        modality, kind, layer = name.split()
        rows.append({"unit": name, "modality": modality, "layer": int(layer), "kind": kind,
                     "queries from": identify(args[0]),
                     "guided by": identify(args[1]) if isinstance(module, SGA) else ""})
    return pd.DataFrame(rows)


# ======================================================================================
# Shapes, parameters, FLOPs
# ======================================================================================

def example_batch(split: Split, indices=(0, 1), modalities: str = "LA"):
    """Rows ``indices`` of ``split`` as one right-padded batch cut to its longest row:
    (features, lengths), as the loader gives them."""
    index = np.asarray(indices)
    features, lengths = {}, {}
    for m in parse_modalities(modalities):
        n = split.lengths[m][index]
        features[m] = torch.from_numpy(split.features[m][index, :max(int(n.max()), 1)].copy())
        lengths[m] = torch.from_numpy(n.astype(np.int64))
    return features, lengths


def _shape(x) -> str:
    return " × ".join(str(s) for s in x.shape)


@torch.no_grad()
def shape_trace(model: CMN, features: dict, lengths: dict) -> pd.DataFrame:
    """Run ``model`` once (eval mode) and list, in call order, every stage with its
    module, the shapes of its tensor inputs and of its output, and its parameters.

    Stages: input, 1 LSTM, 2 MUA (SA / SGA units; an SGA's second input is its guide),
    3 AttFlat, 4 fusion (the AttFlat outputs summed, then LayerNorm: the row shows the
    norm, whose input is the sum), 5 head (linear, then the head's output shape).
    """
    stages = {"lstm": "1 LSTM", "backbone": "2 MUA", "attflat": "3 AttFlat",
              "proj_norm": "4 fusion (sum, norm)", "proj": "5 head"}
    rows = [{"stage": "input", "module": f"features[{m!r}]", "input": "", "output": _shape(x),
             "parameters": 0} for m, x in features.items()]
    hooks = []

    def hook(name, stage):
        def record(module, args, output):
            tensors = [a for a in args if torch.is_tensor(a) and a.is_floating_point()]
            out = output[0] if isinstance(output, tuple) else output
            rows.append({"stage": stage, "module": f"{name} ({type(module).__name__})",
                         "input": ", ".join(_shape(t) for t in tensors), "output": _shape(out),
                         "parameters": count_parameters(module)})
        return record

    for name, module in model.named_modules():
        top = name.split(".")[0]
        stage = stages.get(top)
        if stage is None:
            continue
        depth = name.count(".")
        wanted = ((top in ("lstm", "attflat") and depth == 1) or top in ("proj_norm", "proj")
                  or (top == "backbone" and isinstance(module, (SA, SGA))))
        if wanted:
            hooks.append(module.register_forward_hook(hook(name, stage)))
    was_training = model.training
    model.eval()
    try:
        output = model(features, lengths)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    rows.append({"stage": "5 head", "module": f"output ({model.config.head})", "input": "",
                 "output": _shape(output), "parameters": 0})
    return pd.DataFrame(rows)


COMPLEXITY_MODELS = (("CMN (L+A)", "cmn", "LA"), ("CMN (L+A+V)", "cmn", "LAV"),
                     ("MulT (L+A)", "mult", "LA"), ("MulT (L+A+V)", "mult", "LAV"))


def _attention_layers(model: nn.Module) -> int:
    """Transformer layers: SA / SGA units in CMN, encoder layers in MulT."""
    return sum(isinstance(m, (SA, GA, SGA, TransformerEncoderLayer)) for m in model.modules())


def _attention_sublayers(model: nn.Module) -> int:
    """Multi-head attention blocks (an SGA unit has two)."""
    return sum(isinstance(m, (MultiHeadAttention, MulTAttention)) for m in model.modules())


def complexity_table(feature_dims: dict, seq_lens: dict, profiles=("paper", "quick"),
                     head: str = "regression", models=COMPLEXITY_MODELS) -> pd.DataFrame:
    """Size and cost of CMN and MulT per profile: width, trainable parameters, forward
    MFLOPs for ONE utterance of lengths ``seq_lens`` (:func:`cmnlib.model.count_flops`),
    transformer modules (:func:`cmnlib.model.transformer_modules`), transformer layers and
    multi-head attention blocks."""
    rows = []
    for profile in profiles:
        for label, name, modalities in models:
            torch.manual_seed(0)
            model = build_model(name, head, feature_dims, modalities, profile)
            mods = parse_modalities(modalities)
            width = model.config.hidden if name == "cmn" else model.config.d_l
            rows.append({"profile": profile, "model": label, "width": width,
                         "parameters": count_parameters(model),
                         "MFLOPs / utterance": round(count_flops(model, feature_dims,
                                                                 {m: seq_lens[m] for m in mods}, mods) / 1e6, 1),
                         "transformer modules": transformer_modules(model),
                         "transformer layers": _attention_layers(model),
                         "attention blocks": _attention_sublayers(model)})
    return pd.DataFrame(rows).set_index(["profile", "model"])


def complexity_claims(table: pd.DataFrame, profile: str = "paper", cmn: str = "CMN (L+A)",
                      mult: str = "MulT (L+A+V)") -> str:
    """The paper's "2 transformer modules instead of MulT's 6" beside what the modules
    cost, in words, from a :func:`complexity_table` (one profile)."""
    a, b = table.loc[(profile, cmn)].to_dict(), table.loc[(profile, mult)].to_dict()
    for row in (a, b):
        for key in ("width", "parameters", "transformer modules", "transformer layers"):
            row[key] = int(row[key])
    n = mult.count("+") + 1           # MulT: n(n-1) crossmodal + n memory transformers
    return "\n".join([
        f"{profile} profile: {cmn} (width {a['width']}) vs {mult} (width {b['width']})",
        f"  transformer modules: {a['transformer modules']} vs {b['transformer modules']}"
        f" (MulT: {n * (n - 1)} crossmodal + {n} memory transformers)",
        f"  transformer layers: {a['transformer layers']} vs {b['transformer layers']}",
        f"  parameters: {a['parameters']:,} vs {b['parameters']:,} "
        f"({a['parameters'] / b['parameters']:.1f}x)",
        f"  MFLOPs per utterance: {a['MFLOPs / utterance']:,.1f} vs {b['MFLOPs / utterance']:,.1f} "
        f"({a['MFLOPs / utterance'] / b['MFLOPs / utterance']:.1f}x)",
    ])


def run_metrics(summary: dict, keys=("acc2_has0", "f1_has0", "acc2_non0", "mae", "corr")) -> pd.DataFrame:
    """Test metrics of every seed of a :func:`cmnlib.train.train_seeds` summary (percent,
    one decimal; MAE and Corr with three), with each seed's selected epoch; no index."""
    rows = []
    for member in summary["members"]:
        row = {"seed": member["seed"], "selected epoch": member["best_epoch"]}
        for k in keys:
            if k in member["test"]:
                value = float(member["test"][k])
                row[k if k in ("mae", "corr") else f"{k} %"] = round(value, 3) if k in ("mae", "corr") \
                    else round(100 * value, 1)
        rows.append(row)
    return pd.DataFrame(rows)


# ======================================================================================
# Findings over seeds (cmnlib.findings): statements about trained models
# ======================================================================================

CONCENTRATION = 1.25  # "concentrates on the cue words": >= 25% more attention than uniform


def best_cue_ratio(summary: pd.DataFrame) -> pd.Series:
    """Per attention kind ('text/self', 'audio/guided', 'text/flat', ...): the largest
    ratio share / uniform share over its maps (layers, heads), from an unrounded
    :func:`summarise_cue_shares` table. Different seeds specialise different heads, so the
    best map of a kind, not a fixed (layer, head), is what compares across seeds."""
    return summary["share"].div(summary["uniform"]).groupby(level="attention").max()


def cue_findings(models: dict[str, list[CMN]], split: Split, threshold: float = CONCENTRATION,
                 batch_size: int = 200) -> dict:
    """For each group of models (e.g. ``{"trained": [...], "untrained": [...]}``, one model
    per seed) and each attention kind: does its best map put more than ``threshold`` times
    the uniform share on the cue (ambiguous) words? Group -> one
    :class:`cmnlib.findings.Finding` per kind, over the group's seeds. None without a cue
    mask (real data)."""
    if "cue_mask" not in split.extras:
        return None
    ratios = {group: [best_cue_ratio(summarise_cue_shares(collect_cue_shares(m, split, batch_size), decimals=None))
                      for m in members] for group, members in models.items()}
    out = {}
    for group, per_seed in ratios.items():
        for kind in per_seed[0].index:
            out.setdefault(group, []).append(findings.exceeds(
                f"{kind} of the {group} models puts more than {threshold:g}x the uniform share on the ambiguous words",
                f"{kind}: largest share/uniform over layers and heads",
                [float(r[kind]) for r in per_seed], threshold, unit="x", digits=2))
    return out


def aligned_findings(models: dict[str, list[CMN]], split: Split, threshold: float = CONCENTRATION,
                     batch_size: int = 200) -> dict:
    """For each group of models (one per seed): does the audio -> language guided attention,
    at the audio steps of ambiguous words, put more than ``threshold`` times the uniform
    weight on the word those steps belong to (its best layer and head, per seed)? Group ->
    a list of one :class:`cmnlib.findings.Finding`; None without a cue mask."""
    if "cue_mask" not in split.extras:
        return None
    out = {}
    for group, members in models.items():
        values = [float(aligned_attention(m, split, batch_size, decimals=None)["ambiguous steps"].max())
                  for m in members]
        out[group] = [findings.exceeds(
            f"in the {group} models, audio steps of ambiguous words attend to their own word more than "
            f"{threshold:g}x uniform", "guided weight on the aligned word x n, best layer and head",
            values, threshold, unit="x", digits=2)]
    return out


def ceiling_findings(summary: dict, bundle, metric: str = "acc2_has0", tolerance: float = 3.0) -> list:
    """A trained model's test scores over seeds against the Bayes ceilings of synthetic
    data: above the language-only ceiling (it uses the audio), and within ``tolerance``
    points of the L+A ceiling. Empty for real data (no known ceiling)."""
    ceilings = bundle.meta.get("file_metadata", {}).get("bayes_ceilings", {})
    scores = [100 * m["test"][metric] for m in summary["members"]]
    out = []
    if "L" in ceilings:
        out.append(findings.exceeds(f"{summary['label']} scores above the language-only Bayes ceiling",
                                    f"test {metric} %", scores, 100 * ceilings["L"][metric]))
    if "LA" in ceilings:
        gaps = [100 * ceilings["LA"][metric] - s for s in scores]
        out.append(findings.exceeds(f"{summary['label']} comes within {tolerance:g} points of the L+A Bayes ceiling",
                                    "L+A ceiling minus test score, points", gaps, tolerance, above=False))
    return out


def compare_to_ceilings(summary: dict, bundle, metric: str = "acc2_has0") -> pd.DataFrame:
    """A trained model's mean test score over its seeds beside the Bayes ceilings of the
    synthetic data for language alone, audio alone and language + audio, in %; no index."""
    ceilings = bundle.meta.get("file_metadata", {}).get("bayes_ceilings", {})
    n = len(summary["members"])
    rows = [{"": f"{summary['label']}, test, mean of {n} seed{'s' if n > 1 else ''}",
             f"{metric} %": 100 * float(np.mean([m["test"][metric] for m in summary["members"]]))}]
    for subset in ("L", "A", "LA"):
        if subset in ceilings:
            rows.append({"": f"Bayes ceiling, {'+'.join(subset)}", f"{metric} %": 100 * ceilings[subset][metric]})
    return pd.DataFrame(rows).round(1)
