"""The runs the notebook sequence trains, listed before it runs (cmnlib.runplan): counted by
hand from what each shipped notebook asks of the studies."""
from __future__ import annotations

import pytest

from cmnlib import reproduce, runplan
from cmnlib.data.mult_pkl import read_mult_pickle
from cmnlib.studies import paper


@pytest.fixture(scope="module")
def bundles(tiny_mosei_dir, tiny_iemocap_dir):
    return {"mosei": read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl", "mosei"),
            "iemocap": read_mult_pickle(tiny_iemocap_dir / "iemocap_data.pkl", "iemocap")}


def planned(bundles, **plan) -> list:
    jobs = reproduce.plan_jobs(plan.pop("profile", "quick"), ("mosei", "iemocap"),
                               source_dir=reproduce.notebooks_dir(), **plan)
    return runplan.sequence_runs([(job.notebook.stem, job.effective_parameters()) for job in jobs], bundles, "quick")


def by_row(runs) -> dict:
    return {(spec.dataset, spec.model, spec.modalities, tuple(sorted(spec.model_overrides.items())),
             spec.resolved().train.epochs): seeds for spec, _, seeds in runs}


def test_the_sequence_lists_each_run_once_with_every_seed_a_notebook_asks_for(bundles):
    """Per data set: the 9 table rows (05-07), 2 more MUA wirings (07), 4 alignment variants
    and early fusion on L+A (08), and on the MOSEI-like set only the 2 models trained for 30
    epochs (07): 2 x 16 + 2 = 34 runs. Every run has the profile's 2 seeds but CMN (L+A),
    which notebook 03 trains with 4 (notebook 02's one seed and the tables' two among them)."""
    rows = by_row(planned(bundles))
    assert len(paper.TABLE_MODELS) == 9
    assert len(rows) == 34
    assert sum(len(seeds) for seeds in rows.values()) == 72
    for dataset in ("mosei", "iemocap"):
        assert rows[(dataset, "cmn", "LA", (), 8)] == [0, 1, 2, 3]
        assert rows[(dataset, "cmn", "LA", (("mua", "symmetric"),), 8)] == [0, 1]
        assert rows[(dataset, "cmn", "LA", (("alignment", "relative_bias"),), 8)] == [0, 1]
        assert rows[(dataset, "ef_lstm", "LA", (), 8)] == [0, 1]
    assert rows[("mosei", "cmn", "LA", (), 30)] == [0, 1]
    assert ("iemocap", "cmn", "LA", (), 30) not in rows  # longer_datasets: the MOSEI-like set only


def test_the_list_follows_the_runners_seeds_and_selection(bundles):
    """--seeds reaches 03 and 05-08 as it reaches their parameters; --only keeps the runs of
    the notebooks chosen; a data set the runner could not load is left to the notebooks."""
    rows = by_row(planned(bundles, seeds=3))
    assert rows[("mosei", "cmn", "LA", (), 8)] == [0, 1, 2] and rows[("iemocap", "mult", "LAV", (), 8)] == [0, 1, 2]
    only_02 = by_row(planned(bundles, only=["02"]))
    assert only_02 == {("mosei", "cmn", "LA", (), 8): [0], ("iemocap", "cmn", "LA", (), 8): [0]}
    assert len(by_row(planned(bundles, only=["05"]))) == 2 * 9
    assert len(by_row(planned({"mosei": bundles["mosei"]}, only=["05"]))) == 9


def test_runs_only_trains_the_listed_runs_once_and_writes_no_report(tiny_mosei_dir, tmp_path, monkeypatch, capsys):
    """`cmn reproduce --runs-only --only 02,03` on a MulT pickle: notebook 03's four seeds of
    CMN (L+A) (notebook 02's one among them) are trained, no notebook runs and no report is
    written; asked again, it finds them in the cache."""
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    data = str(tiny_mosei_dir / "mosei_senti_data.pkl")
    out = tmp_path / "report"
    assert reproduce.reproduce(datasets=("mosei",), data=data, only=["02", "03"], out=out, runs_only=True) == 0
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    finished = sorted(p.name for p in folder.glob("seed*") if (p / "result.json").exists())
    assert finished == [f"seed{i}" for i in range(4)]
    assert not out.exists()
    assert "(4 seeds trained, 0 already cached)" in capsys.readouterr().out
    assert reproduce.reproduce(datasets=("mosei",), data=data, only=["02", "03"], out=out, runs_only=True) == 0
    assert "(0 seeds trained, 4 already cached)" in capsys.readouterr().out


def test_a_failure_while_training_first_is_one_line_and_the_notebooks_go_on(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(runplan, "sequence_runs", lambda notebooks, bundles, profile: [(paper.table_specs("mosei")[0],
                                                                                       bundles["mosei"], [0])])
    monkeypatch.setattr(reproduce.runs, "train_runs", broken)
    record = reproduce.train_first([], {"mosei": None}, "quick", processes=2)
    assert record["error"].startswith("OSError") and record["runs"] == 1
    printed = capsys.readouterr().out
    assert "training the runs first stopped (OSError" in printed
    assert "each notebook trains what it still needs" in printed
    assert reproduce.train_first([], {"mosei": None}, "paper") is None  # one process: nothing gained by training first
