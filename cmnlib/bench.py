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
length, fewer steps; about 1.5 minutes on two cores, against about 5 for the default). The numbers depend on the machine; nothing here is asserted by the tests except
that fast and reference compute the same function.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch import profiler

from . import options
from .config import DATASETS
from .data import load_dataset
from .data.loader import make_loader
from .model import build_model, count_flops
from .model import heads as H
from .model.attention import MASK_FILL
from .model.cmn import CMN, CMNConfig

DIMS = DATASETS["mosei"].feature_dims  # MOSEI-like feature sizes

# ======================================================================================
# The plain reference CMN
# ======================================================================================

class RefLayerNorm(nn.Module):
    """MCAN's LayerNorm, written out: ``a * (x - mean) / (std + eps) + b``, unbiased std."""

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.a_2 = nn.Parameter(torch.ones(size))
        self.b_2 = nn.Parameter(torch.zeros(size))

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


class RefFC(nn.Module):
    def __init__(self, in_size, out_size, dropout):
        super().__init__()
        self.linear = nn.Linear(in_size, out_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(torch.relu(self.linear(x)))


class RefMLP(nn.Module):
    def __init__(self, in_size, mid_size, out_size, dropout):
        super().__init__()
        self.fc = RefFC(in_size, mid_size, dropout)
        self.linear = nn.Linear(mid_size, out_size)

    def forward(self, x):
        return self.linear(self.fc(x))


class RefFFN(nn.Module):
    def __init__(self, hidden, ff_size, dropout):
        super().__init__()
        self.mlp = RefMLP(hidden, ff_size, hidden, dropout)

    def forward(self, x):
        return self.mlp(x)


class RefMHAtt(nn.Module):
    """MCAN's ``MHAtt``: separate Q/K/V projections, explicit ``softmax(QK^T/sqrt(d)) V``
    over (batch, head, step, width) tensors, scores of padding keys set to -1e9."""

    def __init__(self, hidden, heads, dropout):
        super().__init__()
        self.hidden, self.heads = hidden, heads
        self.linear_v = nn.Linear(hidden, hidden)
        self.linear_k = nn.Linear(hidden, hidden)
        self.linear_q = nn.Linear(hidden, hidden)
        self.linear_merge = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, v, k, q, mask):
        b = q.size(0)
        d_head = self.hidden // self.heads
        v = self.linear_v(v).view(b, -1, self.heads, d_head).transpose(1, 2)
        k = self.linear_k(k).view(b, -1, self.heads, d_head).transpose(1, 2)
        q = self.linear_q(q).view(b, -1, self.heads, d_head).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_head)
        scores = scores.masked_fill(mask, MASK_FILL)  # mask: (B, 1, 1, T_k), True = padding
        att = self.dropout(torch.softmax(scores, dim=-1))
        out = torch.matmul(att, v).transpose(1, 2).contiguous().view(b, -1, self.hidden)
        return self.linear_merge(out)


class RefSA(nn.Module):
    def __init__(self, hidden, heads, ff_size, dropout):
        super().__init__()
        self.mhatt = RefMHAtt(hidden, heads, dropout)
        self.ffn = RefFFN(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), RefLayerNorm(hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), RefLayerNorm(hidden)

    def forward(self, x, x_mask):
        x = self.norm1(x + self.dropout1(self.mhatt(x, x, x, x_mask)))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class RefSGA(nn.Module):
    def __init__(self, hidden, heads, ff_size, dropout):
        super().__init__()
        self.mhatt1 = RefMHAtt(hidden, heads, dropout)
        self.mhatt2 = RefMHAtt(hidden, heads, dropout)
        self.ffn = RefFFN(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), RefLayerNorm(hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), RefLayerNorm(hidden)
        self.dropout3, self.norm3 = nn.Dropout(dropout), RefLayerNorm(hidden)

    def forward(self, x, y, x_mask, y_mask):
        x = self.norm1(x + self.dropout1(self.mhatt1(x, x, x, x_mask)))
        x = self.norm2(x + self.dropout2(self.mhatt2(y, y, x, y_mask)))
        return self.norm3(x + self.dropout3(self.ffn(x)))


