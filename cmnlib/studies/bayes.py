"""The Bayes rule on the same test utterances: what "above the language-only ceiling" means
on the split a model was scored on.

The synthetic generator writes, for every utterance, the exact posterior of its label given
each subset of modalities (``bayes_nonneg`` for the MOSEI-like set, ``bayes_posterior``
for the IEMOCAP-like one). The ceilings in a data set's metadata are Monte Carlo
expectations over the generating process; a test split of 1,000 utterances is one sample
of it, on which the same rule scores about a point higher or lower (the quick MOSEI-like
split: 81.0 for the language-only rule against the expected 81.6). So a model is judged
against the rule *on its own test utterances*, and the interval carries both sources of
error:

    estimate = mean_s M(model_s) - M(rule)                     (s: seeds, M: the metric)
    se^2     = var_s(M(model_s)) / S  +  se_test^2

where ``se_test`` is the bootstrap standard error, over the test utterances resampled with
replacement, of mean_s M(model_s) - M(rule) (the same resampled utterances for the model
and the rule, so what they share cancels), and the degrees of freedom follow
Welch-Satterthwaite from S - 1 and n - 1. The metrics are those a confusion matrix gives
(binary Acc2 and its weighted F1, 4-class accuracy and macro F1), so a bootstrap of
thousands of resamples is a few array operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from ..data.split import DataBundle, class_index
from ..findings import CONFIDENCE, THRESHOLD, WITH_TEST_SPLIT, Finding, Question, satterthwaite
from ..model import heads as H

# subsets whose posterior the generator writes, in its column order
SUBSETS = ("L", "A", "V", "LA", "LAV")
# metric key -> (classes, F1 average or None for accuracy); the confusion-matrix metrics
CONFUSION_METRICS = {"acc2_has0": (2, None), "f1_has0": (2, "weighted"), "accuracy": (4, None),
                     "macro_f1": (4, "macro")}
ACCURACIES = tuple(k for k, (_, average) in CONFUSION_METRICS.items() if average is None)
BOOTSTRAP_REPS = 2000


def test_split_size(dataset: str, scale: str) -> int | None:
    """The test split's size of the synthetic ``dataset`` at ``scale`` (for records, which
    hold no labels); None for an unknown scale."""
    from ..data.synthetic.writers import SPLIT_SIZES
    return SPLIT_SIZES.get(dataset, {}).get(scale, {}).get("test")


@dataclass(frozen=True)
class SameSplitRule:
    """The Bayes-optimal (accuracy-optimal) rule of one subset of modalities on one split:
    its predicted classes and the split's true classes, with the data hash it belongs to."""

    dataset: str
    subset: str
    split: str
    predicted: np.ndarray
    truth: np.ndarray
    data_hash: str | None
    classes: int

    def score(self, metric: str) -> float:
        """The rule's ``metric`` on the split, in percent."""
        return 100 * float(confusion_metric(confusion(self.truth, self.predicted, self.classes), metric)[0])


def bayes_rule(bundle: DataBundle, subset: str, split: str = "test") -> SameSplitRule | None:
    """The Bayes rule of ``subset`` (e.g. 'L') on ``split`` of ``bundle``; None when the data
    carry no per-utterance posteriors (real data)."""
    part = bundle[split]
    column = SUBSETS.index(subset)
    if "bayes_nonneg" in part.extras:      # sentiment: P(label >= 0 | subset)
        predicted = (np.asarray(part.extras["bayes_nonneg"])[:, column] >= 0.5).astype(np.int64)
        classes = 2
    elif "bayes_posterior" in part.extras:  # emotions: P(class | subset), 4 classes
        predicted = np.asarray(part.extras["bayes_posterior"])[:, column].argmax(-1).astype(np.int64)
        classes = 4
    else:
        return None
    return SameSplitRule(bundle.dataset, subset, split, predicted, true_classes(part.labels, classes),
                         bundle.meta.get("source_hash"), classes)


# the subsets a record keeps the rule of: what the studies judge against
RECORD_SUBSETS = ("L", "LA")


