"""Findings about trained models, stated over seeds: an estimate, an interval, a verdict.

Training is chaotic. Two CPUs that round one sum differently in the last bit (other GEMM
kernels, vector widths or thread counts) end with different trained weights, so a single
run's number, its True/False against a threshold, or a ranking of two models can flip on
the reader's machine. What does not flip is the distribution over seeds. So every
qualitative statement this companion makes about a trained model is a :class:`Finding`:

* the per-seed values of a statistic (a score, a difference of scores, an attention ratio),
* their mean and a two-sided Student-t interval over seeds (Welch's interval for the
  difference of two models' means),
* a claim of the form "the statistic is above (or below) a threshold", and one of three
  verdicts: **supported** (the whole interval is on the claimed side), **not supported**
  (the whole interval is on the other side) or **inconclusive** (the interval contains
  the threshold), with the margin between the interval and the threshold.

With 2 seeds (the quick profile) a 95% interval is wide (t = 12.7 for one degree of
freedom), so only large effects are decided; the paper profile's 10 seeds decide more.
Notebook prose is generated from these verdicts (:func:`sentence`), never written against
one run's numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
CONFIDENCE = 0.95


def mean_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of ``values`` (one per seed) and its Student-t interval:
    mean ± t_{(1+c)/2, n-1} · s / sqrt(n), with s the sample standard deviation.
    One value gives an unbounded interval (nothing is known about the spread)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"need finite per-seed values, got {list(values)}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def difference_interval(a, b, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """mean(a) - mean(b) and Welch's interval for it (unequal variances, Welch-Satterthwaite
    degrees of freedom). The seeds of two models are independent runs, not pairs."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"need finite per-seed values on both sides, got {list(a)} and {list(b)}")
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return diff, -math.inf, math.inf
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, dof) * se)
    return diff, diff - half, diff + half


@dataclass(frozen=True)
class Question:
    """What a finding asks. ``key``: how code selects findings (never by their prose);
    ``text``: the claim as a template, filled from the finding: ``{subject}`` and
    ``{baseline}`` (the labels of its subjects), ``{threshold}`` (a float) and the finding's
    ``params``. Each study declares its questions once."""

    key: str
    text: str


THRESHOLD, DIFFERENCE = "threshold", "difference"  # the kinds of finding


def _label(subject) -> str:
    """A subject as prose: a RunSpec's label, a string as it is."""
    return getattr(subject, "label", subject)


@dataclass(frozen=True)
class Finding:
    """A claim "``statistic`` is above (or below) ``threshold``", measured over seeds.

    Structured, so that code selects findings by their fields and prose is generated from
    them: ``question`` (what is asked, :class:`Question`), ``subjects`` (what it is about:
    the runs' :class:`cmnlib.spec.RunSpec`, or names for groups that are not runs; for a
    difference, the baseline second), ``kind`` (:data:`THRESHOLD`: one statistic against a
    threshold; :data:`DIFFERENCE`: two models' scores), ``paired`` (a difference over the
    same seeds taken seed by seed), ``target`` (the key of the study target it bears on, or
    None) and ``params`` (further values of the question's text, as (name, value) pairs).

    ``estimate`` and [``low``, ``high``] are the mean and its interval; ``seeds`` how many
    runs went into it (for a difference, the smaller side)."""

    question: Question
    subjects: tuple
    statistic: str
    estimate: float
    low: float
    high: float
    threshold: float
    seeds: int
    above: bool = True
    kind: str = THRESHOLD
    paired: bool = False
    target: str | None = None
    params: tuple = ()
    unit: str = ""
    confidence: float = CONFIDENCE
    digits: int = 1                # decimals when shown (2 for ratios near 1)

    @property
    def claim(self) -> str:
        """The question's text filled from this finding (generated, never parsed)."""
        labels = [_label(s) for s in self.subjects]
        return self.question.text.format(subject=labels[0] if labels else "", baseline=labels[1] if len(labels) > 1
                                         else "", threshold=self.threshold, **dict(self.params))

    @property
    def subject(self):
        """The first subject: the run (or group) the finding is about."""
        return self.subjects[0] if self.subjects else None

    @property
    def verdict(self) -> str:
        if self.above:
            return SUPPORTED if self.low > self.threshold else NOT_SUPPORTED if self.high < self.threshold else INCONCLUSIVE
        return SUPPORTED if self.high < self.threshold else NOT_SUPPORTED if self.low > self.threshold else INCONCLUSIVE

    @property
    def margin(self) -> float:
        """Distance from the threshold to the nearer end of the interval: positive when the
        interval excludes the threshold (by that much), negative when it contains it."""
        to_low, to_high = self.threshold - self.low, self.high - self.threshold
        if to_low >= 0 and to_high >= 0:  # the threshold is inside the interval
            return -min(to_low, to_high)
        return min(abs(to_low), abs(to_high))

    def interval_text(self) -> str:
        if not math.isfinite(self.low):
            return "unbounded (1 seed)"
        return f"[{self.low:.{self.digits}f}, {self.high:.{self.digits}f}]"


