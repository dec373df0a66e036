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
from cmnlib.model import compiled
from cmnlib.model.attention import dropout, keep_mask_16bit, mcan_layer_norm, softmax
from cmnlib.model.mult import official_dropout as mult_official_dropout
from cmnlib.data.sources import LOADER_VERSION
from cmnlib.results import read_run
from cmnlib.train import TRAIN_PROFILES, TRAINER_VERSION, RunSpec, train_step, trainer_step

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
    (folder,) = [p.parent for p in tmp_path.glob("*/run.json")]
    run = read_run(folder, [0])
    assert run.spec.train.precision == "bf16"
    (member,) = run.members  # and how the bf16 step's fused kernels ran
    assert member.fused_kernels == "compiled" or member.fused_kernels.startswith("eager (")


def test_the_cli_offers_the_precisions_the_library_knows():
    choices = {a.dest: a.choices for a in cli.build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    assert tuple(choices["precision"]) == precision.PRECISIONS


def test_every_step_uses_fused_adam_which_computes_the_loop_s_adam():
    """Trainer versions 3 and 4 step fp32 and bf16 runs with the fused Adam; version 2's per-tensor
    loop (kept for the benchmark's side-by-side) computes the same Adam to the last bits."""
    torch.manual_seed(0)
    weights = [torch.randn(5, 3), torch.randn(7)]
    steppers = {}
    for name, version in (("fp32", TRAINER_VERSION), ("bf16", TRAINER_VERSION), ("fp32", 2)):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        with trainer_step(version):
            steppers[name, version] = (params, precision.adam(params, name, lr=1e-2, weight_decay=1e-3))
    today = TRAINER_VERSION
    assert steppers["fp32", today][1].defaults["fused"] is True and steppers["bf16", today][1].defaults["fused"] is True
    assert not steppers["fp32", 2][1].defaults["fused"]  # the loop
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = [torch.randn(w.shape, generator=generator) for w in weights]
        for params, optimizer in steppers.values():
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
    for fused, loop in zip(steppers["fp32", TRAINER_VERSION][0], steppers["fp32", 2][0]):
        torch.testing.assert_close(fused, loop, atol=1e-6, rtol=1e-6)
    # and both moved the weights as Adam does: by about lr per step in the gradient's sign
    assert (steppers["fp32", 2][0][0] - weights[0]).abs().max() <= 5 * 1e-2 * 1.01


def test_runs_are_never_trained_with_an_earlier_step(tiny_mosei_dir, tmp_path):
    """trainer_step(2) times version 2's step; a run trained inside it would be saved under
    today's version, so training is refused there, and allowed again after the block."""
    from cmnlib.data.mult_pkl import read_mult_pickle
    from cmnlib.train import TrainConfig, train_one
    spec = RunSpec(model="lstm_l", modalities="L", train=TrainConfig(epochs=1, batch_size=8, threads=1))
    bundle = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")
    for earlier in (2, 3):
        with trainer_step(earlier), pytest.raises(RuntimeError, match=f"trainer version {TRAINER_VERSION}'s step only"):
            train_one(spec, bundle, 0, tmp_path / "seed0", progress=False)
        assert not (tmp_path / "seed0" / "result.json").exists()
    assert train_one(spec, bundle, 0, tmp_path / "seed0", progress=False).epochs_run == 1
    with pytest.raises(ValueError, match=f"version 2, 3 or {TRAINER_VERSION}"):
        with trainer_step(1):
            pass


def test_a_bf16_run_hash_names_the_low_precision_step_and_fp32_does_not(monkeypatch):
    from cmnlib import spec as S
    fp32 = S.RunSpec(train=S.TrainConfig(precision="fp32"))
    bf16 = S.RunSpec(train=S.TrainConfig(precision="bf16"))
    before = fp32.key("h"), bf16.key("h")
    monkeypatch.setattr(S, "LOW_PRECISION_STEP", S.LOW_PRECISION_STEP + 1)
    assert fp32.key("h") == before[0] and bf16.key("h") != before[1]


# --------------------------------------------------------------------------------------
# The bf16 step's own kernels: 16-bit dropout masks and the fused LayerNorm
# --------------------------------------------------------------------------------------

def test_16bit_dropout_masks_drop_p_in_every_lane_independently():
    torch.manual_seed(0)
    n, p = 1 << 20, 0.1
    keep, scale = keep_mask_16bit((n,), p)
    p_drawn = round(p * 65536) / 65536  # p on the 16-bit grid: 6554 / 65536
    assert abs(p_drawn - p) < 1e-5 and scale * (1 - p_drawn) == pytest.approx(1.0, abs=1e-12)
    dropped = (~keep).double()
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.mean().item() - p_drawn) < 5 * sigma
    # each 64-bit draw feeds four neighbouring elements: every lane drops at rate p ...
    for lane in range(4):
        assert abs(dropped[lane::4].mean().item() - p_drawn) < 5 * 2 * sigma
    # ... and neighbours are uncorrelated (within a draw and across draws)
    centred = dropped - dropped.mean()
    for lag in (1, 2, 3, 4):
        correlation = (centred[:-lag] * centred[lag:]).mean() / centred.var()
        assert abs(correlation.item()) < 5 / n ** 0.5


