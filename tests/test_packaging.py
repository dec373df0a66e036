"""environment.yml and pyproject.toml name the same dependencies; the CLI is wired."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == wanted
    assert "-e ." in pip


def test_the_tests_install_the_featurize_extra_and_pin_it():
    # `make install` (what the README's test command runs first) installs the optional extra,
    # so `cmn featurize` is tested; every package of it is pinned
    assert "'.[dev,featurize]'" in (ROOT / "Makefile").read_text()
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["featurize"]
    assert extra and all("==" in requirement for requirement in extra)


def test_torch_is_pinned_to_the_cpu_wheel_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cmnlib", *args], capture_output=True, text=True)


def test_cli_inspect_good_and_bad(tiny_iemocap_dir, tmp_path):
    ok = run_cli("inspect", str(tiny_iemocap_dir / "iemocap_data.pkl"))
    assert ok.returncode == 0, ok.stderr
    assert "usable: yes" in ok.stdout and "train: 60 samples" in ok.stdout
    assert "neutral" in ok.stdout and "neginf" in ok.stdout
    bad = tmp_path / "iemocap_data.pkl"
    bad.write_bytes(b"garbage")
    result = run_cli("inspect", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "truncated or not a pickle" in result.stderr


def test_cli_synth_writes_and_reports(tmp_path, monkeypatch):
    out = tmp_path / "iem"
    result = run_cli("synth", "--dataset", "iemocap", "--out", str(out), "--seed", "2")
    assert result.returncode == 0, result.stderr
    assert (out / "iemocap_data.pkl").exists() and "Bayes ceilings" in result.stdout
    assert "train: 1200 samples" in result.stdout


def test_cli_train_writes_runs_and_reuses_them(tiny_iemocap_dir, tmp_path):
    args = ["train", "--dataset", "iemocap", "--data", str(tiny_iemocap_dir / "iemocap_data.pkl"),
            "--model", "lstm_l", "--epochs", "1", "--seeds", "2", "--out", str(tmp_path / "runs")]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "seed 0: best epoch 1/1" in first.stdout and "seed 1:" in first.stdout and "ensemble:" in first.stdout
    folders = list((tmp_path / "runs").glob("lstm_l-*"))
    assert len(folders) == 1
    summary = json.loads((folders[0] / "ensemble-seeds0-1.json").read_text())
    assert summary["seeds"] == [0, 1] and (folders[0] / "seed1" / "best.pt").exists()
    assert "ensemble-seeds0-1.json" in first.stdout
    again = run_cli(*args)  # the same config and data: the cached results, the same numbers
    assert again.returncode == 0 and again.stdout.splitlines()[1:] == first.stdout.splitlines()[1:]
    # more seeds of the same run: a second ensemble beside the first, which stays as it was
    before = (folders[0] / "ensemble-seeds0-1.json").read_bytes()
    three = run_cli(*[a if a != "2" else "3" for a in args])
    assert three.returncode == 0, three.stderr
    assert json.loads((folders[0] / "ensemble-seeds0-2.json").read_text())["seeds"] == [0, 1, 2]
    assert (folders[0] / "ensemble-seeds0-1.json").read_bytes() == before
    bad = run_cli(*args[:-2], "--set", "no_such_field=3", "--out", str(tmp_path / "runs"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no_such_field" in bad.stderr



def test_cmn_runs_lists_and_prunes_run_folders(tiny_iemocap_dir, tmp_path):
    root = tmp_path / "runs"
    args = ["train", "--dataset", "iemocap", "--data", str(tiny_iemocap_dir / "iemocap_data.pkl"),
            "--model", "lstm_l", "--epochs", "1", "--seeds", "2", "--out", str(root)]
    assert run_cli(*args).returncode == 0
    (folder,) = root.glob("lstm_l-*")
    stale = root / "lstm_l-0000000000000000"  # what a trainer change leaves behind: a name its spec no longer gives
    shutil.copytree(folder, stale)
    listed = run_cli("runs", "--root", str(root))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("|")[1].strip(): line for line in listed.stdout.splitlines() if line.startswith("| lstm_l")}
    assert set(rows) == {folder.name, stale.name}
    assert "LSTM (L)" in rows[folder.name] and "0,1" in rows[folder.name] and "current" in rows[folder.name]
    assert "stale" in rows[stale.name] and "1 stale" in listed.stdout
    refused = run_cli("runs", "--root", str(root), "--prune", folder.name, "no-such-run")
    assert refused.returncode == 2 and "no-such-run" in refused.stderr and folder.exists()  # nothing deleted
    pruned = run_cli("runs", "--root", str(root), "--prune-stale")
    assert pruned.returncode == 0 and not stale.exists() and folder.exists()
    assert run_cli("runs", "--root", str(tmp_path / "empty")).stdout.startswith("no runs in")