def exceeds(question: Question, subjects, statistic: str, values, threshold: float, above: bool = True,
            unit: str = "", confidence: float = CONFIDENCE, digits: int = 1, target: str | None = None,
            **params) -> Finding:
    """A one-sample finding about ``subjects`` (one subject or a tuple): the mean over seeds
    of ``values`` against ``threshold``. ``params``: further values of the question's text."""
    mean, low, high = mean_interval(values, confidence)
    return Finding(question, _subjects(subjects), statistic, mean, low, high, threshold, len(values), above,
                   THRESHOLD, False, target, tuple(sorted(params.items())), unit, confidence, digits)


def beats(question: Question, subject, baseline, statistic: str, a, b, threshold: float = 0.0, unit: str = "",
          confidence: float = CONFIDENCE, digits: int = 1, target: str | None = None, **params) -> Finding:
    """A two-sample finding: mean(a) - mean(b) > ``threshold`` (Welch's interval), ``a``
    the per-seed scores of ``subject``, ``b`` those of ``baseline``."""
    diff, low, high = difference_interval(a, b, confidence)
    return Finding(question, (subject, baseline), statistic, diff, low, high, threshold, min(len(a), len(b)), True,
                   DIFFERENCE, False, target, tuple(sorted(params.items())), unit, confidence, digits)


def _subjects(subjects) -> tuple:
    return tuple(subjects) if isinstance(subjects, (tuple, list)) else (subjects,)


def select(found, question: Question | str | None = None, target: str | None = None) -> list[Finding]:
    """The findings of ``found`` (a list, or a dict of lists) that answer ``question`` (a
    Question or its key) and bear on ``target``; how code picks findings, by their fields."""
    key = question.key if isinstance(question, Question) else question
    return [f for _, f in _labelled(found)
            if (key is None or f.question.key == key) and (target is None or f.target == target)]


def findings_table(findings) -> pd.DataFrame:
    """One row per finding: the claim, what was measured, seeds, mean, interval, threshold,
    verdict and margin, as display strings (each finding with its own decimals).
    ``findings``: a list, or a dict ``{label: [findings]}`` whose label (e.g. the data set)
    becomes a first column. A notebook shows it with :func:`cmnlib.reporting.show`."""
    rows = []
    for label, f in _labelled(findings):
        d = f.digits
        rows.append({**({"data": label} if isinstance(findings, dict) else {}), "claim": f.claim, "measured": f.statistic, "seeds": f.seeds,
                     "mean": f"{f.estimate:.{d}f}{f.unit}",
                     f"{int(round(100 * f.confidence))}% interval": f.interval_text(),
                     "threshold": f"{'>' if f.above else '<'} {f.threshold:.{d}f}{f.unit}",
                     "verdict": f.verdict,
                     "margin": "-" if not math.isfinite(f.margin) else f"{f.margin:+.{d}f}{f.unit}"})
    return pd.DataFrame(rows)


def sentence(finding: Finding) -> str:
    """The finding as one sentence that follows its verdict, e.g. for a notebook's prose."""
    f = finding
    digits = f.digits
    side = "above" if f.above else "below"
    measured = (f"{f.statistic}: {f.estimate:.{digits}f}{f.unit} over {f.seeds} seed{'s' if f.seeds != 1 else ''}, "
                f"{int(round(100 * f.confidence))}% interval {f.interval_text()}")
    if f.verdict == SUPPORTED:
        return (f"Supported: {f.claim} ({measured}; the whole interval lies {side} "
                f"{f.threshold:.{digits}f}{f.unit}, by {f.margin:.{digits}f}{f.unit}).")
    if f.verdict == NOT_SUPPORTED:
        return (f"Not supported: {f.claim} ({measured}; the whole interval lies on the other side of "
                f"{f.threshold:.{digits}f}{f.unit}, by {f.margin:.{digits}f}{f.unit}).")
    return (f"Inconclusive: {f.claim} ({measured}; the interval contains {f.threshold:.{digits}f}{f.unit}, "
            f"so more seeds are needed to decide).")


def _labelled(findings) -> list[tuple[str, Finding]]:
    """``[f, ...]`` or ``{label: [f, ...]}`` (e.g. per data set) as (label, finding) pairs."""
    if isinstance(findings, dict):
        return [(label, f) for label, group in findings.items() for f in group]
    return [("", f) for f in findings]


def bullets(findings) -> str:
    """The findings' sentences as a Markdown bullet list (for ``IPython.display.Markdown``).
    ``findings``: a list, or a dict ``{label: [findings]}`` whose labels (e.g. the data
    set) precede their sentences."""
    return "\n".join(f"* {label + ': ' if label else ''}{sentence(f)}" for label, f in _labelled(findings))
