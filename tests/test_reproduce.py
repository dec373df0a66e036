"""The papermill batch runner on a temporary copy of a tiny notebook sequence: parameters
passed through, report layout, manifest and index; a deliberately failing notebook stops
its dependants, keeps its error visible and never replaces the earlier good report."""
from __future__ import annotations

import json
import os
import re

import nbformat
import pytest

from cmnlib import config, report_page, reproduce, runs


def _notebook(path, parameters: str, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


@pytest.fixture()
def sequence(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "01_alpha.ipynb", "seeds = None\nfigures_dir = None\ntables_dir = None",
              "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
              "from pathlib import Path",
              "fig, ax = plt.subplots(); ax.plot([0, 1])\n"
              "if figures_dir: fig.savefig(Path(figures_dir) / 'alpha.png')\n"
              "if tables_dir:\n"
              "    scores = pd.DataFrame({'model': ['x'], 'score': [seeds]})\n"
              "    scores.to_csv(Path(tables_dir) / 'scores.csv', index=False)\n"
              "print('seeds =', seeds)")
    _notebook(source / "05_training.ipynb", "seeds = None", "raise RuntimeError('deliberate failure')")
    _notebook(source / "06_tables.ipynb", "seeds = None", "print('tables')")
    return source


def test_a_good_run_writes_the_report(sequence, tmp_path, capsys):
    out = tmp_path / "reports" / "demo"
    status = reproduce.reproduce(datasets=(), seeds=3, only=["01"], out=out, source_dir=sequence)
    assert status == 0
    executed = nbformat.read(out / "notebooks" / "01_alpha.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "seeds = 3" in printed  # the parameter reached the notebook
    assert (out / "html" / "01_alpha.html").stat().st_size > 0
    assert (out / "figures" / "alpha.png").exists() and (out / "tables" / "scores.csv").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["notebooks"][0]["status"] == "ok" and manifest["notebooks"][0]["seconds"] > 0
    assert manifest["seeds"] == 3 and {"torch", "papermill", "python"} <= set(manifest["versions"])
    # where the time went: no runs to train here; the phases add up to the total (each rounded)
    phases = manifest["phase_seconds"]
    assert phases["runs"] == 0 and phases["notebooks"] >= manifest["notebooks"][0]["seconds"]
    assert abs(sum(phases.values()) - manifest["total_seconds"]) <= 0.15
    index = (out / "index.html").read_text()
    assert "figures/alpha.png" in index and "<h3>scores</h3>" in index and "html/01_alpha.html" in index
    printed = capsys.readouterr().out
    assert "01_alpha" in printed  # one progress line per notebook
    assert f"the runs 0 s, the notebooks {phases['notebooks']:.0f} s)" in printed


def test_a_failing_notebook_stops_its_dependants_and_keeps_the_good_report(sequence, tmp_path, capsys):
    out = tmp_path / "reports" / "demo"
    assert reproduce.reproduce(datasets=(), seeds=3, only=["01"], out=out, source_dir=sequence) == 0
    good_manifest = (out / "manifest.json").read_text()
    capsys.readouterr()

    # two at a time: 05 (failing) beside 01, two kernels of one process at once
    status = reproduce.reproduce(datasets=(), seeds=3, out=out, source_dir=sequence, workers=2)
    assert status == 1
    assert (out / "manifest.json").read_text() == good_manifest  # the earlier report is untouched
    failed = tmp_path / "reports" / "demo.failed"
    manifest = json.loads((failed / "manifest.json").read_text())
    statuses = {r["notebook"]: r["status"] for r in manifest["notebooks"]}
    assert statuses == {"01_alpha": "ok", "05_training": "failed", "06_tables": "skipped"}
    executed = nbformat.read(failed / "notebooks" / "05_training.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["evalue"] == "deliberate failure"  # the error stays visible
    printed = capsys.readouterr().out
    assert "failed at cell 1 (RuntimeError: deliberate failure) starting \"raise RuntimeError(" in printed
    assert "skipped (depends on failed 05_training)" in printed


def test_a_first_failing_run_does_not_speak_of_an_earlier_report(sequence, tmp_path, capsys):
    assert reproduce.reproduce(datasets=(), seeds=3, out=tmp_path / "fresh", source_dir=sequence) == 1
    printed = capsys.readouterr().out
    assert f"there was no earlier report in {tmp_path / 'fresh'}" in printed and "untouched" not in printed


def test_notebooks_run_at_once_get_their_share_of_the_cores(sequence, tmp_path, monkeypatch):
    """Kernels run at once get OMP_NUM_THREADS = usable cores // kernels each (one thread
    per core each would spin on the others' cores), counting only the notebooks there are to
    run; one at a time they keep torch's default, a user's own setting stands, and this
    process gets its environment back."""
    for name in ("02_beta", "03_gamma"):
        _notebook(sequence / f"{name}.ipynb", "seeds = None",
                  "import os\nprint('threads', os.environ.get('OMP_NUM_THREADS'))")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(config, "usable_cores", lambda: 4)

    def threads(workers, name, only=("02", "03")):
        assert reproduce.reproduce(datasets=(), only=list(only), out=tmp_path / name, source_dir=sequence,
                                   workers=workers) == 0
        printed = set()
        for notebook in ("02_beta", "03_gamma")[:len(only)]:
            executed = nbformat.read(tmp_path / name / "notebooks" / f"{notebook}.ipynb", as_version=4)
            printed.add("".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", [])).split()[-1])
        (value,) = printed
        return value
    assert threads(2, "two") == "2" and threads(1, "one") == "None"
    assert threads(8, "eight") == "2"  # two notebooks: two kernels, not eight
    assert threads(2, "alone", only=("02",)) == "None"  # one notebook has the cores to itself
    assert "OMP_NUM_THREADS" not in os.environ
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads(2, "mine") == "3" and os.environ["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize("cores, memory_gib, machine, each_of_two", [
    (1, 64.0, 1, 2),     # one core: no pool (two pytest workers' pools: two each, the least)
    (2, 24.0, 2, 2),     # the two-core machine: two workers
    (2, 1.0, 2, 2),      # two cores keep their two workers however little the memory
    (16, 64.0, 16, 8),   # one worker per usable core; two pools: eight each
    (16, 9.0, 6, 3),     # as many as 9 GiB holds at 1.5 GiB each
    (8, None, 8, 4),     # memory unknown: the cores decide
])
def test_the_runs_first_pool_has_a_worker_per_usable_core_as_memory_allows(monkeypatch, cores, memory_gib,
                                                                          machine, each_of_two):
    """The pool that has the machine to itself (the runs trained first) grows with the
    cores; pools beside other work (a notebook's own runs) and the notebooks at once stay
    at two; the paper profile trains in this process."""
    monkeypatch.delenv(config.POOL_WORKERS_ENV, raising=False)
    monkeypatch.setattr(config, "usable_cores", lambda: cores)
    monkeypatch.setattr(runs, "usable_cores", lambda: cores)
    monkeypatch.setattr(config, "physical_memory_gib", lambda: memory_gib)
    assert runs.machine_processes("quick") == machine and runs.machine_processes("paper") == 1
    assert runs.default_processes("quick") == min(cores, 2) and runs.default_processes("paper") == 1
    assert reproduce.default_workers("quick") == min(cores, 2)
    # pytest's parallel workers each get a pool of their share (tests/conftest.py)
    assert config.pool_share(2) == each_of_two


def test_the_pools_workers_can_be_set_and_a_bad_setting_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(runs, "usable_cores", lambda: 16)
    monkeypatch.setenv(config.POOL_WORKERS_ENV, "3")
    assert runs.machine_processes("quick") == 3 and runs.machine_processes("paper") == 1
    for bad in ("two", "0", "-1", "1.5"):
        monkeypatch.setenv(config.POOL_WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=f"CMN_POOL_WORKERS must be a whole number.*got '{re.escape(bad)}'"):
            runs.machine_processes("quick")
    from cmnlib import cli
    assert cli.main(["reproduce", "--runs-only", "--only", "02"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: $CMN_POOL_WORKERS must be a whole number" in err


def test_usable_cores_are_the_affinity_within_the_cpu_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    monkeypatch.setattr(config, "cpu_quota", lambda: None)
    assert config.usable_cores() == 8
    monkeypatch.setattr(config, "cpu_quota", lambda: 3)
    assert config.usable_cores() == 3 and config.cores_share(2) == 1 and config.cores_share(1) == 3
    monkeypatch.setattr(config, "cpu_quota", lambda: 64)  # a quota above the affinity: the affinity
    assert config.usable_cores() == 8
    monkeypatch.setattr(config, "cpu_quota", lambda: 1)  # one core: two kernels still get a thread each
    assert config.usable_cores() == 1 and reproduce.kernel_threads(2) == "1"


@pytest.mark.parametrize("files, cpus", [
    ({"cpu.max": "max 100000\n"}, None),                      # cgroup v2, no limit
    ({"cpu.max": "200000 100000\n"}, 2),                      # v2: two CPUs' time
    ({"cpu.max": "150000 100000\n"}, 2),                      # 1.5 CPUs: rounded up
    ({"cpu.max": "50000 100000\n"}, 1),                       # half a CPU: at least one
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),   # v1, no limit
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),  # v1: four CPUs
    ({}, None),                                                # no control group files
    ({"cpu.max": "lots 100000\n"}, None),                     # unreadable: as if none
])
def test_the_cpu_quota_is_read_from_either_cgroup_version(tmp_path, files, cpus):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert config.cpu_quota(str(tmp_path)) == cpus


def test_relative_paths_are_read_against_the_callers_folder(sequence, tmp_path, monkeypatch):
    """The notebooks run in another folder: a relative --data or --out is the caller's."""
    _notebook(sequence / "02_beta.ipynb", "source = None",
              "from pathlib import Path\nprint('given', Path(source).is_absolute(), Path(source).exists())")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "features.pkl").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert reproduce.reproduce(datasets=(), data="mine/features.pkl", only=["02"], out="my-report",
                               source_dir=sequence) == 0
    executed = nbformat.read(tmp_path / "my-report" / "notebooks" / "02_beta.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "given True True" in printed
    assert json.loads((tmp_path / "my-report" / "manifest.json").read_text())["data"] == str(
        tmp_path / "mine" / "features.pkl")


def test_only_that_matches_nothing_is_an_error(sequence, tmp_path):
    with pytest.raises(ValueError, match="matches no notebook"):
        reproduce.plan_jobs(only=["99"], source_dir=sequence)


def test_parameters_go_only_to_notebooks_that_declare_them(sequence, tmp_path):
    jobs = reproduce.plan_jobs(profile="paper", seeds=4, data="/real", out=tmp_path, source_dir=sequence)
    by_name = {j.name: j.parameters for j in jobs}
    assert by_name["01_alpha"] == {"seeds": 4, "figures_dir": str(tmp_path / "figures"),
                                   "tables_dir": str(tmp_path / "tables")}
    assert by_name["06_tables"] == {"seeds": 4}


@pytest.mark.long(minutes=7)
def test_the_whole_sequence_runs_on_the_formats_users_hold(tmp_path, monkeypatch):
    """Every notebook on real-format data written by the independent writers, all in one
    folder: CMU-MOSEI as an SDK download (.csd, word-aligned by the reader), IEMOCAP as a
    MulT pickle with all three modalities padded on the left as MulT's are, and MOSI as an
    unaligned MMSA pickle in MMSA's MOSI/Processed/ layout. Each data set is read from its
    own format, every measured row names it, the paper's rows stand apart as reported (the
    paper has none for MOSI), and early fusion, which needs aligned data, is left out on
    MOSI."""
    import csv

    from external_layouts import write_mmsa_pickle, write_mult_pickle_padded, write_sdk_csd_folder
    from test_sdk_download import sdk_videos
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CMN_RUNS_DIR", str(tmp_path / "runs"))
    folder = tmp_path / "downloads"
    write_sdk_csd_folder(folder, videos=sdk_videos(24, 6, 6), dims=(8, 5, 4), neg_inf_audio=True, seed=0)
    write_mult_pickle_padded(folder / "iemocap_data.pkl", side="left", dataset="iemocap", n=(40, 12, 12), t=10,
                             dims=(8, 5, 4), seed=0)
    write_mmsa_pickle(folder / "MOSI" / "Processed" / "unaligned_50.pkl", dataset="mosi", aligned=False,
                      n=(40, 12, 12), lengths=(8, 12, 10), dims=(8, 5, 4), neg_inf_audio=True, seed=0)
    out = tmp_path / "report"
    assert reproduce.reproduce("quick", ("mosei", "iemocap", "mosi"), data=str(folder), seeds=1, out=out) == 0

    def rows(table):
        with open(out / "tables" / f"{table}.csv") as f:
            return list(csv.DictReader(f))
    for table, source in (("table2_mosei", "REAL MOSEI from downloads/ (4 SDK .csd files"),
                          ("table1_iemocap", "REAL IEMOCAP from iemocap_data.pkl (MulT pickle"),
                          ("table_mosi", "REAL MOSI from unaligned_50.pkl (MMSA pickle, sha256 ")):
        measured = [r for r in rows(table) if r["kind"] != "reported (paper)"]
        assert measured and all(r["data"].startswith(source) for r in measured), (table, measured[0]["data"])
    for table in ("table2_mosei", "table1_iemocap"):
        assert {r["data"] for r in rows(f"{table}_reported")} == {
            f"reported by the paper (real {table.split('_')[1].upper()}, its Table {table[5]}), not run here"}
    assert not any(r["kind"] == "reported (paper)" for r in rows("table_mosi"))  # the paper has no MOSI rows
    assert not any(r["model"].startswith("EF-LSTM") for r in rows("table_mosi"))  # early fusion needs aligned data
    manifest = json.loads((out / "manifest.json").read_text())
    ran = {n["notebook"]: n["status"] for n in manifest["notebooks"]}
    assert set(ran.values()) == {"ok"} and len(ran) == 4 * 3 + 4  # 01-04 per data set, 05-08 once
    # every run was trained before the notebooks, and the notebooks trained nothing else
    first = manifest["runs_first"]
    assert first["trained"] == first["seeds"] > 0 and "error" not in first
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()) == first["folders"]


def test_the_report_opens_with_the_verdict_assembled_from_the_studies_rows(tmp_path):
    from cmnlib.studies import audit, paper
    audit.save_rows("paper", paper.audit_rows({}), ["SYNTHETIC x"], tmp_path / "tables")
    audit.assemble(tmp_path / "tables")
    (tmp_path / "figures").mkdir()
    manifest = {"notebooks": [], "data_sources": {"mosei": {"label": "SYNTHETIC x"}}, "versions": {},
                "profile": "quick", "total_seconds": 1.0, "git_commit": None}
    page = report_page.write_index(tmp_path, manifest).read_text()
    verdict = page.index("What this companion concludes about the paper")
    assert verdict < page.index("<h2>Data</h2>") < page.index("<h2>Notebooks</h2>")
    assert "<strong>Refuted by the paper" in page and "state of the art" in page
    (tmp_path / "tables" / "verdict.html").unlink()  # a report without the audit has no verdict section
    assert "What this companion concludes" not in report_page.write_index(tmp_path, manifest).read_text()


def test_a_good_run_prints_one_line_per_notebook_and_nothing_alarming(sequence, tmp_path, capfd):
    """The kernel's own stderr included (capfd): no TCP-encryption warning, no ERROR line."""
    assert reproduce.reproduce(datasets=(), seeds=3, only=["01"], out=tmp_path / "quiet", source_dir=sequence) == 0
    out, err = capfd.readouterr()
    printed = out + err
    assert not any(word in printed for word in ("WARNING", "ERROR", "Traceback", "Unable to parse")), printed
    assert [line for line in out.splitlines() if line.strip()][1].split()[:2] == ["01_alpha", "ok"]


@pytest.mark.parametrize("notebook", sorted(p.name for p in reproduce.notebooks_dir().glob("[0-9][0-9]_*.ipynb")))
def test_papermill_reads_every_parameters_cell(notebook, caplog):
    """Each committed notebook's parameters cell is read by papermill without a parse
    warning, with a help text for every parameter that has a comment."""
    import logging
    with caplog.at_level(logging.WARNING):
        declared = reproduce.declared_parameters(reproduce.notebooks_dir() / notebook)
    assert declared and "Unable to parse" not in caplog.text


def test_notebooks_run_two_at_a_time_and_each_after_those_it_depends_on(tmp_path, monkeypatch):
    """The scheduler alone (executing a notebook is replaced by a short wait that logs when
    it ran): with two workers the notebooks others depend on start first, the walkthroughs
    run beside them, and a notebook of the whole sequence goes before a walkthrough once
    both can run (the walkthroughs fill the end); no notebook starts before its
    dependencies finished; the records come back in plan order. With one worker the plan
    order is kept."""
    import threading
    import time as clock
    log, lock = [], threading.Lock()

    def fake_execute(job, output, cwd, progress=False):
        with lock:
            log.append(("start", job.name, clock.monotonic()))
        clock.sleep(0.4 if job.notebook.stem == "05_training" else 0.3 if "dataset" in job.parameters else 0.1)
        with lock:
            log.append(("end", job.name, clock.monotonic()))

    monkeypatch.setattr(reproduce, "_execute", fake_execute)
    monkeypatch.setattr(report_page, "export_html", lambda *args: [])
    names = ["01_data-mosei", "01_data-iemocap", "02_self_attention-mosei", "05_training", "06_tables",
             "07_beyond_the_paper", "08_alignment"]
    jobs = [reproduce.Job(tmp_path / f"{name.split('-')[0]}.ipynb", name,
                          {"dataset": name.split("-")[1]} if "-" in name else {}) for name in names]
    records, failed = reproduce.run_jobs(jobs, tmp_path, tmp_path, {}, workers=2)
    assert [r["notebook"] for r in records] == names and not failed
    times = {(kind, name): t for kind, name, t in log}
    assert [name for kind, name, _ in log if kind == "start"][0] == "05_training"
    for name, needs in reproduce.DEPENDS_ON.items():
        for dependency in needs:
            assert times[("start", name)] >= times[("end", dependency)]
    assert times[("start", "01_data-mosei")] < times[("end", "05_training")]  # beside it
    # 06 ends while 01_data-iemocap runs: 07 goes before the walkthrough 02, which fills the end
    assert times[("start", "07_beyond_the_paper")] < times[("start", "02_self_attention-mosei")]
    log.clear()
    reproduce.run_jobs(jobs, tmp_path, tmp_path, {}, workers=1)
    assert [name for kind, name, _ in log if kind == "start"] == names
