"""The best rules of a synthetic split: what "the best any model can do" is on the very
utterances a model is scored on.

The synthetic generator writes, for every utterance, the exact posterior of its label given
each subset of modalities (``bayes_nonneg`` for the MOSEI-like set, ``bayes_posterior``
for the IEMOCAP-like one). The Bayes rule predicts each utterance's most probable class;
:class:`SameSplitRule` holds its predictions on one split with the true classes, so that
its score on the split, and a model's difference from it utterance by utterance
(:mod:`cmnlib.studies.bayes`), are a few array operations on confusion matrices.

The Bayes rule maximises accuracy, not an F1: a rule that favours the rarer classes scores
a higher F1 from the same posteriors. So an F1 is judged against the **F1-optimal form**
of the same posteriors: the threshold on P(label >= 0) that maximises the binary weighted
F1, or the class weights w in ``argmax_k w_k P(k | subset)`` that maximise the 4-class
macro F1 (the plug-in form of F1-optimal classifiers: a threshold or weights on the true
posteriors). They are fitted on the training and validation utterances' posteriors, as a
model must learn without the test labels, and the fixed rule is then scored on the test
utterances like the Bayes rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .split import DataBundle, class_index
from .synthetic.process import SUBSETS  # the generator's posterior columns, in order


# metric key -> (classes, F1 average or None for accuracy); the confusion-matrix metrics
CONFUSION_METRICS = {"acc2_has0": (2, None), "f1_has0": (2, "weighted"), "accuracy": (4, None),
                     "macro_f1": (4, "macro")}
ACCURACIES = tuple(k for k, (_, average) in CONFUSION_METRICS.items() if average is None)
F1_NAMES = {"f1_has0": "weighted-F1", "macro_f1": "macro-F1"}  # how sentences name the F1s
ACCURACY = "accuracy"  # what the Bayes rule itself optimises (SameSplitRule.optimises)


def has_ceiling(metric: str) -> bool:
    """Whether the expected Bayes score of ``metric`` bounds every model: an accuracy's does;
    an F1's (the accuracy-optimal rule's F1) does not, a rule weighted for the F1 beats it."""
    return "f1" not in metric


def judged_on_split(bundle: DataBundle | None, metric: str, split: str = "test") -> bool:
    """Whether ``metric`` of runs on ``bundle`` can be judged against the best rule on the
    same ``split`` utterances: a confusion-matrix metric, on data whose ``split`` carries
    each utterance's posteriors (synthetic data; never real data)."""
    return bundle is not None and metric in CONFUSION_METRICS and posteriors(bundle, "L", split) is not None


def rule_name(metric: str) -> str:
    """How tables name the rule ``metric`` is judged against: the Bayes rule, or an F1's
    optimal rule (e.g. 'macro-F1-optimal rule')."""
    return "Bayes rule" if optimised_for(metric) == ACCURACY else f"{F1_NAMES[metric]}-optimal rule"


def optimised_for(metric: str) -> str:
    """What the rule to judge ``metric`` against must optimise: ``ACCURACY`` for an accuracy,
    else the F1 itself (its F1-optimal rule)."""
    return ACCURACY if metric in ACCURACIES else metric


@dataclass(frozen=True)
class SameSplitRule:
    """The best rule of one subset of modalities on one split, for what it ``optimises``:
    the Bayes rule (``ACCURACY``) or an F1's optimal rule (the F1's metric key); its
    predicted classes and the split's true classes, with the data hash it belongs to."""

    dataset: str
    subset: str
    split: str
    predicted: np.ndarray
    truth: np.ndarray
    data_hash: str | None
    classes: int
    optimises: str = ACCURACY

    def score(self, metric: str) -> float:
        """The rule's ``metric`` on the split, in percent."""
        return 100 * float(confusion_metric(confusion(self.truth, self.predicted, self.classes), metric)[0])

    def suits(self, metric: str) -> bool:
        """Whether this is the rule to judge ``metric`` against (:func:`optimised_for`)."""
        return self.optimises == optimised_for(metric)


def posteriors(bundle: DataBundle, subset: str, split: str = "test") -> np.ndarray | None:
    """The generator's per-utterance posteriors of ``subset`` on ``split``: P(label >= 0)
    (n,) for sentiment, P(class) (n, 4) for emotions; None for data without them (real data)."""
    part = bundle[split]
    column = SUBSETS.index(subset)
    if "bayes_nonneg" in part.extras:
        return np.asarray(part.extras["bayes_nonneg"], dtype=np.float64)[:, column]
    if "bayes_posterior" in part.extras:
        return np.asarray(part.extras["bayes_posterior"], dtype=np.float64)[:, column]
    return None


