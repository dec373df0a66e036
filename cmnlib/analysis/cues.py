"""How much attention falls on the cue words (the synthetic data's ambiguous words, which
only the aligned audio disambiguates), per map and over seeds, and trained models'
scores against the Bayes ceilings (notebook 03)."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from .. import findings
from ..findings import Question
from ..metrics import headline, metric, table_metrics
from ..data import bayes
from ..data.loader import make_loader
from ..data.split import Split
from ..data.synthetic import MOSEI_TYPES, mosei_world
from ..model.attention import capture_attention, padding_mask
from ..model.cmn import CMN


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


# (model, split, batch size) -> its batches, while one_pass() holds them: the analyses of one
# model then run it over the split once
_ONE_PASS: dict | None = None


@contextmanager
def one_pass():
    """Within this block each (model, split, batch size) goes through the model once: the
    analyses that follow reuse its attention maps. The maps are held until the block ends,
    so keep one model per block (:func:`attention_findings`)."""
    global _ONE_PASS
    outer, _ONE_PASS = _ONE_PASS, {}
    try:
        yield
    finally:
        _ONE_PASS = outer


def _attention_batches(model: CMN, split: Split, batch_size: int):
    """The length-bucketed batches of ``split`` through ``model`` (eval mode) with their
    attention maps. Yields ``(index, lengths, attention, valid, cue)``: ``valid[m]`` (B, T)
    True at the real steps of modality m, ``cue[m]`` True at its real cue (ambiguous-word)
    steps, or ``cue`` None when the split has no cue mask (real data). Inside
    :func:`one_pass` the batches of a model are computed once and then reused."""
    if _ONE_PASS is None:
        yield from _run_attention_batches(model, split, batch_size)
        return
    key = (id(model), id(split), batch_size)
    if key not in _ONE_PASS:
        _ONE_PASS[key] = list(_run_attention_batches(model, split, batch_size))
    yield from _ONE_PASS[key]


@torch.no_grad()
def _run_attention_batches(model: CMN, split: Split, batch_size: int):
    model.eval()
    cue_all = split.extras.get("cue_mask")
    for batch in make_loader(split, model.config.modalities, "regression", batch_size=batch_size, bucket=True):
        features, lengths, index = batch["features"], batch["lengths"], batch["index"]
        with capture_attention(model):
            model(features, lengths)
        attention = model.attention_maps()
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
    'text/flat', 'audio/flat' (AttFlat pooling, one "head" per glimpse, layer 1). Layers
    count from 1, as everywhere in the notebooks and figures.
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
            for layer, w in enumerate(maps, start=1):  # layers and heads count from 1, as in the figures
                share = cue_share(w, key_cue, query_valid).numpy()
                for head in range(share.shape[1]):
                    frames.append(pd.DataFrame({**base, "attention": key, "layer": layer, "head": head + 1,
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
    and stacked wirings (one guide). None on unaligned data (steps of the modalities do
    not correspond one to one)."""
    if len({a.shape[1] for a in split.features.values()}) != 1:
        return None
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
                                        range(1, model.config.heads + 1)], names=["layer", "head"])
    table = pd.DataFrame({name: torch.cat([sums[(name, layer)][0] / max(sums[(name, layer)][1], 1)
                                           for layer in range(len(index.levels[0]))]).numpy()
                          for name in dict.fromkeys(k[0] for k in sums)}, index=index)
    return table.round(decimals) if decimals is not None else table


def run_metrics(result, keys=None) -> pd.DataFrame:
    """Test metrics of every seed of a run (:class:`cmnlib.results.RunResult`), with each
    seed's selected epoch; no index. ``keys``: default the data set's table columns (the
    metric registry); each named as the registry names it, rates in percent with one
    decimal, MAE and Corr with three."""
    chosen = [metric(k, result.dataset) for k in keys] if keys is not None else table_metrics(result.dataset)
    rows = []
    for member, found in zip(result.members, result.metrics("test")):
        row = {"seed": member.seed, "selected epoch": member.best_epoch}
        for m in chosen:
            if m.key in found:
                value = float(found[m.key])
                row[f"{m.label} %" if m.percent else m.label] = round(100 * value, 1) if m.percent else round(value, 3)
        rows.append(row)
    return pd.DataFrame(rows)