class RefAttFlat(nn.Module):
    def __init__(self, hidden, mid_size, out_size, glimpses, dropout):
        super().__init__()
        self.glimpses = glimpses
        self.mlp = RefMLP(hidden, mid_size, glimpses, dropout)
        self.linear_merge = nn.Linear(hidden * glimpses, out_size)

    def forward(self, x, x_mask):
        att = self.mlp(x)
        att = att.masked_fill(x_mask.squeeze(1).squeeze(1).unsqueeze(2), MASK_FILL)
        att = torch.softmax(att, dim=1)
        pooled = [torch.sum(att[:, :, i:i + 1] * x, dim=1) for i in range(self.glimpses)]
        return self.linear_merge(torch.cat(pooled, dim=1))


class RefBackbone(nn.Module):
    def __init__(self, config: CMNConfig):
        super().__init__()
        self.config = config
        names = config.modality_names
        self.guide = config.guide if config.guide in names else names[0]
        self.others = [m for m in names if m != self.guide]
        unit = (config.hidden, config.heads, config.ff_size, config.dropout)
        if config.mua == "symmetric" and self.others:
            self.encoder = None
            self.blocks = nn.ModuleDict({m: nn.ModuleList(RefSGA(*unit) for _ in range(config.layers))
                                         for m in names})
        else:
            self.encoder = nn.ModuleList(RefSA(*unit) for _ in range(config.layers))
            self.blocks = nn.ModuleDict({m: nn.ModuleList(RefSGA(*unit) for _ in range(config.layers))
                                         for m in self.others})

    def forward(self, seqs, masks):
        seqs = dict(seqs)
        if self.encoder is None:
            for i in range(self.config.layers):
                new = {}
                for m in seqs:
                    others = [o for o in seqs if o != m]
                    y = torch.cat([seqs[o] for o in others], dim=1)
                    y_mask = torch.cat([masks[o] for o in others], dim=-1)
                    new[m] = self.blocks[m][i](seqs[m], y, masks[m], y_mask)
                seqs = new
            return seqs
        x, guide_layers = seqs[self.guide], []
        for layer in self.encoder:
            x = layer(x, masks[self.guide])
            guide_layers.append(x)
        seqs[self.guide] = x
        for m in self.others:
            y = seqs[m]
            for i, layer in enumerate(self.blocks[m]):
                y = layer(y, guide_layers[i] if self.config.mua == "stacked" else x, masks[m], masks[self.guide])
            seqs[m] = y
        return seqs


class ReferenceCMN(nn.Module):
    """CMN written plainly, MCAN-style: the benchmark's baseline for speed and for outputs.

    Same parameter names as :class:`cmnlib.model.cmn.CMN`, so ``load_state_dict`` copies a
    CMN's weights by name (strict). No fused kernels: per-head explicit attention with
    ``masked_fill(-1e9)`` and softmax, the LayerNorm formula written out, ``nn.LSTM`` over
    the padded sequences, fp32. Supports the MCAN LayerNorm only (the default).
    """

    def __init__(self, config: CMNConfig):
        super().__init__()
        if config.layer_norm != "mcan":
            raise ValueError("the reference implements the MCAN LayerNorm only")
        self.config = config
        names = config.modality_names
        flat_mid = config.flat_mid or config.ff_size
        flat_out = config.flat_out or 2 * config.hidden
        self.lstm = nn.ModuleDict({m: nn.LSTM(config.input_dims[m], config.hidden, batch_first=True)
                                   for m in names})
        self.backbone = RefBackbone(config)
        self.attflat = nn.ModuleDict({m: RefAttFlat(config.hidden, flat_mid, flat_out, config.glimpses,
                                                    config.dropout) for m in names})
        self.proj_norm = RefLayerNorm(flat_out)
        self.proj_drop = nn.Dropout(config.output_dropout)
        self.proj = nn.Linear(flat_out, H.output_size(config.head))

    def forward(self, features: dict, lengths: dict):
        names = self.config.modality_names
        masks = {}
        for m in names:
            steps = torch.arange(features[m].shape[1], device=lengths[m].device)
            masks[m] = (steps[None, :] >= lengths[m][:, None]).unsqueeze(1).unsqueeze(2)  # (B, 1, 1, T)
        seqs = {m: self.lstm[m](features[m])[0] for m in names}
        seqs = self.backbone(seqs, masks)
        fused = sum(self.attflat[m](seqs[m], masks[m]) for m in names)
        return H.shape_output(self.config.head, self.proj(self.proj_drop(self.proj_norm(fused))))


