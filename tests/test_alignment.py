"""CMN's alignment variants (beyond the paper): 'none' is the paper's model unchanged; each
variant does what its equation says; unaligned input is refused. The study's records
(shipped long runs), findings and targets."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cmnlib import cli, findings, results
from cmnlib.data import load_dataset
from cmnlib.studies import alignment as A
from cmnlib.studies import bayes
from fake_runs import fake_run
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
# Recorded runs: the long runs ship as records (cmnlib/resources/recorded)
# --------------------------------------------------------------------------------------
def test_a_record_reads_back_what_was_trained_and_retrains_the_same_runs(tiny_mosei_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    call = dict(overrides={"hidden": 16}, train={"epochs": 1})
    path = A.record_alignments("tiny", "tiny", "a test", "mosei", str(tiny_mosei_dir), seeds=1,
                               alignments=("none", "diagonal_prior"), folder=tmp_path / "rec", processes=1,
                               progress=False, **call)
    back = A.recorded("tiny", folder=tmp_path / "rec")
    assert back.description == "a test" and back.call["seeds"] == 1 and back.call["train"] == {"epochs": 1}
    assert back.call["alignments"] == ["none", "diagonal_prior"] and back.recorded and not back.metric_only
    assert list(back.runs) == ["none", "diagonal_prior", "ef_lstm"]
    # the constant predictor's test score: the share of the larger class of the test labels
    test_labels = load_dataset("mosei", tiny_mosei_dir, cache=False)["test"].labels
    assert back.constant == pytest.approx(100 * max((test_labels >= 0).mean(), (test_labels < 0).mean()))
    # training the record again reads the same run folders from the cache: same numbers
    live = A.retrain("tiny", folder=tmp_path / "rec", processes=1, progress=False)
    assert live.data == back.data and live.data_hash == back.data_hash and not live.recorded
    for name, run in live.runs.items():
        shipped = back.runs[name]
        assert shipped.recorded and shipped.folder is None and run.folder is not None
        assert run.label.endswith(", 1 epochs") and run.spec.train.epochs == 1
        assert shipped.recorded_run == Path(run.folder).name and shipped.label == run.label
        assert [m.history for m in shipped.members] == json.loads(json.dumps([m.history for m in run.members]))
        # the record stores the test outputs and labels: its metrics are computed, and equal the live ones
        assert shipped.has_outputs("test") and not shipped.has_outputs("valid")
        assert shipped.metrics("test") == run.metrics("test") and shipped.ensemble() == run.ensemble()
    # the record keeps the Bayes rules of its test split: the rules of the data themselves
    bundle = load_dataset("mosei", tiny_mosei_dir)
    for subset in ("L", "LA"):
        kept, direct = bayes.record_rule(back, subset), bayes.bayes_rule(bundle, subset)
        assert np.array_equal(kept.predicted, direct.predicted) and np.array_equal(kept.truth, direct.truth)
        assert kept.data_hash == direct.data_hash == back.data_hash and kept.classes == direct.classes == 2
        # and the F1-optimal form, for judging an F1
        kept, direct = bayes.record_rule(back, subset, "f1_has0"), bayes.bayes_rule(bundle, subset, metric="f1_has0")
        assert np.array_equal(kept.predicted, direct.predicted) and kept.optimises == direct.optimises == "f1_has0"
        assert bayes.record_rule(back, subset, "macro_f1") is None  # another data set's F1: none kept
    # ...so the record's findings are judged on the same test utterances, exactly as from the data
    from_record = A.record_findings(back)
    from_data = A.alignment_findings("mosei", back.runs, back.ceilings, scale="quick", bundle=bundle,
                                     test_size=len(test_labels))
    assert from_record == from_data and any(dict(f.params).get("where") == "the same test utterances"
                                            for f in from_record)
    # the specs give today's folder names: the record is current...
    assert A.recorded_run_names(back) == {name: r.recorded_run for name, r in back.runs.items()}
    # ...and a record whose runs the code would no longer produce is told apart
    back.runs["none"].spec.train.epochs = 2
    assert A.recorded_run_names(back)["none"] != back.runs["none"].recorded_run
    assert not list(path.parent.glob("*.tmp"))


def test_records_reads_every_declared_record_or_the_names_given():
    assert list(A.records()) == list(A.ALIGNMENT_RECORDS)
    first = next(iter(A.ALIGNMENT_RECORDS))
    assert list(A.records(first)) == [first] == list(A.records([first]))
    assert A.records(first)[first].runs["none"].recorded is True


def test_a_missing_record_or_field_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"no such record; recorded runs: none"):
        A.recorded("absent", folder=tmp_path)
    (tmp_path / "broken.json").write_text(json.dumps({"format": results.RECORD_FORMAT, "name": "b", "title": "t",
                                                      "description": "", "call": {}}))  # no 'data' ...
    with pytest.raises(ValueError, match=r"broken\.json: key 'data' is missing"):
        A.recorded("broken", folder=tmp_path)
    (tmp_path / "old.json").write_text(json.dumps({"title": "t"}))
    with pytest.raises(ValueError, match=r"old\.json: record format None, expected 2"):
        A.recorded("old", folder=tmp_path)


def test_rules_are_added_to_a_record_only_from_the_data_it_was_scored_on(tiny_mosei_dir, tiny_iemocap_dir,
                                                                          tmp_path, monkeypatch):
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    A.record_alignments("tiny", "tiny", "a test", "mosei", str(tiny_mosei_dir), seeds=1, alignments=("none",),
                        folder=tmp_path, processes=1, progress=False, train={"epochs": 1},
                        overrides={"hidden": 16})
    path = tmp_path / "tiny.json"
    written = json.loads(path.read_text())
    # a record written before rules were kept: keep_rules gives it the rules it would have had
    without = {k: v for k, v in written.items() if k != "bayes_rules"}
    path.write_text(json.dumps(without))
    assert A.recorded("tiny", folder=tmp_path).bayes_rules is None
    A.keep_rules("tiny", folder=tmp_path)
    assert json.loads(path.read_text()) == written
    # data of another hash (another draw in the same place) are refused, the file untouched
    without["call"]["source"] = str(tiny_iemocap_dir)
    without["call"]["dataset"] = "iemocap"
    path.write_text(json.dumps(without))
    with pytest.raises(ValueError, match=r"tiny\.json: its runs were scored on data of hash .* retrain the record"):
        A.keep_rules("tiny", folder=tmp_path)
    assert json.loads(path.read_text()) == without
    # a damaged rules entry is one error naming the file and the key
    broken = {**written, "bayes_rules": {**written["bayes_rules"], "predicted": {"L": written["bayes_rules"]["truth"]
                                                                                  | {"shape": [1]}}}}
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"tiny\.json: key 'bayes_rules' is not readable"):
        A.recorded("tiny", folder=tmp_path)


def test_the_shipped_records_are_exactly_the_declared_ones():
    assert sorted(p.stem for p in A.RECORDED_DIR.glob("*.json")) == sorted(A.ALIGNMENT_RECORDS)


@pytest.mark.parametrize("name", sorted(A.ALIGNMENT_RECORDS))
def test_every_shipped_record_is_current_and_consistent(name, monkeypatch):
    monkeypatch.setenv("CMN_NUDGE_INITIAL_WEIGHTS", "1")  # as in make test's nbval pass: records keep their names
    record = A.recorded(name)
    declared = {k: v for k, v in A.ALIGNMENT_RECORDS[name].items() if k not in ("title", "description")}
    assert all(json.loads(json.dumps(v)) == record.call[k] for k, v in declared.items())
    assert (record.description, record.title) == (A.ALIGNMENT_RECORDS[name]["description"],
                                                  A.ALIGNMENT_RECORDS[name]["title"])
    # the code of this checkout would train exactly the recorded runs (same folder names)
    assert A.recorded_run_names(record) == {k: r.recorded_run for k, r in record.runs.items()}
    assert list(record.runs) == [*declared["alignments"], "ef_lstm"]
    for run in record.runs.values():
        seeds = record.call["seeds"]
        assert run.seeds == (list(range(seeds)) if isinstance(seeds, int) else seeds)
        assert all(1 <= m.best_epoch <= m.epochs_run <= run.spec.train.epochs for m in run.members)
        if run.metric_only:  # written before records stored outputs: the metrics as they were trained
            assert run.ensemble() and all(run.metrics())
        else:  # the stored outputs give the metrics recorded with them
            for computed, member in zip(run.metrics(), run.members):
                assert computed == pytest.approx(member.recorded_metrics["test"], nan_ok=True)
            # and are judged against the Bayes rule on the same test utterances: the record keeps it
            rule = bayes.record_rule(record, "L")
            assert rule is not None and bayes.applies(rule, run, "acc2_has0" if rule.classes == 2 else "accuracy")


def test_a_record_keeps_the_trainer_version_that_trained_it():
    """Records written before the provenance named the trainer were trained by version 2;
    their run folders are named with it, their captions say so, and a record trained today
    names today's version and says nothing."""
    from dataclasses import replace
    from cmnlib.spec import TRAINER_VERSION
    record = A.recorded("alignment_mosei_quick_plateau")
    assert "trainer" not in record.provenance and record.trainer == 2
    run = record.runs["none"]
    assert run.spec.folder_name(record.data_hash, 2) == run.recorded_run
    assert run.spec.folder_name(record.data_hash) != run.recorded_run  # today's version names another folder
    assert "trained by trainer version 2" in A.record_label(record)
    today = replace(record, provenance={**record.provenance, "trainer": TRAINER_VERSION})
    assert today.trainer == TRAINER_VERSION and "trainer version" not in A.record_label(today)
    assert results.provenance_here()["trainer"] == TRAINER_VERSION


