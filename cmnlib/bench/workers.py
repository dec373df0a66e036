"""What the benchmark measures, one worker per measurement, each run in a fresh spawned
process (so that its peak RSS is its own)."""
from __future__ import annotations

import copy
import gc
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch import profiler
from torch.utils import benchmark

from ..config import DEFAULT_DATASET
from ..data import load_dataset
from ..data.loader import make_loader
from ..model import build_model, compiled, count_flops
from ..model import heads as H
from ..model.reference import DIMS, make_batch, reference_from
from ..precision import adam, autocast
from ..spec import TRAIN_PROFILES
from ..train import TRAINER_VERSION, train_step, trainer_step


# A plan says what to measure. Profiles are (label, cmnlib profile, model overrides).
TINY_CMN = dict(hidden=16, layers=1, heads=2, ff_size=24)
# the models the notebooks train at the quick profile (the rows of Tables 1-2)
QUICK_MODELS = (("cmn", "LA"), ("cmn", "LAV"), ("mult", "LAV"), ("ef_lstm", "LAV"), ("lstm_l", "L"), ("lstm_a", "A"),
                ("lstm_v", "V"))
PLANS = {
    "default": dict(batch=32, lengths=[(30, 50), (50, 50)], profiles=[("paper", "paper", {}), ("quick", "quick", {})],
                    mult=("paper", {}), warmup=2, steps=5, ab_steps=4, latency_reps=(10, 3),
                    scaling=[50, 100, 200, 500], scaling_steps=(1, 1), epoch_batches=6, profile_steps=1,
                    quick_models=QUICK_MODELS, quick_steps=12, stack_sizes=(2, 10), stack_steps=8,
                    version_steps=30),
    "quick": dict(batch=32, lengths=[(30, 50)], profiles=[("paper", "paper", {})],
                  mult=("paper", {}), warmup=1, steps=2, ab_steps=2, latency_reps=(3, 1),
                  scaling=[50, 100], scaling_steps=(1, 1), epoch_batches=2, profile_steps=0,
                  epoch_fast_plain=False, quick_models=QUICK_MODELS, quick_steps=4, stack_sizes=(4,), stack_steps=3,
                  version_steps=8),
    # for the tests: tiny models, seconds
    "tiny": dict(batch=4, lengths=[(6, 8)], profiles=[("tiny", "quick", TINY_CMN)], mult=("quick", {"layers": 1}),
                 warmup=1, steps=1, ab_steps=1, latency_reps=(1, 1), scaling=[8, 16], scaling_steps=(0, 1),
                 epoch_batches=1, profile_steps=1, quick_models=(("cmn", "LA"), ("lstm_l", "L")), quick_steps=1,
                 quick_overrides={"cmn": TINY_CMN}, stack_sizes=(2,), stack_steps=1, version_steps=2),
}


def _threads(job: dict) -> None:
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))


