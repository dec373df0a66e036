"""Training: determinism, resume = uninterrupted, atomic checkpoints, validation-only
selection, ensembles and the results cache."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from cmnlib import inventory
from cmnlib import results as R
from cmnlib import train as T
from cmnlib.data.mult_pkl import read_mult_pickle

TINY_MODEL = {"hidden": 16, "ff_size": 24, "heads": 2, "layers": 1}


def tiny_spec(**kw) -> T.RunSpec:
    config = T.TrainConfig(epochs=4, batch_size=16, lr=3e-3, patience=None)
    base = dict(model="cmn", dataset="mosei", modalities="LA", profile="quick",
                model_overrides=dict(TINY_MODEL), train=config)
    return T.RunSpec(**{**base, **kw})


@pytest.fixture(scope="module")
def bundle(tiny_mosei_dir):
    b = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")
    b.meta["source_hash"] = "tiny-mosei"
    b.meta["source_label"] = "tiny synthetic"
    return b


def weights(folder):
    return T.load_checkpoint(folder / "best.pt")


def test_same_seed_same_metrics_and_weights(bundle, tmp_path):
    a = T.train_one(tiny_spec(), bundle, seed=1, out_dir=tmp_path / "a", progress=False)
    b = T.train_one(tiny_spec(), bundle, seed=1, out_dir=tmp_path / "b", progress=False)
    c = T.train_one(tiny_spec(), bundle, seed=2, out_dir=tmp_path / "c", progress=False)
    assert a.recorded_metrics == b.recorded_metrics and a.history == b.history
    assert np.array_equal(a.outputs["test"], b.outputs["test"])
    assert all(torch.equal(x, y) for x, y in zip(weights(tmp_path / "a").values(), weights(tmp_path / "b").values()))
    assert a.recorded_metrics["test"] != c.recorded_metrics["test"]


def test_nudged_initial_weights_are_one_ulp_up_and_train_into_their_own_folder(bundle, tmp_path, monkeypatch):
    """The portability guard's runs ($CMN_NUDGE_INITIAL_WEIGHTS=1, cmnlib.numerics): every
    initial weight is the next float above the seed's, the run gets a folder of its own and
    says so in its provenance, and training grows the nudge into other outputs."""
    spec = tiny_spec().resolved()
    plain = {k: v.numpy().copy() for k, v in T.initial_model(spec, bundle, seed=0).state_dict().items()}
    plain_folder = T.run_dir(spec, bundle, tmp_path)
    plain_run = T.train_one(spec, bundle, seed=0, out_dir=plain_folder / "seed0", progress=False)
    monkeypatch.setenv("CMN_NUDGE_INITIAL_WEIGHTS", "1")
    model = T.initial_model(spec, bundle, seed=0)
    parameters = {name for name, _ in model.named_parameters()}
    for name, value in model.state_dict().items():  # numpy's nextafter: an independent computation of the next float
        expected = np.nextafter(plain[name], np.inf) if name in parameters else plain[name]
        assert np.array_equal(value.numpy(), expected), name
    nudged_folder = T.run_dir(spec, bundle, tmp_path)
    assert nudged_folder != plain_folder and nudged_folder.name.startswith("cmn-")
    first = T.train_one(spec, bundle, seed=0, out_dir=nudged_folder / "seed0", progress=False)
    again = T.train_one(spec, bundle, seed=0, out_dir=tmp_path / "again" / "seed0", progress=False)
    assert np.array_equal(first.outputs["test"], again.outputs["test"])  # deterministic, nudge and all
    assert not np.array_equal(first.outputs["test"], plain_run.outputs["test"])
    assert first.provenance["initial_weights"] == "nudged one ulp up" and "initial_weights" not in plain_run.provenance
    listed = T.train_seeds(spec, bundle, seeds=1, root=tmp_path / "listed", progress=False).folder
    monkeypatch.delenv("CMN_NUDGE_INITIAL_WEIGHTS")  # `cmn runs` in a plain shell: the folder is still current
    assert inventory.read_run_file(listed)[2]
    monkeypatch.setenv("CMN_NUDGE_INITIAL_WEIGHTS", "yes")
    with pytest.raises(ValueError, match=r"CMN_NUDGE_INITIAL_WEIGHTS is 'yes': expected 1"):
        T.run_dir(spec, bundle, tmp_path)


# trains the tiny spec's seed 0 for 40 epochs in another process, which the test kills
_LONG_RUN = """
import sys
from dataclasses import replace
from cmnlib import train as T
from cmnlib.data.mult_pkl import read_mult_pickle
bundle = read_mult_pickle(sys.argv[1])
bundle.meta["source_hash"] = "tiny-mosei"
spec = T.RunSpec(model="cmn", dataset="mosei", modalities="LA", profile="quick",
                 model_overrides={"hidden": 16, "ff_size": 24, "heads": 2, "layers": 1},
                 train=T.TrainConfig(epochs=12, batch_size=16, lr=3e-3, patience=None))
