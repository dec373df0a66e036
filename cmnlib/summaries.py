"""Tables (pandas DataFrames) that describe a data set; the notebooks show them."""
from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pandas as pd

from .config import dataset_info
from .data import bayes
from .data.split import SPLITS, DataBundle
from .data.synthetic import SUBSETS
from .metrics import family_of


def split_sizes(bundle: DataBundle) -> pd.DataFrame:
    """Samples per split, with the share of the total."""
    sizes = pd.Series({name: len(bundle[name]) for name in SPLITS}, name="samples")
    return pd.DataFrame({"samples": sizes, "share %": (100 * sizes / sizes.sum()).round(1)})


def label_summary(bundle: DataBundle) -> pd.DataFrame:
    """Sentiment: statistics and the majority-class rates; emotions: class counts."""
    rows = {}
    info = dataset_info(bundle.dataset)
    for name in SPLITS:
        y = bundle[name].labels
        if info.emotions:
            counts = y.sum(axis=0)
            rows[name] = {**{e: int(c) for e, c in zip(info.classes, counts)},
                          "majority %": round(100 * counts.max() / counts.sum(), 1)}
        else:
            rows[name] = {"mean": round(float(y.mean()), 2), "std": round(float(y.std()), 2),
                          "non-negative %": round(100 * float((y >= 0).mean()), 1),
                          "zero %": round(100 * float((y == 0).mean()), 1),
                          "positive among non-zero %": round(100 * float((y[y != 0] > 0).mean()), 1)}
    return pd.DataFrame(rows).T


def real_mosei_reference() -> dict:
    """The real CMU-MOSEI label summary shipped with cmnlib (see resources/SOURCES.md)."""
    return json.loads(files("cmnlib.resources").joinpath("mosei_stats.json").read_text())


def feature_statistics(bundle: DataBundle, split: str = "train") -> pd.DataFrame:
    """Per modality: dimension, steps, mean/std over valid steps, share of all-zero steps,
    and whether it can inform a model at all (:func:`cmnlib.data.inspect.uninformative_modalities`:
    a modality that is all zeros, or one constant vector, carries nothing a fusion claim
    could rest on)."""
    from .data.inspect import uninformative_modalities
    part = bundle[split]
    empty = uninformative_modalities(bundle, split)
    rows = {}
    for modality, array in part.features.items():
        lengths = part.lengths[modality]
        valid = np.arange(array.shape[1])[None, :] < lengths[:, None]
        values = array[valid]
        rows[modality] = {"dim": array.shape[2], "steps (T)": array.shape[1],
                          "mean length": round(float(lengths.mean()), 1),
                          "mean": round(float(values.mean()), 3), "std": round(float(values.std()), 3),
                          "all-zero valid steps %": round(100 * float((~values.any(axis=1)).mean()), 2),
                          "informative": f"no: {empty[modality]}" if modality in empty else "yes"}
    return pd.DataFrame(rows).T


def nonfinite_table(bundle: DataBundle) -> pd.DataFrame:
    """NaN / +inf / -inf values found in the source and replaced by 0, per split/modality."""
    records = []
    for key, counts in sorted(bundle.meta.get("nonfinite", {}).items()):
        split, modality = key.split("/")
        records.append({"split": split, "modality": modality, **counts})
    return pd.DataFrame(records).set_index(["split", "modality"]) if records else pd.DataFrame()


def ceiling_table(bundle: DataBundle) -> pd.DataFrame | None:
    """The best any model can do, per modality subset (synthetic data only), in percent.
    For every metric of the data set's family that the generator computed a ceiling for:
    its expectation over the generating process ("expected", Monte Carlo, followed by its
    standard error where known), and where the test split carries each utterance's
    posterior, the same rule's score on this very test split (what the studies judge a
    model against). The expected F1 is the Bayes (accuracy-optimal) rule's, which a rule
    weighted for the F1 can beat: it is no ceiling, and its test-split column is the
    F1-optimal rule's instead (:func:`cmnlib.data.bayes.bayes_rule`)."""
    meta = bundle.meta.get("file_metadata", {})
    ceilings = meta.get("bayes_ceilings")
    if ceilings is None:
        return None
    columns = {}  # (metric, what) -> the value of a subset
    for metric in family_of(bundle.dataset, dataset_info(bundle.dataset).default_head).metrics:
        if metric.key not in ceilings[SUBSETS[0]]:
            continue
        columns[metric.label, "expected %" + ("" if bayes.has_ceiling(metric.key) else " (Bayes rule)")] = \
            lambda s, key=metric.key: 100 * ceilings[s][key]
        if f"{metric.key}_se" in ceilings[SUBSETS[0]]:
            columns[metric.label, "± s.e."] = lambda s, key=f"{metric.key}_se": 100 * ceilings[s][key]
        if bayes.judged_on_split(bundle, metric.key):
            columns[metric.label, f"this test split % ({bayes.rule_name(metric.key)})"] = \
                lambda s, key=metric.key: bayes.bayes_rule(bundle, s, metric=key).score(key)
    table = pd.DataFrame({s: {label: value(s) for label, value in columns.items()} for s in SUBSETS}).T
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "modalities"
    return table.round(1)