def load_average() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def _rss_mb() -> float | None:
    """The current resident set size (Linux), MiB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _model(kind: str, profile: str, overrides: dict, modalities: str = "LA", seed: int = 0) -> nn.Module:
    """'cmn' (the library's CMN), 'reference' (:class:`ReferenceCMN` with the weights of the
    CMN of the same seed) or 'mult' (MulT at the profile's defaults)."""
    torch.manual_seed(seed)
    if kind == "mult":
        return build_model("mult", "regression", DIMS, modalities, profile, **overrides)
    model = build_model("cmn", "regression", DIMS, modalities, profile, **overrides)
    if kind == "cmn":
        return model
    reference = reference_from(model)
    del model
    gc.collect()
    return reference


def _step(model, optimizer, features, lengths, target, precision: str = "fp32") -> None:
    with autocast(precision):  # bf16: the forward in mixed precision; the loss and Adam in float32
        output = model(features, lengths)
    loss = H.loss("regression", output.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _median_time(fn, warmup: int, reps: int) -> tuple[float, list[float]]:
    """Median seconds of one call of ``fn`` over ``reps`` calls after ``warmup`` untimed ones,
    and every call's seconds. ``torch.utils.benchmark.Timer`` times each call (one call per
    measurement: a training step is long, and its spread is part of the report), at this
    process's thread count."""
    for _ in range(warmup):
        fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    (merged,) = benchmark.Measurement.merge([timer.timeit(1) for _ in range(max(reps, 1))])
    return merged.median, list(merged.times)


# ======================================================================================
# Workers (each runs in a fresh spawned process)
# ======================================================================================

def worker_gemm(job: dict) -> dict:
    """GFLOP/s of ``torch.mm`` on n x n matrices in ``job['dtype']`` ('float32' or
    'bfloat16'; best of a few medians)."""
    _threads(job)
    n = job.get("n", 1024)
    dtype = getattr(torch, job.get("dtype", "float32"))
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    best = 0.0
    for _ in range(3):
        seconds, _ = _median_time(lambda: torch.mm(a, b, out=out), 2, job.get("reps", 10))
        best = max(best, 2 * n ** 3 / seconds / 1e9)
    return {"n": n, "dtype": str(dtype).split(".")[-1], "gflops": best, "threads": torch.get_num_threads(),
            "load": load_average()}


def worker_train(job: dict) -> dict:
    """Training throughput, peak RSS and latency of one configuration."""
    _threads(job)
    load_before = load_average()
    rss_base = _rss_mb()
    tl, al = job["lengths"]
    model = _model(job["kind"], job["profile"], job["overrides"])
    features, lengths = make_batch({"text": tl, "audio": al}, job["batch"])
    target = torch.randn(job["batch"], generator=torch.Generator().manual_seed(1))
    flops = count_flops(model, DIMS, {"text": tl, "audio": al}, ["text", "audio"])
    model.train()
    precision = job.get("precision", "fp32")
    optimizer = adam(model.parameters(), precision, lr=1e-4)  # bf16: the trainer's fused Adam
    step_s, steps = _median_time(lambda: _step(model, optimizer, features, lengths, target, precision),
                                 job["warmup"], job["steps"])
    model.eval()
    latency = {}
    with torch.inference_mode(), autocast(precision):
        for batch, reps in zip((1, job["batch"]), job["latency_reps"]):
            f1 = {m: x[:batch] for m, x in features.items()}
            l1 = {m: x[:batch] for m, x in lengths.items()}
            latency[str(batch)] = 1e3 * _median_time(lambda: model(f1, l1), 1, reps)[0]
    return {"step_s": step_s, "steps_s": steps, "samples_per_s": job["batch"] / step_s,
            "flops_per_utt": flops, "train_gflops": 3 * flops * job["batch"] / step_s / 1e9,
            "latency_ms": latency, "peak_rss_mb": _peak_rss_mb(), "rss_base_mb": rss_base, "precision": precision,
            "fused_kernels": compiled.summary(),
            "threads": torch.get_num_threads(), "load": [load_before, load_average()]}


_KINDS = {"mm": "GEMM (mm/addmm/bmm)", "addmm": "GEMM (mm/addmm/bmm)", "bmm": "GEMM (mm/addmm/bmm)",
          "mkldnn_rnn_layer": "LSTM", "mkldnn_rnn_layer_backward": "LSTM",
          "uniform_": "dropout RNG", "bernoulli_": "dropout RNG", "random_": "dropout RNG",
          "_fused_adam_": "optimizer (Adam)",
          "copy_": "copies and dtype conversions", "_to_copy": "copies and dtype conversions"}


# what torch.profiler calls the compiled kernels (cmnlib.model.compiled) and their dispatch
_COMPILED_EVENTS = ("## Call CompiledFxGraph", "Torch-Compiled Region", "TorchDynamo Cache Lookup", "Pregraph bytecode")


def _profile_step(fn) -> dict:
    """Self CPU time of one call of ``fn`` by kind of operator, in seconds."""
    with profiler.profile(activities=[profiler.ProfilerActivity.CPU]) as prof:
        fn()
    kinds: dict[str, float] = {}
    for event in prof.key_averages():
        name = event.key
        if name.startswith("Optimizer.step"):
            kind = "optimizer (Adam)"
        elif name.startswith(_COMPILED_EVENTS):
            kind = "fused kernels (torch.compile: LayerNorm)"
        elif name.startswith(("aten::", "_")) or "Backward" in name:
            short = name.split("::")[-1]
            kind = _KINDS.get(short) or ("optimizer (Adam)" if short in ("lerp_", "addcdiv_", "addcmul_", "sqrt")
                                         else "other (element-wise, copies, reductions)")
        else:
            continue
        kinds[kind] = kinds.get(kind, 0.0) + event.self_cpu_time_total / 1e6
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def worker_quick(job: dict) -> dict:
    """The training step of one model as the quick profile trains it: its real,
    length-bucketed batches of the MOSEI-like train split (batch 64), the trainer's step and
    Adam, one thread (as the trainer's workers run). Median step time, the same model at
    batch 4 (what does not shrink with the batch: per-operator cost), where the step's time
    goes by kind of operator, and the achieved fraction of a one-thread GEMM peak."""
    _threads(job)
    settings = TRAIN_PROFILES["quick"]
    bundle = _load_bundle(job["source"], "quick")
    name, modalities = job["model"]
    torch.manual_seed(0)
    model = build_model(name, "regression", bundle.feature_dims, modalities, "quick", **job.get("overrides", {}))
    optimizer = adam(model.parameters(), "fp32", settings.lr)
    model.train()

    def batches(size):
        return list(make_loader(bundle["train"], modalities, "regression", size, shuffle=True, seed=1, bucket=True))

    full, small = batches(settings.batch_size), batches(4)
    reps = job["steps"]

    def timed(group):
        group = group * -(-(2 + reps) // len(group))  # a small split: its batches again
        for batch in group[:2]:  # warm-up
            train_step(model, optimizer, "regression", batch)
        times = []
        for batch in group[2:2 + reps]:
            start = time.perf_counter()
            train_step(model, optimizer, "regression", batch)
            times.append(time.perf_counter() - start)
        return statistics.median(times), group[2:2 + reps]

    step_s, used = timed(full)
    small_s, _ = timed(small)
    profile_s = _profile_step(lambda: train_step(model, optimizer, "regression", used[0]))
    lengths = {m: round(float(sum(float(b["lengths"][m].float().mean()) for b in used) / len(used)))
               for m in used[0]["lengths"]}
    flops = count_flops(model, bundle.feature_dims, {m: max(1, t) for m, t in lengths.items()}) \
        if name != "majority" else 0
    samples = statistics.mean(int(b["target"].shape[0]) for b in used)
    per_epoch = -(-len(bundle["train"]) // settings.batch_size)
    return {"model": name, "modalities": modalities, "step_s": step_s, "batch": settings.batch_size,
            "samples_per_s": samples / step_s, "step_s_batch4": small_s, "fixed_share": small_s / step_s,
            "profile_s": profile_s, "train_gflops": 3 * flops * samples / step_s / 1e9,
            "epoch_s": per_epoch * step_s, "steps_per_epoch": per_epoch, "epochs": settings.epochs,
            "mean_lengths": lengths, "threads": torch.get_num_threads(), "load": load_average()}


def worker_stacked(job: dict) -> dict:
    """K seeds of one model trained as one stacked computation against the same K seeds one
    after another, in ONE process, steps alternating (stacked step, then the K separate
    steps on the same batches), each seed on its own length-bucketed batches of the
    MOSEI-like quick train split (the trainer's shape policy: each stacked batch padded to
    the most rows and steps among the K). ``job``: model, stack (K), steps; optionally
    profile (default quick: its sizes and batch), device (cpu), precision (fp32), threads.
    Median over steps of seconds per seed-step each way; their ratio is the throughput
    ratio in seeds per minute."""
    from ..model.stacked import stack_models
    from ..train_stacked import stacked_step
    _threads(job)
    profile, device = job.get("profile", "quick"), job.get("device", "cpu")
    precision = job.get("precision", "fp32")
    settings = TRAIN_PROFILES[profile]
    bundle = _load_bundle(job["source"], "quick")
    name, modalities = job["model"]
    seeds, reps = job["stack"], job["steps"]
    overrides = job.get("overrides", {})

    def models():
        built = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            built.append(build_model(name, "regression", bundle.feature_dims, modalities, profile,
                                     **overrides).to(device).train())
        return built

    def synchronize():
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    separate = models()
    generators = [torch.Generator(device=device).manual_seed(seed) for seed in range(seeds)]
    stacked, extents = stack_models(models(), generators)
    stacked_adam = adam(stacked.parameters(), precision, settings.lr, device=device)
    separate_adams = [adam(m.parameters(), precision, settings.lr, device=device) for m in separate]
    batches = [list(make_loader(bundle["train"], modalities, "regression", settings.batch_size, shuffle=True,
                                seed=seed * 100_003 + 1, bucket=True)) for seed in range(seeds)]
    steps = min(len(b) for b in batches)
    times = {"stacked": [], "separate": []}
    for i in range(1 + reps):  # step 0 warms up
        group = [b[i % steps] for b in batches]
        synchronize()
        start = time.perf_counter()
        stacked_step(stacked, extents, stacked_adam, "regression", group, device, precision)
        synchronize()
        stacked_s = time.perf_counter() - start
        start = time.perf_counter()
        for model, optimizer, batch in zip(separate, separate_adams, group):
            train_step(model, optimizer, "regression", batch, device, precision=precision)
        synchronize()
        separate_s = time.perf_counter() - start
        if i:
            times["stacked"].append(stacked_s / seeds)
            times["separate"].append(separate_s / seeds)
    per_seed = {k: statistics.median(v) for k, v in times.items()}
    ratios = sorted(a / b for a, b in zip(times["separate"], times["stacked"]))
    return {"model": name, "modalities": modalities, "stack": seeds, "steps": reps, "profile": profile,
            "device": str(device), "precision": precision, "batch": settings.batch_size,
            "seed_step_s_separate": per_seed["separate"], "seed_step_s_stacked": per_seed["stacked"],
            "speedup": per_seed["separate"] / per_seed["stacked"], "speedup_range": [ratios[0], ratios[-1]],
            "threads": torch.get_num_threads(), "load": load_average()}


def worker_step_versions(job: dict) -> dict:
    """Today's float32 training step (trainer version 4: fused Adam, dropout masks from
    16-bit draws in every model) against trainer version 2's (Adam's per-tensor loop,
    ``torch.rand`` masks, MulT's official ``F.dropout``), in ONE process, steps
    alternating: the same model and seed built twice, each with its own Adam, stepping the
    same length-bucketed batches of the MOSEI-like quick train split, one thread. Median
    seconds per step each way; their ratio is the ratio of seeds per minute of the two
    trainers (above 1: today's is faster)."""
    _threads(job)
    settings = TRAIN_PROFILES["quick"]
    bundle = _load_bundle(job["source"], "quick")
    name, modalities = job["model"]
    overrides = job.get("overrides", {})
    runs = {}
    for version in (2, TRAINER_VERSION):
        with trainer_step(version):
            torch.manual_seed(0)
            model = build_model(name, "regression", bundle.feature_dims, modalities, "quick", **overrides).train()
            runs[version] = (model, adam(model.parameters(), "fp32", settings.lr))
    batches = list(make_loader(bundle["train"], modalities, "regression", settings.batch_size, shuffle=True,
                               seed=1, bucket=True))
    batches = batches * -(-(1 + job["steps"]) // len(batches))
    times = {version: [] for version in runs}
    for i, batch in enumerate(batches[:1 + job["steps"]]):  # step 0 warms up
        for version, (model, optimizer) in runs.items():
            with trainer_step(version):
                start = time.perf_counter()
                train_step(model, optimizer, "regression", batch)
                if i:
                    times[version].append(time.perf_counter() - start)
    earlier, today = times[2], times[TRAINER_VERSION]
    ratios = sorted(a / b for a, b in zip(earlier, today))
    return {"model": name, "modalities": modalities, "steps": job["steps"], "batch": settings.batch_size,
            "versions": [2, TRAINER_VERSION], "step_s_earlier": statistics.median(earlier),
            "step_s_today": statistics.median(today), "speedup": statistics.median(earlier) / statistics.median(today),
            "speedup_range": [ratios[0], ratios[-1]], "speedup_quartiles": statistics.quantiles(ratios, n=4)
            if len(ratios) > 1 else [ratios[0]] * 3, "threads": torch.get_num_threads(), "load": load_average()}


def worker_ab(job: dict) -> dict:
    """Fast CMN and reference with the same weights in ONE process: eval outputs compared,
    then training steps alternated (each with its own Adam), and one step of each profiled."""
    _threads(job)
    tl, al = job["lengths"]
    torch.manual_seed(0)
    fast = build_model("cmn", "regression", DIMS, "LA", job["profile"], **job["overrides"])
    reference = reference_from(fast)
    features, lengths = make_batch({"text": tl, "audio": al}, job["batch"])
    target = torch.randn(job["batch"], generator=torch.Generator().manual_seed(1))
    fast.eval(), reference.eval()
    with torch.no_grad():
        diff = float((fast(features, lengths) - reference(features, lengths)).abs().max())
    fast.train(), reference.train()
    runs = {"fast": fast, "reference": reference}
    # the fast CMN in job['fast_precision'] (fp32 or bf16, with that precision's Adam); the
    # reference always in fp32 with the plain Adam
    precisions = {"fast": job.get("fast_precision", "fp32"), "reference": "fp32"}
    optimizers = {k: adam(m.parameters(), precisions[k], lr=1e-4) for k, m in runs.items()}

    def step(k):
        _step(runs[k], optimizers[k], features, lengths, target, precisions[k])

    times = {k: [] for k in runs}
    for k in runs:
        for _ in range(max(job["warmup"], 1)):
            step(k)
    for _ in range(job["steps"]):
        for k in runs:
            start = time.perf_counter()
            step(k)
            times[k].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {"max_abs_diff_eval": diff, "step_s": median, "steps_s": times, "fast_precision": precisions["fast"],
              "ratio": median["reference"] / median["fast"], "load": load_average(),
              "fused_kernels": compiled.summary()}
    if job.get("profile_steps"):
        result["profile_s"] = {k: _profile_step(lambda k=k: step(k)) for k in runs}
    return result


def worker_scaling(job: dict) -> dict:
    """Forward + backward seconds per batch at each audio length (text fixed), per model."""
    _threads(job)
    rows = []
    for name, kind, profile, overrides in job["models"]:
        model = _model(kind, profile, overrides).train()
        for audio in job["audio_lengths"]:
            features, lengths = make_batch({"text": job["text_length"], "audio": audio}, job["batch"])
            target = torch.randn(job["batch"])

            def fwd_bwd(model=model, features=features, lengths=lengths, target=target):  # this loop's values
                model.zero_grad(set_to_none=True)
                H.loss("regression", model(features, lengths), target).backward()

            seconds, _ = _median_time(fwd_bwd, job["warmup"], job["steps"])
            rows.append({"model": name, "text_length": job["text_length"], "audio_length": audio,
                         "fwd_bwd_s": seconds})
        del model
        gc.collect()
    return {"rows": rows, "load": load_average()}


def _load_bundle(source: str, scale: str):
    return load_dataset(DEFAULT_DATASET, source, scale=scale)


def worker_data(job: dict) -> dict:
    """load_dataset twice (the second call reads the HDF5 cache) and the DataLoader alone."""
    _threads(job)
    start = time.perf_counter()
    _load_bundle(job["source"], job["scale"])
    first = time.perf_counter() - start
    start = time.perf_counter()
    bundle = _load_bundle(job["source"], job["scale"])
    second = time.perf_counter() - start
    train = bundle["train"]
    loader = {}
    for bucket in (False, True):
        def one_pass():
            for _ in make_loader(train, "LA", "regression", 32, shuffle=True, seed=0, bucket=bucket):
                pass
        loader["bucketed" if bucket else "plain"] = len(train) / _median_time(one_pass, 1, 3)[0]
    cache = bundle.meta.get("cache_path")
    return {"scale": job["scale"], "source": bundle.source_label, "first_call_s": first, "cache_load_s": second,
            "cache_path": cache, "cache_mb": Path(cache).stat().st_size / 2**20 if cache else None,
            "sizes": {s: len(bundle[s]) for s in ("train", "valid", "test")},
            "loader_samples_per_s": loader, "load": load_average()}


def worker_epoch(job: dict) -> dict:
    """Training on the data set's train split as a trainer does it: the reference on plain
    shuffled batches (each trimmed to its longest row), CMN on the trainer's length-bucketed
    batches, and CMN on the plain batches too (to separate the model from the batching).
    A batch's cost follows its padded length, so ``batches`` batches of each epoch
    are timed, taken at evenly spaced quantiles of padded length (a stratified sample of the
    epoch), after one warm-up batch; the steps of the two alternate.
    samples/s = samples / seconds over the timed batches."""
    _threads(job)
    bundle = _load_bundle(job["source"], job["scale"])
    train = bundle["train"]
    torch.manual_seed(0)
    fast = build_model("cmn", "regression", bundle.feature_dims, "LA", job["profile"], **job["overrides"])
    reference = reference_from(fast)
    runs = {"fast": (fast, True), "fast_plain": (copy.deepcopy(fast), False), "reference": (reference, False)}
    if not job.get("fast_plain", True):
        del runs["fast_plain"]

    def padded(b):
        return max(x.shape[1] for x in b["features"].values())

    chosen, mean_padded, warmup = {}, {}, {}
    for k, (_, bucket) in runs.items():
        batches = sorted(make_loader(train, "LA", "regression", job["batch"], shuffle=True, seed=1, bucket=bucket),
                         key=padded)
        mean_padded[k] = statistics.mean(padded(b) for b in batches)
        n = min(job["batches"], len(batches))
        chosen[k] = [batches[min(int((i + 0.5) * len(batches) / n), len(batches) - 1)] for i in range(n)]
        warmup[k] = batches[len(batches) // 2]
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-4) for k, (m, _) in runs.items()}
    for k, (m, _) in runs.items():
        b = warmup[k]
        _step(m.train(), optimizers[k], b["features"], b["lengths"], b["target"])
    seconds = {k: 0.0 for k in runs}
    samples = {k: 0 for k in runs}
    for i in range(max(len(c) for c in chosen.values())):
        for k, (m, _) in runs.items():
            if i < len(chosen[k]):
                b = chosen[k][i]
                start = time.perf_counter()
                _step(m, optimizers[k], b["features"], b["lengths"], b["target"])
                seconds[k] += time.perf_counter() - start
                samples[k] += len(b["target"])
    rate = {k: samples[k] / seconds[k] if seconds[k] else None for k in runs}
    return {"scale": job["scale"], "source": bundle.source_label, "profile": job["label"], "batch": job["batch"],
            "batches_timed": {k: len(c) for k, c in chosen.items()},
            "mean_padded_length_epoch": mean_padded,
            "mean_padded_length_timed": {k: statistics.mean(padded(b) for b in c) for k, c in chosen.items()},
            "samples_per_s": rate,
            "ratio": rate["fast"] / rate["reference"] if rate["fast"] and rate["reference"] else None,
            "load": load_average()}


def spawn(worker, job: dict, isolate: bool = True) -> dict:
    """Run ``worker(job)`` in a fresh 'spawn' process (so ru_maxrss is its own), or here."""
    if not isolate:
        return worker(job)
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(worker, (job,))
