"""What more than one study asks: whether a fusion model scores above the language-only
Bayes ceiling (notebooks 03, 07 and 08), and the score columns of the small study tables."""
from __future__ import annotations

from .. import config
from ..findings import Question, exceeds
from ..metrics import headline
from ..results import RunResult

# a fusion model that scores above the best any model can do from the text alone uses
# another modality
ABOVE_TEXT_CEILING = Question("above_text_ceiling", "{subject} scores above the language-only ceiling ({threshold:.1f})")
# the paper-size target of the synthetic benchmark: within a few points of the best any
# model can do from language and audio
NEAR_LA_CEILING = Question("near_la_ceiling",
                           "{subject} comes within {tolerance:g} points of the L+A Bayes ceiling ({ceiling:.1f})")


def text_ceiling_findings(results: list[RunResult], ceilings: dict | None, target: str | None = None) -> list:
    """Does each fusion model among ``results`` (CMN, MulT, EF-LSTM) score above the
    language-only Bayes ceiling, i.e. use more than the text? Over seeds, headline metric;
    empty without ceilings (real data). For a macro-F1 the ceiling belongs to the
    accuracy-optimal rule and is not a hard bound. ``target``: the study target these
    findings bear on."""
    if ceilings is None:
        return []
    out = []
    for result in results:
        if result.model not in config.FUSION_MODELS:
            continue
        metric = headline(result.dataset)
        out.append(exceeds(ABOVE_TEXT_CEILING, result.spec, f"test {metric.label}", result.scores(metric.key),
                           100 * ceilings["L"][metric.key], target=target))
    return out


def score_columns(result: RunResult, metric: str, label: str) -> dict:
    """A run's test ``metric`` as '<label>: mean / std / ensemble' columns (percent, one
    decimal) and its number of seeds: the columns of the wiring and alignment tables."""
    return {f"{label}: mean": round(100 * result.mean(metric), 1),
            f"{label}: std": round(100 * result.std(metric), 1),
            f"{label}: ensemble": round(100 * result.ensemble()[metric], 1),
            "seeds": len(result.seeds)}