# ======================================================================================
# Findings over seeds (cmnlib.findings): statements about trained models
# ======================================================================================

CONCENTRATION = 1.25  # "concentrates on the cue words": >= 25% more attention than uniform

# what the attention findings ask ({subject}: a group of models such as 'trained'); the
# threshold is a multiple of uniform attention
ON_AMBIGUOUS = Question("cue_share", "{kind} of the {subject} models puts more than {threshold:g}x the uniform "
                                     "share on the ambiguous words")
ON_OWN_WORD = Question("aligned_attention", "in the {subject} models, audio steps of ambiguous words attend to their "
                                            "own word more than {threshold:g}x uniform")
ON_POLAR_WORDS = Question("polar_words", "the {subject} models' guided attention puts more than {threshold:g}x uniform "
                                         "on polar (positive or negative) words")
ON_AMBIGUOUS_WORDS = Question("ambiguous_words", "the {subject} models' guided attention puts more than "
                                                 "{threshold:g}x uniform on ambiguous words")


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
    :class:`cmnlib.findings.Finding` per kind, over the group's seeds. Without a cue mask
    (real data) every group's list is empty: there is nothing to measure."""
    if "cue_mask" not in split.extras:
        return {group: [] for group in models}
    return _cue_findings({group: [_cue_ratios(m, split, batch_size) for m in members]
                          for group, members in models.items()}, threshold)


def _cue_ratios(model: CMN, split: Split, batch_size: int) -> pd.Series:
    return best_cue_ratio(summarise_cue_shares(collect_cue_shares(model, split, batch_size), decimals=None))


def _cue_findings(ratios: dict[str, list[pd.Series]], threshold: float) -> dict:
    out = {}
    for group, per_seed in ratios.items():
        for kind in per_seed[0].index:
            out.setdefault(group, []).append(findings.exceeds(
                ON_AMBIGUOUS, group, f"{kind}: largest share/uniform over layers and heads",
                [float(r[kind]) for r in per_seed], threshold, unit="x", digits=2, kind=kind))
    return out


def aligned_findings(models: dict[str, list[CMN]], split: Split, threshold: float = CONCENTRATION,
                     batch_size: int = 200) -> dict:
    """For each group of models (one per seed): does the audio -> language guided attention,
    at the audio steps of ambiguous words, put more than ``threshold`` times the uniform
    weight on the word those steps belong to (its best layer and head, per seed)? Group ->
    a list of one :class:`cmnlib.findings.Finding`; empty lists without a cue mask or on
    unaligned data."""
    if not _has_aligned_cues(split):
        return {group: [] for group in models}
    return _aligned_findings({group: [_aligned_value(m, split, batch_size) for m in members]
                              for group, members in models.items()}, threshold)


def _has_aligned_cues(split: Split) -> bool:
    return "cue_mask" in split.extras and len({a.shape[1] for a in split.features.values()}) == 1


def _aligned_value(model: CMN, split: Split, batch_size: int) -> float:
    return float(aligned_attention(model, split, batch_size, decimals=None)["ambiguous steps"].max())


def _aligned_findings(values: dict[str, list[float]], threshold: float) -> dict:
    return {group: [findings.exceeds(ON_OWN_WORD, group, "guided weight on the aligned word x n, best layer and head",
                                     per_seed, threshold, unit="x", digits=2)]
            for group, per_seed in values.items()}


def compare_to_ceilings(result, bundle, key: str | None = None) -> pd.DataFrame:
    """A trained model's mean test score over its seeds (a :class:`cmnlib.results.RunResult`)
    beside the best any model can do from language alone, audio alone and language + audio,
    in %; no index. ``key``: the metric, default the data set's headline. For each subset:
    the expected Bayes ceiling (an accuracy's only: an F1's expectation belongs to the
    accuracy-optimal rule and bounds nothing), and where the test split carries the
    posteriors, the best rule on the same test utterances (the Bayes rule, or an F1's
    optimal form: :func:`cmnlib.data.bayes.bayes_rule`). Real data has no such rows."""
    shown = metric(key, bundle.dataset) if key is not None else headline(bundle.dataset)
    column = f"{shown.label} %"
    ceilings = bundle.meta.get("file_metadata", {}).get("bayes_ceilings", {})
    n = len(result.members)
    rows = [{"": f"{result.label}, test, mean of {n} seed{'s' if n > 1 else ''}",
             column: result.mean(shown.key, percent=True)}]
    same_split = bayes.judged_on_split(bundle, shown.key)
    for subset in ("L", "A", "LA"):
        name = "+".join(subset)
        if subset in ceilings and bayes.has_ceiling(shown.key):
            rows.append({"": f"Bayes ceiling, {name} (expected)", column: 100 * ceilings[subset][shown.key]})
        if same_split:
            rows.append({"": f"{bayes.rule_name(shown.key)}, {name}, this test split",
                         column: bayes.bayes_rule(bundle, subset, metric=shown.key).score(shown.key)})
    return pd.DataFrame(rows).round(1)


