"""Data-parallel training (DDP, 2 local CPU processes, gloo) equals one process on the same
global batches; seeds spread over processes equal a sequential run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from cmnlib.data.loader import MultimodalDataset
from cmnlib.data.mult_pkl import read_mult_pickle
from cmnlib.distributed import global_batches, train_data_parallel
from cmnlib.runs import spread_seeds, train_many
from cmnlib.model import build_model
from cmnlib.model import heads as H
from cmnlib.train import RunSpec, TrainConfig, predict_outputs, train_seeds

TINY = dict(hidden=16, ff_size=24, heads=2, layers=1, dropout=0.0, output_dropout=0.0)
# Biases whose gradient is zero up to rounding, because a softmax cancels them: the key
# bias of every attention (it shifts all scores of a query equally), AttFlat's score bias,
# and AttFlat's hidden biases for units active at every step. Adam divides each gradient by
# its running RMS, turning that rounding noise into steps of arbitrary sign (~lr), so these
# are compared through the outputs only; every other weight must match.
REDUNDANT = re.compile(r"(linear_k\.bias|attflat\.\w+\.mlp\.(fc\.)?linear\.bias)$")


@pytest.fixture(scope="module")
def bundle(tiny_mosei_dir):
    return read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl", "mosei")


def _imported(module: str) -> bool:
    return module in sys.modules


def spec(epochs=2, batch=8, **train) -> RunSpec:
    return RunSpec(model="cmn", dataset="mosei", modalities="LA", profile="quick", model_overrides=TINY,
                   train=TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3, patience=None, **train))


def single_process(spec: RunSpec, bundle, seed: int, epochs: int, global_batch: int):
    """The reference, written out: one process, the whole global batch, its mean loss."""
    spec = spec.resolved()
    torch.manual_seed(seed)
    model = build_model("cmn", spec.head, bundle.feature_dims, "LA", "quick", **spec.model_overrides)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.train.lr)
    train = bundle["train"]
    dataset = MultimodalDataset(train, "LA", spec.head)
    longest = np.maximum(train.lengths["text"], train.lengths["audio"])
    model.train()
    for epoch in range(1, epochs + 1):
        for indices in global_batches(longest, global_batch, seed * 100_003 + epoch):
            batch = dataset.__getitems__(indices)
            loss = H.loss(spec.head, model(batch["features"], batch["lengths"]), batch["target"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model


def test_global_batches_are_full_equal_everywhere_and_seeded():
    lengths = np.arange(1, 27)
    a = global_batches(lengths, 8, seed=5)
    assert a == global_batches(lengths, 8, seed=5) and a != global_batches(lengths, 8, seed=6)
    assert [len(b) for b in a] == [8, 8, 8] and len({i for b in a for i in b}) == 24
    assert all(len(b) == 8 for b in global_batches(lengths, 8, seed=5, bucket=True))


def torchrun(data_file, out, *args: str) -> dict:
    """``torchrun --standalone --nproc_per_node 2 -m cmnlib.distributed`` on the tiny CMN
    (gloo, one thread per process); returns rank 0's result.json."""
    env = dict(os.environ, CMN_DATA_DIR=str(out / "data"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "cmnlib.distributed", "--dataset", "mosei", "--data", str(data_file), "--model", "cmn",
               "--modalities", "LA", "--profile", "quick", "--threads", "1", "--seed", "0", "--backend", "gloo",
               "--out", str(out / "ddp"), *args, *[f"--set={k}={v}" for k, v in TINY.items()]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "ddp" / "result.json").read_text())


def test_ddp_on_two_processes_equals_one_process_on_the_global_batch(bundle, tiny_mosei_dir, tmp_path):
    result = torchrun(tiny_mosei_dir / "mosei_senti_data.pkl", tmp_path, "--epochs", "2", "--global-batch", "8")
    assert result["world_size"] == 2 and result["local_batch"] == 4 and result["backend"] == "gloo"
    assert result["device"] == "cpu" and "mae" in result["test"]
    assert result["steps"] == 2 * (len(bundle["train"]) // 8)
    ddp_weights = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)

    run = spec()
    reference = single_process(run, bundle, seed=0, epochs=2, global_batch=8)
    initial = build_model("cmn", "regression", bundle.feature_dims, "LA", "quick", **TINY).state_dict()
    for name, value in reference.state_dict().items():
        if not REDUNDANT.search(name):
            torch.testing.assert_close(ddp_weights[name], value, atol=1e-5, rtol=1e-4, msg=name)
    assert any(not torch.allclose(initial[n], v) for n, v in reference.state_dict().items())  # it did train
    outputs = torch.load(tmp_path / "ddp" / "outputs.pt", weights_only=True)
    for name in ("valid", "test"):
        expected = predict_outputs(reference, bundle[name], "LA", "regression")
        torch.testing.assert_close(outputs[name], expected, atol=1e-5, rtol=1e-4)

    # a world of one (no process group) is the same computation
    alone, model = train_data_parallel(run, bundle, 0, epochs=2, global_batch=8, device="cpu")
    assert alone["world_size"] == 1
    for name, value in reference.state_dict().items():
        if not REDUNDANT.search(name):
            torch.testing.assert_close(model.state_dict()[name], value, atol=1e-5, rtol=1e-4, msg=name)


