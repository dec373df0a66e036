"""The attention maps of one utterance: a seeded (untrained) CMN, an example utterance
and its maps per layer and head, and how peaked they are (notebooks 02-03)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..config import IEMOCAP_EMOTIONS, default_head, parse_modalities
from ..data.split import Split
from ..model import build_model
from ..model.attention import capture_attention
from ..model.cmn import CMN


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
    with capture_attention(model):
        model(features, lengths)
    attention = model.attention_maps()
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
    index = pd.MultiIndex.from_product([range(1, maps.shape[0] + 1), range(1, maps.shape[1] + 1)],
                                       names=["layer", "head"])
    table = pd.DataFrame({"entropy / log T": entropy.mean(-1).reshape(-1),
                          "max weight × T": peak.mean(-1).reshape(-1)}, index=index)
    return table.round(decimals) if decimals is not None else table
