"""Findings about trained models, stated over seeds: an estimate, an interval, a verdict.

Training is chaotic. Two CPUs that round one sum differently in the last bit (other GEMM
kernels, vector widths or thread counts) end with different trained weights, so a single
run's number, its True/False against a threshold, or a ranking of two models can flip on
the reader's machine. What does not flip is the distribution over seeds. So every
qualitative statement this companion makes about a trained model is a :class:`Finding`:

* the per-seed values of a statistic (a score, a difference of scores, an attention ratio),
* their mean and a two-sided Student-t interval over seeds. Two runs trained with the
  same seeds on the same data are pairs (the same data order and dropout stream by seed),
  so their difference is taken seed by seed (the paired t interval); Welch's interval only
  for runs that do not share their seeds (:func:`cmnlib.studies.common.compare` decides, from the runs),
* a claim of the form "the statistic is above (or below) a threshold", and one of three
  verdicts: **supported** (the whole interval is on the claimed side), **not supported**
  (the whole interval is on the other side) or **inconclusive** (the interval contains
  the threshold), with the margin between the interval and the threshold.

With 2 seeds (the quick profile) a 95% interval is wide (t = 12.7 for one degree of
freedom), so only large effects are decided; the paper profile's 10 seeds decide more.
Two cases are never decided, whatever side the interval is on (:attr:`Finding.flag`): an
interval of zero width from identical values (no spread was seen, so none is estimated),
an interval that leaves the range the statistic can take (a 2-seed t interval reaching
past 100% says the seeds are too few, not where the score lies), and a comparison whose
added input carries no information (all-zero or constant features: a gain would come from
something else, such as the added capacity).

Where several findings compete for one target (any of k variants meets it), the target is
judged with Holm's step-down correction over their one-sided p-values (:func:`holm`).
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


def paired_interval(a, b, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """mean(a - b) and the Student-t interval of the per-pair differences: ``a[i]`` and
    ``b[i]`` come from the same seed (same data order, same dropout stream), so the seed's
    own luck cancels in their difference."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired values need one value per seed on each side, got {list(a)} and {list(b)}")
    return mean_interval(x - y, confidence)


