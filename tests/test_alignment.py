"""CMN's alignment variants (beyond the paper, issue 'a CMN that uses word alignment'):
'none' is the paper's model unchanged; each variant does what its equation says; unaligned
input is refused."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from cmnlib import cli, runs, tables
from cmnlib.data import load_dataset
from cmnlib.model import CMN, CMNConfig, capture_attention
from cmnlib.model.cmn import ALIGNMENTS, sinusoidal_positions
from cmnlib.model.reference import reference_from

DIMS = {"text": 12, "audio": 7, "vision": 5}


def config(**kw) -> CMNConfig:
    base = dict(modalities="LA", input_dims=DIMS, hidden=16, layers=2, heads=4, ff_size=24, dropout=0.0,
                output_dropout=0.0, head="regression")
    return CMNConfig(**{**base, **kw})


def aligned_batch(b=4, t=7, seed=0, modalities=("text", "audio")):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 1][:b])
    features = {m: torch.randn(b, t, DIMS[m], generator=g) * (torch.arange(t)[None, :, None] < lengths[:, None, None])
                for m in modalities}
    return features, {m: lengths.clone() for m in modalities}


def test_none_is_the_papers_model_unchanged():
    torch.manual_seed(0)
    model = CMN(config()).eval()
    assert model.config.alignment == "none" and ALIGNMENTS[0] == "none"
    # no parameter beyond the paper's: the plain reference (which has only those) loads strictly
    reference = reference_from(model).eval()
    features, lengths = aligned_batch()
    with torch.no_grad():
        torch.testing.assert_close(model(features, lengths), reference(features, lengths), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="paper's model only"):
        reference_from(CMN(config(alignment="diagonal_prior")))


def test_the_position_code_by_hand():
    code = sinusoidal_positions(3, 4)
    # PE[i, 0] = sin(i), PE[i, 1] = cos(i), PE[i, 2] = sin(i / 100), PE[i, 3] = cos(i / 100)
    for i in range(3):
        assert code[i].tolist() == pytest.approx([math.sin(i), math.cos(i), math.sin(i / 100), math.cos(i / 100)],
                                                 abs=1e-6)


def _uniform_scores(model):
    """Zero query projections: every content score is 0, so only the position bias remains."""
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "linear_q"):
                module.linear_q.weight.zero_()
                module.linear_q.bias.zero_()


@pytest.mark.parametrize("mua", ["encoder_decoder", "symmetric"])
def test_diagonal_prior_gives_the_hand_computed_weights(mua):
    torch.manual_seed(1)
    model = CMN(config(alignment="diagonal_prior", alignment_strength=0.5, mua=mua)).eval()
    _uniform_scores(model)
    features, lengths = aligned_batch()
    with torch.no_grad(), capture_attention(model):
        model(features, lengths)
    weights = model.attention_maps()["audio/guided"][0][0, 0]  # utterance 0 (7 steps), head 0
    # softmax over j of -0.5 |i - j|
    for i in range(7):
        expected = torch.tensor([math.exp(-0.5 * abs(i - j)) for j in range(7)])
        torch.testing.assert_close(weights[i], expected / expected.sum(), atol=1e-6, rtol=1e-5)
    # padding keys still get nothing (utterance 1 has 3 words)
    assert float(model.attention_maps()["audio/guided"][0][1, 0, :3, 3:].abs().max()) == 0.0


def test_relative_bias_starts_as_the_paper_and_learns_per_offset():
    torch.manual_seed(2)
    paper = CMN(config()).eval()
    relative = CMN(config(alignment="relative_bias", alignment_window=2)).eval()
    missing = relative.load_state_dict(paper.state_dict(), strict=False)
    assert missing.missing_keys == ["backbone.relative_bias"] and not missing.unexpected_keys
    assert relative.backbone.relative_bias.shape == (4, 5)
    features, lengths = aligned_batch()
    with torch.no_grad():
        torch.testing.assert_close(relative(features, lengths), paper(features, lengths), atol=1e-6, rtol=1e-6)
        _uniform_scores(relative)
        relative.backbone.relative_bias[:, 2] = 20.0  # offset 0: the aligned word
        with capture_attention(relative):
            relative(features, lengths)
    weights = relative.attention_maps()["audio/guided"][1][0]  # utterance 0, every head
    assert torch.allclose(torch.diagonal(weights, dim1=-2, dim2=-1), torch.ones(()), atol=1e-6)
    # a bias at offset +-window is shared by every larger offset
    bias = relative.backbone.guided_bias(7, 7, "cpu")
    assert bias.shape == (4, 7, 7) and bool((bias[:, 6, :3] == bias[:, 6, 0:1]).all())


def test_shared_positions_and_stepwise_fusion_change_what_the_mua_stack_sees():
    torch.manual_seed(3)
    features, lengths = aligned_batch()
    outputs = {}
    for alignment in ALIGNMENTS:
        torch.manual_seed(3)
        model = CMN(config(alignment=alignment)).eval()
        with torch.no_grad():
            outputs[alignment] = model(features, lengths)
    # the same seed gives the same LSTM/MUA weights; each variant changes the function
    assert not torch.allclose(outputs["shared_positions"], outputs["none"])
    assert not torch.allclose(outputs["diagonal_prior"], outputs["none"])
    assert torch.allclose(outputs["relative_bias"], outputs["none"])  # zero-initialised bias
    stepwise = CMN(config(alignment="stepwise_fusion"))
    assert set(stepwise.stepwise) == {"audio"} and stepwise.stepwise["audio"].in_features == 32


@pytest.mark.parametrize("alignment", ALIGNMENTS[1:])
def test_every_variant_refuses_unaligned_input(alignment):
    model = CMN(config(alignment=alignment)).eval()
    features, lengths = aligned_batch()
    features["audio"] = torch.randn(4, 11, DIMS["audio"])  # another number of steps
    lengths["audio"] = torch.tensor([11, 4, 6, 2])
    with pytest.raises(ValueError, match="needs word-aligned input"):
        model(features, lengths)
    assert CMN(config()).eval()(features, lengths).shape == (4,)  # the paper's model takes it


def test_an_unknown_alignment_is_refused():
    with pytest.raises(ValueError, match="alignment must be one of"):
        config(alignment="diagonal")


@pytest.mark.parametrize("alignment", ALIGNMENTS)
def test_every_alignment_trains_from_the_command_line(alignment, tiny_mosei_dir, tmp_path):
    assert cli.main(["train", "--dataset", "mosei", "--data", str(tiny_mosei_dir / "mosei_senti_data.pkl"),
                     "--model", "cmn", "--set", f"alignment={alignment}", "--set", "hidden=16",
                     "--epochs", "1", "--seeds", "1", "--out", str(tmp_path)]) == 0


# --------------------------------------------------------------------------------------
# Recorded runs: the paper-size ablation is shipped as summaries (cmnlib/resources/recorded)
# --------------------------------------------------------------------------------------
def test_a_record_reads_back_what_was_trained_and_retrains_the_same_runs(tiny_mosei_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    call = dict(alignments=("none", "diagonal_prior"), overrides={"hidden": 16}, train={"epochs": 1})
    path = runs.record_alignments("tiny", "tiny", "a test", "mosei", str(tiny_mosei_dir), seeds=1, folder=tmp_path / "rec",
                                  processes=1, progress=False, **call)
    back = runs.recorded("tiny", folder=tmp_path / "rec")
    assert back["description"] == "a test" and back["call"]["seeds"] == 1 and back["call"]["train"] == {"epochs": 1}
    assert list(back["summaries"]) == ["none", "diagonal_prior", "ef_lstm"]
    # the constant predictor's test score: the share of the larger class of the test labels
    test_labels = load_dataset("mosei", tiny_mosei_dir, cache=False)["test"].labels
    assert back["constant"] == pytest.approx(100 * max((test_labels >= 0).mean(), (test_labels < 0).mean()))
    # training the record again reads the same run folders from the cache: same numbers
    live = runs.retrain("tiny", folder=tmp_path / "rec", processes=1, progress=False)
    assert live["data"] == back["data"] and live["data_hash"] == back["data_hash"]
    for name, summary in live["summaries"].items():
        shipped = back["summaries"][name]
        assert shipped["recorded"] is True and shipped["folder"] is None
        assert summary["label"].endswith(", 1 epochs") and summary["spec"]["train"]["epochs"] == 1
        assert shipped["run"] == Path(summary["folder"]).name
        assert shipped["label"] == summary["label"]
        assert shipped["members"] == json.loads(json.dumps(summary["members"]))
        assert shipped["ensemble"] == json.loads(json.dumps(summary["ensemble"]))
    # the specs give today's folder names: the record is current...
    assert runs.recorded_run_names(back) == {name: s["run"] for name, s in back["summaries"].items()}
    # ...and a record whose runs the code would no longer produce is told apart
    back["summaries"]["none"]["spec"]["train"]["epochs"] = 2
    assert runs.recorded_run_names(back)["none"] != back["summaries"]["none"]["run"]
    assert not list(path.parent.glob("*.tmp"))


def test_records_reads_every_declared_record_or_the_names_given():
    assert list(runs.records()) == list(runs.ALIGNMENT_RECORDS)
    first = next(iter(runs.ALIGNMENT_RECORDS))
    assert list(runs.records(first)) == [first] == list(runs.records([first]))
    assert runs.records(first)[first]["summaries"]["none"]["recorded"] is True


def test_a_missing_record_or_field_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"no such record; recorded runs: none"):
        runs.recorded("absent", folder=tmp_path)
    (tmp_path / "broken.json").write_text(json.dumps({"title": "t", "call": {}, "summaries": {}}))  # no 'data' ...
    with pytest.raises(ValueError, match=r"broken\.json: key 'data' is missing"):
        runs.recorded("broken", folder=tmp_path)


def test_the_shipped_records_are_exactly_the_declared_ones():
    assert sorted(p.stem for p in runs.RECORDED_DIR.glob("*.json")) == sorted(runs.ALIGNMENT_RECORDS)


@pytest.mark.parametrize("name", sorted(runs.ALIGNMENT_RECORDS))
def test_every_shipped_record_is_current_and_consistent(name):
    payload = runs.recorded(name)
    declared = {k: v for k, v in runs.ALIGNMENT_RECORDS[name].items() if k not in ("title", "description")}
    assert all(json.loads(json.dumps(v)) == payload["call"][k] for k, v in declared.items())
    assert payload["description"] == runs.ALIGNMENT_RECORDS[name]["description"]
    assert payload["title"] == runs.ALIGNMENT_RECORDS[name]["title"]
    # the code of this checkout would train exactly the recorded runs (same folder names)
    assert runs.recorded_run_names(payload) == {k: s["run"] for k, s in payload["summaries"].items()}
    assert set(payload["summaries"]) == {*declared.get("alignments", ALIGNMENTS), "ef_lstm"}
    for summary in payload["summaries"].values():
        members = summary["members"]
        assert [m["seed"] for m in members] == summary["seeds"] == list(range(payload["call"]["seeds"]))
        for metric, mean in summary["mean"].items():  # the means are those of the members
            assert mean == pytest.approx(sum(m["test"][metric] for m in members) / len(members))
        assert all(1 <= m["best_epoch"] <= m["epochs_run"] <= summary["spec"]["train"]["epochs"] for m in members)


def _summary(label: str, metric: str, scores: list[float]) -> dict:
    return {"label": label, "members": [{"test": {metric: s / 100}} for s in scores]}


def test_the_alignment_targets_are_judged_from_every_variants_findings():
    ceilings = {"L": {"acc2_has0": 0.816}, "LA": {"acc2_has0": 0.938}}
    paper, diag, rel = "CMN (L+A)", "CMN (L+A), alignment=diagonal_prior", "CMN (L+A), alignment=relative_bias"
    mosei = {"none": _summary(paper, "acc2_has0", [79, 80, 79.5, 80.5]),
             "diagonal_prior": _summary(diag, "acc2_has0", [85, 86, 87, 86]),      # mean 86, clearly above 81.6
             "relative_bias": _summary(rel, "acc2_has0", [70, 90, 75, 88]),         # straddles it
             "ef_lstm": _summary("EF-LSTM (L+A)", "acc2_has0", [95, 95.2, 95.1, 94.9])}  # not a CMN variant
    iemocap = {"none": _summary(paper, "macro_f1", [68, 68.4]),
               "diagonal_prior": _summary(diag, "macro_f1", [50, 50.2])}            # loses 18 points
    ablation = {"mosei": tables.alignment_findings("mosei", mosei, ceilings),
                "iemocap": tables.alignment_findings("iemocap", iemocap, None)}
    record = {"call": {"dataset": "mosei", "scale": "paper"}, "ceilings": ceilings,
              "summaries": {"none": _summary(paper, "acc2_has0", [83, 83.2]),
                            "diagonal_prior": _summary(diag, "acc2_has0", [80, 80.2]),  # 80.1 [78.8, 81.4] < 90.8
                            # a higher mean, but an interval too wide to be closer to the target
                            "stepwise_fusion": _summary("CMN (L+A), alignment=stepwise_fusion", "acc2_has0",
                                                        [70, 99])}}
    rows = tables.alignment_targets(ablation, {"paper-size": record})
    assert list(rows["verdict"]) == ["met", "not met", "open"]  # step-wise fusion's interval contains 90.8
    assert rows.loc[0, "met by"] == diag                       # relative_bias is inconclusive, EF-LSTM not counted
    assert rows.loc[2, "closest"].startswith(f"{diag}: 80.1 [78.8, 81.4] against 90.8 (2 seeds)")
    # nothing measured the paper-size target without a record: open, not met
    assert tables.alignment_targets(ablation, {}).loc[2, "verdict"] == "open"


def test_the_records_overview_has_one_row_per_record_with_each_models_mean():
    ceilings = {"L": {"acc2_has0": 0.816}, "LA": {"acc2_has0": 0.938}}
    quick = {"title": "quick", "call": {"dataset": "mosei", "seeds": 2}, "ceilings": ceilings,
             "summaries": {"none": _summary("CMN (L+A)", "acc2_has0", [79, 80]),
                           "stepwise_fusion": _summary("s", "acc2_has0", [88, 90.5])}}
    iemocap = {"title": "iemocap", "call": {"dataset": "iemocap", "seeds": 1}, "ceilings": None,
               "summaries": {"none": _summary("CMN (L+A)", "macro_f1", [68.25]),
                             "ef_lstm": _summary("EF-LSTM (L+A)", "macro_f1", [56])}}
    table = tables.records_overview({"a": quick, "b": iemocap})
    assert list(table.columns) == ["record", "metric", "paper's CMN", "step-wise fusion", "EF-LSTM", "seeds",
                                   "L ceiling", "L+A ceiling"]
    first, second = table.to_dict("records")
    assert (first["paper's CMN"], first["step-wise fusion"], first["L+A ceiling"]) == (79.5, 89.2, 93.8)
    assert second["metric"] != first["metric"] and second["paper's CMN"] == 68.2 and second["EF-LSTM"] == 56.0
    assert pd.isna(second["step-wise fusion"]) and pd.isna(second["L ceiling"])