def test_a_metric_only_record_says_so_and_keeps_its_numbers():
    record = A.recorded("alignment_mosei_paper_30epochs")
    assert record.metric_only and "metric-only" in A.record_label(record)
    run = record.runs["none"]
    assert run.scores("acc2_has0") == [100 * m.recorded_metrics["test"]["acc2_has0"] for m in run.members]
    with pytest.raises(KeyError, match="no 'brand_new' on test"):
        run.scores("brand_new")


# --------------------------------------------------------------------------------------
# Findings and targets, on hand-made runs
# --------------------------------------------------------------------------------------
def _runs(dataset, metric, **scores):
    """name -> a fake run of that CMN variant (or 'ef_lstm') with these test scores (percent)."""
    out = {}
    for name, values in scores.items():
        per_seed = [{metric: v / 100} for v in values]
        out[name] = (fake_run("ef_lstm", "LA", per_seed, dataset) if name == "ef_lstm" else
                     fake_run("cmn", "LA", per_seed, dataset, **({} if name == "none" else {"alignment": name})))
    return out


CEILINGS = {"L": {"acc2_has0": 0.816}, "LA": {"acc2_has0": 0.938}}


def test_alignment_table_and_findings_by_hand():
    ceilings = {"L": {"acc2_has0": 0.80}, "LA": {"acc2_has0": 0.90}}
    found_runs = _runs("mosei", "acc2_has0", none=[78, 80], diagonal_prior=[86, 88], ef_lstm=[84, 85])
    table = A.alignment_table("mosei", found_runs, ceilings)
    assert table["model"].tolist() == ["CMN (L+A)", "CMN (L+A), alignment=diagonal_prior", "EF-LSTM (L+A)",
                                       "Bayes ceiling (L)", "Bayes ceiling (L+A)"]
    assert table["Acc2: mean"].tolist() == [79.0, 87.0, 84.5, 80.0, 90.0]
    found = A.alignment_findings("mosei", found_runs, ceilings)
    above, loses = found[0], found[1]
    # 86, 88 against the text-only ceiling 80: mean 87, sd sqrt(2), t(1) = 12.706 -> 87 ± 12.706
    assert above.estimate == pytest.approx(87.0) and above.verdict == "inconclusive"
    assert above.subject.model_overrides == {"alignment": "diagonal_prior"} and above.target == "quick"
    # variant minus paper: 87 - 79 = 8; threshold -1 (loses no more than a point)
    assert loses.estimate == pytest.approx(8.0) and loses.threshold == pytest.approx(-1.0)
    assert loses.kind == "difference" and loses.subjects[1].model_overrides == {}
    assert len(found) == 4  # two per non-paper row
    assert A.alignment_findings("mosei", {"ef_lstm": found_runs["ef_lstm"]}, ceilings) == []