# ======================================================================================
# Which words guided attention reads: the synthetic word types
# ======================================================================================

WORD_GROUPS = ("positive", "negative", "ambiguous", "neutral")


def word_types(bundle, split_name: str = "test") -> np.ndarray | None:
    """The synthetic MOSEI-like set's word type of every text step of ``split_name``, (N, T)
    indices into :data:`cmnlib.data.synthetic.MOSEI_TYPES` (pause, neutral, positive,
    negative, ambiguous), -1 at padding; None for any other data.

    The files store only the ambiguous words (``cue_mask``), but every text feature is a
    vocabulary vector of the generator's world, which the file's metadata (process and seed)
    rebuilds exactly: each word is matched to its vector. A step that matches no vector (it
    cannot happen with the generator's own files) raises."""
    world = mosei_world(bundle.meta.get("file_metadata", {}))
    if world is None:
        return None
    lookup = {np.round(vector.astype(np.float32), 4).tobytes(): t
              for t, vocab in enumerate(world.vocab) for vector in vocab}
    split = bundle[split_name]
    text, lengths = split.features["text"], split.lengths["text"]
    types = np.full(text.shape[:2], -1, np.int64)
    for i in range(text.shape[0]):
        for t in range(int(lengths[i])):
            key = np.round(text[i, t].astype(np.float32), 4).tobytes()
            if key not in lookup:
                raise ValueError(f"{split_name} row {i}, word {t}: not a vocabulary vector of the generator")
            types[i, t] = lookup[key]
    return types


@torch.no_grad()
def guided_by_word_type(model: CMN, split: Split, types: np.ndarray, batch_size: int = 200,
                        decimals: int | None = 2) -> pd.DataFrame:
    """Where the audio -> language guided attention goes, by word type: for each map (layer
    from 1, head) and each group of :data:`WORD_GROUPS`, the mean weight per word of that
    type times the number of words n (1 = uniform), averaged over the real audio queries of
    the utterances that have such a word. ``types``: :func:`word_types` of ``split``."""
    names = dict(zip(("neutral", "positive", "negative", "ambiguous"), (1, 2, 3, 4)))
    other = model.backbone.others[0]
    sums: dict = {}
    for index, lengths, attention, valid, _ in _attention_batches(model, split, batch_size):
        t_k = attention[f"{other}/guided"][0].shape[-1]
        batch_types = torch.from_numpy(types[index.numpy(), :t_k])
        n = lengths[model.backbone.guide].double()
        queries = valid[other]
        for layer, w in enumerate(attention[f"{other}/guided"], start=1):  # (B, H, T_q, T_k)
            for group in WORD_GROUPS:
                member = (batch_types == names[group]).double()               # (B, T_k)
                count = member.sum(1)                                          # (B,)
                per_word = (w.double() * member[:, None, None, :]).sum(-1) / count.clamp(min=1)[:, None, None]
                relative = per_word * n[:, None, None]                         # (B, H, T_q)
                use = (queries & (count > 0)[:, None])[:, None, :].double()   # (B, 1, T_q)
                entry = sums.setdefault((layer, group), [torch.zeros(w.shape[1], dtype=torch.float64), 0.0])
                entry[0] += (relative * use).sum((0, 2))
                entry[1] += float(use.sum())
    layers = sorted({k[0] for k in sums})
    index = pd.MultiIndex.from_product([layers, range(1, model.config.heads + 1)], names=["layer", "head"])
    table = pd.DataFrame({f"{group} x n": torch.cat([sums[(layer, group)][0] / max(sums[(layer, group)][1], 1)
                                                     for layer in layers]).numpy()
                          for group in WORD_GROUPS}, index=index)
    return table.round(decimals) if decimals is not None else table


