"""Tables 1-2 and the shared table formatting, on hand-made runs whose expected cells are
computed by hand; and the metric walk: a metric added in one place appears in a table built
from cached runs, without retraining."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cmnlib import metrics, tables
from cmnlib import train as T
from cmnlib.data.mult_pkl import read_mult_pickle
from fake_runs import fake_run


def _mosei_metrics(acc2, mae=0.8, corr=0.5):
    return {"acc2_has0": acc2, "f1_has0": acc2, "acc2_non0": acc2, "f1_non0": acc2, "mae": mae, "corr": corr}


CEILINGS = {s: {"acc2_has0": c, "f1_has0": c, "acc2_non0": c, "f1_non0": c}
            for s, c in {"L": 0.80, "A": 0.70, "V": 0.72, "LA": 0.90, "LAV": 0.92}.items()}


@pytest.fixture()
def mosei_frame():
    runs = [
        # two seeds 0.84 and 0.86: mean 0.85, std 0.0141; MAE 0.79 and 0.81
        fake_run("cmn", "LA", [_mosei_metrics(0.84, mae=0.79), _mosei_metrics(0.86, mae=0.81)],
                 ensemble=_mosei_metrics(0.86)),
        fake_run("lstm_l", "L", [_mosei_metrics(0.78), _mosei_metrics(0.78)], ensemble=_mosei_metrics(0.79)),
        fake_run("majority", "L", [_mosei_metrics(0.70), _mosei_metrics(0.70)]),
    ]
    return tables.results_frame("mosei", runs, CEILINGS)


def test_results_frame_holds_reported_reproduced_and_ceiling_rows(mosei_frame):
    kinds = mosei_frame.groupby("kind").size().to_dict()
    assert kinds["reported (paper)"] == len(tables.PAPER_TABLE2)
    assert kinds["Bayes ceiling"] == 5
    # the constant predictor has no std / ensemble rows: seeds add nothing to a constant
    majority = mosei_frame[mosei_frame.model == "Majority / mean"]
    assert list(majority.kind) == ["mean over seeds"]
    cmn = mosei_frame[(mosei_frame.model == "CMN (L+A)") & (mosei_frame.kind == "ensemble")].iloc[0]
    assert cmn["acc2"] == pytest.approx(86.0) and cmn["mae"] == pytest.approx(0.8)  # percent; MAE as is
    ceiling = mosei_frame[mosei_frame.model == "Bayes-optimal (L+A)"].iloc[0]
    assert ceiling["acc2"] == pytest.approx(90.0) and pd.isna(ceiling["mae"])


def test_display_table_formats_mean_and_std_and_saves_four_formats(mosei_frame, tmp_path):
    shown = tables.display_table(mosei_frame, "SYNTHETIC test label")
    row = shown[(shown.Model == "CMN (L+A)") & shown.Rows.str.startswith("mean")].iloc[0]
    std = np.std([84, 86], ddof=1)
    assert row["Acc2"] == f"85.0 ± {std:.1f}" and row["MAE"] == f"0.800 ± {np.std([0.79, 0.81], ddof=1):.3f}"
    # the paper's own rows (real data) are not mixed into the reproduced table
    assert shown[shown.Model == "CMN (L+A)"].Rows.tolist() == ["mean over seeds (2 seeds)", "ensemble of 2"]
    assert "reported (paper)" not in set(shown.Rows)
    reported = tables.reported_table("mosei")
    assert reported.to_dict("list") == {"Model": [r["model"] for r in tables.PAPER_TABLE2],
                                        "Acc2": [f"{r['acc2']:.1f}" for r in tables.PAPER_TABLE2],
                                        "F1": [f"{r['f1']:.1f}" for r in tables.PAPER_TABLE2]}
    assert reported.attrs["data"].startswith("reported by the paper (real MOSEI, its Table 2)")
    assert tables.reported_table("mosi").empty
    # the caption names the data and the precision the runs trained in
    assert shown.attrs["data"] == "SYNTHETIC test label; precision fp32"
    paths = tables.save_table(shown, "table2", tmp_path, numeric=mosei_frame)
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex", ".html"]
    fragment = paths[3].read_text()
    assert "data: SYNTHETIC test label; precision fp32" in fragment and "85.0 ± 1.4" in fragment
    csv = pd.read_csv(paths[0])
    assert set(csv["data"]) == {"SYNTHETIC test label; precision fp32"} and len(csv) == len(mosei_frame)
    assert "SYNTHETIC test label" in paths[1].read_text() and "85.0 ± 1.4" in paths[1].read_text()
    assert "SYNTHETIC test label" in paths[2].read_text() and "\\begin{tabular}" in paths[2].read_text()
    assert tables.save_table(shown, "table2", None) == []
    assert not list(tmp_path.glob("*.tmp"))  # written whole


def test_the_table_columns_come_from_the_metric_registry():
    assert list(tables.table_columns("mosei")) == ["acc2", "f1", "acc2_non0", "f1_non0", "mae", "corr"]
    assert list(tables.table_columns("iemocap")) == ["prec", "recall", "f1", "acc"]
    assert list(tables.table_columns("sims")) == ["acc2", "acc3", "acc5", "f1", "mae", "corr"]
    assert {c: m.label for c, m in tables.table_columns("iemocap").items()} == {
        "prec": "Prec.", "recall": "Recall", "f1": "F1 (unweighted)", "acc": "Acc (4-class)"}
    assert metrics.headline("iemocap").key == "macro_f1" and metrics.headline("mosei").label == "Acc2"


def test_a_metric_added_in_one_place_appears_in_a_table_of_cached_runs(tiny_mosei_dir, tmp_path, monkeypatch):
    """The metric walk of ARCHITECTURE.md: a metric appended to a family of the registry is
    scored from the stored outputs of runs trained before it existed; nothing retrains."""
    bundle = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")
    bundle.meta["source_hash"] = "tiny-mosei"
    spec = T.RunSpec(model="cmn", dataset="mosei", modalities="LA", profile="quick",
                     model_overrides={"hidden": 16, "ff_size": 24, "heads": 2, "layers": 1},
                     train=T.TrainConfig(epochs=1, batch_size=16, lr=3e-3, patience=None))
    cached = T.train_seeds(spec, bundle, 2, root=tmp_path, progress=False)
    stamp = (cached.folder / "seed0" / "result.json").stat().st_mtime_ns

    def median_error(predictions, labels):
        return float(np.median(np.abs(predictions - labels)))

    family = metrics.FAMILIES["sentiment"]
    added = metrics.Metric("median_ae", "MedAE", percent=False, higher_is_better=False, column="medae",
                           compute=median_error)
    monkeypatch.setitem(metrics.FAMILIES, "sentiment", replace(family, metrics=family.metrics + (added,)))
    again = T.train_seeds(spec, bundle, 2, root=tmp_path, progress=False)  # read from the cache
    assert (cached.folder / "seed0" / "result.json").stat().st_mtime_ns == stamp  # not retrained
    frame = tables.results_frame("mosei", [again])
    assert frame.attrs["columns"]["medae"] == "MedAE"
    outputs = [m.outputs["test"] for m in again.members]
    expected = [median_error(o, bundle["test"].labels) for o in outputs]
    mean_row = frame[frame.kind == "mean over seeds"].iloc[0]
    assert mean_row["medae"] == pytest.approx(np.mean(expected))
    ensemble_row = frame[frame.kind == "ensemble"].iloc[0]
    assert ensemble_row["medae"] == pytest.approx(median_error((outputs[0] + outputs[1]) / 2, bundle["test"].labels),
                                                  rel=1e-6)
    assert "MedAE" in tables.display_table(frame, "tiny").columns
