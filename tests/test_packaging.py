"""environment.yml and pyproject.toml name the same dependencies; the CLI is wired."""
from __future__ import annotations

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
    assert "train: 1600 samples" in result.stdout