def test_the_alignment_targets_are_judged_from_every_variants_findings():
    mosei = _runs("mosei", "acc2_has0", none=[79, 80, 79.5, 80.5],
                  diagonal_prior=[85, 86, 87, 86],        # mean 86, clearly above 81.6
                  relative_bias=[70, 90, 75, 88],         # straddles it
                  ef_lstm=[95, 95.2, 95.1, 94.9])         # not a CMN variant
    iemocap = _runs("iemocap", "macro_f1", none=[68, 68.4], diagonal_prior=[50, 50.2])  # loses 18 points
    ablation = {"mosei": A.alignment_findings("mosei", mosei, CEILINGS),
                "iemocap": A.alignment_findings("iemocap", iemocap, None)}
    paper_size = _runs("mosei", "acc2_has0", none=[83, 83.2],
                       diagonal_prior=[80, 80.2],         # 80.1, 13.7 points under the L+A ceiling 93.8
                       stepwise_fusion=[70, 99])          # a higher mean, but too wide an interval to be closer
    record = results.Record("r", "paper-size", "", {"dataset": "mosei", "scale": "paper", "seeds": 2}, "SYNTHETIC",
                            "h", CEILINGS, 69.0, paper_size, {"machine": "m", "torch": "t", "date": "d"})
    rows = A.alignment_targets(ablation, {"paper-size": record})
    diag = "CMN (L+A), alignment=diagonal_prior"
    assert list(rows["verdict"]) == ["met", "not met", "open"]  # step-wise fusion's interval contains 90.8
    assert rows.loc[0, "met by"] == diag                       # relative_bias is inconclusive, EF-LSTM not counted
    # a metric-only record: against the expected ceiling with the test split's sampling at the
    # paper-size 4,659 utterances: var 0.02 / 2 (seeds) + 1e4 * 0.801 * 0.199 / 4659 (test),
    # Welch-Satterthwaite dof ~991 -> -13.7 ± 1.962 * 0.593
    assert rows.loc[2, "closest"].startswith(f"{diag}: -13.7 [-14.9, -12.5] against -3.0 (2 seeds)")
    # nothing measured the paper-size target without a record: open, not met
    assert A.alignment_targets(ablation, {}).loc[2, "verdict"] == "open"
    # the quick target counts findings on the quick MOSEI-like scale only
    paper_scale = {"mosei": A.alignment_findings("mosei", mosei, CEILINGS, scale="paper")}
    assert A.alignment_targets(paper_scale, {}).loc[0, "verdict"] == "open"


