"""Orchestration: the runs a study needs, trained (or read from the cache) in one process
or spread over several. Which runs a study needs is the study's own business
(:mod:`cmnlib.studies`).

Every run is :func:`cmnlib.train.train_one` for one (model, seed) into the run folder that
:func:`cmnlib.train.run_dir` names; :func:`cmnlib.train.train_seeds` then reads the seeds
back as one :class:`cmnlib.results.RunResult`. Runs are independent, so they need no
communication: on a small CPU the fastest way to train many small models is a pool of
single-threaded processes (their steps are too short to keep two threads busy). Data
parallelism for one large model is :mod:`cmnlib.distributed`.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch
from tqdm import tqdm

from .config import POOL_WORKERS_ENV, parse_modalities, pool_share, usable_cores
from .data.split import DataBundle
from .results import RunResult, SeedResult
from .spec import RunSpec
from .train import run_dir, seed_list, shorter_runs, train_seeds
from .train_stacked import stack_refusal, stack_size, train_group

# Rough seconds of one seed (model, number of modalities) on the MOSEI-like quick set, 8
# epochs (Emerald Rapids Xeon, one thread), to start the long runs first; scaled by the
# size of the train split and the square root of the epochs (early stopping cuts long runs).
_SEED_SECONDS = {("mult", 3): 37.0, ("cmn", 3): 25.0, ("cmn", 2): 15.0, ("cmn", 1): 7.0, ("ef_lstm", 3): 3.0,
                 ("ef_lstm", 2): 2.7, ("lstm_l", 1): 2.2, ("lstm_a", 1): 0.8, ("lstm_v", 1): 0.9,
                 ("majority", 1): 0.0, ("majority", 2): 0.0, ("majority", 3): 0.0}


def _job_cost(spec: RunSpec, seeds: list[int], bundle: DataBundle) -> float:
    """The rough seconds of a job: its seeds of ``spec`` on ``bundle``."""
    per_seed = _SEED_SECONDS.get((spec.model, len(spec.modalities)), 5.0)
    return len(seeds) * per_seed * len(bundle["train"]) / 1800 * math.sqrt(spec.train.epochs / 8)


_BUNDLES: tuple[DataBundle, ...] = ()  # a pool worker's data sets, by the index its jobs name

# What torch and its kernel libraries read once, when torch loads: a worker forked from a
# server that loaded torch under other values would not follow them (cmnlib.numerics).
_LOAD_TIME_ENV = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS",
                  "MKL_NUM_THREADS", "MKL_CBWR", "KMP_AFFINITY", "DNNL_MAX_CPU_ISA")
_SERVER_ENV: dict | None = None
# What the fork server imports once for all its workers: this module (torch, cmnlib) and
# torch._dynamo, which the first optimizer of every worker would import otherwise (torch.optim
# wraps its methods with torch._disable_dynamo; about a second per worker, per pool)
SERVER_PRELOAD = [__name__, "torch._dynamo"]


def pool_context():
    """Where the pool's workers come from: a fork server that has imported cmnlib and torch
    once (:data:`SERVER_PRELOAD`; a worker then starts in a fraction of a second instead of
    importing them anew, which a spawned worker does for every pool), where the platform
    has one and torch's load-time settings are those the server started with; else spawned processes. Either
    way a worker starts from a process that has run no training (no thread pools to inherit),
    and gets this process's environment (:func:`_pool_init`), so the two give the same
    numbers."""
    global _SERVER_ENV
    load_env = {key: os.environ.get(key) for key in _LOAD_TIME_ENV}
    if "forkserver" not in mp.get_all_start_methods() or _SERVER_ENV not in (None, load_env):
        return mp.get_context("spawn")
    _SERVER_ENV = load_env
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(SERVER_PRELOAD)
    return context


def _pool_init(bundles: tuple[DataBundle, ...], threads: int, environ: dict) -> None:
    global _BUNDLES
    _BUNDLES = bundles
    # a forked worker holds the environment of the server's start; the caller's is the one
    # that counts (runs and data folders, $CMN_STACK)
    os.environ.clear()
    os.environ.update(environ)
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, _interrupt)


# A worker's Ctrl-C: the run it trains stops, and any run still queued for it is left to
# the next run of the command (stop_workers)
_INTERRUPTED = False
_TRAINING = False


def _interrupt(signum, frame) -> None:
    global _INTERRUPTED
    _INTERRUPTED = True
    if _TRAINING:  # else the worker is waiting for its next call: it will skip it
        raise KeyboardInterrupt


def _pool_train(spec: RunSpec, seeds: list[int], folder: str, stack: int, data: int = 0) -> list[SeedResult]:
    global _TRAINING
    if _INTERRUPTED:
        return []
    _TRAINING = True
    try:
        return train_group(spec, _BUNDLES[data], seeds, Path(folder), progress=False, stack=stack)
    finally:
        _TRAINING = False


def _groups(spec: RunSpec, bundle: DataBundle, seeds: list[int], stack: int) -> list[list[int]]:
    """The seeds of one spec as jobs: groups of ``stack`` seeds trained as one computation
    where the spec has a stacked form (:mod:`cmnlib.train_stacked`), else one seed each."""
    if stack > 1 and len(seeds) > 1 and stack_refusal(spec, bundle) is None:
        return [seeds[i:i + stack] for i in range(0, len(seeds), stack)]
    return [[seed] for seed in seeds]


def train_many(specs: list[RunSpec], bundle: DataBundle, seeds: int | list[int], processes: int = 2,
               root: Path | None = None, threads: int = 1, progress: bool = True) -> list[RunResult]:
    """:func:`cmnlib.train.train_seeds` for several models, every (model, seed) run trained
    in a pool of ``processes`` worker processes (:func:`pool_context`) with ``threads``
    torch threads each.

    The jobs run longest-first (:func:`_job_cost`) so that the pool ends together; runs
    already in the cache are not started. Each run's numbers depend only on its seed and
    its thread count (see :class:`cmnlib.train.TrainConfig`), not on which worker ran it.
    Returns one result per spec, as ``train_seeds`` does. A worker's exception is raised
    here, and the runs not yet started are cancelled. With ``$CMN_STACK`` above 1 (or on a
    GPU), a job is a group of seeds of one CMN trained as one computation
    (:func:`cmnlib.train_stacked.train_group`).
    """
    specs = [spec.resolved() for spec in specs]
    seeds = seed_list(seeds)
    train_runs([(spec, bundle, seeds) for spec in specs], processes, root, threads, progress, f"{bundle.dataset}: runs")
    return [train_seeds(spec, bundle, seeds, root=root, progress=False) for spec in specs]


def train_runs(runs: list[tuple[RunSpec, DataBundle, list[int]]], processes: int = 2, root: Path | None = None,
               threads: int = 1, progress: bool = True, desc: str = "runs") -> int:
    """Train every (spec, data set, seeds) of ``runs`` that is not in the cache, in ONE pool
    of ``processes`` workers, longest first, whatever data set each belongs to (the
    workers receive every data set once), one run per free worker. A run that continues a
    shorter run of the pool (the same but for its epochs) starts each seed once that seed of
    the shorter run has finished (:func:`_continuations`). :func:`train_many` trains through it, and the
    batch runner trains the whole sequence's runs with it (:func:`cmnlib.reproduce.train_first`).
    Returns the number of seeds trained; nothing is read back: the callers read the cache."""
    bundles: list[DataBundle] = []  # the data sets with runs to train: each sent to the workers once
    jobs = []
    for spec, bundle, seeds in runs:
        spec = spec.resolved()
        folder = run_dir(spec, bundle, root)
        todo = [seed for seed in seed_list(seeds) if not (folder / f"seed{seed}" / "result.json").exists()]
        if not todo:
            continue
        data = next((i for i, b in enumerate(bundles) if b is bundle), len(bundles))
        if data == len(bundles):
            bundles.append(bundle)
        stack = stack_size(spec.train.device)
        for group in _groups(spec, bundle, todo, stack):
            jobs.append((spec, group, str(folder), stack, data))
    cost = [_job_cost(job[0], job[1], bundles[job[4]]) for job in jobs]
    waits_for = _continuations(jobs, bundles, root)
    # longest first, a shorter run that a longer one continues counting the longer one's rest
    priority = list(cost)
    for later, earlier in waits_for.items():
        priority[later] = cost[later] - cost[earlier]
        priority[earlier] += priority[later]
    if jobs:
        workers = max(1, min(processes, len(jobs)))
        # concurrent.futures (not multiprocessing.Pool): a worker that dies raises
        # BrokenProcessPool here instead of leaving the pool waiting forever
        with ProcessPoolExecutor(workers, mp_context=pool_context(), initializer=_pool_init,
                                 initargs=(tuple(bundles), threads, dict(os.environ))) as pool:
            waiting = sorted(range(len(jobs)), key=lambda i: -priority[i])
            running: dict = {}
            try:
                # mininterval: a notebook keeps every refresh of a plain tqdm bar in its output
                with tqdm(total=sum(len(job[1]) for job in jobs), desc=desc, unit="run", disable=not progress,
                          mininterval=20) as bar:
                    while waiting or running:
                        # one job per free worker, the first in order whose shorter run has finished
                        while len(running) < workers:
                            ready = next((i for i in waiting if waits_for.get(i) is None), None)
                            if ready is None:
                                break
                            waiting.remove(ready)
                            running[pool.submit(_pool_train, *jobs[ready])] = ready
                        if not running:  # cannot happen: a job waits only for a job of this pool
                            raise RuntimeError(f"runs waiting on each other: {[jobs[i][2] for i in waiting]}")
                        done, _ = wait(running, return_when=FIRST_COMPLETED)
                        for future in done:
                            finished = running.pop(future)
                            future.result()  # re-raises a worker's exception
                            bar.update(len(jobs[finished][1]))
                            waits_for = {i: j for i, j in waits_for.items() if j != finished}
            except KeyboardInterrupt:
                stop_workers(pool)
                raise
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # drop the runs not yet started
                raise
    return sum(len(job[1]) for job in jobs)


def _continuations(jobs: list[tuple], bundles: list[DataBundle], root: Path | None) -> dict[int, int]:
    """Which job waits for which: a seed of a run that continues a shorter run of the same
    pool (:func:`cmnlib.train.shorter_runs`: the shorter run's epochs are its first) starts
    when that seed of the shorter run has finished, instead of training those epochs again.
    One seed per job only (a stacked group trains from the start)."""
    by_seed = {(job[2], job[1][0]): i for i, job in enumerate(jobs) if len(job[1]) == 1}
    waits_for = {}
    for i, (spec, group, _, _, data) in enumerate(jobs):
        if len(group) != 1:
            continue
        for folder in shorter_runs(spec, bundles[data], root):
            earlier = by_seed.get((str(folder), group[0]))
            if earlier is not None:
                waits_for[i] = earlier
                break
    return waits_for


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Ctrl-C: stop ``pool``'s workers now, rather than wait for the runs they train: each
    worker is interrupted (a terminal's Ctrl-C reaches it too), stops the run it trains and
    skips any call still queued for it (:func:`_pool_train`). A seed cut short resumes from
    its last checkpoint, written atomically, when the command runs again."""
    # the executor's own list of processes: no public way to end them before Python 3.14
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            os.kill(process.pid, signal.SIGINT)
    pool.shutdown(wait=True, cancel_futures=True)


def spread_seeds(spec: RunSpec, bundle: DataBundle, seeds: int | list[int], processes: int = 2,
                 root: Path | None = None, threads: int = 1) -> RunResult:
    """:func:`cmnlib.train.train_seeds` with the seeds trained in parallel: the same result
    as training them one after another."""
    return train_many([spec], bundle, seeds, processes, root, threads, progress=False)[0]


def default_processes(profile: str) -> int:
    """Worker processes for a profile's runs where other work may run beside them (a
    notebook's own runs, ``cmn train``): 2 on a CPU with at least 2 usable cores
    (:func:`cmnlib.config.usable_cores`) in the quick profile (small models: two processes
    beat two threads), else 1 (this process)."""
    return 2 if profile == "quick" and usable_cores() >= 2 else 1


def machine_processes(profile: str) -> int:
    """Worker processes for a pool that has the machine to itself (``cmn reproduce``'s runs,
    trained first, before any notebook starts). Where :func:`default_processes` gives a pool
    (the quick profile, two usable cores or more): ``$CMN_POOL_WORKERS`` when set, else one
    one-thread worker per usable core (a quick run trains with one thread: fewer workers
    leave cores idle), as many as the memory holds, two at least
    (:func:`cmnlib.config.pool_share`); else 1. A run's numbers do not depend on how many
    workers train it."""
    if default_processes(profile) < 2:
        return 1
    value = os.environ.get(POOL_WORKERS_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"${POOL_WORKERS_ENV} must be a whole number of worker processes, 1 or more; "
                             f"got {value!r}")
        return int(value)
    return pool_share(1)


def train_specs(specs: list[RunSpec], bundle: DataBundle, seeds: int, profile: str,
                processes: int | None = None, progress: bool = True) -> list[RunResult]:
    """``train_seeds`` for each spec (trained, or read from the cache), in a pool of
    worker processes when ``processes`` > 1 (default: :func:`default_processes`)."""
    processes = default_processes(profile) if processes is None else processes
    if processes > 1:
        return train_many(specs, bundle, seeds, processes=processes, progress=progress)
    for spec in specs:
        train_group(spec, bundle, seed_list(seeds), run_dir(spec, bundle), progress=progress)
    return [train_seeds(spec, bundle, seeds, progress=progress) for spec in specs]


def feasible(bundle: DataBundle, models) -> tuple:
    """``models`` ((name, modalities) pairs) that ``bundle`` can feed: early fusion only on
    aligned data; only models whose modalities the data has (a text-only set from cmn
    featurize), the constant predictor always (it reads no features, so it is given L)."""
    if not bundle.aligned:
        models = tuple((m, mods) for m, mods in models if m != "ef_lstm")
    present = set(bundle["train"].modalities)
    return tuple((m, mods if set(parse_modalities(mods)) <= present else "L") for m, mods in models
                 if m == "majority" or set(parse_modalities(mods)) <= present)