T.train_one(spec, bundle, seed=0, out_dir=sys.argv[2], progress=False)
"""


def test_resume_after_kill_9_equals_an_uninterrupted_run(bundle, tmp_path):
    """A training process killed with SIGKILL mid-run resumes from its last checkpoint and
    ends bit for bit where an uninterrupted run ends."""
    spec = tiny_spec(train=T.TrainConfig(epochs=12, batch_size=16, lr=3e-3, patience=None))
    cut = tmp_path / "cut"
    process = subprocess.Popen([sys.executable, "-c", _LONG_RUN, str(bundle.meta["path"]), str(cut)],
                               env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if (cut / "checkpoint.pt").exists() and T.load_checkpoint(cut / "checkpoint.pt")["state"]["epoch"] >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = T.load_checkpoint(cut / "checkpoint.pt")   # weights_only=True; never half-written
    assert 2 <= saved["state"]["epoch"] < 12 and not (cut / "result.json").exists()
    resumed = T.train_one(spec, bundle, seed=0, out_dir=cut, progress=False)
    full = T.train_one(spec, bundle, seed=0, out_dir=tmp_path / "full", progress=False)
    assert resumed.history == full.history and resumed.best_epoch == full.best_epoch
    assert resumed.recorded_metrics == full.recorded_metrics
    assert all(torch.equal(x, y) for x, y in zip(weights(tmp_path / "full").values(), weights(cut).values()))


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    import errno
    import os
    path = tmp_path / "checkpoint.pt"
    T.atomic_save({"w": torch.ones(3)}, path)

    def disk_full(fd):  # the bytes are in the temporary file; making them durable fails
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError) as raised:
        T.atomic_save({"w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)  # names the file
    assert torch.equal(T.load_checkpoint(path)["w"], torch.ones(3))  # the old one is intact
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_selection_uses_validation_only(bundle, tmp_path):
    """The selected epoch is the best validation epoch, and test labels cannot change it."""
    spec = tiny_spec(train=T.TrainConfig(epochs=5, batch_size=16, lr=3e-3, patience=None))
    result = T.train_one(spec, bundle, seed=3, out_dir=tmp_path / "a", progress=False)
    losses = result.curve("valid_loss")
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert result.recorded_metrics["valid"]["loss"] == pytest.approx(min(losses), rel=1e-5)
    shuffled = read_mult_pickle(bundle.meta["path"])
    shuffled.meta.update(bundle.meta)
    rng = np.random.default_rng(0)
    shuffled["test"].labels = rng.permutation(shuffled["test"].labels)
    other = T.train_one(spec, shuffled, seed=3, out_dir=tmp_path / "b", progress=False)
    assert other.best_epoch == result.best_epoch
    assert other.recorded_metrics["valid"] == result.recorded_metrics["valid"]
    assert other.recorded_metrics["test"] != result.recorded_metrics["test"]


def test_ensemble_averages_scores_and_probabilities():
    reg = T.ensemble_outputs("regression", [torch.tensor([1.0, -1.0]), torch.tensor([3.0, 0.0])])
    assert reg.tolist() == [2.0, -0.5]
    a = torch.log(torch.tensor([[0.9, 0.1]]))
    b = torch.log(torch.tensor([[0.3, 0.7]]))
    probs = T.ensemble_outputs("binary", [a, b]).exp()
    torch.testing.assert_close(probs, torch.tensor([[0.6, 0.4]]))
    assert probs.argmax(-1).item() == 0  # the average, not a vote of the argmaxes


def test_seeds_ensemble_and_results_cache(bundle, tmp_path):
    spec = tiny_spec(train=T.TrainConfig(epochs=2, batch_size=16, lr=3e-3, patience=None))
    run = T.train_seeds(spec, bundle, seeds=2, root=tmp_path, progress=False)
    folder = tmp_path / next(p.name for p in tmp_path.iterdir())
    assert run.folder == folder and run.seeds == [0, 1] and run.data_hash == "tiny-mosei"
    accs = [m.recorded_metrics["test"]["acc2_has0"] for m in run.members]  # as written when trained
    assert run.scores("acc2_has0", percent=False) == accs  # recomputed from the stored outputs: the same
    assert run.mean("acc2_has0") == pytest.approx(np.mean(accs))
    assert run.std("acc2_has0") == pytest.approx(np.std(accs, ddof=1))
    outputs = [torch.load(folder / f"seed{s}" / "outputs.pt", weights_only=True)["test"] for s in (0, 1)]
    mae = float(np.mean(np.abs((outputs[0] + outputs[1]).numpy() / 2 - bundle["test"].labels)))
    assert run.ensemble()["mae"] == pytest.approx(mae, rel=1e-6)
    # the provenance of every seed: this machine, this torch, today
    assert {p["torch"] for p in run.provenance} == {torch.__version__}
    # cached: the same call reuses the results (no retraining: files untouched)
    stamp = (folder / "seed0" / "result.json").stat().st_mtime_ns
    again = T.train_seeds(spec, bundle, seeds=2, root=tmp_path, progress=False)
    assert again.mean("acc2_has0") == run.mean("acc2_has0") and again.metrics() == run.metrics()
    assert (folder / "seed0" / "result.json").stat().st_mtime_ns == stamp
    # the folder alone gives the same result (labels.npz holds the targets)
    assert R.read_run(folder, [0, 1]).metrics() == run.metrics()
    # a changed configuration or changed data trains anew, in another folder
    changed = tiny_spec(train=T.TrainConfig(epochs=2, batch_size=16, lr=1e-3, patience=None))
    assert T.run_dir(changed, bundle, tmp_path) != folder
    bundle2 = read_mult_pickle(bundle.meta["path"])
    bundle2.meta["source_hash"] = "another"
    assert T.run_dir(spec, bundle2, tmp_path) != folder


def test_trained_model_reloads_with_weights_only(bundle, tmp_path):
    spec = tiny_spec(train=T.TrainConfig(epochs=1, batch_size=16, lr=3e-3, patience=None))
    run = T.train_seeds(spec, bundle, seeds=1, root=tmp_path, progress=False)
    model = T.load_model(run.folder, 0, bundle)
    outputs = T.predict_outputs(model, bundle["test"], "LA", "regression")
    torch.testing.assert_close(outputs, torch.from_numpy(run.members[0].outputs["test"]))


def test_majority_baseline_scores_the_majority_rate(bundle, tmp_path):
    run = T.train_seeds(tiny_spec(model="majority"), bundle, seeds=1, root=tmp_path, progress=False)
    test = bundle["test"].labels
    mean = float(bundle["train"].labels.mean())
    expected = float(((test >= 0) == (mean >= 0)).mean())
    assert run.metrics()[0]["acc2_has0"] == pytest.approx(expected) and not run.trained


def test_a_run_trains_with_its_configured_threads_and_gives_the_callers_back(bundle, tmp_path, monkeypatch):
    seen = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    before = torch.get_num_threads()
    spec = tiny_spec(train=T.TrainConfig(epochs=1, batch_size=16, lr=3e-3, patience=None, threads=1))
    T.train_one(spec, bundle, seed=0, out_dir=tmp_path / "run", progress=False)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before
    assert T.TRAIN_PROFILES["quick"].threads == 1  # path-independent bits in the quick profile


def test_runs_go_to_cmn_runs_dir_when_set(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert T.run_dir(tiny_spec(), bundle).parent == tmp_path / "elsewhere"
    monkeypatch.delenv("CMN_RUNS_DIR")
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    assert T.run_dir(tiny_spec(), bundle).parent == tmp_path / "data" / "runs"


@pytest.mark.parametrize("field, value", [("epochs", 0), ("epochs", 2.5), ("batch_size", -1), ("batch_size", True),
                                          ("patience", 0), ("threads", 0), ("lr", 0.0), ("lr", float("nan")),
                                          ("lr", float("inf"))])
def test_train_config_refuses_what_training_could_not_use(field, value):
    """Library callers get one ValueError naming the field, where a zero used to fail deep
    inside training (range() with step 0, load_state_dict(None))."""
    from cmnlib.spec import TrainConfig
    with pytest.raises(ValueError, match=rf"^TrainConfig\.{field} must be"):
        TrainConfig(**{field: value})


def test_train_config_keeps_the_optional_fields_optional():
    from cmnlib.spec import TrainConfig
    config = TrainConfig(epochs=np.int64(3), patience=None, threads=None, lr=1e-3)
    assert config.epochs == 3 and config.patience is None and config.threads is None


def test_seed_list_counts_and_lists():
    assert T.seed_list(3) == [0, 1, 2] and T.seed_list(np.int64(2)) == [0, 1]
    assert T.seed_list([4, np.int64(7)]) == [4, 7] and all(type(s) is int for s in T.seed_list([np.int64(7)]))
    for bad in (0, -2, [], [1, 1], [-1], [True], [1.5]):
        with pytest.raises(ValueError, match="seeds must be"):
            T.seed_list(bad)


def _shorter_and_longer(config: T.TrainConfig, shorter: int, longer: int) -> tuple[T.RunSpec, T.RunSpec]:
    return (tiny_spec(train=replace(config, epochs=shorter)).resolved(),
            tiny_spec(train=replace(config, epochs=longer)).resolved())


@pytest.mark.parametrize("config", [
    T.TrainConfig(epochs=2, batch_size=16, lr=3e-3, patience=None),   # the shorter run trains all its epochs
    # updates below the weights' last bit: no validation loss improves, and it stops
    T.TrainConfig(epochs=2, batch_size=16, lr=1e-12, patience=1),
], ids=["continued", "stopped-early"])
def test_a_longer_run_continues_a_shorter_one_bit_for_bit(bundle, tmp_path, config):
    """A run that differs from a finished one only in its epochs starts from the shorter
    run's last checkpoint (its first epochs are the same computation) and ends exactly where
    training from the start ends."""
    short, long = _shorter_and_longer(config, 2, 5)
    root, alone = tmp_path / "shared", tmp_path / "alone"
    first = T.train_one(short, bundle, seed=1, out_dir=T.run_dir(short, bundle, root) / "seed1", progress=False)
    assert T.shorter_seed(long, bundle, 1, T.run_dir(long, bundle, root) / "seed1") is not None
    continued = T.train_one(long, bundle, seed=1, out_dir=T.run_dir(long, bundle, root) / "seed1", progress=False)
    fresh = T.train_one(long, bundle, seed=1, out_dir=T.run_dir(long, bundle, alone) / "seed1", progress=False)
    assert continued.provenance["continued_from"] == f"{T.run_dir(short, bundle, root).name}/seed1, after epoch " \
                                                     f"{first.epochs_run}"
    assert "continued_from" not in fresh.provenance
    assert continued.history == fresh.history and continued.best_epoch == fresh.best_epoch
    assert np.array_equal(continued.outputs["test"], fresh.outputs["test"])
    assert all(torch.equal(x, y) for x, y in zip(weights(T.run_dir(long, bundle, root) / "seed1").values(),
                                                 weights(T.run_dir(long, bundle, alone) / "seed1").values()))
    assert continued.train_seconds >= first.train_seconds  # the shared epochs' seconds count
    if config.patience is not None:  # stopped early: the longer run stops at the same epoch
        assert first.epochs_run == continued.epochs_run == 2 < 5
    else:
        assert first.epochs_run == 2 and continued.epochs_run == 5


def test_only_a_run_that_differs_in_its_epochs_is_continued(bundle, tmp_path):
    config = T.TrainConfig(epochs=2, batch_size=16, lr=3e-3, patience=None)
    short, long = _shorter_and_longer(config, 2, 4)
    root = tmp_path / "runs"
    T.train_one(short, bundle, seed=0, out_dir=T.run_dir(short, bundle, root) / "seed0", progress=False)
    other = tiny_spec(train=T.TrainConfig(epochs=4, batch_size=16, lr=1e-3, patience=None)).resolved()
    assert T.shorter_seed(other, bundle, 0, T.run_dir(other, bundle, root) / "seed0") is None  # another lr
    assert T.shorter_seed(long, bundle, 1, T.run_dir(long, bundle, root) / "seed1") is None    # another seed
    assert T.shorter_seed(long, bundle, 0, tmp_path / "mine" / "seed0") is None                # not a runs root
    assert T.shorter_seed(long, bundle, 0, T.run_dir(long, bundle, root) / "seed0") == \
        T.run_dir(short, bundle, root) / "seed0"
