"""Hand-made RunResults for the tests of tables, studies and notes: per-seed test metrics
(and optional histories) given by the test, as a metric-only record holds them."""
from __future__ import annotations

from cmnlib.results import RunResult, SeedResult
from cmnlib.spec import RunSpec, TRAIN_PROFILES
from dataclasses import replace


def fake_run(model: str, modalities: str, per_seed: list[dict], dataset: str = "mosei", ensemble: dict | None = None,
             histories: list[list[dict]] | None = None, best_epochs: list[int] | None = None,
             train: dict | None = None, **overrides) -> RunResult:
    """A run of ``model`` on ``modalities`` whose seed i scored ``per_seed[i]`` (test
    metrics, fractions); ``ensemble``: the ensemble's test metrics (default: the first
    seed's); ``histories``/``best_epochs``: per-seed learning curves; ``train``: training
    changes from the quick profile; ``overrides``: model options (e.g. alignment=...)."""
    spec = RunSpec(model=model, dataset=dataset, modalities=modalities, profile="quick", model_overrides=overrides,
                   train=replace(TRAIN_PROFILES["quick"], **(train or {})))
    members = []
    for i, metrics in enumerate(per_seed):
        history = histories[i] if histories else ([] if model == "majority" else [{"epoch": 1}])
        best = best_epochs[i] if best_epochs else (0 if model == "majority" else 1)
        members.append(SeedResult(seed=i, best_epoch=best, epochs_run=len(history), history=history,
                                  train_seconds=1.0, recorded_metrics={"test": dict(metrics)}))
    return RunResult(spec, "SYNTHETIC test data", "hash", None, members,
                     recorded_ensemble={"test": dict(ensemble or per_seed[0])})
