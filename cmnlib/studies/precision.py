"""bf16 against fp32 (``cmn bench --parity``): the same model, data and seeds trained in
each precision, and whether the headline metric agrees within the seed-to-seed variation."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.split import DataBundle
from ..findings import Question, beats
from ..metrics import headline
from ..results import RunResult
from ..runs import train_specs
from ..spec import RunSpec

NOT_LOWER = Question("bf16_not_lower", "{subject} in bf16 scores no more than {tolerance:.1f} points below fp32")
NOT_HIGHER = Question("bf16_not_higher", "{subject} in bf16 scores no more than {tolerance:.1f} points above fp32")


def train_precisions(bundle: DataBundle, profile: str = "quick", seeds: int = 4, model: str = "cmn",
                     modalities: str = "LA", precisions=("fp32", "bf16"), processes: int | None = None,
                     progress: bool = True) -> dict[str, RunResult]:
    """The same model, data, profile and seeds trained in each precision: precision ->
    result (the fp32 run is the tables' run when the seeds match, read from the cache)."""
    specs = [RunSpec(model=model, dataset=bundle.dataset, modalities=modalities, profile=profile).with_training(
        precision=p) for p in precisions]
    return dict(zip(precisions, train_specs(specs, bundle, seeds, profile, processes, progress)))


def precision_findings(dataset: str, results: dict[str, RunResult]) -> list:
    """bf16 against fp32 (``results``: precision -> result, same model, data and seeds):
    does mixed precision change the headline metric by more than the seed-to-seed variation
    of fp32 (twice its standard deviation over seeds, at least one point)? Two one-sided
    findings with Welch's interval for bf16 minus fp32: not more than that below, not more
    than that above; both supported means the precisions agree."""
    if not {"fp32", "bf16"} <= set(results):
        return []
    metric = headline(dataset)
    fp32, bf16 = results["fp32"].scores(metric.key), results["bf16"].scores(metric.key)
    tolerance = max(1.0, 2 * float(np.std(fp32, ddof=1))) if len(fp32) > 1 else 1.0
    a, b = results["bf16"].spec, results["fp32"].spec
    return [beats(NOT_LOWER, a, b, f"{metric.label}: bf16 minus fp32, points", bf16, fp32, threshold=-tolerance,
                  tolerance=tolerance),
            beats(NOT_HIGHER, b, a, f"{metric.label}: fp32 minus bf16, points", fp32, bf16, threshold=-tolerance,
                  tolerance=tolerance)]


def precision_table(dataset: str, results: dict[str, RunResult]) -> pd.DataFrame:
    """One row per precision: the headline metric per seed, mean ± std, the ensemble, and
    the training seconds of all seeds."""
    metric = headline(dataset)
    return pd.DataFrame([{"precision": p, f"test {metric.label} per seed": ", ".join(f"{v:.1f}" for v in
                                                                                    r.scores(metric.key)),
                          "mean": round(100 * r.mean(metric.key), 1), "std": round(100 * r.std(metric.key), 1),
                          "ensemble": round(100 * r.ensemble()[metric.key], 1),
                          "train s": round(sum(m.train_seconds for m in r.members), 1)}
                         for p, r in results.items()])
