"""Bayes ceilings by Monte Carlo: the expected score of the Bayes-optimal rule (the exact
posterior) for each modality subset, with standard errors."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from .process import (SUBSETS, IemocapWorld, MoseiWorld, iemocap_posterior, mosei_posterior,
                      sample_iemocap, sample_mosei)

MONTE_CARLO_SAMPLES = 30000


# ======================================================================================
# Bayes ceilings by Monte Carlo
# ======================================================================================

def f1_from_confusion(confusion: np.ndarray, average: str) -> np.ndarray:
    """F1 from confusion matrices (..., K, K) with rows = truth: 'weighted' or 'macro'.

    Used for bootstrap standard errors, where resampling utterances is the same as
    resampling the cells of the confusion matrix (multinomial), so no metric is re-run on
    resampled arrays. Checked against scikit-learn in the tests.
    """
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(float)
    support = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    if average == "macro":
        return f1.mean(axis=-1)
    return (f1 * support).sum(axis=-1) / support.sum(axis=-1)


def _f1_with_se(truth: np.ndarray, pred: np.ndarray, classes: int, average: str,
                rng: np.random.Generator, reps: int = 500) -> tuple[float, float]:
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (truth, pred), 1)
    total = confusion.sum()
    draws = rng.multinomial(total, confusion.ravel() / total, size=reps).reshape(reps, classes, classes)
    return float(f1_from_confusion(confusion, average)), float(f1_from_confusion(draws, average).std(ddof=1))


def mosei_ceilings(world: MoseiWorld, n_words_sampler, seed: int,
                   samples: int = MONTE_CARLO_SAMPLES) -> dict:
    """Bayes-optimal Acc2 (both conventions) and the F1 of that classifier, per subset."""
    rng = np.random.default_rng([seed, 99])
    u = sample_mosei(world, n_words_sampler(rng, samples), rng)
    out = {}
    nonneg_true = u.label >= 0
    nonzero = u.label != 0
    for subset in SUBSETS:
        post = mosei_posterior(world, u, subset)
        pred_nonneg = post["nonneg"] >= 0.5
        pred_pos = post["pos"] >= post["neg"]
        expected_acc = np.maximum(post["nonneg"], 1 - post["nonneg"])
        expected_non0 = np.maximum(post["pos"], post["neg"]).sum() / (post["pos"] + post["neg"]).sum()
        out[subset] = {
            "acc2_has0": float(expected_acc.mean()),
            "acc2_has0_se": float(expected_acc.std(ddof=1) / np.sqrt(samples)),
            "acc2_non0": float(expected_non0),
            "f1_non0": float(f1_score(u.label[nonzero] > 0, pred_pos[nonzero], average="weighted")),
        }
        out[subset]["f1_has0"], out[subset]["f1_has0_se"] = _f1_with_se(
            nonneg_true.astype(int), pred_nonneg.astype(int), 2, "weighted", rng)
    out["majority_has0"] = float(max(nonneg_true.mean(), 1 - nonneg_true.mean()))
    out["nonneg_rate"] = float(nonneg_true.mean())
    out["zero_rate"] = float((u.label == 0).mean())
    out["monte_carlo_samples"] = samples
    out["note"] = ("acc2: expected accuracy of the Bayes-optimal classifier (an upper bound for "
                   "any model on this process); f1: weighted F1 of that classifier on the Monte "
                   "Carlo sample (a reference point, not an upper bound for F1)")
    return out


def iemocap_ceilings(world: IemocapWorld, seed: int, samples: int = MONTE_CARLO_SAMPLES) -> dict:
    """Bayes-optimal 4-class accuracy and the macro-F1 of that classifier, per subset."""
    rng = np.random.default_rng([seed, 98])
    u = sample_iemocap(world, samples, rng)
    out = {}
    for subset in SUBSETS:
        post = iemocap_posterior(world, u, subset)
        pred = post.argmax(axis=1)
        expected = post.max(axis=1)
        out[subset] = {
            "accuracy": float(expected.mean()),
            "accuracy_se": float(expected.std(ddof=1) / np.sqrt(samples)),
        }
        out[subset]["macro_f1"], out[subset]["macro_f1_se"] = _f1_with_se(
            u.emotion, pred, 4, "macro", rng)
    out["majority"] = float(np.bincount(u.emotion, minlength=4).max() / samples)
    out["monte_carlo_samples"] = samples
    out["note"] = ("accuracy: expected accuracy of the Bayes-optimal classifier (an upper bound); "
                   "macro_f1: macro-F1 of that classifier on the Monte Carlo sample (a reference "
                   "point, not an upper bound for F1)")
    return out