def reference_from(model: CMN) -> ReferenceCMN:
    """A :class:`ReferenceCMN` with ``model``'s config and a copy of its weights (by name, strict)."""
    reference = ReferenceCMN(model.config)
    reference.load_state_dict(model.state_dict(), strict=True)
    return reference.to(next(model.parameters()).device).train(model.training)


# ======================================================================================
# Inputs and plans
# ======================================================================================

def make_batch(lengths: dict, batch: int, input_dims: dict = DIMS, seed: int = 0):
    """Right-padded random features (zeros at padding, as the loader gives) and true lengths
    drawn in [T/2, T] with the first row full, for each modality in ``lengths`` {name: T}."""
    g = torch.Generator().manual_seed(seed)
    features, true_lengths = {}, {}
    for m, t in lengths.items():
        length = torch.randint(max(1, t // 2), t + 1, (batch,), generator=g)
        length[0] = t
        x = torch.randn(batch, t, input_dims[m], generator=g)
        features[m] = x * (torch.arange(t)[None, :, None] < length[:, None, None])
        true_lengths[m] = length
    return features, true_lengths


# A plan says what to measure. Profiles are (label, cmnlib profile, model overrides).
TINY_CMN = dict(hidden=16, layers=1, heads=2, ff_size=24)
PLANS = {
    "default": dict(batch=32, lengths=[(30, 50), (50, 50)], profiles=[("paper", "paper", {}), ("quick", "quick", {})],
                    mult=("paper", {}), warmup=2, steps=5, ab_steps=4, latency_reps=(10, 3),
                    scaling=[50, 100, 200, 500], scaling_steps=(1, 1), epoch_batches=6, profile_steps=1),
    "quick": dict(batch=32, lengths=[(30, 50)], profiles=[("paper", "paper", {})],
                  mult=("paper", {}), warmup=1, steps=2, ab_steps=2, latency_reps=(3, 1),
                  scaling=[50, 100], scaling_steps=(1, 1), epoch_batches=2, profile_steps=0,
                  epoch_fast_plain=False),
    # for the tests: tiny models, seconds
    "tiny": dict(batch=4, lengths=[(6, 8)], profiles=[("tiny", "quick", TINY_CMN)], mult=("quick", {"layers": 1}),
                 warmup=1, steps=1, ab_steps=1, latency_reps=(1, 1), scaling=[8, 16], scaling_steps=(0, 1),
                 epoch_batches=1, profile_steps=1),
}


def _threads(job: dict) -> None:
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))


def _load() -> list[float]:
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


