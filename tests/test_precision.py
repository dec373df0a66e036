"""Precision as a run option: fp32 stays the paper's float32 model bit for bit (and keeps its
run hashes); bf16 is mixed precision with float32 weights, optimizer state, loss, softmax
and LayerNorm statistics; auto follows the hardware."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
import torch

from cmnlib import cli, precision
from cmnlib.data import load_dataset
from cmnlib.data.loader import make_loader
from cmnlib.model import CMN, CMNConfig
from cmnlib.model.attention import mcan_layer_norm, softmax
from cmnlib.train import LOADER_VERSION, TRAIN_PROFILES, TRAINER_VERSION, RunSpec, train_step

DIMS = {"text": 12, "audio": 7}


def test_resolve_and_auto_follow_the_hardware(monkeypatch):
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    assert precision.resolve("auto") == "bf16" and precision.cpu_features()["AMX-BF16"]
    # AVX512-BF16 alone: dot-product instructions, not matrix units
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert precision.resolve("auto") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("fp16")


def test_fp32_runs_keep_their_hash_and_bf16_runs_get_their_own():
    spec = RunSpec(model="cmn", dataset="mosei", modalities="LA", profile="quick")
    resolved = spec.resolved()
    train = resolved.train.to_dict()
    assert train.pop("precision") == "fp32"
    legacy = {"model": "cmn", "dataset": "mosei", "head": "regression", "modalities": "LA", "profile": "quick",
              "model_overrides": {}, "train": train, "data": "abc", "loader": LOADER_VERSION,
              "trainer": TRAINER_VERSION}
    assert spec.key("abc") == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]
    bf16 = replace(spec, train=replace(TRAIN_PROFILES["quick"], precision="bf16"))
    assert bf16.key("abc") != spec.key("abc") and bf16.resolved().train.precision == "bf16"


def test_mixed_precision_keeps_statistics_and_state_in_float32():
    x = (torch.randn(3, 5, 16) + 100.0).to(torch.bfloat16)  # a large offset: bf16 statistics would lose it
    a, b = torch.ones(16), torch.zeros(16)
    out = mcan_layer_norm(x, a, b)
    assert out.dtype == torch.bfloat16
    reference = mcan_layer_norm(x.float(), a, b)
    torch.testing.assert_close(out.float(), reference, atol=2e-2, rtol=2e-2)
    scores = torch.randn(2, 7).to(torch.bfloat16)
    assert softmax(scores, -1).dtype == torch.bfloat16
    torch.testing.assert_close(softmax(scores, -1).float().sum(-1), torch.ones(2), atol=1e-2, rtol=0)


def test_a_bf16_step_leaves_float32_weights_and_adam_state(tiny_mosei_dir):
    bundle = load_dataset("mosei", tiny_mosei_dir, cache=False)
    torch.manual_seed(0)
    model = CMN(CMNConfig(input_dims=bundle.feature_dims, hidden=16, heads=4, ff_size=24))
    optimizer = precision.adam(model.parameters(), "bf16", lr=1e-3)
    batch = next(iter(make_loader(bundle["train"], "LA", "regression", batch_size=8, shuffle=True, seed=0)))
    loss = train_step(model, optimizer, "regression", batch, precision="bf16")
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(s["exp_avg"].dtype == torch.float32 for s in optimizer.state.values())
    # the same weights give nearly the same outputs in both precisions
    model.eval()
    features, lengths = batch["features"], batch["lengths"]
    with torch.no_grad():
        fp32 = model(features, lengths)
        with precision.autocast("bf16"):
            bf16 = model(features, lengths)
    torch.testing.assert_close(bf16.float(), fp32, atol=0.1, rtol=0.05)


def test_cmn_train_records_the_precision(tiny_mosei_dir, tmp_path, capsys):
    assert cli.main(["train", "--dataset", "mosei", "--data", str(tiny_mosei_dir / "mosei_senti_data.pkl"),
                     "--set", "hidden=16", "--epochs", "1", "--seeds", "1", "--precision", "bf16",
                     "--out", str(tmp_path)]) == 0
    (summary,) = [json.loads(p.read_text()) for p in tmp_path.glob("*/ensemble.json")]
    assert summary["spec"]["train"]["precision"] == "bf16"


def test_the_cli_offers_the_precisions_the_library_knows():
    from cmnlib import options  # options repeats the tuple so that `cmn --help` does not load torch
    assert options.PRECISIONS == precision.PRECISIONS


def test_the_bf16_step_uses_fused_adam_which_computes_the_same_adam():
    torch.manual_seed(0)
    weights = [torch.randn(5, 3), torch.randn(7)]
    by_precision = {}
    for name in ("fp32", "bf16"):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        optimizer = precision.adam(params, name, lr=1e-2, weight_decay=1e-3)
        by_precision[name] = (params, optimizer)
    assert by_precision["bf16"][1].defaults["fused"] is True
    assert not by_precision["fp32"][1].defaults["fused"]  # the loop: fp32 runs keep their bits
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = [torch.randn(w.shape, generator=generator) for w in weights]
        for params, optimizer in by_precision.values():
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
    for fused, loop in zip(by_precision["bf16"][0], by_precision["fp32"][0]):
        torch.testing.assert_close(fused, loop, atol=1e-6, rtol=1e-6)
    # and both moved the weights as Adam does: by about lr per step in the gradient's sign
    assert (by_precision["fp32"][0][0] - weights[0]).abs().max() <= 5 * 1e-2 * 1.01


def test_a_bf16_run_hash_names_the_low_precision_step_and_fp32_does_not(monkeypatch):
    from cmnlib import train as T
    fp32 = T.RunSpec(train=T.TrainConfig(precision="fp32"))
    bf16 = T.RunSpec(train=T.TrainConfig(precision="bf16"))
    before = fp32.key("h"), bf16.key("h")
    monkeypatch.setattr(T, "LOW_PRECISION_STEP", T.LOW_PRECISION_STEP + 1)
    assert fp32.key("h") == before[0] and bf16.key("h") != before[1]