def test_a_target_with_a_fresh_draw_is_judged_on_it_alone():
    """The quick target, chosen on one draw, judged on a record of another draw with other
    seeds; confirming on the data or the seeds that chose is refused."""
    prov = {"machine": "m", "torch": "t", "date": "d"}
    chose = results.Record("c", "chose", "", {"dataset": "mosei", "scale": "quick", "seeds": 2}, "S", "hash-0",
                           CEILINGS, 69.0, _runs("mosei", "acc2_has0", none=[79, 80],
                                                 stepwise_fusion=[95, 95.5]), prov)  # far above 81.6
    fresh_runs = _runs("mosei", "acc2_has0", none=[79, 80, 79.5, 80.5], stepwise_fusion=[80, 83, 81, 82])
    for run in fresh_runs.values():
        for member, seed in zip(run.members, (10, 11, 12, 13)):
            member.seed = seed
    fresh = results.Record("f", "fresh draw", "", {"dataset": "mosei", "scale": "quick", "seeds": [10, 11, 12, 13],
                                                   "confirms": "quick"}, "S", "hash-1", CEILINGS, 69.0, fresh_runs,
                           prov)
    unconfirmed = A.alignment_targets({}, {"c": chose})
    assert unconfirmed.loc[0, "verdict"] == "met" and "no fresh-draw confirmation" in unconfirmed.loc[0, "judged on"]
    confirmed = A.alignment_targets({}, {"c": chose, "f": fresh})
    # on the fresh draw alone step-wise fusion's 81.5 is not decided above 81.6, whatever the chosen run said
    assert confirmed.loc[0, "verdict"] == "open" and confirmed.loc[0, "judged on"] == "fresh draw only (fresh draw)"
    assert confirmed.loc[0, "competing"] == 1
    same_data = results.Record("f", "fresh draw", "", dict(fresh.call), "S", "hash-0", CEILINGS, 69.0, fresh_runs,
                               prov)
    with pytest.raises(ValueError, match="on the data that chose it"):
        A.alignment_targets({}, {"c": chose, "f": same_data})
    reused = _runs("mosei", "acc2_has0", none=[79, 80], stepwise_fusion=[90, 91])  # seeds 0 and 1 again
    with pytest.raises(ValueError, match=r"training seeds that chose it \(\[0, 1\]"):
        A.alignment_targets({}, {"c": chose, "f": results.Record("f", "t", "", dict(fresh.call), "S", "hash-1",
                                                                  CEILINGS, 69.0, reused, prov)})