def rules_for_record(bundle: DataBundle, subsets=RECORD_SUBSETS, split: str = "test") -> dict | None:
    """The Bayes rules of ``subsets`` on ``split`` of ``bundle`` as a record keeps them
    (:class:`cmnlib.results.Record`'s ``bayes_rules``); None for data without per-utterance
    posteriors."""
    rules = {subset: bayes_rule(bundle, subset, split) for subset in subsets}
    if any(rule is None for rule in rules.values()):
        return None
    first = next(iter(rules.values()))
    return {"split": split, "classes": first.classes, "truth": first.truth,
            "predicted": {subset: rule.predicted for subset, rule in rules.items()}}


def record_rule(record, subset: str) -> SameSplitRule | None:
    """The Bayes rule of ``subset`` kept in ``record`` (a :class:`cmnlib.results.Record`),
    on the data of the record's hash; None when the record keeps none for it."""
    rules = record.bayes_rules
    if rules is None or subset not in rules["predicted"]:
        return None
    return SameSplitRule(record.call["dataset"], subset, rules["split"], rules["predicted"][subset], rules["truth"],
                         record.data_hash, rules["classes"])


def true_classes(labels, classes: int) -> np.ndarray:
    """A split's labels in the rule's terms: non-negative or not (2 classes, MMSA's Has0), or
    the emotion's class index (4)."""
    labels = np.asarray(labels)
    return (labels >= 0).astype(np.int64) if classes == 2 else class_index(labels).astype(np.int64)


def applies(rule: SameSplitRule | None, result, metric: str) -> bool:
    """Whether ``result`` can be compared with ``rule`` utterance by utterance: the rule
    exists, the run holds its outputs on the rule's split, it was scored on the rule's data
    (equal data hashes where both are known) and ``metric`` comes from a confusion matrix."""
    return (rule is not None and result.has_outputs(rule.split) and metric in CONFUSION_METRICS
            and (result.data_hash is None or rule.data_hash is None or result.data_hash == rule.data_hash))