def word_type_findings(models: dict[str, list[CMN]], split: Split, types: np.ndarray | None,
                       threshold: float = CONCENTRATION, batch_size: int = 200) -> dict:
    """For each group of models (one per seed): does its best guided-attention head put more
    than ``threshold`` times the uniform weight per word on the **polar** words (positive or
    negative, whichever that head prefers), and on the ambiguous words? Group -> two
    :class:`cmnlib.findings.Finding`; empty lists without word types (other data)."""
    if types is None:
        return {group: [] for group in models}
    return _word_type_findings({group: [guided_by_word_type(m, split, types, batch_size, decimals=None)
                                        for m in members] for group, members in models.items()}, threshold)


def _word_type_findings(tables_by_group: dict[str, list[pd.DataFrame]], threshold: float) -> dict:
    out = {}
    for group, tables in tables_by_group.items():
        polar = [float(t[["positive x n", "negative x n"]].max(axis=1).max()) for t in tables]
        ambiguous = [float(t["ambiguous x n"].max()) for t in tables]
        out[group] = [
            findings.exceeds(ON_POLAR_WORDS, group, "best head: weight per polar word x n", polar, threshold,
                             unit="x", digits=2),
            findings.exceeds(ON_AMBIGUOUS_WORDS, group, "best head: weight per ambiguous word x n", ambiguous,
                             threshold, unit="x", digits=2)]
    return out


def strongest_columns(maps: np.ndarray, types_row: np.ndarray | None, top: int = 3) -> pd.DataFrame:
    """The stripes of one utterance's attention maps (layers, heads, T_q, T_k): per map the
    key (word) that receives the most attention averaged over all queries, as a multiple of
    uniform (mean weight x T_k), with the word's type when ``types_row`` (that utterance's
    :func:`word_types` row) is given; the ``top`` strongest maps, strongest first; layers
    from 1."""
    maps = np.asarray(maps)
    column = maps.mean(axis=2) * maps.shape[-1]                       # (layers, heads, T_k)
    rows = []
    for layer in range(maps.shape[0]):
        for head in range(maps.shape[1]):
            word = int(column[layer, head].argmax())
            kind = MOSEI_TYPES[types_row[word]] if types_row is not None and types_row[word] >= 0 else ""
            rows.append({"layer": layer + 1, "head": head + 1, "word": word, "type": kind,
                         "x uniform": round(float(column[layer, head, word]), 2)})
    table = pd.DataFrame(rows).sort_values("x uniform", ascending=False, kind="stable").head(top)
    return table.reset_index(drop=True)


def attention_findings(models: dict[str, list[CMN]], split: Split, types: np.ndarray | None = None,
                       threshold: float = CONCENTRATION, batch_size: int = 200) -> dict[str, dict]:
    """:func:`cue_findings`, :func:`aligned_findings` and :func:`word_type_findings` of the
    same groups of models, the same findings, with each model run over ``split`` once
    instead of three times (:func:`one_pass`, one model's maps held at a time). Returns
    {"cue": ..., "aligned": ..., "by_type": ...}, each as its function returns it."""
    cues, aligned, by_type = "cue_mask" in split.extras, _has_aligned_cues(split), types is not None
    values = {"cue": {}, "aligned": {}, "by_type": {}}
    for group, members in models.items():
        for model in members:
            with one_pass():
                if cues:
                    values["cue"].setdefault(group, []).append(_cue_ratios(model, split, batch_size))
                if aligned:
                    values["aligned"].setdefault(group, []).append(_aligned_value(model, split, batch_size))
                if by_type:
                    values["by_type"].setdefault(group, []).append(
                        guided_by_word_type(model, split, types, batch_size, decimals=None))
    def empty() -> dict:
        return {group: [] for group in models}
    return {"cue": _cue_findings(values["cue"], threshold) if cues else empty(),
            "aligned": _aligned_findings(values["aligned"], threshold) if aligned else empty(),
            "by_type": _word_type_findings(values["by_type"], threshold) if by_type else empty()}
