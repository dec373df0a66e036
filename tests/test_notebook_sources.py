"""The notebooks' sources: every notebook is paired (jupytext, percent format) with a .py
file that holds exactly its cells, and the .py sources pass the same lint as the package."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
IPYNB = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _cells(nb) -> list[tuple[str, str, list]]:
    return [(c.cell_type, c.source.strip("\n"), list(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_notebook_has_a_percent_source_and_every_source_a_notebook():
    assert IPYNB, "no notebooks found"
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    assert [p.stem for p in sources] == [p.stem for p in IPYNB]
    config = (NOTEBOOKS / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("path", IPYNB, ids=lambda p: p.stem)
def test_pair_has_the_same_cells_and_tags(path):
    """Fails when one side of a pair was edited without the other: run
    ``jupytext --sync notebooks/NN_*.py`` (then ``make notebooks`` if outputs change)."""
    notebook = nbformat.read(path, as_version=4)
    source = jupytext.read(path.with_suffix(".py"))
    assert _cells(source) == _cells(notebook), f"{path.name} and {path.with_suffix('.py').name} have drifted"
    assert any("parameters" in tags for _, _, tags in _cells(notebook)), f"{path.name}: no parameters cell"


def test_package_tests_and_notebook_sources_pass_lint():
    targets = ["cmnlib", "tests", "tools", *[str(p.with_suffix(".py").relative_to(ROOT)) for p in IPYNB]]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", *targets],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