def bayes_rule(bundle: DataBundle, subset: str, split: str = "test", metric: str | None = None) -> SameSplitRule | None:
    """The rule of ``subset`` (e.g. 'L') on ``split`` of ``bundle`` to judge ``metric``
    against: the Bayes rule for an accuracy (or when ``metric`` is None); for an F1, the
    F1-optimal form of the same posteriors (:func:`fit_f1_rule`), fitted on the bundle's
    other splits (never on the labels it is scored on, as a model could not either) and
    applied to ``split``. None when the data carry no per-utterance posteriors (real data)."""
    posterior = posteriors(bundle, subset, split)
    if posterior is None:
        return None
    classes = 2 if posterior.ndim == 1 else posterior.shape[1]
    truth = true_classes(bundle[split].labels, classes)
    optimises = ACCURACY if metric is None else optimised_for(metric)
    if optimises == ACCURACY:
        predicted = (posterior >= 0.5).astype(np.int64) if classes == 2 else posterior.argmax(-1).astype(np.int64)
    else:
        others = [name for name in ("train", "valid", "test") if name != split and name in bundle.splits]
        fitted = fit_f1_rule(np.concatenate([posteriors(bundle, subset, name) for name in others]),
                             np.concatenate([true_classes(bundle[name].labels, classes) for name in others]),
                             optimises)
        predicted = apply_f1_rule(fitted, posterior)
    return SameSplitRule(bundle.dataset, subset, split, predicted, truth, bundle.meta.get("source_hash"), classes,
                         optimises)


# the coordinate search of the macro-F1 rule: the values of log w_k tried per class and pass
WEIGHT_GRID = np.linspace(-3.0, 3.0, 121)
SEARCH_PASSES = 8


def fit_f1_rule(posterior: np.ndarray, truth: np.ndarray, metric: str) -> np.ndarray:
    """The rule that maximises ``metric`` (an F1 of :data:`CONFUSION_METRICS`) on these
    utterances, from their posteriors: for the binary weighted F1 a threshold on
    P(label >= 0) (one number), exact over every cut between two distinct posteriors and
    placed midway between them; for the 4-class macro F1 the log class weights in
    ``argmax_k log P(k) + log w_k`` (one per class), by coordinate search over
    :data:`WEIGHT_GRID` from w = 1 (the Bayes rule) until a pass changes nothing. Between
    equal scores the rule nearest the Bayes rule is kept. :func:`apply_f1_rule` applies it."""
    classes, average = CONFUSION_METRICS[metric]
    if average is None:
        raise ValueError(f"{metric!r} is an accuracy: its optimal rule is the Bayes rule")
    posterior, truth = np.asarray(posterior, dtype=np.float64), np.asarray(truth)
    if classes == 2:
        return np.array([_best_threshold(posterior, truth, metric)])
    return _best_log_weights(posterior, truth, metric)