def _step(model, optimizer, features, lengths, target) -> None:
    loss = H.loss("regression", model(features, lengths), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _median_time(fn, warmup: int, reps: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(reps, 1)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


# ======================================================================================
# Workers (each runs in a fresh spawned process)
# ======================================================================================

def _worker_gemm(job: dict) -> dict:
    """GFLOP/s of ``torch.mm`` on n x n fp32 matrices (best of a few medians)."""
    _threads(job)
    n = job.get("n", 1024)
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    best = 0.0
    for _ in range(3):
        seconds, _ = _median_time(lambda: torch.mm(a, b, out=out), 2, job.get("reps", 10))
        best = max(best, 2 * n ** 3 / seconds / 1e9)
    return {"n": n, "gflops": best, "threads": torch.get_num_threads(), "load": _load()}


def _worker_train(job: dict) -> dict:
    """Training throughput, peak RSS and latency of one configuration."""
    _threads(job)
    load_before = _load()
    rss_base = _rss_mb()
    tl, al = job["lengths"]
    model = _model(job["kind"], job["profile"], job["overrides"])
    features, lengths = make_batch({"text": tl, "audio": al}, job["batch"])
    target = torch.randn(job["batch"], generator=torch.Generator().manual_seed(1))
    flops = count_flops(model, DIMS, {"text": tl, "audio": al}, ["text", "audio"])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    step_s, steps = _median_time(lambda: _step(model, optimizer, features, lengths, target),
                                 job["warmup"], job["steps"])
    model.eval()
    latency = {}
    with torch.inference_mode():
        for batch, reps in zip((1, job["batch"]), job["latency_reps"]):
            f1 = {m: x[:batch] for m, x in features.items()}
            l1 = {m: x[:batch] for m, x in lengths.items()}
            latency[str(batch)] = 1e3 * _median_time(lambda: model(f1, l1), 1, reps)[0]
    return {"step_s": step_s, "steps_s": steps, "samples_per_s": job["batch"] / step_s,
            "flops_per_utt": flops, "train_gflops": 3 * flops * job["batch"] / step_s / 1e9,
            "latency_ms": latency, "peak_rss_mb": _peak_rss_mb(), "rss_base_mb": rss_base,
            "threads": torch.get_num_threads(), "load": [load_before, _load()]}


_KINDS = {"mm": "GEMM (mm/addmm/bmm)", "addmm": "GEMM (mm/addmm/bmm)", "bmm": "GEMM (mm/addmm/bmm)",
          "mkldnn_rnn_layer": "LSTM", "mkldnn_rnn_layer_backward": "LSTM",
          "uniform_": "dropout RNG", "bernoulli_": "dropout RNG"}


def _profile_step(fn) -> dict:
    """Self CPU time of one call of ``fn`` by kind of operator, in seconds."""
    with profiler.profile(activities=[profiler.ProfilerActivity.CPU]) as prof:
        fn()
    kinds: dict[str, float] = {}
    for event in prof.key_averages():
        name = event.key
        if name.startswith("Optimizer.step"):
            kind = "optimizer (Adam)"
        elif name.startswith(("aten::", "_")) or "Backward" in name:
            short = name.split("::")[-1]
            kind = _KINDS.get(short) or ("optimizer (Adam)" if short in ("lerp_", "addcdiv_", "addcmul_", "sqrt")
                                         else "other (element-wise, copies, reductions)")
        else:
            continue
        kinds[kind] = kinds.get(kind, 0.0) + event.self_cpu_time_total / 1e6
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def _worker_ab(job: dict) -> dict:
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
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=1e-4) for k, m in runs.items()}
    times = {k: [] for k in runs}
    for k, m in runs.items():
        for _ in range(max(job["warmup"], 1)):
            _step(m, optimizers[k], features, lengths, target)
    for _ in range(job["steps"]):
        for k, m in runs.items():
            start = time.perf_counter()
            _step(m, optimizers[k], features, lengths, target)
            times[k].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {"max_abs_diff_eval": diff, "step_s": median, "steps_s": times,
              "ratio": median["reference"] / median["fast"], "load": _load()}
    if job.get("profile_steps"):
        result["profile_s"] = {k: _profile_step(lambda m=m, k=k: _step(m, optimizers[k], features, lengths, target))
                               for k, m in runs.items()}
    return result


def _worker_scaling(job: dict) -> dict:
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
    return {"rows": rows, "load": _load()}


def _load_bundle(source: str, scale: str):
    return load_dataset("mosei", source, scale=scale)


def _worker_data(job: dict) -> dict:
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
            "loader_samples_per_s": loader, "load": _load()}


def _worker_epoch(job: dict) -> dict:
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
            "load": _load()}


def _spawn(worker, job: dict, isolate: bool = True) -> dict:
    """Run ``worker(job)`` in a fresh 'spawn' process (so ru_maxrss is its own), or here."""
    if not isolate:
        return worker(job)
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(worker, (job,))


# ======================================================================================
# Equality of fast and reference
# ======================================================================================

EQUALITY_CONFIGS = [
    dict(modalities="LA"),
    dict(modalities="LAV", mua="stacked", heads=2),
    dict(modalities="LAV", mua="symmetric", layers=1),
    dict(modalities="A", head="4class"),
    dict(modalities="LV", head="binary4", glimpses=2, pack_lstm=True),
]


def compare_outputs(config: CMNConfig, batch: int = 5, max_len: int = 9, seed: int = 0) -> float:
    """Max |CMN - ReferenceCMN| over the outputs (eval mode) of one padded batch, same weights."""
    torch.manual_seed(seed)
    model = CMN(config).eval()
    reference = reference_from(model).eval()
    names = config.modality_names
    features, lengths = make_batch({m: max_len + i for i, m in enumerate(names)}, batch,
                                   config.input_dims, seed)
    with torch.no_grad():
        return float((model(features, lengths) - reference(features, lengths)).abs().max())


def equality_report() -> list[dict]:
    """:func:`compare_outputs` on :data:`EQUALITY_CONFIGS` (small models, with padding)."""
    rows = []
    for overrides in EQUALITY_CONFIGS:
        kw = dict(input_dims={"text": 12, "audio": 7, "vision": 5}, hidden=16, layers=2, heads=4, ff_size=24,
                  dropout=0.1, output_dropout=0.3, head="regression")
        kw.update(overrides)
        rows.append({"config": overrides, "max_abs_diff": compare_outputs(CMNConfig(**kw))})
    return rows


