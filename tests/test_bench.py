"""The benchmark's plain reference CMN computes what cmnlib's fast CMN computes, and the
bench runs end to end in its tiny mode (no timing is asserted: machines are noisy)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from cmnlib import bench
from cmnlib.bench import report
from cmnlib.bench.report import _quick_section
from cmnlib.data import load_dataset
from cmnlib.model import CMN, CMNConfig
from cmnlib.model.attention import dropout, mcan_layer_norm
from cmnlib.spec import TRAINER_VERSION

DIMS = {"text": 12, "audio": 7, "vision": 5}


def config(**kw) -> CMNConfig:
    base = dict(modalities="LA", input_dims=DIMS, hidden=16, layers=2, heads=4, ff_size=24,
                dropout=0.1, output_dropout=0.3, head="regression")
    return CMNConfig(**{**base, **kw})


def noisy_batch(names, b=6, seed=0):
    """Right-padded features with NOISE in the padding (both models must ignore it)."""
    g = torch.Generator().manual_seed(seed)
    features, lengths = {}, {}
    for i, m in enumerate(names):
        t = 9 + 2 * i
        length = torch.tensor([t, 1, 3, t - 2, 5, t][:b])
        features[m] = torch.randn(b, t, DIMS[m], generator=g) * 3
        lengths[m] = length
    return features, lengths


@pytest.mark.parametrize("overrides", bench.EQUALITY_CONFIGS + [dict(modalities="LAV", heads=1, layers=3),
                                                                dict(modalities="LA", mua="stacked", glimpses=3)])
def test_reference_and_fast_cmn_give_the_same_outputs(overrides):
    torch.manual_seed(0)
    model = CMN(config(**overrides)).eval()
    reference = bench.reference_from(model).eval()
    assert set(reference.state_dict()) == set(model.state_dict())
    features, lengths = noisy_batch(model.config.modality_names)
    with torch.no_grad():
        torch.testing.assert_close(model(features, lengths), reference(features, lengths), atol=1e-5, rtol=1e-5)
    assert bench.compare_outputs(model.config) < 1e-5


@pytest.mark.parametrize("mua", ["encoder_decoder", "symmetric"])
def test_reference_and_fast_cmn_give_the_same_gradients(mua):
    torch.manual_seed(1)
    model = CMN(config(modalities="LAV", mua=mua, dropout=0.0, output_dropout=0.0, head="4class")).train()
    reference = bench.reference_from(model).train()
    features, lengths = noisy_batch(model.config.modality_names)
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    for m in (model, reference):
        torch.nn.functional.cross_entropy(m(features, lengths), target).backward()
    grads = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_mcan_layer_norm_function_matches_the_formula_and_its_gradient():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6, dtype=torch.double, requires_grad=True)
    a = torch.randn(6, dtype=torch.double, requires_grad=True)
    b = torch.randn(6, dtype=torch.double, requires_grad=True)
    expected = a * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6) + b
    torch.testing.assert_close(mcan_layer_norm(x, a, b), expected)
    assert torch.autograd.gradcheck(lambda *t: mcan_layer_norm(*t, 1e-6), (x, a, b))


def test_fast_dropout_keeps_1_minus_p_scales_and_is_seeded():
    module = torch.nn.Dropout(0.25).train()
    x = torch.ones(200_000, requires_grad=True)
    torch.manual_seed(3)
    y = dropout(x, module)
    torch.manual_seed(3)
    assert torch.equal(y, dropout(x, module))
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    assert torch.allclose(y[kept], torch.tensor(1 / 0.75))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient: the same mask and scale
    assert dropout(x, module.eval()) is x


def test_bench_tiny_mode_writes_the_expected_json(tmp_path, tiny_mosei_dir, data_home):
    results = bench.run_bench(tmp_path / "out", mode="tiny", data_source=str(tiny_mosei_dir / "mosei_senti_data.pkl"),
                              isolate=False, echo=False, precision="bf16")
    written = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert set(written) == {"meta", "gemm", "gemm_bf16", "equality", "training", "speedup", "speedup_bf16",
                            "scaling", "data", "epoch", "quick_profile", "notebook_times"}
    bf16_ab = written["speedup_bf16"][0]
    assert bf16_ab["fast_precision"] == "bf16" and bf16_ab["ratio"] > 0 and isinstance(bf16_ab["ratios_agree"], bool)
    assert "optimizer (Adam)" in bf16_ab["profile_s"]["fast"]  # the fused kernel is counted as Adam
    assert written["gemm_bf16"]["dtype"] == "bfloat16" and written["gemm_bf16"]["gflops"] > 0
    assert {("cmn", "bf16")} <= {(r["kind"], r["precision"]) for r in written["training"]}
    assert set(written["meta"]["cpu_features"]) == {"AVX2", "AVX-512", "AVX512-BF16", "AMX-BF16"}
    assert written["gemm"]["gflops"] > 0
    assert {(r["kind"], r["profile"]) for r in written["training"]} >= {("cmn", "tiny"), ("reference", "tiny")}
    assert any(r["model"] == "MulT" for r in written["training"])
    for row in written["training"]:
        assert {"samples_per_s", "peak_rss_mb", "latency_ms", "flops_per_utt", "train_gflops",
                "gemm_fraction"} <= set(row)
        assert set(row["latency_ms"]) == {"1", "4"}
    speed = written["speedup"][0]
    assert speed["max_abs_diff_eval"] < 1e-5 and {"ratio", "ratio_separate_processes", "profile_s"} <= set(speed)
    assert isinstance(speed["ratios_agree"], bool)
    assert "The two measurements " in (tmp_path / "out" / "bench.md").read_text()
    assert all(r["max_abs_diff"] < 1e-5 for r in written["equality"])
    assert {r["model"] for r in written["scaling"]} == {"CMN (tiny)", "MulT"}
    assert {"cache_load_s", "loader_samples_per_s"} <= set(written["data"][0])
    assert {"samples_per_s", "ratio", "mean_padded_length_epoch"} <= set(written["epoch"])
    table = re.sub(r" +", " ", (tmp_path / "out" / "bench.md").read_text())  # columns are padded to width
    assert "| CMN | plain reference | fp32 | tiny |" in table and "GEMM peak" in table
    assert "## bf16 against the 3x target" in table and "| CMN | cmnlib (fast) | bf16 | tiny |" in table
    assert "Where the bf16 step's time goes" in table and "| dropout RNG |" in table
    # the report says how the bf16 step's LayerNorm ran, and the profile counts its kernels
    if bf16_ab["fused_kernels"] == "compiled":
        assert "fused kernels (MCAN LayerNorm) ran compiled by torch.compile" in table
        assert bf16_ab["profile_s"]["fast"].get("fused kernels (torch.compile: LayerNorm)", 0) > 0
    else:
        assert bf16_ab["fused_kernels"].startswith("eager (") and "(MCAN LayerNorm) ran eager (" in table
    assert results["meta"]["mode"] == "tiny"
    # the quick-profile section: one row per planned model, a profile whose shares add up
    quick = written["quick_profile"]
    assert [(r["model"], r["modalities"]) for r in quick["rows"]] == [("cmn", "LA"), ("lstm_l", "L")]
    for row in quick["rows"]:
        assert row["step_s"] > 0 and row["samples_per_s"] > 0 and 0 < row["gemm_fraction"]
        assert row["steps_per_epoch"] == -(-60 // 64) and sum(row["profile_s"].values()) > 0
    assert "## The quick profile: the steps the notebooks train" in table and "| cmn (LA) |" in table
    # stacked seeds against one at a time: CMN only, the planned stack size, a ratio measured
    (stacked,) = quick["stacked"]
    assert (stacked["model"], stacked["stack"]) == ("cmn", 2) and stacked["speedup"] > 0
    assert stacked["speedup_range"][0] <= stacked["speedup_range"][1]
    assert "Stacked seeds against one seed at a time" in table and "| cmn (LA) | 2 |" in table
    # today's step against trainer version 2's, per planned model: the ratio of the two medians
    versions = quick["step_versions"]
    assert [(r["model"], r["versions"]) for r in versions] == [(m, [2, TRAINER_VERSION]) for m in ("cmn", "lstm_l")]
    for row in versions:
        assert row["speedup"] == pytest.approx(row["step_s_earlier"] / row["step_s_today"])
        assert row["speedup_range"][0] <= row["speedup_quartiles"][1] <= row["speedup_range"][1]
    assert "against trainer version 2's (Adam's per-tensor loop" in table and "| cmn (LA) | 2 |" in table
    assert table.splitlines()[2].startswith(results["meta"]["machine"])  # every run names its machine
    # the performance page's generated part comes from the run, headings under the page's own
    page = tmp_path / "docs" / "performance.md"
    page.parent.mkdir()
    page.write_text(f"# Performance\n\nprose\n\n{report.PAGE_BEGIN}\nold numbers\n{report.PAGE_END}\n\nmore prose\n")
    bench.write_page(tmp_path / "out" / "bench.json", page)
    text = page.read_text()
    assert text.startswith("# Performance\n\nprose\n\n") and text.endswith("\n\nmore prose\n")
    assert "old numbers" not in text and "### cmnlib bench (tiny)" in text and "#### Data" in text
    assert json.loads((page.parent / "bench.json").read_text()) == written
    assert report.splice_page(text, written) == text  # the same run gives the same page
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="performance.md: the page needs one"):
        bench.write_page(tmp_path / "out" / "bench.json", page)
    assert page.read_text() == "no markers\n"


def test_notebook_times_read_the_reproduce_manifest(tmp_path):
    assert bench.notebook_times(tmp_path / "absent.json") is None
    manifest = {"total_seconds": 12.5, "git_commit": "abc", "notebooks": [
        {"notebook": "01_data.ipynb", "seconds": 2.0, "status": "ok"},
        {"notebook": "02_sa.ipynb", "seconds": 10.5, "status": "skipped"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    times = bench.notebook_times(tmp_path / "manifest.json")
    assert times["total_seconds"] == 12.5 and [n["seconds"] for n in times["notebooks"]] == [2.0, 10.5]
    section = "\n".join(_quick_section({"quick_profile": {"gemm_peak_1thread": 100.0, "rows": []},
                                        "notebook_times": times}))
    assert section.count("02_sa.ipynb") == 1 and "12 s in all" in section
    # a manifest that records where the time went and what the runs trained
    manifest.update(phase_seconds={"data": 1.0, "runs": 9.0, "notebooks": 2.5},
                    runs_first={"runs": 2, "seeds": 4, "trained": 3, "seconds": 9.0})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    times = bench.notebook_times(tmp_path / "manifest.json")
    section = "\n".join(_quick_section({"quick_profile": {"gemm_peak_1thread": 100.0, "rows": []},
                                        "notebook_times": times}))
    assert ("12 s in all: the data 1 s, the runs 9 s, the notebooks 2 s; 3 of its 4 seeds trained, "
            "the rest read from the cache") in section


def test_bench_precisions_follow_the_cpu(monkeypatch):
    features = {"AVX2": True, "AVX-512": True, "AVX512-BF16": True, "AMX-BF16": False}
    monkeypatch.setattr(bench, "cpu_features", lambda: dict(features))
    measured, note = bench.bench_precisions("auto")
    assert measured == ["fp32"] and "no bf16 matrix units" in note  # the README states this machine's case
    assert bench.bench_precisions("bf16")[0] == ["fp32", "bf16"]
    features["AMX-BF16"] = True
    assert bench.bench_precisions("auto") == (["fp32", "bf16"], "fp32 and bf16: this CPU has bf16 matrix units (AMX)")
    assert bench.bench_precisions("fp32")[0] == ["fp32"]


def test_bench_measures_each_configuration_in_its_own_process():
    job = {"kind": "reference", "profile": "quick", "overrides": bench.TINY_CMN, "lengths": (5, 6), "batch": 3,
           "warmup": 0, "steps": 1, "latency_reps": (1, 1), "threads": 1}
    row = bench.spawn(bench.worker_train, job)
    assert row["peak_rss_mb"] > 0 and row["threads"] == 1 and row["samples_per_s"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_reference_and_fast_cmn_agree_on_cuda():
    torch.manual_seed(2)
    model = CMN(config(modalities="LAV", dropout=0.0, output_dropout=0.0, head="4class")).cuda()
    reference = bench.reference_from(model)
    features, lengths = noisy_batch(model.config.modality_names)
    features = {m: x.cuda() for m, x in features.items()}
    lengths = {m: x.cuda() for m, x in lengths.items()}
    model.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(features, lengths), reference(features, lengths), atol=1e-4, rtol=1e-4)
    model.train(), reference.train()
    target = torch.tensor([0, 1, 2, 3, 0, 1], device="cuda")
    for m in (model, reference):
        torch.nn.functional.cross_entropy(m(features, lengths), target).backward()
    grads = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-4, rtol=1e-3, msg=name)
    with_dropout = CMN(config(modalities="LA")).cuda().train()  # CUDA keeps F.dropout
    with_dropout(features, lengths).sum().backward()


@pytest.mark.long(minutes=1.4)
def test_parity_study_trains_both_precisions_and_writes_its_findings(tmp_path, tiny_mosei_dir, tiny_iemocap_dir,
                                                                     monkeypatch):
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    results = bench.run_parity(tmp_path / "out", seeds=2, echo=False,
                               sources={"mosei": str(tiny_mosei_dir / "mosei_senti_data.pkl"),
                                        "iemocap": str(tiny_iemocap_dir / "iemocap_data.pkl")})
    for dataset in ("mosei", "iemocap"):
        assert set(results[dataset]["scores"]) == {"fp32", "bf16"}
        assert all(len(v) == 2 for v in results[dataset]["scores"].values())
        assert len(results[dataset]["findings"]) == 2
    text = (tmp_path / "out" / "parity.md").read_text()
    assert "in bf16 scores no more than" in text and "| bf16 " in text
    assert json.loads((tmp_path / "out" / "parity.json").read_text()).keys() == {"mosei", "iemocap"}


def test_seeds_timing_trains_the_seeds_together_and_writes_what_it_measured(tmp_path, tiny_mosei_dir):
    from cmnlib.bench.seeds import time_seeds
    from cmnlib.train import RunSpec, TrainConfig, train_seeds
    result = time_seeds(tmp_path / "out", seeds=2, device="cpu", precision="fp32", source=str(tiny_mosei_dir),
                        scale="quick", epochs=1, overrides={"hidden": 16, "ff_size": 32}, root=tmp_path / "runs",
                        echo=False)
    assert result["seeds"] == 2 and result["processes"] == 2 and result["seconds"] > 0
    assert result["epochs_run"] == [1, 1] and result["train_samples"] == 60
    # the concurrent seeds are the seeds trained one after another in this process
    spec = RunSpec(model="cmn", dataset="mosei", modalities="LA", profile="paper",
                   train=TrainConfig(**{**result["spec"]["train"]}), model_overrides={"hidden": 16, "ff_size": 32})
    sequential = train_seeds(spec, load_dataset("mosei", tiny_mosei_dir, cache=False), 2, root=tmp_path / "again",
                             progress=False)
    assert result["scores"] == sequential.scores("acc2_has0")
    text = (tmp_path / "out" / "seeds.md").read_text()
    assert "2 CMN seeds trained together on one device" in text and f"{result['minutes']:.1f} min" in text
    assert json.loads((tmp_path / "out" / "seeds.json").read_text())["scores"] == result["scores"]
    assert result["stack"] == 1 and "one seed at a time per process" in text


def test_seeds_timing_stacks_the_seeds_where_asked(tmp_path, tiny_mosei_dir, monkeypatch):
    """What a GPU does by default (10 seeds as one computation), asked for on the CPU: one
    process for the stack, and the scores of the seeds trained one at a time, within the
    stacked trainer's tolerance (tests/test_stacked.py)."""
    from cmnlib.bench.seeds import time_seeds
    monkeypatch.setenv("CMN_STACK", "2")
    kw = dict(seeds=2, device="cpu", precision="fp32", source=str(tiny_mosei_dir), scale="quick", epochs=1,
              overrides={"hidden": 16, "ff_size": 32}, echo=False)
    stacked = time_seeds(tmp_path / "stacked", root=tmp_path / "runs-stacked", **kw)
    assert stacked["stack"] == 2 and stacked["processes"] == 1
    assert "2 seeds stacked as one computation per process" in (tmp_path / "stacked" / "seeds.md").read_text()
    monkeypatch.setenv("CMN_STACK", "1")
    alone = time_seeds(tmp_path / "alone", root=tmp_path / "runs-alone", **kw)
    assert alone["stack"] == 1 and alone["processes"] == 2
    np.testing.assert_allclose(stacked["scores"], alone["scores"], atol=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_seeds_timing_on_cuda_without_a_gpu_says_so(tmp_path, capsys):
    from cmnlib import cli
    assert cli.main(["bench", "--seeds-timing", "10", "--out", str(tmp_path)]) == 2
    assert re.search(r"error: --device cuda: no CUDA device is visible.*--device cpu", capsys.readouterr().err)


def test_ratio_agreement_by_hand():
    # separate: reference 10-12 ms, fast 5-6 ms -> 10/6 = 1.67 to 12/5 = 2.4; alternating pairs 2.0, 2.2
    found = bench.ratio_agreement([10, 11, 12], [5, 6, 5.5], [10, 11], [5, 5])
    assert found["ratio_separate_range"] == pytest.approx([10 / 6, 12 / 5])
    assert found["ratio_alternating_range"] == pytest.approx([2.0, 2.2]) and found["ratios_agree"]
    # alternating says 3x, separate at most 2.4x: they disagree
    assert not bench.ratio_agreement([10, 11, 12], [5, 6, 5.5], [15, 15.3], [5, 5])["ratios_agree"]


def test_the_performance_page_holds_the_committed_bench_run():
    """docs/performance.md's generated part is what `make bench-page` makes of docs/bench.json
    (the page's numbers come from the run beside it, with its machine, never by hand)."""
    from pathlib import Path
    docs = Path(__file__).resolve().parents[1] / "docs"
    results = json.loads((docs / "bench.json").read_text())
    page = (docs / "performance.md").read_text()
    assert report.splice_page(page, results) == page
    assert results["meta"]["machine"] in page


def test_stack_timing_measures_stacked_against_separate_and_names_the_device(tmp_path, tiny_mosei_dir):
    from cmnlib.bench.seeds import time_stacking
    result = time_stacking(tmp_path, stack=2, device="cpu", precision="fp32", profile="quick", steps=1,
                           source=str(tiny_mosei_dir), overrides={"hidden": 16, "ff_size": 32}, echo=False)
    assert result["stack"] == 2 and result["speedup"] > 0 and result["device"] == "cpu"
    text = (tmp_path / "stacked.md").read_text()
    assert "2 CMN seeds stacked against one at a time" in text and result["device_name"] in text
    assert json.loads((tmp_path / "stacked.json").read_text())["speedup"] == result["speedup"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_stack_timing_on_cuda_without_a_gpu_says_so(tmp_path, capsys):
    from cmnlib import cli
    assert cli.main(["bench", "--stack-timing", "10", "--out", str(tmp_path)]) == 2
    assert re.search(r"error: --device cuda: no CUDA device is visible.*--device cpu", capsys.readouterr().err)