def model_classes(result, split: str = "test") -> list[np.ndarray]:
    """Per seed, the classes a run predicts on ``split``, in the rule's terms: non-negative
    or not for a sentiment score (MMSA's Has0), the class index for emotions."""
    out = []
    for member in result.members:
        predicted = H.predict(result.spec.head, torch.as_tensor(np.asarray(member.outputs[split], np.float32)))
        predicted = predicted.numpy()
        out.append((predicted >= 0).astype(np.int64) if result.spec.head == "regression"
                   else predicted.astype(np.int64).reshape(len(predicted)))
    return out


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Confusion counts (rows: truth); with 2-D inputs (resamples x utterances), one matrix
    per row: (R, K, K)."""
    truth, predicted = np.atleast_2d(truth), np.atleast_2d(predicted)
    rows = truth.shape[0]
    codes = (np.arange(rows)[:, None] * classes * classes + truth * classes + predicted).ravel()
    return np.bincount(codes, minlength=rows * classes * classes).reshape(rows, classes, classes)


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


def against_rule(question: Question, result, rule: SameSplitRule, metric: str, statistic: str,
                 threshold: float = 0.0, reps: int = BOOTSTRAP_REPS, seed: int = 0,
                 confidence: float = CONFIDENCE, target: str | None = None, **params) -> Finding:
    """Does ``result`` (a run with stored test outputs, on the rule's data) score above the
    Bayes ``rule`` on the same utterances by more than ``threshold`` points? The interval
    combines the seeds and the test split's sampling (see the module docstring); the
    bootstrap's random stream is fixed by ``seed``. ``params`` fill the question's text;
    ``rule`` (the rule's score) is added."""
    if not result.has_outputs(rule.split):
        raise ValueError(f"{result.label}: no stored {rule.split} outputs to compare with the Bayes rule "
                         f"utterance by utterance")
    if result.data_hash is not None and rule.data_hash is not None and result.data_hash != rule.data_hash:
        raise ValueError(f"{result.label} was scored on other data (hash {result.data_hash[:12]}) than the Bayes "
                         f"rule ({rule.data_hash[:12]})")
    truth = rule.truth
    if not np.array_equal(truth, true_classes(result.labels[rule.split], rule.classes)):
        raise ValueError(f"{result.label}: its {rule.split} labels are not those of the rule's split")
    predicted = model_classes(result, rule.split)
    seeds = np.array([confusion_metric(confusion(truth, p, rule.classes), metric)[0] for p in predicted]) * 100
    rule_score = rule.score(metric)
    # the test split's sampling: resample utterances, the same for every seed and the rule
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(truth), size=(reps, len(truth)))
    resampled = np.mean([confusion_metric(confusion(truth[index], p[index], rule.classes), metric)
                         for p in predicted], axis=0)
    rule_resampled = confusion_metric(confusion(truth[index], rule.predicted[index], rule.classes), metric)
    var_test = float(np.var(100 * (resampled - rule_resampled), ddof=1))
    return _seeds_and_test_split(question, result, statistic, seeds, rule_score, var_test, len(truth), threshold,
                                 confidence, target, params)


def _seeds_and_test_split(question: Question, result, statistic: str, seeds: np.ndarray, reference: float,
                          var_test: float, test_size: int, threshold: float, confidence: float, target: str | None,
                          params: dict) -> Finding:
    """mean(seeds) - ``reference`` with the interval of the module docstring: the seeds'
    variance of the mean plus the test split's ``var_test``, Welch-Satterthwaite degrees of
    freedom from S - 1 and ``test_size`` - 1."""
    estimate = float(seeds.mean() - reference)
    var_seeds = float(seeds.var(ddof=1)) / len(seeds) if len(seeds) > 1 else math.inf
    total = var_seeds + var_test
    if math.isinf(total):
        low, high, dof = -math.inf, math.inf, None
    else:
        dof = satterthwaite([(var_seeds, len(seeds) - 1), (var_test, test_size - 1)]) or float(test_size - 1)
        half = float(stats.t.ppf((1 + confidence) / 2, dof)) * math.sqrt(total)
        low, high = estimate - half, estimate + half
    return Finding(question, (result.spec,), statistic, estimate, low, high, threshold, len(seeds), True, THRESHOLD,
                   False, target, tuple(sorted({**params, "rule": reference}.items())), "", confidence, 1,
                   dof=dof, method=WITH_TEST_SPLIT, bounds=(-100.0, 100.0))


def against_population(question: Question, result, expected: float, metric: str, statistic: str, test_size: int,
                       threshold: float = 0.0, confidence: float = CONFIDENCE, target: str | None = None,
                       **params) -> Finding:
    """For a run without stored outputs (a metric-only record): its mean test ``metric``
    minus the population ceiling ``expected`` (points) against ``threshold``, with the test split's
    sampling error of an accuracy, p(1 - p) / n at n = ``test_size`` utterances, added to
    the seeds' (Welch-Satterthwaite degrees of freedom). Accuracies only: an F1 has no
    such closed form."""
    if metric not in ACCURACIES:
        raise ValueError(f"a population comparison with test-sampling error needs an accuracy, got {metric!r}")
    seeds = np.asarray(result.scores(metric), dtype=np.float64)
    p = seeds.mean() / 100
    var_test = 100 ** 2 * p * (1 - p) / test_size
    return _seeds_and_test_split(question, result, statistic, seeds, expected, var_test, test_size, threshold,
                                 confidence, target, params)


def against_ceiling(question: Question, result, rule: SameSplitRule | None, expected: float, metric: str,
                    statistic: str, test_size: int | None = None, threshold: float = 0.0,
                    target: str | None = None, **params) -> Finding | None:
    """``result`` against a Bayes ceiling with the test split's sampling in the interval:
    the rule on the same utterances where it applies (:func:`applies`, :func:`against_rule`),
    else the expected ceiling ``expected`` with an accuracy's sampling error at ``test_size``
    utterances (:func:`against_population`); None when neither can be judged (the caller
    then falls back to seeds alone). ``where`` (for the question's text) says which."""
    if applies(rule, result, metric):
        return against_rule(question, result, rule, metric, statistic, threshold, target=target,
                            where="the same test utterances", **params)
    if test_size is not None and metric in ACCURACIES:
        return against_population(question, result, expected, metric, statistic, test_size, threshold,
                                  target=target, where=f"average, {test_size:,} test utterances", **params)
    return None
