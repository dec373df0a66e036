"""Speed and memory benchmark: ``python -m cmnlib bench [--out DIR] [--quick] [--paper-data]``.

Everything is measured in ONE run, on the same inputs, and written to ``bench.json`` and
``bench.md`` (the Markdown table is also printed):

* **training throughput** (samples/s: warm-up steps, then timed steps of forward, L1 loss,
  backward and an Adam step at lr 1e-4; the median step) and **peak RSS** (``ru_maxrss`` of a
  fresh ``spawn`` process per configuration) for CMN in the paper profile (hidden 512,
  2 MUA layers, 4 heads, FF 1024, batch 32, modalities LA) at language/audio lengths 30/50
  and 50/50 and in the quick profile; for the same CMN written plainly
  (:class:`ReferenceCMN`, below) with IDENTICAL weights; and for MulT at its defaults;
* **inference latency** (eval mode, no grad) at batch 1 and batch 32 for each;
* a **GEMM peak** (``torch.mm`` of 1024 x 1024 fp32 matrices, GFLOP/s) and each model's
  achieved training FLOP/s (3 x the forward FLOPs of :func:`cmnlib.model.count_flops`) as
  a fraction of it;
* **fast vs reference**: the two CMNs' outputs compared in eval mode (max abs difference,
  several configurations with padding), their throughput ratio from the separate processes
  and from one process that alternates their steps (less sensitive to other load), and a
  breakdown of where a training step's time goes (``torch.profiler``, self CPU time by kind);
* **length scaling**: forward + backward time per batch at audio length 50, 100, 200, 500
  (text 50) for CMN and MulT;
* **data**: the time to load the MOSEI-like set from its HDF5 cache (the second
  ``load_dataset`` call; the quick set by default, the paper-scale set too with
  ``--paper-data``, whose first generation takes minutes and ~4 GB of disk), the samples/s
  the DataLoader sustains over the train split without a model, and training throughput on
  that split as a trainer sees it: the reference on plain shuffled batches versus CMN on the
  trainer's length-bucketed batches.

Timings are wall-clock on whatever else the machine is doing: the load average is recorded
before and after each measurement. ``--quick`` is a smoke version (the paper profile at one
length, fewer steps; about 1.5 minutes on two cores, against about 5 for the default). The
numbers depend on the machine; nothing here is asserted by the tests except that fast and
reference compute the same function.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from .. import options
from ..data.sources import project_root
from ..precision import cpu_features, machine_description

from ..model.reference import (EQUALITY_CONFIGS, ReferenceCMN, compare_outputs, equality_report, make_batch,
                               reference_from)
from .parity import run_parity
from .seeds import time_seeds, time_stacking
from .report import markdown, splice_page
from ..atomic import write_text
from .workers import (PLANS, QUICK_MODELS, TINY_CMN, load_average, spawn, worker_ab, worker_data, worker_epoch,
                      worker_gemm, worker_quick, worker_scaling, worker_stacked, worker_step_versions, worker_train)

__all__ = ["run_bench", "main", "run_from_args", "markdown", "time_seeds", "time_stacking", "ReferenceCMN",
           "reference_from", "compare_outputs",
           "equality_report", "EQUALITY_CONFIGS", "make_batch", "PLANS", "TINY_CMN", "spawn", "load_average",
           "worker_gemm", "worker_train", "worker_ab", "worker_scaling", "worker_data", "worker_epoch", "worker_quick",
           "worker_stacked", "worker_step_versions",
           "QUICK_MODELS", "quick_profile", "notebook_times", "ratio_agreement", "write_page"]



# ======================================================================================
# The run
# ======================================================================================

def bench_precisions(precision: str = "auto") -> tuple[list[str], str]:
    """The precisions the benchmark measures for ``--precision``, and why: 'auto' adds bf16
    where the CPU has bf16 matrix units (AMX) and says so where it has none; 'bf16' measures
    both anyway (e.g. on a CPU with AVX512-BF16 dot products but no AMX); 'fp32' only fp32."""
    features = cpu_features()
    if precision == "fp32":
        return ["fp32"], "fp32 only (--precision fp32)"
    if precision == "bf16":
        return ["fp32", "bf16"], "fp32 and bf16 (--precision bf16)" + (
            "" if features["AMX-BF16"] else "; this CPU has no bf16 matrix units (AMX), so bf16 runs on "
            + ("AVX512-BF16 dot products" if features["AVX512-BF16"] else "emulation") + " here")
    if features["AMX-BF16"]:
        return ["fp32", "bf16"], "fp32 and bf16: this CPU has bf16 matrix units (AMX)"
    return ["fp32"], ("fp32 only: this CPU has no bf16 matrix units (AMX)"
                      + (", only AVX512-BF16 dot products; --precision bf16 measures it anyway"
                         if features["AVX512-BF16"] else ""))


def run_bench(out: str | Path = "reports/bench", mode: str = "default", paper_data: bool = False,
              threads: int | None = None, data_source: str = "synthetic", isolate: bool = True,
              echo: bool = True, precision: str = "auto") -> dict:
    """Run the benchmark ``mode`` ('default', 'quick' or 'tiny'), write ``bench.json`` and
    ``bench.md`` under ``out`` and return the results. ``data_source``: 'synthetic' (the
    MOSEI-like stand-in) or a path to MOSEI files; ``isolate``: one spawned process per
    measurement (needed for per-configuration peak RSS); ``precision``: see
    :func:`bench_precisions` (bf16 rows are the fast CMN in mixed precision, compared with
    the plain reference in fp32)."""
    plan = PLANS[mode]
    precisions, precision_note = bench_precisions(precision)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    say = print if echo else (lambda *a, **k: None)
    base = {"threads": threads}
    results: dict = {"meta": {
        "mode": mode, "torch": torch.__version__, "python": platform.python_version(),
        "machine": machine_description(), "cpus": os.cpu_count(),
        "threads": threads or torch.get_num_threads(), "load_start": load_average(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "batch": plan["batch"], "modalities": "LA",
        "dtype": "float32", "optimizer": "Adam lr 1e-4", "isolated_processes": isolate,
        "cpu_features": cpu_features(), "precisions": precisions, "precision_note": precision_note}}

    stages, last = {}, [time.time()]

    def stage(name):
        stages[name] = time.time() - last[0]
        last[0] = time.time()

    say("GEMM peak ...")
    results["gemm"] = spawn(worker_gemm, {**base, "n": 1024}, isolate)
    if "bf16" in precisions:
        results["gemm_bf16"] = spawn(worker_gemm, {**base, "n": 1024, "dtype": "bfloat16"}, isolate)
    stage("gemm")

    say("equality of fast and reference ...")
    results["equality"] = equality_report()
    stage("equality")

    results["training"] = []
    jobs = []
    for lengths in plan["lengths"]:
        for label, profile, overrides in plan["profiles"]:
            for kind in ("reference", "cmn"):
                jobs.append((kind, label, profile, overrides, lengths, "fp32"))
            if "bf16" in precisions:
                jobs.append(("cmn", label, profile, overrides, lengths, "bf16"))
        jobs.append(("mult", f"{plan['mult'][0]} (MulT defaults)" if plan["mult"][0] == "paper" else "tiny",
                     plan["mult"][0], plan["mult"][1], lengths, "fp32"))
    for kind, label, profile, overrides, lengths, job_precision in jobs:
        say(f"training {kind} {label} {lengths[0]}/{lengths[1]} {job_precision} ...")
        job = {**base, "kind": kind, "profile": profile, "overrides": overrides, "lengths": lengths,
               "batch": plan["batch"], "warmup": plan["warmup"], "steps": plan["steps"],
               "latency_reps": plan["latency_reps"], "precision": job_precision}
        row = spawn(worker_train, job, isolate)
        row.update(model="MulT" if kind == "mult" else "CMN",
                   impl={"cmn": "cmnlib (fast)", "reference": "plain reference", "mult": "cmnlib MulT"}[kind],
                   kind=kind, profile=label, lengths=list(lengths))
        peak = results["gemm_bf16" if job_precision == "bf16" else "gemm"]["gflops"]
        row["gemm_fraction"] = row["train_gflops"] / peak
        results["training"].append(row)
    stage("training")

    say("the quick profile's training steps ...")
    results["quick_profile"] = quick_profile(plan, base, data_source, isolate, say)
    results["notebook_times"] = notebook_times()
    stage("quick profile")

    results["speedup"] = []
    for label, profile, overrides in plan["profiles"][:plan.get("ab_profiles")]:
        for i, lengths in enumerate(plan["lengths"]):
            say(f"fast vs reference, one process, {label} {lengths[0]}/{lengths[1]} ...")
            job = {**base, "profile": profile, "overrides": overrides, "lengths": lengths, "batch": plan["batch"],
                   "warmup": 1, "steps": plan["ab_steps"],
                   "profile_steps": plan["profile_steps"] if (i == 0 and label == plan["profiles"][0][0]) else 0}
            ab = spawn(worker_ab, job, isolate)
            separate = _cmn_rows(results["training"], label, lengths)
            fast, reference = separate[("cmn", "fp32")], separate[("reference", "fp32")]
            ab.update(profile=label, lengths=list(lengths),
                      ratio_separate_processes=fast["samples_per_s"] / reference["samples_per_s"],
                      **ratio_agreement(reference["steps_s"], fast["steps_s"], ab["steps_s"]["reference"],
                                        ab["steps_s"]["fast"]))
            results["speedup"].append(ab)
    if "bf16" in precisions:  # the bf16 step against the fp32 reference, alternating in one process
        label, profile, overrides = plan["profiles"][0]
        lengths = plan["lengths"][0]
        say(f"fast bf16 vs reference fp32, one process, {label} {lengths[0]}/{lengths[1]} ...")
        job = {**base, "profile": profile, "overrides": overrides, "lengths": lengths, "batch": plan["batch"],
               "warmup": 1, "steps": plan["ab_steps"], "profile_steps": 1,  # where the bf16 step's time goes
               "fast_precision": "bf16"}
        ab = {**spawn(worker_ab, job, isolate), "profile": label, "lengths": list(lengths)}
        separate = _cmn_rows(results["training"], label, lengths)
        if ("cmn", "bf16") in separate and ("reference", "fp32") in separate:
            ab.update(ratio_agreement(separate[("reference", "fp32")]["steps_s"], separate[("cmn", "bf16")]["steps_s"],
                                      ab["steps_s"]["reference"], ab["steps_s"]["fast"]))
        results["speedup_bf16"] = [ab]
    stage("speedup")

    say("length scaling ...")
    label, profile, overrides = plan["profiles"][0]
    job = {**base, "models": [(f"CMN ({label})", "cmn", profile, overrides),
                              ("MulT", "mult", plan["mult"][0], plan["mult"][1])],
           "batch": plan["batch"], "text_length": 50 if mode != "tiny" else 8, "audio_lengths": plan["scaling"],
           "warmup": plan["scaling_steps"][0], "steps": plan["scaling_steps"][1]}
    results["scaling"] = []
    for row in spawn(worker_scaling, job, isolate)["rows"]:
        first = next(r for r in results["scaling"] + [row] if r["model"] == row["model"])["fwd_bwd_s"]
        results["scaling"].append({**row, "relative": row["fwd_bwd_s"] / first})
    stage("scaling")

    say("data ...")
    scales = ["quick"] + (["paper"] if paper_data and data_source == "synthetic" else [])
    results["data"] = [spawn(worker_data, {**base, "source": data_source, "scale": s}, isolate) for s in scales]
    stage("data")
    say("training on the data set (bucketed vs plain batches) ...")
    results["epoch"] = spawn(worker_epoch, {**base, "source": data_source, "scale": "quick", "label": label,
                                              "profile": profile, "overrides": overrides,
                                              "batch": plan["batch"], "batches": plan["epoch_batches"],
                                              "fast_plain": plan.get("epoch_fast_plain", True)}, isolate)

    stage("epoch")
    results["meta"]["stage_seconds"] = stages
    results["meta"]["load_end"] = load_average()
    results["meta"]["seconds"] = time.time() - t0
    (out / "bench.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    table = markdown(results)
    (out / "bench.md").write_text(table)
    say(table)
    say(f"written to {out / 'bench.json'} and {out / 'bench.md'}")
    return results


def _cmn_rows(training: list[dict], label: str, lengths) -> dict:
    """The separate-process CMN measurements of one profile and length pair, by (kind,
    precision): ('cmn', 'fp32'), ('reference', 'fp32'), ('cmn', 'bf16')."""
    return {(r["kind"], r.get("precision", "fp32")): r for r in training
            if r["profile"] == label and r["lengths"] == list(lengths) and r["model"] == "CMN"}


def ratio_agreement(separate_reference: list, separate_fast: list, paired_reference: list,
                    paired_fast: list) -> dict:
    """The speed-up measured two ways, each with the spread its own steps show: separate
    processes (reference over fast step time: from the fastest-against-slowest to the
    slowest-against-fastest pair of steps) and one process alternating (the range of the
    per-pair ratios). They agree when the two ranges overlap."""
    separate = [min(separate_reference) / max(separate_fast), max(separate_reference) / min(separate_fast)]
    pairs = [r / f for r, f in zip(paired_reference, paired_fast)]
    alternating = [min(pairs), max(pairs)]
    return {"ratio_separate_range": separate, "ratio_alternating_range": alternating,
            "ratios_agree": separate[0] <= alternating[1] and alternating[0] <= separate[1]}


def quick_profile(plan: dict, base: dict, source: str = "synthetic", isolate: bool = True, say=print) -> dict:
    """The quick profile's training step of every model the notebooks train, each in its
    own process with one thread (as the trainer's workers run), against a one-thread GEMM
    peak measured in the same run (:func:`cmnlib.bench.workers.worker_quick`)."""
    peak = spawn(worker_gemm, {**base, "threads": 1, "n": 1024}, isolate)["gflops"]
    rows = []
    for name, modalities in plan["quick_models"]:
        say(f"  {name} ({modalities}) ...")
        job = {**base, "threads": 1, "model": (name, modalities), "source": source, "steps": plan["quick_steps"],
               "overrides": plan.get("quick_overrides", {}).get(name, {})}
        row = spawn(worker_quick, job, isolate)
        rows.append({**row, "gemm_fraction": row["train_gflops"] / peak})
    stacked = []
    for name, modalities in plan["quick_models"]:
        if name != "cmn":  # the only model with a stacked form (cmnlib.model.stacked)
            continue
        for size in plan.get("stack_sizes", ()):
            say(f"  {name} ({modalities}), {size} seeds stacked against one at a time ...")
            job = {**base, "threads": 1, "model": (name, modalities), "source": source, "stack": size,
                   "steps": plan["stack_steps"], "overrides": plan.get("quick_overrides", {}).get(name, {})}
            stacked.append(spawn(worker_stacked, job, isolate))
    versions = []
    for name, modalities in plan["quick_models"]:
        say(f"  {name} ({modalities}), today's step against trainer version 2's ...")
        job = {**base, "threads": 1, "model": (name, modalities), "source": source,
               "steps": plan.get("version_steps", 8), "overrides": plan.get("quick_overrides", {}).get(name, {})}
        versions.append(spawn(worker_step_versions, job, isolate))
    return {"gemm_peak_1thread": peak, "rows": rows, "stacked": stacked, "step_versions": versions}


def notebook_times(manifest: str | Path = "reports/quick/manifest.json") -> dict | None:
    """Seconds per notebook of the last ``make reproduce`` (its manifest), where its time
    went (the data, the runs trained first, the notebooks; a manifest written before the
    phases were recorded has none) and how many seeds it trained rather than read from the
    cache. None without a manifest."""
    path = Path(manifest)
    if not path.is_absolute():
        path = project_root() / path
    if not path.exists():
        return None
    found = json.loads(path.read_text())
    first = found.get("runs_first") or {}
    return {"manifest": str(path), "total_seconds": found.get("total_seconds"), "git_commit": found.get("git_commit"),
            "phase_seconds": found.get("phase_seconds"), "seeds": first.get("seeds"), "trained": first.get("trained"),
            "notebooks": [{"notebook": r["notebook"], "seconds": r.get("seconds"), "status": r["status"]}
                          for r in found.get("notebooks", [])]}


def write_page(results_file: Path, page: Path) -> Path:
    """Write a bench run (``results_file``, its bench.json) into the generated part of
    ``page`` (:func:`cmnlib.bench.report.splice_page`) and copy it beside the page as
    ``bench.json``, so that the page's numbers can always be traced to the run that made
    them; each file is written whole or not at all. A missing run or a page without the
    markers is one error naming the file."""
    if not results_file.is_file():
        raise OSError(f"{results_file}: no bench run here (run `make bench` first)")
    try:
        results = json.loads(results_file.read_text())
    except ValueError as error:
        raise ValueError(f"{results_file}: not a bench.json ({error})") from None
    try:
        text = splice_page(page.read_text(), results)
    except ValueError as error:
        raise ValueError(f"{page}: {error}") from None
    write_text(page.parent / "bench.json", json.dumps(results, indent=1) + "\n")
    write_text(page, text)
    return page


def main(argv: list[str] | None = None) -> int:
    """``python -m cmnlib.bench`` (the same as ``python -m cmnlib bench``)."""
    parser = argparse.ArgumentParser(prog="cmnlib.bench", description=__doc__.split("\n\n")[0])
    options.add_bench_options(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args) -> int:
    from ..data.sources import reports_dir
    args.out = args.out or str(reports_dir() / "bench")
    if args.page:
        try:
            write_page(Path(args.out) / "bench.json", Path(args.page))
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.parity:  # the parity study alone: it trains models, the benchmark times them
        run_parity(args.out, seeds=args.parity_seeds)
        return 0
    if args.stack_timing:
        try:
            time_stacking(args.out, stack=args.stack_timing, device=args.device, precision=args.precision)
        except RuntimeError as error:  # no such device
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.seeds_timing:
        try:
            time_seeds(args.out, seeds=args.seeds_timing, device=args.device, precision=args.precision,
                       processes=args.processes)
        except RuntimeError as error:  # no such device
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    run_bench(args.out, mode="quick" if args.quick else "default", paper_data=args.paper_data,
              threads=args.threads, precision=args.precision)
    return 0

