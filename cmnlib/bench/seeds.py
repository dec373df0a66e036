"""``cmn bench --seeds-timing``: how long the paper profile's CMN seeds take to train together
on one device. Prepared for a GPU session (the issue's target: the 10 paper-profile seeds
on the paper-size MOSEI-like set in 10 minutes or less on one H100), and runnable on a CPU
with a small model, which is how the tests check it.

The seeds train concurrently on the same device (:func:`cmnlib.runs.train_many`): small
batches leave a GPU mostly idle between kernels. On a GPU the seeds are stacked, ten at a
time, into one computation (:mod:`cmnlib.train_stacked`; ``$CMN_STACK`` changes the number);
without stacking (``CMN_STACK=1``, the default on a CPU) each seed gets a process of its own
and several processes fill those gaps. Each run's numbers depend only on its seed (on a CPU,
``tests/test_distributed.py`` shows concurrent seeds equal sequential ones). The runs go to
a fresh folder (default: under ``out``), so nothing is read from the cache, and the wall
time, the device and every seed's epochs and score are written to ``seeds.json`` and
``seeds.md``."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from .. import runs
from ..config import DEFAULT_DATASET
from ..atomic import write_json, write_text
from ..metrics import headline
from ..data import load_dataset
from ..precision import machine_description, resolve
from ..train import TRAIN_PROFILES, RunSpec
from ..train_stacked import stack_refusal, stack_size


def device_name(device: str) -> str:
    """The GPU's name for a CUDA device, this CPU's description otherwise."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return machine_description()


def _output_folder(out: str | Path, device: str) -> Path:
    """``out``, created, once ``device`` is known to exist: a CUDA device that torch cannot
    see is one error saying so and how to time the same path on the CPU."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device}: no CUDA device is visible to torch {torch.__version__} "
                           "(a CPU wheel, or no GPU); use --device cpu to time the same path on the CPU")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def time_seeds(out: str | Path = "reports/bench", seeds: int = 10, device: str = "cuda", precision: str = "auto",
               dataset: str = DEFAULT_DATASET, source: str = "synthetic", scale: str = "paper", profile: str = "paper",
               processes: int | None = None, epochs: int | None = None, overrides: dict | None = None,
               root: str | Path | None = None, echo: bool = True) -> dict:
    """Train ``seeds`` CMN (L+A) seeds of ``profile`` on ``dataset`` (the synthetic set at
    ``scale``, or ``source``) concurrently on ``device`` (``processes`` at a time, default
    one per seed), time the whole, and write ``seeds.json`` / ``seeds.md`` under ``out``.
    ``epochs`` and ``overrides`` (model fields) shrink the job for a smoke test."""
    out = _output_folder(out, device)
    root = Path(root) if root is not None else out / f"seeds-runs-{time.strftime('%Y%m%d-%H%M%S')}"
    bundle = load_dataset(dataset, source, scale=scale)
    train = replace(TRAIN_PROFILES[profile], device=device, precision=resolve(precision, device),
                    **({"epochs": epochs} if epochs else {}))
    spec = RunSpec(model="cmn", dataset=dataset, modalities="LA", profile=profile, train=train,
                   model_overrides=dict(overrides or {}))
    stack = stack_size(device)
    stacked = stack > 1 and stack_refusal(spec, bundle) is None
    # stacked: one process per group of seeds (each group one computation); else one per seed
    processes = processes or (-(-seeds // stack) if stacked else seeds)
    start = time.perf_counter()
    run = runs.train_many([spec], bundle, seeds, processes=processes, root=root, threads=1, progress=echo)[0]
    seconds = time.perf_counter() - start
    metric, label = headline(dataset).key, headline(dataset).label
    result = {"device": device_name(device), "device_kind": str(device), "precision": train.precision,
              "seeds": seeds, "processes": processes, "stack": stack if stacked else 1,
              "seconds": seconds, "minutes": seconds / 60,
              "data": bundle.source_label, "train_samples": len(bundle["train"]), "spec": run.spec.to_dict(),
              "epochs_run": [m.epochs_run for m in run.members], "best_epoch": [m.best_epoch for m in run.members],
              "metric": metric, "scores": run.scores(metric), "mean": 100 * run.mean(metric), "runs": str(root)}
    write_json(out / "seeds.json", result)
    write_text(out / "seeds.md",
        f"# {seeds} CMN seeds trained together on one device\n\n"
        f"- device: {result['device']} ({device}), precision {result['precision']}, {processes} processes, "
        + (f"{stack} seeds stacked as one computation per process\n" if stacked
           else "one seed at a time per process\n") +
        f"- data: {result['data']}, {result['train_samples']} training utterances\n"
        f"- profile {profile}: up to {train.epochs} epochs, early stopping on validation only "
        f"(patience {train.patience}); epochs run per seed: {result['epochs_run']}\n"
        f"- wall time: **{result['minutes']:.1f} min** for all {seeds} seeds "
        f"(target on one H100: 10 min or less)\n"
        f"- test {label} per seed: {', '.join(f'{s:.1f}' for s in result['scores'])}; mean {result['mean']:.1f}\n")
    if echo:
        print((out / "seeds.md").read_text())
    return result


def time_stacking(out: str | Path = "reports/bench", stack: int = 10, device: str = "cuda", precision: str = "auto",
                  profile: str = "paper", steps: int = 5, modalities: str = "LA", source: str = "synthetic",
                  overrides: dict | None = None, echo: bool = True) -> dict:
    """The prepared smoke run for a GPU: ``stack`` CMN seeds of ``profile`` as one stacked
    computation against the same seeds one after another, a few steps each way on ``device``
    (:func:`cmnlib.bench.workers.worker_stacked`; the quick MOSEI-like split's bucketed
    batches), written to ``stacked.json`` / ``stacked.md`` under ``out`` with the device's
    name. ``overrides`` (model fields) shrink it for a test."""
    from .workers import worker_stacked
    out = _output_folder(out, device)
    precision = resolve(precision, device)
    row = worker_stacked({"model": ("cmn", modalities), "source": source, "stack": stack, "steps": steps,
                          "profile": profile, "device": device, "precision": precision,
                          "overrides": dict(overrides or {})})
    result = {**row, "device_name": device_name(device), "date": time.strftime("%Y-%m-%d")}
    write_json(out / "stacked.json", result)
    write_text(out / "stacked.md",
        f"# {stack} CMN seeds stacked against one at a time\n\n"
        f"- device: {result['device_name']} ({device}), precision {precision}, {result['date']}\n"
        f"- CMN ({modalities}), {profile} profile, batch {row['batch']} per seed, the quick MOSEI-like split's "
        f"length-bucketed batches; {steps} steps each way after one warm-up, alternating\n"
        f"- one seed at a time: **{1e3 * row['seed_step_s_separate']:,.1f} ms** per seed and step; stacked: "
        f"**{1e3 * row['seed_step_s_stacked']:,.1f} ms**\n"
        f"- seeds per minute, stacked against one at a time: **{row['speedup']:.2f}x** "
        f"(range over steps {row['speedup_range'][0]:.2f}-{row['speedup_range'][1]:.2f}x)\n")
    if echo:
        print((out / "stacked.md").read_text())
    return result