def difference_interval(a, b, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """mean(a) - mean(b) and Welch's interval for it (unequal variances, Welch-Satterthwaite
    degrees of freedom): for runs that are not pairs (different seeds or data)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"need finite per-seed values on both sides, got {list(a)} and {list(b)}")
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return diff, -math.inf, math.inf
    se, dof = welch_se(x, y)
    if se == 0.0:
        return diff, diff, diff
    half = float(stats.t.ppf((1 + confidence) / 2, dof) * se)
    return diff, diff - half, diff + half


def welch_se(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The standard error of mean(x) - mean(y) and its Welch-Satterthwaite degrees of freedom."""
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    if va + vb == 0.0:
        return 0.0, float(x.size + y.size - 2)
    return math.sqrt(va + vb), satterthwaite([(va, x.size - 1), (vb, y.size - 1)])


def satterthwaite(terms) -> float | None:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance terms, given
    as (variance of the term, its degrees of freedom): (sum v)^2 / sum(v^2 / d). None when
    every term is zero."""
    total = sum(v for v, _ in terms)
    denominator = sum(v ** 2 / d for v, d in terms if v > 0)
    return total ** 2 / denominator if denominator > 0 else None


def holm(p_values, alpha: float) -> list[bool]:
    """Holm's step-down procedure: which of the hypotheses with ``p_values`` are rejected at
    family-wise error ``alpha``. Sorted ascending, the i-th smallest (from 0) is compared
    with alpha / (m - i); the first that fails stops the procedure."""
    p = list(p_values)
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = [False] * len(p)
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        rejected[i] = True
    return rejected


def holm_adjusted(p_values) -> list[float]:
    """Holm-adjusted p-values: max over the smaller ones of (m - rank) * p, capped at 1;
    hypothesis i is rejected at level alpha exactly when its adjusted value is <= alpha."""
    p = list(p_values)
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [1.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Question:
    """What a finding asks. ``key``: how code selects findings (never by their prose);
    ``text``: the claim as a template, filled from the finding: ``{subject}`` and
    ``{baseline}`` (the labels of its subjects), ``{threshold}`` (a float) and the finding's
    ``params``. Each study declares its questions once."""

    key: str
    text: str


THRESHOLD, DIFFERENCE = "threshold", "difference"  # the kinds of finding
# how an interval was computed (the findings table's "test" column)
ONE_SAMPLE, PAIRED, WELCH, WITH_TEST_SPLIT = "t", "paired t", "Welch t", "t + test split"
# why a decided-looking interval decides nothing: all seeds the same value, a bound beyond
# what the statistic can take, or a comparison whose added input carries no information
# (all-zero or constant features: any gain comes from something else, e.g. capacity)
NO_SPREAD, OUT_OF_RANGE, NO_INFORMATION = "no spread", "outside the possible range", "no information in the added input"


def fixed(value: float, digits: int, thousands: bool = False) -> str:
    """``value`` with ``digits`` decimals (and thousands separators with ``thousands``),
    never "-0.0": a value that rounds to zero shows as zero whatever its sign. Findings and
    every shown table format numbers through here."""
    text = f"{value:,.{digits}f}" if thousands else f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and round(value, digits) == 0 else text


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
    runs went into it (for a difference, the smaller side); ``dof`` the interval's degrees
    of freedom (for p-values); ``method`` how it was computed (:data:`ONE_SAMPLE`,
    :data:`PAIRED`, :data:`WELCH`, :data:`WITH_TEST_SPLIT`); ``bounds`` the range the
    statistic can take (e.g. 0-100 for a score in percent), None when unbounded;
    ``sampling``, for an interval that carries the test split's sampling as well as the
    seeds': the per-seed variance, the test split's variance of the estimate and the
    split's size (what :meth:`to_decide` extrapolates from)."""

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
    dof: float | None = None
    method: str = ONE_SAMPLE
    bounds: tuple | None = None
    sampling: tuple | None = None  # WITH_TEST_SPLIT: (seeds' variance, the test split's variance of the mean, its size)

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
    def flag(self) -> str | None:
        """Why the interval decides nothing although it may exclude the threshold:
        :data:`NO_SPREAD` (several seeds, all the same value: a zero-width interval),
        :data:`OUT_OF_RANGE` (a bound beyond what the statistic can take),
        :data:`NO_INFORMATION` (the param ``no_information`` names an added input whose
        features cannot inform a model); else None."""
        if dict(self.params).get("no_information"):
            return NO_INFORMATION
        if self.seeds > 1 and self.low == self.high:
            return NO_SPREAD
        if self.bounds is not None and math.isfinite(self.low) and (
                self.low < self.bounds[0] - 1e-9 or self.high > self.bounds[1] + 1e-9):
            return OUT_OF_RANGE
        return None

    @property
    def verdict(self) -> str:
        if self.flag is not None:
            return INCONCLUSIVE
        if self.above:
            if self.low > self.threshold:
                return SUPPORTED
            return NOT_SUPPORTED if self.high < self.threshold else INCONCLUSIVE
        return SUPPORTED if self.high < self.threshold else NOT_SUPPORTED if self.low > self.threshold else INCONCLUSIVE

    @property
    def margin(self) -> float:
        """Distance from the threshold to the nearer end of the interval: positive when the
        interval excludes the threshold (by that much), negative when it contains it."""
        to_low, to_high = self.threshold - self.low, self.high - self.threshold
        if to_low >= 0 and to_high >= 0:  # the threshold is inside the interval
            return -min(to_low, to_high)
        return min(abs(to_low), abs(to_high))

    @property
    def p_value(self) -> float:
        """One-sided p-value of the claim's null (the statistic on the threshold or on the
        wrong side), from the interval's t distribution: small when the claim is supported."""
        if not math.isfinite(self.low) or self.dof is None:
            return 1.0
        half = (self.high - self.low) / 2
        if half == 0.0:
            on_side = self.estimate > self.threshold if self.above else self.estimate < self.threshold
            return 0.0 if on_side else 1.0
        se = half / float(stats.t.ppf((1 + self.confidence) / 2, self.dof))
        t = (self.estimate - self.threshold) / se
        return float(stats.t.sf(t, self.dof) if self.above else stats.t.cdf(t, self.dof))

    def seeds_to_decide(self, most: int = 1000) -> int | None:
        """How many seeds would decide this finding if its mean and its per-seed spread
        stayed as they are: the smallest n whose interval half-width falls below the gap
        between the mean and the threshold (at most ``most``). None when that cannot be said:
        one seed (no spread known), a mean on the threshold, or an interval that also
        carries the test split's sampling (more seeds alone may not decide it)."""
        if self.method == WITH_TEST_SPLIT or self.dof is None or not math.isfinite(self.low) or self.seeds < 2:
            return None
        gap = abs(self.estimate - self.threshold)
        half = (self.high - self.low) / 2
        if gap == 0 or half == 0:
            return None
        spread = half / float(stats.t.ppf((1 + self.confidence) / 2, self.dof)) * math.sqrt(self.seeds)
        for n in range(self.seeds + 1, most + 1):
            dof = 2 * n - 2 if self.method == WELCH else n - 1
            if float(stats.t.ppf((1 + self.confidence) / 2, dof)) * spread / math.sqrt(n) < gap:
                return n
        return None

    def to_decide(self, most_seeds: int = 1000, most_factor: float = 100.0) -> tuple[int | None, int | None]:
        """For an interval that carries the test split's sampling (``sampling`` set): how many
        seeds on this test split, and how many test utterances with these seeds, would decide
        the finding if its mean and both spreads stayed as they are (the test variance
        shrinks as 1/n): the smallest of each whose interval half-width falls below the gap
        between the mean and the threshold, or None where none up to ``most_seeds`` seeds or
        ``most_factor`` times the utterances would (e.g. the split's own sampling is wider
        than the gap, whatever the seeds)."""
        if self.sampling is None or self.seeds < 2:
            return None, None
        var_seed, var_test, size = self.sampling
        gap = abs(self.estimate - self.threshold)
        if gap == 0:
            return None, None
        quantile = (1 + self.confidence) / 2

        def decides(seeds: int, utterances: float) -> bool:
            test = var_test * size / utterances
            dof = satterthwaite([(var_seed / seeds, seeds - 1), (test, utterances - 1)]) or utterances - 1
            return float(stats.t.ppf(quantile, dof)) * math.sqrt(var_seed / seeds + test) < gap

        seeds = next((n for n in range(self.seeds + 1, most_seeds + 1) if decides(n, size)), None)
        grid = np.unique(np.round(size * np.geomspace(1.05, most_factor, 200)).astype(int))
        utterances = next((int(n) for n in grid if decides(self.seeds, n)), None)
        return seeds, utterances

    def interval_text(self) -> str:
        if not math.isfinite(self.low):
            return "unbounded (1 seed)"
        return f"[{fixed(self.low, self.digits)}, {fixed(self.high, self.digits)}]"

    def margin_digits(self) -> int:
        """Decimals that show the margin as nonzero (a verdict decided by less than the
        display precision shows enough digits to see which side it is on), at most 4 more."""
        digits = self.digits
        while math.isfinite(self.margin) and self.margin != 0 and round(abs(self.margin), digits) == 0 \
                and digits < self.digits + 4:
            digits += 1
        return digits

    def margin_text(self) -> str:
        if not math.isfinite(self.margin):
            return "-"
        digits = self.margin_digits()
        text = f"{self.margin:+.{digits}f}"
        return (fixed(0.0, digits) if float(text) == 0 else text) + self.unit  # no sign on a zero margin


def exceeds(question: Question, subjects, statistic: str, values, threshold: float, above: bool = True,
            unit: str = "", confidence: float = CONFIDENCE, digits: int = 1, target: str | None = None,
            bounds: tuple | None = None, **params) -> Finding:
    """A one-sample finding about ``subjects`` (one subject or a tuple): the mean over seeds
    of ``values`` against ``threshold``. ``bounds``: the range the statistic can take (an
    interval beyond it decides nothing). ``params``: further values of the question's text."""
    mean, low, high = mean_interval(values, confidence)
    return Finding(question, _subjects(subjects), statistic, mean, low, high, threshold, len(values), above,
                   THRESHOLD, False, target, tuple(sorted(params.items())), unit, confidence, digits,
                   dof=len(values) - 1 if len(values) > 1 else None, bounds=bounds)


def beats(question: Question, subject, baseline, statistic: str, a, b, threshold: float = 0.0, unit: str = "",
          confidence: float = CONFIDENCE, digits: int = 1, target: str | None = None, *, paired: bool,
          bounds: tuple | None = None, **params) -> Finding:
    """A two-sample finding: mean(a) - mean(b) > ``threshold``, ``a`` the per-seed scores of
    ``subject``, ``b`` those of ``baseline``. ``paired`` (no default: the caller says
    which): ``a[i]`` and ``b[i]`` share a seed and the data, so the interval is the paired
    t of the differences; else Welch's. :func:`cmnlib.studies.common.compare` decides it from the runs."""
    if paired:
        diff, low, high = paired_interval(a, b, confidence)
        dof, method = (len(a) - 1 if len(a) > 1 else None), PAIRED
    else:
        diff, low, high = difference_interval(a, b, confidence)
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        dof = welch_se(x, y)[1] if min(x.size, y.size) > 1 else None
        method = WELCH
    return Finding(question, (subject, baseline), statistic, diff, low, high, threshold, min(len(a), len(b)), True,
                   DIFFERENCE, paired, target, tuple(sorted(params.items())), unit, confidence, digits,
                   dof=dof, method=method, bounds=bounds)


def pairs(a, b) -> bool:
    """Whether two runs (:class:`cmnlib.results.RunResult`) are pairs seed by seed: the same
    seeds in the same order, on the same data (equal, known data hashes)."""
    return (list(a.seeds) == list(b.seeds) and len(a.seeds) > 1 and a.data_hash is not None
            and a.data_hash == b.data_hash)


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
        rows.append({**({"data": label} if isinstance(findings, dict) else {}),
                     "claim": f.claim, "measured": f.statistic, "seeds": f.seeds,
                     "test": f.method,
                     "mean": f"{fixed(f.estimate, d)}{f.unit}",
                     f"{int(round(100 * f.confidence))}% interval": f.interval_text(),
                     "threshold": f"{'>' if f.above else '<'} {fixed(f.threshold, d)}{f.unit}",
                     "verdict": f.verdict + (f" ({f.flag})" if f.flag else ""),
                     "margin": f.margin_text()})
    return pd.DataFrame(rows)


def sentence(finding: Finding) -> str:
    """The finding as one sentence that follows its verdict, e.g. for a notebook's prose."""
    f = finding
    digits = f.digits
    side = "above" if f.above else "below"
    measured = (f"{f.statistic}: {fixed(f.estimate, digits)}{f.unit} over {f.seeds} seed{'s' if f.seeds != 1 else ''}, "
                f"{int(round(100 * f.confidence))}% interval {f.interval_text()}")
    by = f"{abs(f.margin):.{f.margin_digits()}f}{f.unit}" if math.isfinite(f.margin) else ""
    if f.flag == NO_SPREAD:
        return (f"Inconclusive: {f.claim} ({measured}; every seed gave the same value, so the interval has no "
                f"width and decides nothing).")
    if f.flag == OUT_OF_RANGE:
        return (f"Inconclusive: {f.claim} ({measured}; the interval reaches beyond the values "
                f"{f.statistic} can take, so the seeds are too few to place it).")
    if f.flag == NO_INFORMATION:
        return (f"Inconclusive: {f.claim} ({measured}; the added input carries no information "
                f"({dict(f.params)['no_information']}), so a difference cannot come from it).")
    if f.verdict == SUPPORTED:
        return (f"Supported: {f.claim} ({measured}; the whole interval lies {side} "
                f"{fixed(f.threshold, digits)}{f.unit}, by {by}).")
    if f.verdict == NOT_SUPPORTED:
        return (f"Not supported: {f.claim} ({measured}; the whole interval lies on the other side of "
                f"{fixed(f.threshold, digits)}{f.unit}, by {by}).")
    needed = f.seeds_to_decide()
    settle = (f"about {needed} seeds would decide it if the mean and the spread stayed as they are" if needed
              else "more seeds are needed to decide" if f.method != WITH_TEST_SPLIT
              else _settled_by(f))
    return (f"Inconclusive: {f.claim} ({measured}; the interval contains {fixed(f.threshold, digits)}{f.unit}, "
            f"so {settle}).")


def _settled_by(f: Finding) -> str:
    """What would decide an inconclusive finding whose interval carries the test split's
    sampling (:meth:`Finding.to_decide`), as the end of a sentence."""
    seeds, utterances = f.to_decide()
    if seeds is None and utterances is None:
        return ("more seeds and a larger test split are needed to decide" if f.sampling is None or f.seeds < 2 else
                "neither more seeds nor a larger test split alone would decide it soon; both are needed")
    ways = ([f"about {seeds} seeds on this test split"] if seeds else []) + (
        [f"about {utterances:,} test utterances with these {f.seeds} seeds"] if utterances else [])
    return f"{' or '.join(ways)} would decide it if the mean and the spreads stayed as they are"


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


def verdict_counts(findings) -> pd.DataFrame:
    """One row per group of ``findings`` (a dict ``{label: [findings]}``, or one list): how
    many findings it holds and how many of them are supported, not supported and
    inconclusive, and how many of the inconclusive ones have a degenerate interval (no
    spread, or outside the metric's range). The short form of :func:`findings_table`."""
    groups = findings if isinstance(findings, dict) else {"": findings}
    rows = []
    for label, group in groups.items():
        verdicts = [f.verdict for f in group]
        rows.append({**({"group": label} if isinstance(findings, dict) else {}), "findings": len(group),
                     SUPPORTED: verdicts.count(SUPPORTED), NOT_SUPPORTED: verdicts.count(NOT_SUPPORTED),
                     INCONCLUSIVE: verdicts.count(INCONCLUSIVE),
                     "of them degenerate": sum(f.flag is not None for f in group)})
    return pd.DataFrame(rows)


def _strength(f: Finding) -> float:
    """How far the interval clears the threshold, in half-widths of the interval (how
    clearly a decided finding is decided); 0 for a zero-width interval."""
    half = (f.high - f.low) / 2
    return abs(f.margin) / half if half > 0 and math.isfinite(half) else 0.0


def digest(findings, most: int = 3) -> str:
    """At most ``most`` generated sentences that say what matters in a group of findings
    (``findings``: a list, or a dict ``{label: [findings]}``): how many were decided each
    way, the most clearly supported finding, and the most clearly not supported one (or,
    when none is, the inconclusive one closest to being decided). Holds for every outcome;
    the full list is :func:`bullets`."""
    labelled = _labelled(findings)
    if not labelled:
        return "No findings."

    def named(label: str, f: Finding) -> str:
        return f"{label + ': ' if label else ''}{f.claim}"

    verdicts = [f.verdict for _, f in labelled]
    degenerate = sum(f.flag is not None for _, f in labelled)
    sentences = [f"Of {len(labelled)} finding{'s' if len(labelled) != 1 else ''}, {verdicts.count(SUPPORTED)} "
                 f"{'is' if verdicts.count(SUPPORTED) == 1 else 'are'} supported, {verdicts.count(NOT_SUPPORTED)} not "
                 f"supported and {verdicts.count(INCONCLUSIVE)} inconclusive"
                 + (f" ({degenerate} of them with a degenerate interval)." if degenerate else ".")]
    supported = [(label, f) for label, f in labelled if f.verdict == SUPPORTED]
    against = [(label, f) for label, f in labelled if f.verdict == NOT_SUPPORTED]
    if supported:
        label, f = max(supported, key=lambda lf: _strength(lf[1]))
        sentences.append(f"Most clearly supported: {named(label, f)} ({fixed(f.estimate, f.digits)}{f.unit}, "
                         f"interval {f.interval_text()}).")
    if against:
        label, f = max(against, key=lambda lf: _strength(lf[1]))
        sentences.append(f"Most clearly not supported: {named(label, f)} ({fixed(f.estimate, f.digits)}{f.unit}, "
                         f"interval {f.interval_text()}).")
    else:
        open_ = [(label, f) for label, f in labelled if f.verdict == INCONCLUSIVE and f.flag is None]
        if open_:
            label, f = max(open_, key=lambda lf: lf[1].margin)  # the threshold nearest an end of the interval
            sentences.append(f"None is contradicted by its interval; the closest to being decided: {named(label, f)} "
                             f"({fixed(f.estimate, f.digits)}{f.unit}, interval {f.interval_text()}).")
    return " ".join(sentences[:most])