def test_max_steps_stops_every_process(tiny_mosei_dir, tmp_path):
    result = torchrun(tiny_mosei_dir / "mosei_senti_data.pkl", tmp_path, "--epochs", "1", "--global-batch", "8",
                      "--max-steps", "2")
    assert result["world_size"] == 2 and result["steps"] == 2


def test_spread_seeds_equals_sequential_seeds(bundle, tmp_path):
    run = spec(epochs=2, batch=16)
    parallel = spread_seeds(run, bundle, 2, processes=2, root=tmp_path / "parallel", threads=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count as the pool's processes: the same arithmetic
    try:
        sequential = train_seeds(run, bundle, 2, root=tmp_path / "sequential", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert parallel.seeds == sequential.seeds == [0, 1]
    for split in ("valid", "test"):
        for p, s in zip(parallel.metrics(split), sequential.metrics(split)):
            assert p == pytest.approx(s, rel=1e-6, abs=1e-7)
    for p, s in zip(parallel.members, sequential.members):
        assert p.curve("train_loss") == pytest.approx(s.curve("train_loss"), rel=1e-6)
    assert parallel.ensemble() == pytest.approx(sequential.ensemble(), rel=1e-6, abs=1e-7)
    for seed in (0, 1):
        folder = tmp_path / "parallel"
        assert list(folder.glob(f"*/seed{seed}/result.json"))


def test_one_pool_trains_the_runs_of_two_data_sets_as_their_own_pools_do(bundle, tiny_iemocap_dir, tmp_path):
    """train_runs: runs of two data sets, with different seeds each, in one pool; each run's
    outputs equal those of the same run trained by train_many for its data set alone, and
    a second call finds everything cached."""
    from cmnlib.runs import train_runs
    iemocap = read_mult_pickle(tiny_iemocap_dir / "iemocap_data.pkl", "iemocap")
    mosei_run = spec(epochs=1, batch=16)
    iemocap_run = RunSpec(model="cmn", dataset="iemocap", modalities="LA", profile="quick", model_overrides=TINY,
                          train=mosei_run.train)
    trained = train_runs([(mosei_run, bundle, [0, 1]), (iemocap_run, iemocap, [2])], processes=2,
                         root=tmp_path / "one", progress=False)
    assert trained == 3
    assert train_runs([(mosei_run, bundle, [0, 1]), (iemocap_run, iemocap, [2])], processes=2,
                      root=tmp_path / "one", progress=False) == 0
    alone = {"mosei": train_many([mosei_run], bundle, [0, 1], processes=2, root=tmp_path / "alone", progress=False)[0],
             "iemocap": train_many([iemocap_run], iemocap, [2], processes=2, root=tmp_path / "alone",
                                   progress=False)[0]}
    together = {"mosei": train_seeds(mosei_run, bundle, [0, 1], root=tmp_path / "one", progress=False),
                "iemocap": train_seeds(iemocap_run, iemocap, [2], root=tmp_path / "one", progress=False)}
    for name in alone:
        assert together[name].seeds == alone[name].seeds
        for a, b in zip(together[name].members, alone[name].members):
            assert np.array_equal(a.outputs["test"], b.outputs["test"])  # the same bits, whichever pool


def test_a_longer_run_in_the_pool_waits_for_the_shorter_one_and_continues_it(bundle, tmp_path):
    """train_runs: a run that differs from another run of the same pool only in its epochs
    starts each seed when that seed of the shorter run has finished, from its last
    checkpoint, and ends with the bits of the longer run trained alone."""
    from cmnlib.runs import train_runs
    short, long = spec(epochs=1, batch=16), spec(epochs=3, batch=16)
    # the longer run first in the list, and the longer of the two jobs: it must still wait
    assert train_runs([(long, bundle, [0, 1]), (short, bundle, [0, 1])], processes=2, root=tmp_path / "pool",
                      progress=False) == 4
    shared = train_seeds(long, bundle, [0, 1], root=tmp_path / "pool", progress=False)
    alone = train_seeds(long, bundle, [0, 1], root=tmp_path / "alone", progress=False)
    for seed, a, b in zip((0, 1), shared.members, alone.members):
        assert a.provenance["continued_from"].endswith(f"/seed{seed}, after epoch 1")
        assert a.history == b.history and np.array_equal(a.outputs["test"], b.outputs["test"])


def test_train_many_reuses_cached_runs_and_raises_a_workers_error(bundle, tmp_path):
    good = spec(epochs=1, batch=16)
    first = train_many([good], bundle, 1, processes=2, root=tmp_path, progress=False)
    result = next(tmp_path.glob("*/seed0/result.json"))
    stamp = result.stat().st_mtime_ns
    # a cached run is not started again; a failing run's error reaches the caller
    broken = RunSpec(model="cmn", dataset=good.dataset, modalities="LA", profile="quick",
                     model_overrides={"mua": "no_such_wiring"}, train=good.train)
    with pytest.raises(ValueError, match="no_such_wiring"):
        train_many([good, broken], bundle, 1, processes=2, root=tmp_path, progress=False)
    assert result.stat().st_mtime_ns == stamp
    assert first[0].members[0].recorded_metrics["test"] == json.loads(result.read_text())["test"]


def test_ctrl_c_stops_the_pool_without_training_the_runs_it_had_queued(bundle, tmp_path, monkeypatch):
    """Ctrl-C while a pool trains (here reaching the caller only, as `kill -INT` of the
    caller would): the workers are interrupted, and no run is started after them (the pool
    hands out one run per free worker), instead of training the rest before the command can
    end; the next call trains what is left."""
    import cmnlib.runs as runs

    class InterruptedBar:  # Ctrl-C at the first finished run
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    seeds = list(range(6))
    run = spec(epochs=2, batch=16)
    monkeypatch.setattr(runs, "tqdm", InterruptedBar)
    with pytest.raises(KeyboardInterrupt):
        runs.train_runs([(run, bundle, seeds)], processes=2, root=tmp_path)
    finished = len(list(tmp_path.glob("*/seed*/result.json")))
    assert 1 <= finished <= 2  # the first, and at most the other worker's run; never the queued ones
    monkeypatch.undo()
    assert runs.train_runs([(run, bundle, seeds)], processes=2, root=tmp_path, progress=False) == 6 - finished


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torchrun_with_nccl_on_one_gpu(tiny_mosei_dir, tmp_path):
    env = dict(os.environ, CMN_DATA_DIR=str(tmp_path / "data"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
               "-m", "cmnlib.distributed", "--data", str(tiny_mosei_dir / "mosei_senti_data.pkl"),
               "--epochs", "1", "--global-batch", "8", "--max-steps", "3", "--out", str(tmp_path / "out"),
               *[f"--set={k}={v}" for k, v in TINY.items()]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["backend"] == "nccl" and result["device"].startswith("cuda") and result["steps"] == 3


def test_pool_workers_come_from_a_fork_server_and_follow_the_callers_environment(monkeypatch):
    """The pool's workers fork from a server that imported cmnlib once, and see the
    environment of the call, not the one the server started with. A setting torch reads
    when it loads (here the kernel family) cannot reach a worker forked from a server that
    loaded torch under another value: that pool is spawned instead."""
    from concurrent.futures import ProcessPoolExecutor

    from cmnlib import runs
    if "forkserver" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("this platform has no fork server; every pool is spawned")
    context = runs.pool_context()
    assert context.get_start_method() == "forkserver"
    monkeypatch.setenv("CMN_POOL_PROBE", "set after the server started")
    with ProcessPoolExecutor(1, mp_context=runs.pool_context(), initializer=runs._pool_init,
                             initargs=((), 1, dict(os.environ))) as pool:
        assert pool.submit(os.getenv, "CMN_POOL_PROBE").result() == "set after the server started"
        assert pool.submit(torch.get_num_threads).result() == 1
        assert pool.submit(_imported, "torch._dynamo").result()  # preloaded once, by the server
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default" if os.environ.get("ATEN_CPU_CAPABILITY") else "avx2")
    assert runs.pool_context().get_start_method() == "spawn"
    monkeypatch.undo()
    assert runs.pool_context().get_start_method() == "forkserver"