def test_the_records_overview_has_one_row_per_record_with_each_models_mean():
    ceilings = {"L": {"acc2_has0": 0.816}, "LA": {"acc2_has0": 0.938}}
    prov = {"machine": "m", "torch": "t", "date": "d"}
    quick = results.Record("q", "quick", "", {"dataset": "mosei", "seeds": 2}, "S", "h", ceilings, 69.0,
                           _runs("mosei", "acc2_has0", none=[79, 80], stepwise_fusion=[88, 90.5]), prov)
    iemocap = results.Record("i", "iemocap", "", {"dataset": "iemocap", "seeds": 1}, "S", "h", None, 30.0,
                             _runs("iemocap", "macro_f1", none=[68.25], ef_lstm=[56]), prov)
    table = A.records_overview({"a": quick, "b": iemocap})
    assert list(table.columns) == ["record", "metric", "paper's CMN", "step-wise fusion", "EF-LSTM", "seeds",
                                   "L ceiling", "L+A ceiling"]
    first, second = table.to_dict("records")
    assert (first["paper's CMN"], first["step-wise fusion"], first["L+A ceiling"]) == (79.5, 89.2, 93.8)
    assert second["metric"] != first["metric"] and second["paper's CMN"] == 68.2 and second["EF-LSTM"] == 56.0
    assert pd.isna(second["step-wise fusion"]) and pd.isna(second["L ceiling"])
    # a record that keeps its test split's Bayes rules shows their scores there, beside the expectation
    truth = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    kept = dataclasses.replace(quick, bayes_rules={"split": "test", "classes": 2, "truth": truth, "predicted": {
        "L": np.array([1, 1, 0, 1, 1, 0, 0, 1]), "LA": truth.copy()}})
    row = A.records_overview({"k": kept}).to_dict("records")[0]
    assert (row["L rule, this test split"], row["L+A rule, this test split"]) == (75.0, 100.0)  # 6/8 and 8/8