def test_low_precision_dropout_is_unbiased_and_its_gradient_is_the_mask():
    module = torch.nn.Dropout(0.1).train()
    torch.manual_seed(1)
    x = (torch.randn(1 << 20) + 3.0).to(torch.bfloat16).requires_grad_()
    out = dropout(x, module)
    assert out.dtype == torch.bfloat16
    kept = out != 0
    # E[out] = x: the mean over a million elements within 4 standard errors. A keep-mask
    # stored in bf16 with the scale rounded to bf16 (1/0.9 -> 1.109375) is off by 0.16%,
    # about 5 standard errors here, and fails this.
    x64, out64 = x.detach().double(), out.detach().double()
    standard_error = ((out64 - x64).var() / x64.numel()).sqrt()
    assert abs((out64 - x64).mean()) < 4 * standard_error
    out.backward(torch.ones_like(out))
    assert torch.equal(x.grad != 0, kept)  # (no element of x is 0)
    torch.testing.assert_close(x.grad[kept].double(), torch.full_like(x.grad[kept], 1 / 0.9).double(),
                               atol=0, rtol=2 ** -8)  # the scale, rounded to bf16
    torch.manual_seed(1)
    torch.randn(1 << 20)  # the same generator state as before x's draw ...
    assert torch.equal(dropout(x.detach(), module), out.detach())  # ... the same mask


