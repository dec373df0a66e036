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
thousands of resamples is a few array operations. The rules themselves, and an F1's
optimal form, are :mod:`cmnlib.data.bayes`'s.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import stats

from ..data.bayes import (ACCURACIES, ACCURACY, CONFUSION_METRICS, F1_NAMES, SameSplitRule, bayes_rule, confusion,
                          confusion_metric, f1_metric, optimised_for, resample_counts, resampled_confusions,
                          true_classes)
from ..data.split import DataBundle
from ..findings import CONFIDENCE, THRESHOLD, WITH_TEST_SPLIT, Finding, Question, satterthwaite
from ..model import heads as H

BOOTSTRAP_REPS = 2000


def test_split_size(dataset: str, scale: str) -> int | None:
    """The test split's size of the synthetic ``dataset`` at ``scale`` (for records, which
    hold no labels); None for an unknown scale."""
    from ..data.synthetic.writers import SPLIT_SIZES
    return SPLIT_SIZES.get(dataset, {}).get(scale, {}).get("test")


# the subsets a record keeps the rule of: what the studies judge against
RECORD_SUBSETS = ("L", "LA")


def rules_for_record(bundle: DataBundle, subsets=RECORD_SUBSETS, split: str = "test") -> dict | None:
    """The rules of ``subsets`` on ``split`` of ``bundle`` as a record keeps them
    (:class:`cmnlib.results.Record`'s ``bayes_rules``): the Bayes rules, and under ``f1``
    the F1-optimal rules of the data set's F1; None for data without per-utterance
    posteriors."""
    rules = {subset: bayes_rule(bundle, subset, split) for subset in subsets}
    if any(rule is None for rule in rules.values()):
        return None
    first = next(iter(rules.values()))
    f1 = f1_metric(first.classes)
    return {"split": split, "classes": first.classes, "truth": first.truth,
            "predicted": {subset: rule.predicted for subset, rule in rules.items()},
            "f1": {"metric": f1, "predicted": {subset: bayes_rule(bundle, subset, split, f1).predicted
                                               for subset in subsets}}}


def record_rule(record, subset: str, metric: str | None = None) -> SameSplitRule | None:
    """The rule of ``subset`` kept in ``record`` (a :class:`cmnlib.results.Record`) to judge
    ``metric`` against (the Bayes rule for an accuracy or None, the F1-optimal rule for an
    F1), on the data of the record's hash; None when the record keeps none for it."""
    rules = record.bayes_rules
    optimises = ACCURACY if metric is None else optimised_for(metric)
    if rules is None:
        return None
    if optimises == ACCURACY:
        predicted = rules["predicted"].get(subset)
    else:
        f1 = rules.get("f1") or {}
        predicted = f1.get("predicted", {}).get(subset) if f1.get("metric") == optimises else None
    if predicted is None:
        return None
    return SameSplitRule(record.call["dataset"], subset, rules["split"], predicted, rules["truth"],
                         record.data_hash, rules["classes"], optimises)


def applies(rule: SameSplitRule | None, result, metric: str) -> bool:
    """Whether ``result`` can be compared with ``rule`` utterance by utterance: the rule
    exists and is the one for ``metric`` (:meth:`SameSplitRule.suits`), the run holds its
    outputs on the rule's split, it was scored on the rule's data (equal data hashes where
    both are known) and ``metric`` comes from a confusion matrix."""
    return (rule is not None and metric in CONFUSION_METRICS and rule.suits(metric) and result.has_outputs(rule.split)
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



@functools.lru_cache(maxsize=4)
def test_resamples(seed: int, reps: int, n: int) -> np.ndarray:
    """How often each of ``n`` test utterances is drawn in each of ``reps`` bootstrap
    resamples, (reps, n) as float64 (:func:`cmnlib.data.bayes.resample_counts`), from the
    random stream ``seed``. A function of its arguments only, so every comparison on a split
    of one size shares one copy (about 50 ms to draw for 2000 x 1000); read-only."""
    rng = np.random.default_rng(seed)
    counts = resample_counts(rng.integers(0, n, size=(reps, n)), n).astype(np.float64)
    counts.flags.writeable = False
    return counts


def against_rule(question: Question, result, rule: SameSplitRule, metric: str, statistic: str,
                 threshold: float = 0.0, reps: int = BOOTSTRAP_REPS, seed: int = 0,
                 confidence: float = CONFIDENCE, target: str | None = None, **params) -> Finding:
    """Does ``result`` (a run with stored test outputs, on the rule's data) score above the
    Bayes ``rule`` on the same utterances by more than ``threshold`` points? The interval
    combines the seeds and the test split's sampling (see the module docstring); the
    bootstrap's random stream is fixed by ``seed``. ``params`` fill the question's text;
    ``rule`` (the rule's score) is added."""
    if not rule.suits(metric):
        raise ValueError(f"{metric!r} is judged against the rule that optimises {optimised_for(metric)!r}, "
                         f"got the one that optimises {rule.optimises!r}")
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
    counts = test_resamples(seed, reps, len(truth))
    resampled = np.mean([confusion_metric(resampled_confusions(counts, truth, p, rule.classes), metric)
                         for p in predicted], axis=0)
    rule_resampled = confusion_metric(resampled_confusions(counts, truth, rule.predicted, rule.classes), metric)
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
                   dof=dof, method=WITH_TEST_SPLIT, bounds=(-100.0, 100.0),
                   sampling=(float(seeds.var(ddof=1)) if len(seeds) > 1 else math.inf, var_test, test_size))


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
        where = "the same test utterances" + ("" if rule.optimises == ACCURACY else
                                              f", the rule's {F1_NAMES[metric]}-optimal form")
        return against_rule(question, result, rule, metric, statistic, threshold, target=target, where=where,
                            **params)
    if test_size is not None and metric in ACCURACIES:
        return against_population(question, result, expected, metric, statistic, test_size, threshold,
                                  target=target, where=f"average, {test_size:,} test utterances", **params)
    return None
