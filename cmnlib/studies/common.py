"""What more than one study asks: whether a fusion model scores above the language-only
Bayes ceiling (notebooks 03, 07 and 08), and the score columns of the small study tables."""
from __future__ import annotations

from .. import config
from .. import metrics as M
from ..findings import CONFIDENCE, Finding, Question, beats, exceeds, pairs
from ..metrics import headline
from ..results import RunResult
from .bayes import SameSplitRule, against_ceiling, bayes_rule

# a fusion model that scores above the best any model can do from the text alone uses
# another modality
ABOVE_TEXT_CEILING = Question("above_text_ceiling",
                              "{subject} scores above the language-only ceiling ({threshold:.1f})")
# the same question judged against the language-only Bayes rule on the model's own test
# utterances (or, for a metric-only record, against the expected ceiling with the test
# split's sampling error): the statistic is the model's score minus the rule's
ABOVE_TEXT_RULE = Question("above_text_ceiling",
                           "{subject} scores above the language-only Bayes rule ({rule:.1f} on {where})")
# the paper-size target of the synthetic benchmark: within a few points of the best any
# model can do from language and audio
NEAR_LA_CEILING = Question("near_la_ceiling",
                           "{subject} comes within {tolerance:g} points of the L+A Bayes ceiling ({ceiling:.1f})")
# the same question judged against the L+A Bayes rule on the model's own test utterances
# (or against the expected ceiling with the test split's sampling error)
NEAR_LA_RULE = Question("near_la_ceiling",
                        "{subject} comes within {tolerance:g} points of the L+A Bayes rule ({rule:.1f} on {where})")


def text_ceiling_findings(results: list[RunResult], ceilings: dict | None, target: str | None = None,
                          bundle=None, test_size: int | None = None) -> list:
    """Does each fusion model among ``results`` (CMN, MulT, EF-LSTM, on more than the text) score above the
    language-only Bayes ceiling, i.e. use more than the text? Headline metric; empty
    without ceilings (real data). An F1 is judged against the language-only rule's
    F1-optimal form (:func:`cmnlib.data.bayes.bayes_rule`). ``target``: the study target these
    findings bear on; ``bundle``: the data the runs were scored on, whose per-utterance
    posteriors give the language-only rule on the same test utterances. Each finding is
    :func:`text_ceiling_finding`'s."""
    if ceilings is None:
        return []
    rule = None if bundle is None else bayes_rule(bundle, "L", metric=headline(bundle.dataset).key)
    return [text_ceiling_finding(r, ceilings, target, rule, test_size) for r in results
            if r.model in config.FUSION_MODELS and len(r.spec.modalities) > 1]  # CMN (L) reads no other modality


def text_ceiling_finding(result: RunResult, ceilings: dict, target: str | None = None,
                         rule: SameSplitRule | None = None, test_size: int | None = None) -> Finding:
    """Does ``result`` score above the language-only Bayes ceiling? Judged, in this order:
    against the language-only rule ``rule`` on the same test utterances (when the run has
    its test outputs and was scored on the rule's data; seeds and test sampling both in the
    interval: :func:`cmnlib.studies.bayes.against_rule`); else against the expected
    ceiling with an accuracy's test-sampling error at ``test_size`` utterances
    (:func:`cmnlib.studies.bayes.against_population`); else, for an F1 of a metric-only
    record, against the expected ceiling over seeds alone (the only case that ignores the
    test split's sampling, said by the finding's "t" test)."""
    metric = headline(result.dataset)
    ceiling = 100 * ceilings["L"][metric.key]
    found = against_ceiling(ABOVE_TEXT_RULE, result, rule, ceiling, metric.key,
                            f"test {metric.label} minus the language-only rule, points", test_size, target=target)
    return found or exceeds(ABOVE_TEXT_CEILING, result.spec, f"test {metric.label}", result.scores(metric.key),
                            ceiling, bounds=(0.0, 100.0), target=target)


def score_columns(result: RunResult, metric: str, label: str) -> dict:
    """A run's test ``metric`` as '<label>: mean / std / ensemble' columns (percent, one
    decimal) and its number of seeds: the columns of the wiring and alignment tables."""
    return {f"{label}: mean": round(result.mean(metric, percent=True), 1),
            f"{label}: std": round(result.std(metric, percent=True), 1),
            f"{label}: ensemble": round(100 * result.ensemble()[metric], 1),
            "seeds": len(result.seeds)}


def compare(question: Question, subject, baseline, metric: str, statistic: str, threshold: float = 0.0,
            unit: str = "", confidence: float = CONFIDENCE, digits: int = 1, target: str | None = None,
            **params) -> Finding:
    """:func:`beats` for two runs (:class:`cmnlib.results.RunResult`) on ``metric`` (a
    metric key, in percent for rates): paired seed by seed when the runs are pairs
    (:func:`pairs`), Welch's interval otherwise. The statistic's range is +-100 points
    for a rate."""
    a, b = subject.scores(metric), baseline.scores(metric)
    return beats(question, subject.spec, baseline.spec, statistic, a, b, threshold, unit, confidence, digits,
                 target, paired=pairs(subject, baseline), bounds=(-100.0, 100.0) if M.is_percent(metric) else None,
                 **params)