def apply_f1_rule(fitted: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    """The classes :func:`fit_f1_rule`'s rule ``fitted`` predicts from ``posterior``."""
    posterior = np.asarray(posterior, dtype=np.float64)
    if posterior.ndim == 1:
        return (posterior >= fitted[0]).astype(np.int64)
    return (np.log(np.clip(posterior, 1e-300, None)) + fitted).argmax(-1).astype(np.int64)


def _best_threshold(p: np.ndarray, truth: np.ndarray, metric: str) -> float:
    order = np.argsort(-p, kind="stable")
    p_sorted, t_sorted = p[order], truth[order]
    n, positives = len(p), int(truth.sum())
    # cut k: the k most probable utterances predicted 1; only where the next posterior differs
    k = np.arange(n + 1)
    allowed = np.ones(n + 1, dtype=bool)
    allowed[1:n] = p_sorted[1:] != p_sorted[:-1]
    hits = np.concatenate([[0], np.cumsum(t_sorted)])
    m = np.zeros((n + 1, 2, 2), dtype=np.int64)          # confusion per cut, rows: truth
    m[:, 1, 1] = hits
    m[:, 0, 1] = k - hits
    m[:, 1, 0] = positives - hits
    m[:, 0, 0] = n - positives - (k - hits)
    score = np.where(allowed, confusion_metric(m, metric), -np.inf)
    best = np.flatnonzero(score == score.max())
    cut = int(best[np.argmin(np.abs(best - int((p >= 0.5).sum())))])  # the nearest of equals to the Bayes cut
    if cut == 0:
        return float(np.nextafter(p_sorted[0], np.inf))   # nothing predicted 1
    if cut == n:
        return float(p_sorted[-1])                          # everything predicted 1
    return float((p_sorted[cut - 1] + p_sorted[cut]) / 2)


def _best_log_weights(p: np.ndarray, truth: np.ndarray, metric: str) -> np.ndarray:
    classes = p.shape[1]
    log_p = np.log(np.clip(p, 1e-300, None))
    log_w = np.zeros(classes)

    def score(weights: np.ndarray) -> np.ndarray:  # the metric of each row of weights
        predicted = (log_p[None] + weights[:, None, :]).argmax(-1)
        return confusion_metric(confusion(np.broadcast_to(truth, predicted.shape), predicted, classes), metric)

    best = float(score(log_w[None])[0])
    for _ in range(SEARCH_PASSES):
        changed = False
        for c in range(classes):
            trial = np.repeat(log_w[None], len(WEIGHT_GRID), axis=0)
            trial[:, c] = WEIGHT_GRID
            scores = score(trial)
            top = np.flatnonzero(scores == scores.max())
            pick = int(top[np.argmin(np.abs(WEIGHT_GRID[top] - log_w[c]))])  # the nearest of equals
            if scores[pick] > best:
                best, log_w[c], changed = float(scores[pick]), WEIGHT_GRID[pick], True
        if not changed:
            break
    return log_w


def f1_metric(classes: int) -> str:
    """The F1 of :data:`CONFUSION_METRICS` on ``classes`` classes (weighted binary, or macro)."""
    return next(k for k, (c, average) in CONFUSION_METRICS.items() if c == classes and average is not None)


def true_classes(labels, classes: int) -> np.ndarray:
    """A split's labels in the rule's terms: non-negative or not (2 classes, MMSA's Has0), or
    the emotion's class index (4)."""
    labels = np.asarray(labels)
    return (labels >= 0).astype(np.int64) if classes == 2 else class_index(labels).astype(np.int64)


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Confusion counts (rows: truth); with 2-D inputs (resamples x utterances), one matrix
    per row: (R, K, K)."""
    truth, predicted = np.atleast_2d(truth), np.atleast_2d(predicted)
    rows = truth.shape[0]
    codes = (np.arange(rows)[:, None] * classes * classes + truth * classes + predicted).ravel()
    return np.bincount(codes, minlength=rows * classes * classes).reshape(rows, classes, classes)


def resample_counts(index: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` utterances is drawn in each resample of ``index`` (R, m):
    (R, n) counts, so that the resamples' confusions of any prediction come from one
    product (:func:`resampled_confusions`) instead of gathering R x m labels each time."""
    reps = index.shape[0]
    codes = (np.arange(reps)[:, None] * n + index).ravel()
    return np.bincount(codes, minlength=reps * n).reshape(reps, n)


def resampled_confusions(counts: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """(R, K, K): the confusion counts of each resample whose utterance counts are ``counts``
    (:func:`resample_counts`), exactly ``confusion(truth[index], predicted[index], classes)``:
    each utterance adds its count to its (truth, predicted) cell, one matrix product of
    whole numbers (exact in float64)."""
    cells = np.zeros((len(truth), classes * classes))
    cells[np.arange(len(truth)), np.asarray(truth) * classes + np.asarray(predicted)] = 1.0
    return np.rint(counts @ cells).astype(np.int64).reshape(len(counts), classes, classes)


def confusion_metric(matrices: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` (a key of :data:`CONFUSION_METRICS`) of each confusion matrix, a fraction.
    F1 of a class with no support and no prediction counts 0, as scikit-learn's default."""
    if metric not in CONFUSION_METRICS:
        raise ValueError(f"the same-split comparison needs a confusion-matrix metric "
                         f"({', '.join(CONFUSION_METRICS)}), got {metric!r}")
    m = np.asarray(matrices, dtype=np.float64).reshape(-1, *np.shape(matrices)[-2:])
    total = m.sum((1, 2))
    correct = np.trace(m, axis1=1, axis2=2)
    average = CONFUSION_METRICS[metric][1]
    if average is None:
        return correct / total
    support, predicted, hits = m.sum(2), m.sum(1), np.diagonal(m, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support + predicted > 0, 2 * hits / (support + predicted), 0.0)
    if average == "macro":
        return f1.mean(1)
    return (f1 * support).sum(1) / total
