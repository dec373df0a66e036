"""The registry holds every data-set fact: no branch on a data set's name and no list of
data-set names outside it (the synthetic generators, which are per data set by nature,
excepted); adding an MMSA-format corpus is one registry entry; reading data loads no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from cmnlib import cli, config
from cmnlib.data import load_dataset, mmsa_pkl
from cmnlib.data.inspect import inspect_path
from external_layouts import write_mmsa_pickle

PACKAGE = Path(__file__).resolve().parents[1] / "cmnlib"
ALLOWED = {PACKAGE / "config.py", *(PACKAGE / "data" / "synthetic").rglob("*.py")}  # the registry, the generators


def _names(node) -> list[str]:
    """The data-set names among ``node``'s constant strings (one level deep)."""
    values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else \
        node.keys if isinstance(node, ast.Dict) else [node]
    return [v.value for v in values if isinstance(v, ast.Constant) and v.value in config.DATASETS]


def data_set_knowledge(source: str) -> list[str]:
    """Comparisons with a data set's name (``dataset == "iemocap"``, ``in ("mosei", ...)``)
    and collections that list or key data sets by name, in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            names = [n for part in (node.left, *node.comparators) for n in _names(part)]
            if names:
                found.append(f"line {node.lineno}: compares with {names}")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(_names(node)) >= 2:
            found.append(f"line {node.lineno}: lists {_names(node)}")
        elif isinstance(node, ast.Dict) and _names(node):
            found.append(f"line {node.lineno}: keys by {_names(node)}")
    return found


def test_the_detector_finds_branches_and_lists_and_leaves_defaults_alone():
    assert data_set_knowledge('if dataset == "iemocap": pass') == ["line 1: compares with ['iemocap']"]
    assert data_set_knowledge('x = d in ("mosei", "mosi")')[0].startswith("line 1: compares with")
    assert data_set_knowledge('for d in ["mosi", "mosei", "sims"]: pass') == [
        "line 1: lists ['mosi', 'mosei', 'sims']"]
    assert data_set_knowledge('k = {"mosei": "cmu_mosei"}.get(d)') == ["line 1: keys by ['mosei']"]
    assert data_set_knowledge('load(dataset="mosei")\nDATASETS["iemocap"].classes') == []  # a value, a lookup


def test_no_data_set_knowledge_outside_the_registry():
    offenders = [f"{path.relative_to(PACKAGE)} {where}" for path in sorted(PACKAGE.rglob("*.py"))
                 if path not in ALLOWED for where in data_set_knowledge(path.read_text())]
    assert not offenders, "\n".join(offenders)


def test_the_views_of_the_registry():
    assert config.synthetic_datasets() == ("mosei", "iemocap")
    assert config.mmsa_datasets() == ("mosei", "mosi", "sims")
    assert config.mult_datasets() == ("mosei", "mosi", "iemocap")
    assert mmsa_pkl.file_names() == ("aligned_50.pkl", "unaligned_50.pkl", "unaligned_39.pkl")  # aligned first
    assert config.dataset_named_in("data/MOSEI/Processed") == "mosei"
    assert config.dataset_named_in("mosi_data_noalign.pkl", config.mult_datasets()) == "mosi"
    assert config.dataset_named_in("SIMS", config.mult_datasets()) is None


def test_a_new_mmsa_corpus_is_one_registry_entry(tmp_path, monkeypatch):
    """The data-set walk of ARCHITECTURE.md: an MMSA-format corpus the code has never seen,
    added as one entry (name, feature sizes, its published file and SHA-256), is found in
    MMSA's folder layout, read, checked against its published hash, inspected and offered by
    the command line."""
    path = tmp_path / "NEWCORPUS" / "Processed" / "aligned_50.pkl"
    path.parent.mkdir(parents=True)
    write_mmsa_pickle(path, dataset="mosi", n=(12, 6, 6), dims=(16, 5, 7))
    entry = replace(config.DATASETS["mosi"], name="newcorpus", feature_dims={"text": 16, "audio": 5, "vision": 7},
                    mult_file=None, sdk_name=None, mmsa_files={"aligned_50.pkl": mmsa_pkl.file_sha256(path)})
    monkeypatch.setitem(config.DATASETS, "newcorpus", entry)
    bundle = load_dataset("newcorpus", tmp_path, cache=False)  # the folder above NEWCORPUS/Processed/
    assert bundle.dataset == "newcorpus" and len(bundle["train"]) == 12 and bundle.feature_dims["audio"] == 5
    assert bundle.meta["published"]["match"] and "MMSA's published file" in bundle.source_label
    assert any("aligned_50.pkl" in line for line in inspect_path(tmp_path / "NEWCORPUS"))
    feat = cli.build_parser()._subparsers._group_actions[0].choices["featurize"]
    assert "newcorpus" in next(a for a in feat._actions if a.dest == "dataset").choices


def test_reading_data_and_the_command_line_help_load_no_torch(tiny_iemocap_dir):
    code = ("import sys\n"
            "from cmnlib.data.errors import DataError\n"
            "from cmnlib import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"assert cli.main(['inspect', {str(tiny_iemocap_dir / 'iemocap_data.pkl')!r}]) == 0\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_the_loader_is_still_there_when_asked_for():
    from cmnlib import data
    assert callable(data.make_loader)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        data.nothing  # noqa: B018
