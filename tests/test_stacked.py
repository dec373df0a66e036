"""Stacked seeds: K seeds of one CMN trained as one computation compute what K separate
trainings compute, seed by seed, up to float rounding.

The stated tolerance: after 4 epochs of the tiny model (16 steps at lr 3e-3, dropout on),
every recorded training loss within 1e-5 and every test output within 1e-4 of the separate
run's; the selected epoch the same. A seed given another seed's dropout stream misses that
by orders of magnitude (the control below), so the check can fail.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from cmnlib import results as R
from cmnlib import train as T
from cmnlib.data.loader import make_loader
from cmnlib.data.mult_pkl import read_mult_pickle
from cmnlib.model import build_model
from cmnlib.model.attention import MCANLayerNorm
from cmnlib.model.stacked import (NotStackable, SeedExtents, StackedLayerNorm, StackedLinear, seed_state,
                                  stack_batches, stack_models)
from cmnlib.train_stacked import STACK_ENV, stack_refusal, stack_size, train_group, train_stacked

from test_train import TINY_MODEL, tiny_spec  # the trainer's tests' tiny CMN and its training

LOSS_TOLERANCE, OUTPUT_TOLERANCE = 1e-5, 1e-4


@pytest.fixture(scope="module")
def bundle(tiny_mosei_dir):
    b = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")
    b.meta["source_hash"] = "tiny-mosei"
    return b


def _models(bundle, seeds, **overrides):
    """Each seed's model as train_one builds it, and the global stream's state after it."""
    models, generators = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_model("cmn", "regression", bundle.feature_dims, "LA", "quick",
                                  **{**TINY_MODEL, **overrides}))
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
        generators.append(generator)
    return models, generators


def test_stacked_linear_and_layer_norm_apply_each_seeds_own_weights():
    torch.manual_seed(0)
    linears = [nn.Linear(5, 3) for _ in range(3)]
    x = torch.randn(3 * 4, 7, 5)  # 3 seeds x 4 rows, 7 steps
    out = StackedLinear(linears)(x)
    for k, linear in enumerate(linears):
        torch.testing.assert_close(out[4 * k:4 * k + 4], linear(x[4 * k:4 * k + 4]), atol=1e-6, rtol=0)
    norms = [MCANLayerNorm(5) for _ in range(3)]
    for k, norm in enumerate(norms):
        with torch.no_grad():
            norm.a_2.uniform_(0.5, 2.0), norm.b_2.normal_()
    out = StackedLayerNorm(norms)(x)
    for k, norm in enumerate(norms):
        rows = x[4 * k:4 * k + 4]
        expected = norm.a_2 * (rows - rows.mean(-1, keepdim=True)) / (rows.std(-1, keepdim=True) + 1e-6) + norm.b_2
        torch.testing.assert_close(out[4 * k:4 * k + 4], expected, atol=1e-5, rtol=1e-5)


def test_a_stacked_cmn_gives_each_seed_its_outputs_on_its_own_batch(bundle):
    """Batches of different rows and steps (padding to the stack's shape changes nothing),
    in eval and in training mode (each seed's dropout masks from its own stream)."""
    models, generators = _models(bundle, [0, 1, 2])
    separate = [copy.deepcopy(m) for m in models]
    stacked, extents = stack_models(models, generators)
    batches = [next(iter(make_loader(bundle["train"], "LA", "regression", size, shuffle=True, seed=seed, bucket=True)))
               for seed, size in zip([0, 1, 2], [16, 9, 12])]
    features, lengths = stack_batches(batches, extents)
    assert len(set(extents.steps)) > 1 and len(set(extents.rows)) > 1
    block = extents.block
    for mode in ("eval", "train"):
        stacked.train(mode == "train")
        out = stacked(features, lengths)
        for k, (model, batch) in enumerate(zip(separate, batches)):
            model.train(mode == "train")
            torch.manual_seed(k)
            build_model("cmn", "regression", bundle.feature_dims, "LA", "quick", **TINY_MODEL)  # the stream after init
            own = model(batch["features"], batch["lengths"])
            torch.testing.assert_close(out[block * k:block * k + extents.rows[k]], own, atol=1e-5, rtol=0)
    for k, model in enumerate(separate):  # unstacking gives back each seed's own weights
        state = seed_state(stacked, k)
        assert state.keys() == model.state_dict().keys()
        assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())


def test_stacked_training_equals_separate_training_per_seed(bundle, tmp_path):
    spec = tiny_spec()
    stacked = train_group(spec, bundle, [0, 1, 2], tmp_path / "stacked", progress=False, stack=3)
    separate = [T.train_one(spec, bundle, seed, tmp_path / "separate" / f"seed{seed}", progress=False)
                for seed in (0, 1, 2)]
    for a, b in zip(stacked, separate):
        assert a.provenance["stacked_with"] == {"seeds": [0, 1, 2], "stack": 3}
        assert a.best_epoch == b.best_epoch and a.epochs_run == b.epochs_run == 4
        np.testing.assert_allclose(a.curve("train_loss"), b.curve("train_loss"), atol=LOSS_TOLERANCE, rtol=0)
        np.testing.assert_allclose(a.outputs["test"], b.outputs["test"], atol=OUTPUT_TOLERANCE, rtol=0)
    # the control: the same seeds, one of them drawing another seed's dropout stream
    assert np.abs(stacked[1].outputs["test"] - separate[2].outputs["test"]).max() > 100 * OUTPUT_TOLERANCE


def test_a_stacked_run_that_was_killed_resumes_to_the_same_result(bundle, tmp_path, monkeypatch):
    import cmnlib.train_stacked as S
    spec = tiny_spec()
    whole = train_stacked(spec, bundle, [0, 1], tmp_path / "whole", progress=False)
    original, calls = S._after_epoch, {"n": 0}

    def dies_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 4:  # two seeds x two epochs done, their checkpoint written
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(S, "_after_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_stacked(spec, bundle, [0, 1], tmp_path / "killed", progress=False)
    assert (tmp_path / "killed" / "stacked-seeds0_1.pt").exists()
    monkeypatch.setattr(S, "_after_epoch", original)
    resumed = train_stacked(spec, bundle, [0, 1], tmp_path / "killed", progress=False)
    for a, b in zip(whole, resumed):
        assert a.history == b.history and np.array_equal(a.outputs["test"], b.outputs["test"])
    assert not (tmp_path / "killed" / "stacked-seeds0_1.pt").exists()


def test_what_has_no_stacked_form_trains_one_seed_at_a_time(bundle, tmp_path):
    assert stack_refusal(tiny_spec(), bundle) is None
    assert "only cmn" in stack_refusal(tiny_spec(model="mult"), bundle)
    assert "symmetric" in stack_refusal(tiny_spec(model_overrides={**TINY_MODEL, "mua": "symmetric"}), bundle)
    assert "relative_bias" in stack_refusal(tiny_spec(model_overrides={**TINY_MODEL, "alignment": "relative_bias"}),
                                            bundle)
    assert "lr_schedule" in stack_refusal(tiny_spec().with_training(lr_schedule="plateau"), bundle)
    with pytest.raises(NotStackable, match="symmetric"):
        stack_models(*_models(bundle, [0, 1], mua="symmetric"))
    # train_group falls back: the same results as train_one, no stacking recorded
    spec = tiny_spec(model_overrides={**TINY_MODEL, "mua": "symmetric"}).with_training(epochs=1)
    grouped = train_group(spec, bundle, [0, 1], tmp_path / "g", progress=False, stack=2)
    alone = T.train_one(spec, bundle, 1, tmp_path / "alone", progress=False)
    assert "stacked_with" not in grouped[1].provenance and grouped[1].history == alone.history


def test_stack_batches_pads_each_seed_to_the_common_shape():
    extents = SeedExtents()
    batches = [{"features": {"text": torch.ones(2, 3, 4), "audio": torch.ones(2, 3, 1)},
                "lengths": {"text": torch.tensor([3, 2]), "audio": torch.tensor([3, 2])}, "target": torch.zeros(2)},
               {"features": {"text": torch.full((1, 5, 4), 2.0), "audio": torch.full((1, 5, 1), 2.0)},
                "lengths": {"text": torch.tensor([5]), "audio": torch.tensor([5])}, "target": torch.zeros(1)}]
    features, lengths = stack_batches(batches, extents)
    assert extents.rows == [2, 1] and extents.steps == [3, 5] and features["text"].shape == (4, 5, 4)
    assert lengths["text"].tolist() == [3, 2, 5, 0]
    assert features["text"][:2, :3].eq(1).all() and features["text"][:2, 3:].eq(0).all()
    assert features["text"][2].eq(2).all() and features["text"][3].eq(0).all()
    unaligned = [{**batches[0], "features": {"text": torch.ones(2, 3, 4), "audio": torch.ones(2, 4, 1)}}]
    with pytest.raises(NotStackable, match="word-aligned"):
        stack_batches(unaligned, extents)


def test_the_stack_size_comes_from_the_environment_or_the_device(monkeypatch):
    monkeypatch.delenv(STACK_ENV, raising=False)
    assert stack_size("cpu") == 1 and stack_size("cuda") == 10
    monkeypatch.setenv(STACK_ENV, "4")
    assert stack_size("cpu") == 4
    monkeypatch.setenv(STACK_ENV, "four")
    with pytest.raises(ValueError, match=STACK_ENV):
        stack_size("cpu")


def test_cmn_train_stacks_seeds_when_asked_and_says_so(tiny_mosei_dir, tmp_path, capsys, monkeypatch):
    from cmnlib import cli
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    data = ["train", "--dataset", "mosei", "--data", str(tiny_mosei_dir / "mosei_senti_data.pkl"), "--epochs", "1",
            "--seeds", "2"]
    base = data + ["--set", "hidden=16", "--set", "ff_size=24", "--set", "heads=2", "--set", "layers=1"]
    assert cli.main(base + ["--out", str(tmp_path / "stacked"), "--stack", "2"]) == 0
    printed = capsys.readouterr().out
    assert "2 seeds at a time, stacked" in printed and "seed 1: best epoch 1/1" in printed
    folder = next((tmp_path / "stacked").iterdir())
    assert R.read_seed(folder / "seed1").provenance["stacked_with"]["seeds"] == [0, 1]
    assert cli.main(data + ["--out", str(tmp_path / "lstm"), "--model", "lstm_l", "--stack", "2"]) == 0
    assert "one seed at a time: lstm_l has no stacked form" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:  # the parser refuses it in one usage line
        cli.main(base + ["--stack", "0"])
    assert exit_.value.code == 2
    assert "argument --stack: expected a whole number of 1 or more, got 0" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_stacked_training_runs_on_cuda(bundle, tmp_path):
    """On a GPU each seed draws its dropout from a device generator of its own: the stack
    trains, every seed lands in its folder, and without dropout it equals separate runs."""
    spec = tiny_spec().with_training(device="cuda", epochs=2)
    stacked = train_group(spec, bundle, [0, 1], tmp_path / "stacked", progress=False, stack=2)
    assert [m.provenance["stacked_with"]["seeds"] for m in stacked] == [[0, 1], [0, 1]]
    assert all(np.isfinite(m.outputs["test"]).all() for m in stacked)
    quiet = tiny_spec(model_overrides={**TINY_MODEL, "dropout": 0.0, "output_dropout": 0.0}).with_training(
        device="cuda", epochs=2)
    together = train_group(quiet, bundle, [0, 1], tmp_path / "quiet", progress=False, stack=2)
    for seed, member in zip((0, 1), together):
        alone = T.train_one(quiet, bundle, seed, tmp_path / "alone" / f"seed{seed}", progress=False)
        np.testing.assert_allclose(member.outputs["test"], alone.outputs["test"], atol=1e-3, rtol=0)


def test_a_pool_of_workers_trains_stacked_groups_when_asked(bundle, tmp_path, monkeypatch):
    """$CMN_STACK=2 and three seeds: one worker stacks seeds 0-1, the other trains seed 2
    alone; the notebooks' runs (runs.train_many) read the same variable."""
    from cmnlib import runs
    monkeypatch.setenv(STACK_ENV, "2")
    spec = tiny_spec().with_training(epochs=1)
    (result,) = runs.train_many([spec], bundle, 3, processes=2, root=tmp_path)
    stacked_with = [(m.provenance or {}).get("stacked_with") for m in result.members]
    assert stacked_with == [{"seeds": [0, 1], "stack": 2}, {"seeds": [0, 1], "stack": 2}, None]
    alone = T.train_one(spec, bundle, 1, tmp_path / "alone", progress=False)
    np.testing.assert_allclose(result.members[1].outputs["test"], alone.outputs["test"], atol=OUTPUT_TOLERANCE)


def test_a_stack_with_one_seed_left_trains_it_alone(bundle, tmp_path):
    spec = tiny_spec().with_training(epochs=1)
    T.train_one(spec, bundle, 0, tmp_path / "seed0", progress=False)
    first, second = train_stacked(spec, bundle, [0, 1], tmp_path, progress=False)
    alone = T.train_one(spec, bundle, 1, tmp_path / "again" / "seed1", progress=False)
    assert "stacked_with" not in second.provenance and second.history == alone.history and first.seed == 0


def test_stacked_bf16_training_follows_separate_bf16_training(bundle, tmp_path):
    """The bf16 step (16-bit dropout masks, the fused LayerNorm, fused Adam) stacks too. Its
    activations round to 8 bits of mantissa, and a stacked product rounds differently from a
    separate one (outputs differ by about one bf16 step, 2^-7 at 1.0, with the same masks),
    which training amplifies: the tolerance is the first epoch's loss within 1e-2 (fp32's is
    1e-5 over four epochs)."""
    spec = tiny_spec().with_training(precision="bf16", epochs=1)
    stacked = train_group(spec, bundle, [0, 1], tmp_path / "stacked", progress=False, stack=2)
    for seed, member in zip((0, 1), stacked):
        alone = T.train_one(spec, bundle, seed, tmp_path / "alone" / f"seed{seed}", progress=False)
        assert member.fused_kernels == alone.fused_kernels
        np.testing.assert_allclose(member.curve("train_loss"), alone.curve("train_loss"), atol=1e-2, rtol=0)
