"""environment.yml and pyproject.toml name the same dependencies; the CLI is wired."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == ["python" + declared.replace(" ", "")]  # the same versions as pip's
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


COUNT_OPTIONS = [  # (command line before the option, the option): each is a count of 1 or more
    (["train", "--dataset", "mosei"], "--seeds"), (["train", "--dataset", "mosei"], "--epochs"),
    (["train", "--dataset", "mosei"], "--batch-size"), (["train", "--dataset", "mosei"], "--stack"),
    (["reproduce"], "--seeds"), (["reproduce"], "--jobs"),
    (["featurize", "--labels", "x.csv", "--out", "y"], "--max-words"),
    (["bench"], "--threads"), (["bench"], "--parity-seeds"), (["bench"], "--seeds-timing"),
    (["bench"], "--stack-timing"), (["bench"], "--processes"),
]


@pytest.mark.parametrize("value", ["0", "-3", "many"])
@pytest.mark.parametrize(("command", "option"), COUNT_OPTIONS, ids=lambda x: x if isinstance(x, str) else x[0])
def test_a_count_below_one_is_one_usage_line_before_anything_runs(command, option, value, capsys):
    """--seeds 0 used to end in an IndexError traceback after loading the data, --epochs 0
    in a TypeError from load_state_dict, --batch-size 0 in a ValueError from range()."""
    from cmnlib import cli
    with pytest.raises(SystemExit) as exit_:
        cli.main(command + [option, value])
    err = capsys.readouterr().err
    shown = repr(value) if value == "many" else value
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == (f"cmn {command[0]}: error: argument {option}: "
                                    f"expected a whole number of 1 or more, got {shown}")


def test_the_other_commands_refuse_counts_below_one_and_a_learning_rate_of_zero(capsys):
    from cmnlib import cli, distributed, numerics
    for parse, args, expected in (
            (distributed.build_parser().parse_args, ["--global-batch", "0"],
             "argument --global-batch: expected a whole"),
            (distributed.build_parser().parse_args, ["--max-steps", "-1"], "argument --max-steps: expected a whole"),
            (distributed.build_parser().parse_args, ["--threads", "0"], "argument --threads: expected a whole"),
            (numerics.main, ["probe", "--steps", "0"], "argument --steps: expected a whole"),
            (cli.main, ["train", "--dataset", "mosei", "--lr", "0"], "argument --lr: expected a number above 0, got 0"),
            (cli.main, ["train", "--dataset", "mosei", "--lr", "nan"],
             "argument --lr: expected a number above 0, got nan")):
        with pytest.raises(SystemExit) as exit_:
            parse(args)
        assert exit_.value.code == 2 and expected in capsys.readouterr().err.splitlines()[-1], args


def test_every_package_folder_is_listed_for_the_wheel():
    # pyproject lists its packages (the notebooks ship as cmnlib.notebooks): a new subpackage
    # left out of the list would be missing from every wheel
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = [ROOT / "cmnlib", *(p for p in (ROOT / "cmnlib").rglob("*") if p.is_dir() and p.name != "__pycache__")]
    found = {".".join(p.relative_to(ROOT).parts) for p in folders}
    assert found | {"cmnlib.notebooks"} == listed


@pytest.mark.long(minutes=1)
def test_a_plain_install_runs_the_sequence_from_any_folder(tmp_path):
    """The wheel, installed into a fresh virtual environment outside the checkout, carries
    the notebooks: ``cmn reproduce --only 01`` (one data set, to keep it short) runs in an empty
    folder and writes data and
    report under it; ``cmn notebooks`` copies the sequence and never overwrites it."""
    import sysconfig
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("cmnlib-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # the dependencies are this environment's (no download in a test): a .pth line puts its
    # site-packages after the fresh one, so that the installed wheel, not the checkout, is cmnlib
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # and the data files that pip would have put under the new prefix (nbconvert's templates;
    # not the kernel specs: the notebooks' kernel must be the new environment's Python)
    (venv / "share" / "jupyter").mkdir(parents=True)
    (venv / "share" / "jupyter" / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMN_", "JUPYTER_", "PYTHONPATH"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    where = subprocess.run([str(python), "-c", "import cmnlib; print(cmnlib.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where
    run = subprocess.run([str(venv / "bin" / "cmn"), "reproduce", "--only", "01", "--dataset", "iemocap"],
                         cwd=work, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "running the ones shipped with cmnlib" in run.stdout
    assert (work / "reports" / "quick" / "index.html").exists()
    assert (work / "reports" / "quick" / "notebooks" / "01_data-iemocap.ipynb").exists()
    assert (work / "data" / "synthetic").is_dir()  # data under the folder the command ran in
    copied = subprocess.run([str(venv / "bin" / "cmn"), "notebooks", "--out", "nb"], cwd=work, env=env,
                            capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    assert (work / "nb" / "08_alignment.ipynb").read_bytes() == (ROOT / "notebooks" / "08_alignment.ipynb").read_bytes()
    (work / "nb" / "01_data.py").write_text("# the user's edits\n")
    again = subprocess.run([str(venv / "bin" / "cmn"), "notebooks", "--out", "nb"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "nothing was written" in again.stderr
    assert (work / "nb" / "01_data.py").read_text() == "# the user's edits\n"


def test_the_readme_is_a_front_page_whose_links_resolve():
    import re
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make reproduce" in readme and "make test" in readme
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and all((ROOT / link).exists() for link in links if "://" not in link), links
    for page in (ROOT / "docs").glob("*.md"):  # and the docs pages' own relative links
        for link in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            assert "://" in link or (page.parent / link).exists(), (page.name, link)


def test_the_citation_file_names_the_paper_and_this_version():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert citation["cff-version"] == "1.2.0" and citation["version"] == project["version"]
    assert citation["preferred-citation"]["doi"] == "10.55375/cps.2023.3.2"
    assert citation["license"] == project["license"]
