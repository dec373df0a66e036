"""bf16 against fp32 (``cmn bench --parity``): the same model, data and seeds trained in
each precision, and whether the headline metric agrees within a margin declared here,
before any run (:data:`PARITY`), by two one-sided tests on the paired seeds."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..data.split import DataBundle
from ..findings import Question
from ..metrics import headline
from ..results import RunResult
from ..runs import train_specs
from ..spec import RunSpec
from .common import compare

NOT_LOWER = Question("bf16_not_lower", "{subject} in bf16 scores no more than {tolerance:.1f} points below fp32")
NOT_HIGHER = Question("bf16_not_higher", "{subject} in bf16 scores no more than {tolerance:.1f} points above fp32")


@dataclass(frozen=True)
class ParityStudy:
    """The parity study as declared before it runs: its arms, the model, the seeds (fixed:
    no look at the scores adds any), the metric (each data set's headline) and the
    equivalence margin in points, absolute, with why that size matters."""

    arms: tuple = ("fp32", "bf16")
    model: str = "cmn"
    modalities: str = "LA"
    profile: str = "quick"
    seeds: int = 20
    margin: float = 1.0
    why: str = ("the smallest gap the paper claims between two models is 0.9 points (CMN's 67.4 against "
                "RAVEN's 66.5 F1 on IEMOCAP, Table 1): a precision that may move a score by a point could "
                "reverse a claim of that size")


PARITY = ParityStudy()


def train_precisions(bundle: DataBundle, profile: str = PARITY.profile, seeds: int = PARITY.seeds,
                     model: str = PARITY.model, modalities: str = PARITY.modalities, precisions=PARITY.arms,
                     processes: int | None = None, progress: bool = True) -> dict[str, RunResult]:
    """The same model, data, profile and seeds trained in each precision: precision ->
    result (the fp32 run is the tables' run when the seeds match, read from the cache)."""
    specs = [RunSpec(model=model, dataset=bundle.dataset, modalities=modalities, profile=profile).with_training(
        precision=p) for p in precisions]
    return dict(zip(precisions, train_specs(specs, bundle, seeds, profile, processes, progress)))


def precision_findings(dataset: str, results: dict[str, RunResult], margin: float = PARITY.margin) -> list:
    """bf16 against fp32 (``results``: precision -> result, same model, data and seeds):
    does mixed precision change the headline metric by more than ``margin`` points (the
    declared :data:`PARITY` margin, never computed from the scores)? Two one-sided tests
    (TOST) on bf16 minus fp32, paired seed by seed: not more than the margin below, not
    more than the margin above; both supported means the precisions are equivalent at the
    2.5% level (each side's 95% interval excludes its bound)."""
    if not {"fp32", "bf16"} <= set(results):
        return []
    metric = headline(dataset)
    bf16, fp32 = results["bf16"], results["fp32"]
    return [compare(NOT_LOWER, bf16, fp32, metric.key, f"{metric.label}: bf16 minus fp32, points",
                    threshold=-margin, tolerance=margin),
            compare(NOT_HIGHER, fp32, bf16, metric.key, f"{metric.label}: fp32 minus bf16, points",
                    threshold=-margin, tolerance=margin)]


def precision_table(dataset: str, results: dict[str, RunResult]) -> pd.DataFrame:
    """One row per precision: the headline metric per seed, mean ± std, the ensemble, and
    the training seconds of all seeds."""
    metric = headline(dataset)
    return pd.DataFrame([{"precision": p, f"test {metric.label} per seed": ", ".join(f"{v:.1f}" for v in
                                                                                    r.scores(metric.key)),
                          "mean": round(r.mean(metric.key, percent=True), 1),
                          "std": round(r.std(metric.key, percent=True), 1),
                          "ensemble": round(100 * r.ensemble()[metric.key], 1),
                          "train s": round(sum(m.train_seconds for m in r.members), 1)}
                         for p, r in results.items()])
