"""Evaluation metrics for CMU-MOSEI / CMU-MOSI and CH-SIMS sentiment and IEMOCAP emotions.

The conventions follow the reference implementations the field compares against:
MulT's ``src/eval_metrics.py`` (Tsai et al., 2019) and MMSA's regression metrics
(which introduced the "Has0" / "Non0" names).

CMU-MOSEI (labels are continuous sentiment scores in [-3, 3]):

* ``acc2_has0`` / ``f1_has0`` ("Has0", MMSA): binary non-negative (``>= 0``) vs
  negative (``< 0``) over *all* samples, for both labels and predictions. A
  prediction or label of exactly 0 counts as non-negative.
* ``acc2_non0`` / ``f1_non0`` ("Non0", MulT ``exclude_zero=True`` and MMSA):
  positive vs negative over the samples whose *label* is non-zero; both sides are
  binarised with ``> 0``, so a prediction of exactly 0 counts as negative.
* ``acc7`` / ``acc5``: predictions and labels are clipped to [-3, 3] (resp.
  [-2, 2]) and rounded with ``np.round`` (round half to even: 0.5 -> 0,
  1.5 -> 2, 2.5 -> 2), then compared for equality.
* ``mae`` over all samples and Pearson ``corr``.

All F1 scores are sklearn's ``average='weighted'`` F1 (per-class F1 averaged with
weights equal to each class's support in the ground truth), called as
``f1_score(y_true, y_pred, ...)``. MulT calls ``f1_score(preds, truths)`` with
the arguments swapped, which weights by the *predicted* class counts instead;
see ``mult_f1_argument_order`` in :func:`mosei_regression_metrics`.

CH-SIMS (labels in [-1, 1]): :func:`sims_regression_metrics`, MMSA's Acc2/Acc3/Acc5 with
half-open class intervals, weighted F1, MAE and Corr.

IEMOCAP (four emotions: neutral, happy, sad, angry):

* :func:`iemocap_metrics` takes single-label 4-class predictions and reports
  accuracy, macro ("unweighted") and weighted precision/recall/F1, and for each
  emotion the one-vs-rest binary accuracy and weighted F1.
* :func:`iemocap_binary4_metrics` is MulT's "4 x binary" form: one present /
  absent decision per emotion, scored per emotion with accuracy and weighted F1.

Every function validates its inputs (matching shapes, non-empty, finite values)
and raises ``ValueError`` otherwise. Results are plain ``dict`` objects of Python
``float`` (accuracies and F1 as fractions in [0, 1], not percent) and ``int``
counts. Inputs may be anything ``np.asarray`` accepts, including CPU or GPU
torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .config import IEMOCAP_EMOTIONS, dataset_info
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
)

__all__ = [
    "IEMOCAP_EMOTIONS",
    "iemocap_binary4_metrics",
    "iemocap_metrics",
    "majority_rate",
    "mosei_binary_metrics",
    "mosei_regression_metrics",
    "sims_regression_metrics",
    "SIMS_CUTS",
    "FAMILIES",
    "Family",
    "Metric",
    "family_of",
    "headline",
    "label",
    "metric",
    "score",
    "table_metrics",
]



# --------------------------------------------------------------------------- #
# Input validation helpers
# --------------------------------------------------------------------------- #


def _to_numpy(x: Any) -> np.ndarray:
    """Convert array-likes (including torch tensors) to a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_numeric(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array, or raise ValueError naming ``name``."""
    arr = _to_numpy(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be numeric; got an array of dtype {arr.dtype}")
    return arr.astype(np.float64)


def _check_finite_nonempty(arr: np.ndarray, name: str) -> None:
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty; got shape {arr.shape} with 0 elements")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = first[0] if len(first) == 1 else first
        raise ValueError(
            f"{name} must contain only finite values; found {int(bad.sum())} "
            f"NaN/inf value(s), the first at index {where}"
        )


def _as_1d(x: ArrayLike, name: str) -> np.ndarray:
    """Return a finite, non-empty 1-D float array.

    Shapes ``(N,)``, ``(N, 1)``, ``(N, 1, 1)``, ... are accepted; any trailing
    dimension of size other than 1 is an error (it would mean the caller passed
    something other than one score per sample).
    """
    arr = _as_numeric(x, name)
    if arr.ndim == 0 or any(d != 1 for d in arr.shape[1:]):
        raise ValueError(
            f"{name} must have shape (N,) (or (N, 1), (N, 1, 1)) with one value per "
            f"sample; got shape {arr.shape}"
        )
    arr = arr.reshape(-1)
    _check_finite_nonempty(arr, name)
    return arr


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples; "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


def _check_binary(arr: np.ndarray, name: str) -> np.ndarray:
    """Check that ``arr`` only holds 0/1 (or booleans) and return it as bool."""
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        bad_values = np.unique(arr[bad])[:5].tolist()
        raise ValueError(
            f"{name} must contain only 0/1 (or booleans); found other values, e.g. {bad_values}"
        )
    return arr.astype(bool)


def _check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(class_names)
    if isinstance(class_names, str) or len(names) < 2:
        raise ValueError(
            f"class_names must be a sequence of at least 2 names; got {class_names!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique; got {names!r}")
    return names


def _as_class_indices(x: ArrayLike, name: str, n_classes: int) -> np.ndarray:
    """Return a 1-D int array of class indices in ``[0, n_classes)``."""
    arr = _as_1d(x, name)
    non_integer = arr != np.round(arr)
    if non_integer.any():
        raise ValueError(
            f"{name} must hold integer class indices; found non-integer values, "
            f"e.g. {np.unique(arr[non_integer])[:5].tolist()}"
        )
    out_of_range = (arr < 0) | (arr >= n_classes)
    if out_of_range.any():
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes}); found "
            f"{np.unique(arr[out_of_range])[:5].astype(int).tolist()}"
        )
    return arr.astype(np.int64)


# --------------------------------------------------------------------------- #
# Small scoring helpers
# --------------------------------------------------------------------------- #


def _weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Support-weighted F1, ``f1_score(y_true, y_pred, average='weighted')``.

    ``zero_division=0`` gives the value sklearn's default would give for a class
    that is never predicted (0), without the warning.
    """
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _rounded_class_accuracy(preds: np.ndarray, labels: np.ndarray, bound: float) -> float:
    """MulT's ``multiclass_acc`` after clipping both sides to ``[-bound, bound]``."""
    p = np.round(np.clip(preds, -bound, bound))
    t = np.round(np.clip(labels, -bound, bound))
    return float(np.mean(p == t))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either vector is constant (r is undefined)."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    r = np.corrcoef(x, y)[0, 1]
    return float(np.clip(r, -1.0, 1.0))


# --------------------------------------------------------------------------- #
# CMU-MOSEI
# --------------------------------------------------------------------------- #


def mosei_regression_metrics(
    preds: ArrayLike,
    labels: ArrayLike,
    *,
    mult_f1_argument_order: bool = False,
) -> dict[str, float | int]:
    """Standard CMU-MOSEI metrics for a regression head.

    Args:
        preds: Real-valued sentiment predictions, shape ``(N,)`` (``(N, 1)`` and
            ``(N, 1, 1)`` are flattened).
        labels: Ground-truth sentiment scores in [-3, 3], same number of samples.
        mult_f1_argument_order: If True, compute ``f1_non0`` as MulT's
            ``eval_mosei_senti`` does, ``f1_score(y_pred, y_true,
            average='weighted')``, with the arguments swapped, so that classes
            are weighted by how often they are *predicted*. Only for reproducing
            numbers reported with MulT's code; the default (False) is the correct
            ``f1_score(y_true, y_pred, average='weighted')``. The per-class F1s
            are the same either way; only the weights differ.

    Returns:
        A dict with

        * ``acc2_has0``, ``f1_has0``: non-negative (``>= 0``) vs negative over
          all samples (MMSA "Has0"); a prediction of exactly 0 is non-negative.
        * ``acc2_non0``, ``f1_non0``: positive (``> 0``) vs negative over the
          samples with a non-zero label (MulT, MMSA "Non0"); a prediction of
          exactly 0 counts as negative. NaN if every label is 0.
        * ``acc7``, ``acc5``: accuracy after clipping to [-3, 3] / [-2, 2] and
          rounding half to even with ``np.round``, as MulT does.
        * ``mae``: mean absolute error over all samples.
        * ``corr``: Pearson r; NaN (not an error) when either ``preds`` or
          ``labels`` is constant, since r is undefined there.
        * ``n``: number of samples; ``n_non0``: number with a non-zero label.

    Raises:
        ValueError: on shape mismatch, empty input, non-numeric or non-finite
            values, or a trailing dimension that is not of size 1.
    """
    p = _as_1d(preds, "preds")
    t = _as_1d(labels, "labels")
    _check_same_length(p, t, "preds", "labels")

    # Has0: >= 0 vs < 0 over all samples.
    true_has0 = t >= 0
    pred_has0 = p >= 0
    acc2_has0 = float(accuracy_score(true_has0, pred_has0))
    f1_has0 = _weighted_f1(true_has0, pred_has0)

    # Non0: > 0 vs < 0 over samples whose label is non-zero.
    non0 = t != 0
    n_non0 = int(non0.sum())
    if n_non0 > 0:
        true_non0 = t[non0] > 0
        pred_non0 = p[non0] > 0
        acc2_non0 = float(accuracy_score(true_non0, pred_non0))
        if mult_f1_argument_order:
            f1_non0 = _weighted_f1(pred_non0, true_non0)  # MulT's swapped call
        else:
            f1_non0 = _weighted_f1(true_non0, pred_non0)
    else:
        acc2_non0 = f1_non0 = math.nan

    return {
        "acc2_has0": acc2_has0,
        "f1_has0": f1_has0,
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "acc7": _rounded_class_accuracy(p, t, 3.0),
        "acc5": _rounded_class_accuracy(p, t, 2.0),
        "mae": float(mean_absolute_error(t, p)),
        "corr": _pearson(p, t),
        "n": int(t.shape[0]),
        "n_non0": n_non0,
    }


def mosei_binary_metrics(pred_nonneg: ArrayLike, labels: ArrayLike) -> dict[str, float | int]:
    """CMU-MOSEI "Has0" metrics for a binary classification head.

    Args:
        pred_nonneg: Predicted classes, 1 (or True) for non-negative sentiment
            and 0 (or False) for negative, shape ``(N,)`` (or ``(N, 1)``).
        labels: The *continuous* ground-truth sentiment scores in [-3, 3]; they
            are binarised here as ``labels >= 0`` (a label of 0 is non-negative).
            Do not pass already-binarised 0/1 labels: 0 would count as
            non-negative.

    Returns:
        ``{"acc2_has0", "f1_has0" (weighted F1), "n"}``.

    Raises:
        ValueError: on shape mismatch, empty or non-finite input, or predictions
            other than 0/1.
    """
    p = _check_binary(_as_1d(pred_nonneg, "pred_nonneg"), "pred_nonneg")
    t = _as_1d(labels, "labels")
    _check_same_length(p, t, "pred_nonneg", "labels")
    true_has0 = t >= 0
    return {
        "acc2_has0": float(accuracy_score(true_has0, p)),
        "f1_has0": _weighted_f1(true_has0, p),
        "n": int(t.shape[0]),
    }


# --------------------------------------------------------------------------- #
# IEMOCAP
# --------------------------------------------------------------------------- #


def iemocap_metrics(
    pred_class: ArrayLike,
    true_class: ArrayLike,
    class_names: Sequence[str] = IEMOCAP_EMOTIONS,
) -> dict[str, float | int]:
    """Metrics for single-label 4-class IEMOCAP emotion predictions.

    Args:
        pred_class: Predicted class index per sample, shape ``(N,)``.
        true_class: True class index per sample, shape ``(N,)``.
        class_names: Names of the classes, in index order; ``len(class_names)``
            is the number of classes K (default: neutral, happy, sad, angry).
            Indices must be integers in ``[0, K)``.

    Returns:
        A dict with

        * ``accuracy``: share of exactly correct predictions.
        * ``macro_precision``, ``macro_recall``, ``macro_f1``: unweighted means of
          the per-class scores over all K classes (``average='macro'``,
          ``labels=range(K)``, ``zero_division=0``), the "unweighted" columns of
          the paper's Table 1. A class that is never predicted gets precision 0,
          one that never occurs gets recall 0, and both still count in the mean.
        * ``weighted_precision``, ``weighted_recall``, ``weighted_f1``: the
          per-class scores weighted by true-class support (weighted recall
          equals accuracy).
        * ``acc_<name>``, ``f1_<name>`` for each class: one-vs-rest binary
          accuracy and weighted binary F1 of ``pred == k`` vs ``true == k``, as
          MulT's ``eval_iemocap`` reports per emotion.
        * ``n``: number of samples.

    Raises:
        ValueError: on shape mismatch, empty or non-finite input, non-integer or
            out-of-range class indices, or invalid ``class_names``.
    """
    names = _check_class_names(class_names)
    k = len(names)
    p = _as_class_indices(pred_class, "pred_class", k)
    t = _as_class_indices(true_class, "true_class", k)
    _check_same_length(p, t, "pred_class", "true_class")

    labels = list(range(k))
    result: dict[str, float | int] = {"accuracy": float(accuracy_score(t, p))}
    for average in ("macro", "weighted"):
        prec, rec, f1, _ = precision_recall_fscore_support(
            t, p, labels=labels, average=average, zero_division=0
        )
        result[f"{average}_precision"] = float(prec)
        result[f"{average}_recall"] = float(rec)
        result[f"{average}_f1"] = float(f1)
    for idx, name in enumerate(names):
        true_k = t == idx
        pred_k = p == idx
        result[f"acc_{name}"] = float(accuracy_score(true_k, pred_k))
        result[f"f1_{name}"] = _weighted_f1(true_k, pred_k)
    result["n"] = int(t.shape[0])
    return result


def iemocap_binary4_metrics(
    pred_positive: ArrayLike,
    truth_positive: ArrayLike,
    class_names: Sequence[str] = IEMOCAP_EMOTIONS,
) -> dict[str, float | int]:
    """MulT's "4 x binary" IEMOCAP metrics: one present/absent decision per emotion.

    MulT's model emits (N, 4, 2) logits; take the argmax over the last axis
    before calling this function.

    Args:
        pred_positive: Shape ``(N, K)`` of 0/1 (or booleans): whether each
            emotion is predicted present. K = ``len(class_names)``.
        truth_positive: Shape ``(N, K)`` of 0/1: whether each emotion is present.
        class_names: Names of the K emotions, in column order.

    Returns:
        ``acc_<name>`` and weighted binary ``f1_<name>`` for each emotion,
        ``mean_acc`` and ``mean_f1`` (unweighted means over the emotions), and
        ``n`` (number of samples).

    Raises:
        ValueError: if the inputs are not both of shape ``(N, K)``, are empty,
            non-finite, or hold values other than 0/1.
    """
    names = _check_class_names(class_names)
    k = len(names)
    arrays = []
    for x, name in ((pred_positive, "pred_positive"), (truth_positive, "truth_positive")):
        arr = _as_numeric(x, name)
        if arr.ndim != 2 or arr.shape[1] != k:
            raise ValueError(
                f"{name} must have shape (N, {k}), one column per class in "
                f"class_names; got shape {arr.shape}"
            )
        _check_finite_nonempty(arr, name)
        arrays.append(_check_binary(arr, name))
    p, t = arrays
    _check_same_length(p, t, "pred_positive", "truth_positive")

    result: dict[str, float | int] = {}
    accs, f1s = [], []
    for idx, name in enumerate(names):
        acc = float(accuracy_score(t[:, idx], p[:, idx]))
        f1 = _weighted_f1(t[:, idx], p[:, idx])
        result[f"acc_{name}"] = acc
        result[f"f1_{name}"] = f1
        accs.append(acc)
        f1s.append(f1)
    result["mean_acc"] = float(np.mean(accs))
    result["mean_f1"] = float(np.mean(f1s))
    result["n"] = int(t.shape[0])
    return result


# --------------------------------------------------------------------------- #
# CH-SIMS
# --------------------------------------------------------------------------- #

# MMSA's class boundaries for CH-SIMS sentiment in [-1, 1]; each class is a half-open
# interval (lo, hi], the first one closed at -1: Acc2 [-1, 0] vs (0, 1]; Acc3 cuts at
# -0.1 and 0.1; Acc5 at -0.7, -0.1, 0.1, 0.7.
SIMS_CUTS = {"acc2": (0.0,), "acc3": (-0.1, 0.1), "acc5": (-0.7, -0.1, 0.1, 0.7)}


def _sims_classes(values: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """Class index of each value: the number of cuts strictly below it, so a value equal
    to a cut falls in the class below ((lo, hi] intervals). Compared in float32, as MMSA
    does (its arrays are float32): float32(0.1) is neutral, not positive."""
    return np.searchsorted(np.asarray(cuts, dtype=np.float32), values.astype(np.float32), side="left")


def sims_regression_metrics(preds: ArrayLike, labels: ArrayLike) -> dict[str, float | int]:
    """CH-SIMS metrics for a regression head, as MMSA's ``__eval_sims_regression``.

    Both sides are clipped to [-1, 1], then bucketed by :data:`SIMS_CUTS`:

    * ``acc2``: negative-or-neutral [-1, 0] vs positive (0, 1];
    * ``acc3``: [-1, -0.1], (-0.1, 0.1], (0.1, 1];
    * ``acc5``: [-1, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1];
    * ``f1``: support-weighted F1 of the two Acc2 classes, ``f1_score(y_true, y_pred)``;
    * ``mae``: mean absolute error after clipping; ``corr``: Pearson r after clipping
      (NaN when either side is constant);
    * ``n``: the number of samples.

    Raises ValueError on shape mismatch, empty or non-finite input.
    """
    p = np.clip(_as_1d(preds, "preds"), -1.0, 1.0)
    t = np.clip(_as_1d(labels, "labels"), -1.0, 1.0)
    _check_same_length(p, t, "preds", "labels")
    classes = {name: (_sims_classes(p, cuts), _sims_classes(t, cuts)) for name, cuts in SIMS_CUTS.items()}
    result: dict[str, float | int] = {name: float(np.mean(pred == true)) for name, (pred, true) in classes.items()}
    pred2, true2 = classes["acc2"]
    result["f1"] = _weighted_f1(true2, pred2)
    result["mae"] = float(np.mean(np.abs(p - t)))
    result["corr"] = _pearson(p, t)
    result["n"] = int(t.shape[0])
    return result


# --------------------------------------------------------------------------- #
# Baselines
# --------------------------------------------------------------------------- #


def majority_rate(labels_binary: ArrayLike) -> float:
    """Share of the most frequent class: the accuracy of always predicting it.

    Used to report trivial baselines (e.g. the Has0 majority rate on MOSEI test).
    Works for any discrete labels, not only binary ones.

    Args:
        labels_binary: Class labels, shape ``(N,)`` (or ``(N, 1)``).

    Returns:
        ``max_count / N`` as a float in (0, 1].

    Raises:
        ValueError: on empty, non-numeric or non-finite input.
    """
    arr = _as_1d(labels_binary, "labels_binary")
    _, counts = np.unique(arr, return_counts=True)
    return float(counts.max() / arr.shape[0])


# --------------------------------------------------------------------------- #
# The registry: which metrics score which head, their names, and their table columns
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Metric:
    """One metric as tables, sentences and the command line show it.

    ``key``: its name in a scores dict; ``label``: its display name (once, for every
    table, caption and sentence); ``percent``: a rate shown in percent (accuracies, F1;
    not MAE or a correlation); ``higher_is_better``; ``column``: its column in the data
    set's paper-style table (None: not a column there); ``compute``: for a metric added
    beside the family's scoring function, ``compute(predictions, truth) -> float``.
    """

    key: str
    label: str
    percent: bool = True
    higher_is_better: bool = True
    column: str | None = None
    compute: Callable[[np.ndarray, np.ndarray], float] | None = None


@dataclass(frozen=True)
class Family:
    """The metrics of one kind of prediction: ``score(predictions, truth)`` returns the
    family's metrics; ``metrics`` names them (and adds any with a ``compute``), in the
    order tables show them."""

    name: str
    score: Callable[[np.ndarray, np.ndarray], dict]
    metrics: tuple[Metric, ...]


def _per_emotion(prefix: str, what: str) -> tuple[Metric, ...]:
    return tuple(Metric(f"{prefix}_{e}", f"{what} ({e})") for e in IEMOCAP_EMOTIONS)


_MOSEI_BINARY = (
    Metric("acc2_has0", "Acc2", column="acc2"),
    Metric("f1_has0", "F1", column="f1"),
)
# To add a metric: append a Metric with its ``compute`` to a family below (and a
# ``column`` to show it in that data set's table). Every cached run and record with stored
# outputs is scored with it when a table is built; nothing is retrained.
FAMILIES = {
    # MOSEI and MOSI sentiment in [-3, 3] from a regression head (MulT's and MMSA's conventions)
    "sentiment": Family("sentiment", mosei_regression_metrics, _MOSEI_BINARY + (
        Metric("acc2_non0", "Acc2 (non-zero)", column="acc2_non0"),
        Metric("f1_non0", "F1 (non-zero)", column="f1_non0"),
        Metric("mae", "MAE", percent=False, higher_is_better=False, column="mae"),
        Metric("corr", "Corr", percent=False, column="corr"),
        Metric("acc7", "Acc7"),
        Metric("acc5", "Acc5"),
    )),
    # MOSEI and MOSI from a binary (non-negative vs negative) head
    "sentiment_binary": Family("sentiment_binary", mosei_binary_metrics, _MOSEI_BINARY),
    # CH-SIMS sentiment in [-1, 1] (MMSA)
    "sentiment_sims": Family("sentiment_sims", sims_regression_metrics, (
        Metric("acc2", "Acc2", column="acc2"),
        Metric("acc3", "Acc3", column="acc3"),
        Metric("acc5", "Acc5", column="acc5"),
        Metric("f1", "F1", column="f1"),
        Metric("mae", "MAE", percent=False, higher_is_better=False, column="mae"),
        Metric("corr", "Corr", percent=False, column="corr"),
    )),
    # IEMOCAP emotions from a 4-class head (the paper's Table 1: unweighted precision,
    # recall and F1)
    "emotions": Family("emotions", iemocap_metrics, (
        Metric("macro_precision", "Prec.", column="prec"),
        Metric("macro_recall", "Recall", column="recall"),
        Metric("macro_f1", "F1 (unweighted)", column="f1"),
        Metric("accuracy", "Acc (4-class)", column="acc"),
        Metric("weighted_precision", "Prec. (weighted)"),
        Metric("weighted_recall", "Recall (weighted)"),
        Metric("weighted_f1", "F1 (weighted)"),
    ) + _per_emotion("acc", "Acc") + _per_emotion("f1", "F1")),
    # IEMOCAP in MulT's 4 x binary form
    "emotions_binary4": Family("emotions_binary4", iemocap_binary4_metrics, (
        Metric("mean_acc", "Acc (mean of 4 binary)"),
        Metric("mean_f1", "F1 (mean of 4 binary)"),
    ) + _per_emotion("acc", "Acc") + _per_emotion("f1", "F1")),
}
# the mean loss of the model's head, which every scores dict also holds
LOSS = Metric("loss", "loss", percent=False, higher_is_better=False)
# the family of each head; a regression head takes the data set's own (config.DatasetInfo.metrics)
_HEAD_FAMILY = {"binary": "sentiment_binary", "4class": "emotions", "binary4": "emotions_binary4"}


def family_of(dataset: str, head: str) -> Family:
    """The metric family that scores ``head`` on ``dataset``."""
    if head == "regression":
        return FAMILIES[dataset_info(dataset).metrics]
    if head not in _HEAD_FAMILY:
        raise ValueError(f"unknown head {head!r}; one of regression, {', '.join(_HEAD_FAMILY)}")
    return FAMILIES[_HEAD_FAMILY[head]]


def score(family: Family, predictions: np.ndarray, truth: np.ndarray) -> dict:
    """Every metric of ``family``: its scoring function's, then each added ``compute``."""
    result = dict(family.score(predictions, truth))
    for metric in family.metrics:
        if metric.compute is not None:
            result[metric.key] = float(metric.compute(predictions, truth))
    return result


def metric(key: str, dataset: str | None = None) -> Metric:
    """The registry's entry for ``key`` (of ``dataset``'s family first, where two families
    share a key); a ValueError names an unknown key."""
    families = list(FAMILIES.values())
    if dataset is not None:
        families.insert(0, FAMILIES[dataset_info(dataset).metrics])
    for family in families:
        for m in family.metrics:
            if m.key == key:
                return m
    if key == LOSS.key:
        return LOSS
    raise ValueError(f"unknown metric {key!r}")


def label(key: str, dataset: str | None = None) -> str:
    """How tables and sentences name metric ``key``."""
    return metric(key, dataset).label


def is_percent(key: str) -> bool:
    """Whether ``key`` is a rate shown in percent; an unknown key counts as one."""
    try:
        return metric(key).percent
    except ValueError:
        return True


def headline(dataset: str) -> Metric:
    """The headline metric of ``dataset`` (MMSA's KeyEval): Acc2 for sentiment, the
    unweighted F1 for IEMOCAP's emotions."""
    return metric(dataset_info(dataset).headline, dataset)


def table_metrics(dataset: str) -> tuple[Metric, ...]:
    """The columns of ``dataset``'s paper-style table, in order: the metrics of its
    family (default head) that have a ``column``."""
    return tuple(m for m in family_of(dataset, dataset_info(dataset).default_head).metrics if m.column)