# ======================================================================================
# The run
# ======================================================================================

def run_bench(out: str | Path = "reports/bench", mode: str = "default", paper_data: bool = False,
              threads: int | None = None, data_source: str = "synthetic", isolate: bool = True,
              echo: bool = True) -> dict:
    """Run the benchmark ``mode`` ('default', 'quick' or 'tiny'), write ``bench.json`` and
    ``bench.md`` under ``out`` and return the results. ``data_source``: 'synthetic' (the
    MOSEI-like stand-in) or a path to MOSEI files; ``isolate``: one spawned process per
    measurement (needed for per-configuration peak RSS)."""
    plan = PLANS[mode]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    say = print if echo else (lambda *a, **k: None)
    base = {"threads": threads}
    results: dict = {"meta": {
        "mode": mode, "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "threads": threads or torch.get_num_threads(), "load_start": _load(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "batch": plan["batch"], "modalities": "LA",
        "dtype": "float32", "optimizer": "Adam lr 1e-4", "isolated_processes": isolate}}

    stages, last = {}, [time.time()]

    def stage(name):
        stages[name] = time.time() - last[0]
        last[0] = time.time()

    say("GEMM peak ...")
    results["gemm"] = _spawn(_worker_gemm, {**base, "n": 1024}, isolate)
    stage("gemm")

    say("equality of fast and reference ...")
    results["equality"] = equality_report()
    stage("equality")

    results["training"] = []
    jobs = []
    for lengths in plan["lengths"]:
        for label, profile, overrides in plan["profiles"]:
            for kind in ("reference", "cmn"):
                jobs.append((kind, label, profile, overrides, lengths))
        jobs.append(("mult", f"{plan['mult'][0]} (MulT defaults)" if plan["mult"][0] == "paper" else "tiny",
                     plan["mult"][0], plan["mult"][1], lengths))
    for kind, label, profile, overrides, lengths in jobs:
        say(f"training {kind} {label} {lengths[0]}/{lengths[1]} ...")
        job = {**base, "kind": kind, "profile": profile, "overrides": overrides, "lengths": lengths,
               "batch": plan["batch"], "warmup": plan["warmup"], "steps": plan["steps"],
               "latency_reps": plan["latency_reps"]}
        row = _spawn(_worker_train, job, isolate)
        row.update(model="MulT" if kind == "mult" else "CMN",
                   impl={"cmn": "cmnlib (fast)", "reference": "plain reference", "mult": "cmnlib MulT"}[kind],
                   kind=kind, profile=label, lengths=list(lengths))
        row["gemm_fraction"] = row["train_gflops"] / results["gemm"]["gflops"]
        results["training"].append(row)
    stage("training")

    results["speedup"] = []
    for label, profile, overrides in plan["profiles"][:plan.get("ab_profiles")]:
        for i, lengths in enumerate(plan["lengths"]):
            say(f"fast vs reference, one process, {label} {lengths[0]}/{lengths[1]} ...")
            job = {**base, "profile": profile, "overrides": overrides, "lengths": lengths, "batch": plan["batch"],
                   "warmup": 1, "steps": plan["ab_steps"],
                   "profile_steps": plan["profile_steps"] if (i == 0 and label == plan["profiles"][0][0]) else 0}
            ab = _spawn(_worker_ab, job, isolate)
            sep = {r["kind"]: r["samples_per_s"] for r in results["training"]
                   if r["profile"] == label and r["lengths"] == list(lengths) and r["model"] == "CMN"}
            ab.update(profile=label, lengths=list(lengths),
                      ratio_separate_processes=sep["cmn"] / sep["reference"])
            results["speedup"].append(ab)
    stage("speedup")

    say("length scaling ...")
    label, profile, overrides = plan["profiles"][0]
    job = {**base, "models": [(f"CMN ({label})", "cmn", profile, overrides),
                              ("MulT", "mult", plan["mult"][0], plan["mult"][1])],
           "batch": plan["batch"], "text_length": 50 if mode != "tiny" else 8, "audio_lengths": plan["scaling"],
           "warmup": plan["scaling_steps"][0], "steps": plan["scaling_steps"][1]}
    results["scaling"] = []
    for row in _spawn(_worker_scaling, job, isolate)["rows"]:
        first = next(r for r in results["scaling"] + [row] if r["model"] == row["model"])["fwd_bwd_s"]
        results["scaling"].append({**row, "relative": row["fwd_bwd_s"] / first})
    stage("scaling")

    say("data ...")
    scales = ["quick"] + (["paper"] if paper_data and data_source == "synthetic" else [])
    results["data"] = [_spawn(_worker_data, {**base, "source": data_source, "scale": s}, isolate) for s in scales]
    stage("data")
    say("training on the data set (bucketed vs plain batches) ...")
    results["epoch"] = _spawn(_worker_epoch, {**base, "source": data_source, "scale": "quick", "label": label,
                                              "profile": profile, "overrides": overrides,
                                              "batch": plan["batch"], "batches": plan["epoch_batches"],
                                              "fast_plain": plan.get("epoch_fast_plain", True)}, isolate)

    stage("epoch")
    results["meta"]["stage_seconds"] = stages
    results["meta"]["load_end"] = _load()
    results["meta"]["seconds"] = time.time() - t0
    (out / "bench.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    table = markdown(results)
    (out / "bench.md").write_text(table)
    say(table)
    say(f"written to {out / 'bench.json'} and {out / 'bench.md'}")
    return results


# ======================================================================================
# Markdown
# ======================================================================================

def _f(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown(results: dict) -> str:
    """The results as Markdown tables."""
    meta, gemm = results["meta"], results["gemm"]
    lines = [f"# cmnlib bench ({meta['mode']})", "",
             f"torch {meta['torch']}, {meta['cpus']} CPUs, {meta['threads']} torch threads, {meta['dtype']}, "
             f"batch {meta['batch']}, modalities {meta['modalities']}, {meta['optimizer']}; "
             f"load average {meta['load_start']} at the start, {meta.get('load_end')} at the end; "
             f"{_f(meta.get('seconds'), 0)} s in all.", "",
             f"GEMM peak (torch.mm {gemm['n']}x{gemm['n']} fp32): **{_f(gemm['gflops'])} GFLOP/s**.", "",
             "## Training throughput, peak RSS, latency", "",
             "Each row in its own process (peak RSS = ru_maxrss of that process, torch included). "
             "Training step = forward, L1 loss, backward, Adam; median step. Latency: eval, no grad, median.", "",
             "| model | implementation | profile | text/audio length | samples/s | step ms | peak RSS MiB "
             "| latency b1 ms | latency b32 ms | fwd GFLOP/utt | train GFLOP/s | of GEMM peak |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    batch = str(meta["batch"])
    for r in results["training"]:
        lines.append(f"| {r['model']} | {r['impl']} | {r['profile']} | {r['lengths'][0]}/{r['lengths'][1]} | "
                     f"{_f(r['samples_per_s'])} | {_f(1e3 * r['step_s'], 0)} | {_f(r['peak_rss_mb'], 0)} | "
                     f"{_f(r['latency_ms']['1'])} | {_f(r['latency_ms'][batch])} | {_f(r['flops_per_utt'] / 1e9, 3)} | "
                     f"{_f(r['train_gflops'])} | {100 * r['gemm_fraction']:.0f}% |")
    lines += ["", "## CMN: fast (cmnlib) vs plain reference, same weights, same inputs", "",
              "| profile | text/audio length | max abs diff (eval) | speed-up, separate processes "
              "| speed-up, one process alternating | step ms fast / reference |",
              "|---|---|---:|---:|---:|---:|"]
    for s in results["speedup"]:
        lines.append(f"| {s['profile']} | {s['lengths'][0]}/{s['lengths'][1]} | {s['max_abs_diff_eval']:.2e} | "
                     f"{s['ratio_separate_processes']:.2f}x | {s['ratio']:.2f}x | "
                     f"{_f(1e3 * s['step_s']['fast'], 0)} / {_f(1e3 * s['step_s']['reference'], 0)} |")
    eq = results["equality"]
    lines += ["", "Outputs on small padded batches (eval), fast vs reference: max abs diff "
              + ", ".join(f"{_cfg(r['config'])} {r['max_abs_diff']:.1e}" for r in eq) + "."]
    profiled = [s for s in results["speedup"] if s.get("profile_s")]
    if profiled:
        s = profiled[0]
        kinds = list(dict.fromkeys(list(s["profile_s"]["reference"]) + list(s["profile_s"]["fast"])))
        lines += ["", f"Where one training step's time goes ({s['profile']}, {s['lengths'][0]}/{s['lengths'][1]}; "
                  "torch.profiler self CPU time of the operators on the calling thread, seconds):", "",
                  "| kind | reference | fast |", "|---|---:|---:|"]
        for k in kinds:
            lines.append(f"| {k} | {s['profile_s']['reference'].get(k, 0):.3f} | {s['profile_s']['fast'].get(k, 0):.3f} |")
    lines += ["", "## Cost against sequence length (forward + backward per batch)", "",
              "| model | text | audio | s per batch | relative to the first |", "|---|---:|---:|---:|---:|"]
    for r in results["scaling"]:
        lines.append(f"| {r['model']} | {r['text_length']} | {r['audio_length']} | {r['fwd_bwd_s']:.3f} | "
                     f"{r['relative']:.1f}x |")
    lines += ["", "## Data", "", "| set | first call s | cache load s (second call) | cache MiB | train rows "
              "| loader samples/s plain | loader samples/s bucketed |", "|---|---:|---:|---:|---:|---:|---:|"]
    for d in results["data"]:
        lines.append(f"| {d['source']} | {d['first_call_s']:.2f} | {d['cache_load_s']:.2f} | {_f(d['cache_mb'], 0)} | "
                     f"{d['sizes']['train']} | {_f(d['loader_samples_per_s']['plain'], 0)} | "
                     f"{_f(d['loader_samples_per_s']['bucketed'], 0)} |")
    lines.append("")
    lines.append("The first call generates the set and builds the cache when they are missing, else it too reads "
                 "the cache; nothing is extrapolated.")
    e = results["epoch"]
    lines += ["", f"## Training on a train split (CMN {e['profile']}, batch {e['batch']})", "",
              f"Data: {e['source']}.",
              "Batches timed: a stratified sample of one epoch (evenly spaced quantiles of padded length).", "",
              "| implementation | batches | mean padded length: epoch / timed | batches timed | samples/s |",
              "|---|---|---:|---:|---:|",
              f"| plain reference | shuffled, trimmed to the longest row | "
              f"{e['mean_padded_length_epoch']['reference']:.1f} / {e['mean_padded_length_timed']['reference']:.1f} | "
              f"{e['batches_timed']['reference']} | {_f(e['samples_per_s']['reference'])} |",
              *([f"| cmnlib (fast) | shuffled, trimmed to the longest row | "
                 f"{e['mean_padded_length_epoch']['fast_plain']:.1f} / {e['mean_padded_length_timed']['fast_plain']:.1f} | "
                 f"{e['batches_timed']['fast_plain']} | {_f(e['samples_per_s']['fast_plain'])} |"]
                if "fast_plain" in e["samples_per_s"] else []),
              f"| cmnlib (fast) | trainer's length buckets | {e['mean_padded_length_epoch']['fast']:.1f} / "
              f"{e['mean_padded_length_timed']['fast']:.1f} | {e['batches_timed']['fast']} | "
              f"{_f(e['samples_per_s']['fast'])} |", "",
              f"Speed-up as a trainer sees it (fast CMN on bucketed batches vs the plain reference on plain "
              f"batches): **{_f(e['ratio'], 2)}x**.", ""]
    first = results["speedup"][0] if results["speedup"] else None
    if first:
        lines += ["## Against the target", "",
                  f"Target: CMN {first['profile']}-profile training at least 2x the plain reference. "
                  f"Measured here: the model alone on the same fixed batches "
                  + ", ".join(f"{s['lengths'][0]}/{s['lengths'][1]} {s['ratio']:.2f}x" for s in results["speedup"]
                              if s["profile"] == first["profile"])
                  + f" (one process, steps alternating); training on the data as the trainer does it "
                  f"{_f(e['ratio'], 2)}x.", ""]
    return "\n".join(lines)


def _cfg(config: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"


def main(argv: list[str] | None = None) -> int:
    """``python -m cmnlib.bench`` (the same as ``python -m cmnlib bench``)."""
    parser = argparse.ArgumentParser(prog="cmnlib.bench", description=__doc__.split("\n\n")[0])
    options.add_bench_options(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args) -> int:
    run_bench(args.out, mode="quick" if args.quick else "default", paper_data=args.paper_data,
              threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