def test_the_guide_attention_claim_follows_the_findings():
    from cmnlib import findings
    from cmnlib.studies.common import ABOVE_TEXT_CEILING
    own = findings.Question("own", "{subject} attends to its own word")
    no = findings.exceeds(own, "paper CMN", "x", [1.1, 1.12, 1.15], 1.25)
    paper_spec = fake_run("cmn", "LA", [{}]).spec
    variant_spec = fake_run("cmn", "LA", [{}], alignment="diagonal_prior").spec
    below = findings.exceeds(ABOVE_TEXT_CEILING, paper_spec, "Acc2", [79, 79.5, 80], 81.6)
    above = findings.exceeds(ABOVE_TEXT_CEILING, variant_spec, "Acc2", [86, 86.5, 87], 81.6)
    row = A.guide_attention_claim("SYNTHETIC MOSEI-like", no, below, [above])
    assert no.verdict == "not supported" and above.verdict == "supported"
    assert row["verdict"] == "not supported on this data" and row["status"] == "synthetic evidence only"
    assert "Variants that do score above the ceiling: CMN (L+A), alignment=diagonal_prior." in row["evidence"]
    yes = findings.exceeds(own, "paper CMN", "x", [1.5, 1.6, 1.55], 1.25)
    assert A.guide_attention_claim("REAL", yes, above, [])["verdict"] == "supported on this data"
    # the paper's own setting weighs most: a paper-size record above the ceiling, with the
    # mechanism not seen at the quick profile, leaves the claim open (and says why)
    paper_size = findings.exceeds(ABOVE_TEXT_CEILING, paper_spec, "Acc2", [88, 89, 90], 81.6)
    mixed = A.guide_attention_claim("SYNTHETIC MOSEI-like", no, below, [above], [paper_size])
    assert mixed["verdict"] == "inconclusive on this data" and "Paper-size records" in mixed["evidence"]
    assert A.guide_attention_claim("S", yes, below, [], [paper_size])["verdict"] == "supported on this data"


def test_capacity_findings_pair_the_two_widths_seed_by_seed():
    """The declared capacity study on two hand-made records that differ in width alone:
    hidden 512 minus hidden 64 per model, paired by seed (differences 2, 4, 3 -> 3 ± t(0.975,
    2) * 1 / sqrt 3), and the variant against the paper's CMN at each width."""
    prov = {"machine": "m", "torch": "t", "date": "d"}
    narrow = results.Record(A.CAPACITY_PAIR[0], "w64", "", {"dataset": "mosei", "scale": "quick", "seeds": 3}, "S",
                            "h", CEILINGS, 69.0, _runs("mosei", "acc2_has0", none=[80, 81, 82],
                                                       stepwise_fusion=[85, 86, 87], ef_lstm=[70, 70, 70]), prov)
    wide = results.Record(A.CAPACITY_PAIR[1], "w512", "", {"dataset": "mosei", "scale": "quick", "seeds": 3}, "S",
                          "h", CEILINGS, 69.0, _runs("mosei", "acc2_has0", none=[82, 85, 85],
                                                     stepwise_fusion=[85, 86, 87], ef_lstm=[70, 71, 72]), prov)
    for name in ("none", "stepwise_fusion"):  # the wide record's CMNs at hidden 512; EF-LSTM has no width
        run = wide.runs[name]
        run.spec = dataclasses.replace(run.spec, model_overrides={**run.spec.model_overrides, "hidden": 512})
    found = A.capacity_findings({r.name: r for r in (narrow, wide)})
    wider, gains = findings.select(found, A.WIDER_SCORES_MORE), findings.select(found, A.VARIANT_GAINS)
    # EF-LSTM takes no width (the same spec in both): no width finding for it, nor a variant's
    assert len(wider) == 2 and len(gains) == 2 and all(f.paired for f in found)
    paper_width = wider[0]
    half = 4.302652729749464 / math.sqrt(3)  # t(0.975, 2) * sd(2, 4, 3) / sqrt(3)
    assert paper_width.estimate == pytest.approx(3.0)
    assert (paper_width.low, paper_width.high) == pytest.approx((3.0 - half, 3.0 + half))
    assert paper_width.verdict == "supported"
    assert wider[1].flag is not None  # step-wise fusion: the same scores at both widths, no spread
    # the variant gains 5 points at hidden 64 (no spread: flagged) and 2.0 at 512: (3, 1, 2) -> 2 ± 2.48
    assert [f.estimate for f in gains] == pytest.approx([5.0, 2.0])
    assert gains[1].verdict == "inconclusive" and "hidden 512" in gains[1].claim
    assert A.capacity_findings({narrow.name: narrow}) == []  # one record alone asks nothing
