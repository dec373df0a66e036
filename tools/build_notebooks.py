"""Write the notebooks in notebooks/ from the cell lists below (without outputs).

The notebooks hold no logic: each cell calls cmnlib and shows the result. Keeping their
sources here makes reviews of notebook changes plain diffs; after editing, run

    python tools/build_notebooks.py [NN ...] && make notebooks

to rebuild and re-execute them (quick profile) so the committed outputs are current.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from notebook_sources import NOTEBOOKS  # noqa: E402


def build(name: str, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            elif kind == "variable":  # output varies by design (timings): nbval skips it
                cell.metadata["tags"] = ["nbval-ignore-output"]
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    nbformat.write(nb, ROOT / "notebooks" / f"{name}.ipynb")


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for name, cells in NOTEBOOKS.items():
        if not wanted or any(name.startswith(w) for w in wanted):
            build(name, cells)
            print(f"wrote notebooks/{name}.ipynb")