def test_float32_dropout_draws_16bit_masks_and_trainer_2_drew_uniforms():
    """Trainer versions 3 and 4: a float32 tensor's mask is cut from 64-bit words of the global
    generator, four 16-bit lanes each, dropped below round(p * 2^16) - 2^15, kept values
    scaled by 2^16 / (2^16 - round(p * 2^16)); inside trainer_step(2), version 2's
    torch.rand uniforms >= p, times 1 / (1 - p)."""
    module = torch.nn.Dropout(0.3).train()
    x = torch.randn(64, 33)
    torch.manual_seed(5)
    out = dropout(x, module)
    torch.manual_seed(5)
    words = torch.empty(-(-x.numel() // 4), dtype=torch.int64).random_(-2 ** 63, None)
    lanes = words.view(torch.int16)[:x.numel()].view(x.shape)
    dropped_below = round(0.3 * 65536)
    keep = (lanes >= dropped_below - 32768).float()
    assert torch.equal(out, x * (keep * (65536 / (65536 - dropped_below))))
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.03
    with trainer_step(2):
        torch.manual_seed(5)
        earlier = dropout(x, module)
    torch.manual_seed(5)
    assert torch.equal(earlier, x * torch.rand_like(x).ge_(0.3).mul_(1 / 0.7))


def test_mult_draws_16bit_masks_and_trainer_3_drew_the_official_ones():
    """Trainer version 4: MulT's dropout is CMN's 16-bit keep-mask (the mask written out by
    hand from the same generator); inside trainer_step(3) and (2) it is the official
    F.dropout, bernoulli_ masks from the same seed; evaluation drops nothing either way."""
    from cmnlib.model.mult import MultiheadAttention, TransformerEncoderLayer
    layer = TransformerEncoderLayer(10, 2, attn_dropout=0.2, relu_dropout=0.1, res_dropout=0.1).train()
    x = torch.randn(7, 3, 10)
    outputs = {}
    for version in (4, 3, 2):
        with trainer_step(version):
            torch.manual_seed(11)
            outputs[version] = layer(x)
    torch.manual_seed(11)
    with mult_official_dropout():
        official = layer(x)
    assert torch.equal(outputs[3], official) and torch.equal(outputs[2], official)
    assert not torch.equal(outputs[4], official)
    attention = MultiheadAttention(10, 2, attn_dropout=0.25).train()
    torch.manual_seed(3)
    today = attention(x, x, x)
    # the same attention written out, its weights dropped by the hand-made 16-bit mask
    q, k, v = (torch.nn.functional.linear(x, w, b) for w, b in zip(attention.in_proj_weight.chunk(3),
                                                                      attention.in_proj_bias.chunk(3)))
    q = q * attention.scaling

    def heads(t):
        return t.reshape(7, 3, 2, 5).permute(1, 2, 0, 3)
    weights = torch.softmax(heads(q) @ heads(k).transpose(-2, -1), dim=-1)
    torch.manual_seed(3)
    n = weights.numel()
    lanes = torch.empty(-(-n // 4), dtype=torch.int64).random_(-2 ** 63, None).view(torch.int16)[:n]
    dropped_below = round(0.25 * 65536)
    keep = (lanes.view(weights.shape) >= dropped_below - 32768).float() * (65536 / (65536 - dropped_below))
    by_hand = attention.out_proj(((weights * keep) @ heads(v)).permute(2, 0, 1, 3).reshape(7, 3, 10))
    torch.testing.assert_close(today, by_hand, atol=1e-6, rtol=1e-6)
    layer.eval()
    with trainer_step(3):
        official_eval = layer(x)
    assert torch.equal(layer(x), official_eval)


def _mcan_layer_norm_float64(x, a, b, eps=1e-6):
    """The formula itself in float64 with autograd: the independent expectation."""
    centred = x - x.mean(-1, keepdim=True)
    return a * centred / (x.std(-1, keepdim=True) + eps) + b


@pytest.mark.parametrize("compile_kernels", ["1", "0"])
def test_low_precision_layer_norm_and_its_gradient_match_the_formula(monkeypatch, compile_kernels):
    monkeypatch.setenv("CMN_COMPILE", compile_kernels)
    torch.manual_seed(2)
    x = (torch.randn(4, 9, 32) * 3 + 50.0).to(torch.bfloat16)  # an offset that bf16 statistics would lose
    x[0, 0] = 7.0  # a constant row: xhat = 0, and a finite gradient
    a, b = torch.randn(32).requires_grad_(), torch.randn(32).requires_grad_()
    grad = torch.randn(4, 9, 32).to(torch.bfloat16)
    xq = x.clone().requires_grad_()
    out = mcan_layer_norm(xq, a, b)
    out.backward(grad)
    assert out.dtype == xq.grad.dtype == torch.bfloat16 and a.grad.dtype == torch.float32
    x64 = x.double().requires_grad_()
    a64, b64 = a.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    expected = _mcan_layer_norm_float64(x64, a64, b64)
    expected.backward(grad.double())
    torch.testing.assert_close(out.double(), expected, atol=0.05, rtol=2 ** -7)
    assert torch.isfinite(xq.grad).all()
    torch.testing.assert_close(xq.grad[1:].double(), x64.grad[1:], atol=0.02, rtol=2 ** -6)
    torch.testing.assert_close(a.grad.double(), a64.grad, atol=0.05, rtol=1e-2)
    torch.testing.assert_close(b.grad.double(), b64.grad, atol=1e-3, rtol=1e-3)


def test_a_bf16_step_is_deterministic_under_a_seed():
    def trained():
        torch.manual_seed(3)
        model = CMN(CMNConfig(input_dims=DIMS, hidden=16, heads=4, ff_size=24)).train()
        optimizer = precision.adam(model.parameters(), "bf16", lr=1e-3)
        generator = torch.Generator().manual_seed(4)
        features = {"text": torch.randn(6, 5, 12, generator=generator),
                    "audio": torch.randn(6, 8, 7, generator=generator)}
        batch = {"features": features, "lengths": {"text": torch.tensor([5, 4, 5, 3, 5, 2]),
                                                     "audio": torch.tensor([8, 8, 6, 7, 3, 8])},
                 "target": torch.randn(6, generator=generator)}
        for _ in range(2):
            train_step(model, optimizer, "regression", batch, precision="bf16")
        return [p.detach().clone() for p in model.parameters()]
    first, second = trained(), trained()
    assert all(torch.equal(p, q) for p, q in zip(first, second))


def test_a_kernel_falls_back_to_eager_once_when_compiling_fails(monkeypatch):
    def failing_compile(fn, **kwargs):
        def run(*args):
            raise torch._dynamo.exc.TorchDynamoException("No working C++ compiler found")
        return run
    monkeypatch.setattr(torch, "compile", failing_compile)
    monkeypatch.setattr(compiled, "_REGISTRY", [])  # this test's kernels only
    kernel = compiled.fused(lambda x: x * 2 + 1)
    assert compiled.summary() == "not used"
    with pytest.warns(RuntimeWarning, match="running it eagerly"):
        assert torch.equal(kernel(torch.arange(3.0)), torch.tensor([1.0, 3.0, 5.0]))
    assert kernel.state().startswith("eager (TorchDynamoException: No working C++ compiler")
    assert compiled.summary() == kernel.state()  # what a run's result.json records
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning comes once
        assert torch.equal(kernel(torch.ones(2)), torch.tensor([3.0, 3.0]))


def test_an_error_inside_a_compiled_kernel_is_not_hidden_and_cmn_compile_0_skips_compiling(monkeypatch):
    def compile_that_breaks(fn, **kwargs):
        def run(*args):
            raise RuntimeError("shape mismatch")
        return run
    monkeypatch.setattr(torch, "compile", compile_that_breaks)
    monkeypatch.setattr(compiled, "_REGISTRY", [])
    kernel = compiled.fused(lambda x: x + 1)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        kernel(torch.ones(2))
    monkeypatch.setenv("CMN_COMPILE", "0")
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("compiled although CMN_COMPILE=0"))
    other = compiled.fused(lambda x: x - 1)
    assert torch.equal(other(torch.ones(2)), torch.zeros(2)) and other.state() == "eager (CMN_COMPILE=0)"


def test_without_a_cpp_compiler_the_bf16_layer_norm_runs_eagerly(tmp_path):
    """The real failure, not a stand-in: inductor pointed at a compiler that does not exist
    (and an empty kernel cache) warns once per kernel and the step goes on eagerly."""
    import os
    import subprocess
    import sys
    script = (
        "import json, torch\n"
        "from cmnlib.model import compiled\n"
        "from cmnlib.model.attention import mcan_layer_norm\n"
        "x = (torch.randn(2, 3, 8) + 5).to(torch.bfloat16).requires_grad_()\n"
        "a, b = torch.ones(8, requires_grad=True), torch.zeros(8, requires_grad=True)\n"
        "mcan_layer_norm(x, a, b).float().sum().backward()\n"
        "print(json.dumps({'status': compiled.status(), 'finite': bool(torch.isfinite(x.grad.float()).all())}))\n")
    env = {**os.environ, "CXX": str(tmp_path / "no-such-g++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache"),
           "CMN_COMPILE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["finite"]
    assert all(state.startswith("eager (") and "compiler" in state.lower() for state in result["status"].values())
    assert done.stderr.count("running it eagerly") == 2  # one warning per kernel (forward, backward)
