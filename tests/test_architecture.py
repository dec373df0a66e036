"""The layers of ARCHITECTURE.md, read off the code: which cmnlib module may import which,
and no module imports a private name of another."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cmnlib"

# station -> the stations it may import (besides itself); a station is a top-level module
# or the data / model package
ALLOWED = {
    "atomic": set(), "config": set(), "findings": set(), "precision": {"config"}, "metrics": {"config"},
    "options": {"config"},
    "data": {"config", "atomic"},
    "model": {"config"},
    "spec": {"config", "precision", "data"},
    "results": {"config", "atomic", "data", "model", "metrics", "precision", "spec"},
    "train": {"config", "atomic", "data", "model", "metrics", "precision", "spec", "results"},
    "train_stacked": {"config", "atomic", "data", "model", "precision", "spec", "results", "train"},
    "runs": {"config", "data", "model", "precision", "spec", "results", "train", "train_stacked"},
    "distributed": {"config", "options", "data", "model", "spec", "train"},
    "summaries": {"config", "data", "metrics"},
    "reporting": {"config", "data", "findings", "metrics", "results"},
    "tables": {"config", "atomic", "findings", "metrics", "results", "summaries"},
    "analysis": {"config", "data", "model", "findings", "metrics"},
    "plots": {"config", "data", "metrics", "results"},
    "plots_attention": {"config", "plots"},
    "studies": {"config", "atomic", "data", "model", "findings", "metrics", "spec", "results", "train", "runs",
                "inventory", "tables", "summaries", "reporting", "analysis"},
    "numerics": {"config", "options", "model", "train"},
    "bench": {"config", "options", "atomic", "data", "model", "precision", "metrics", "findings", "spec", "train",
              "train_stacked", "runs", "studies"},
    "runplan": {"config", "data", "spec", "train", "runs", "studies"},
    "reproduce": {"config", "atomic", "data", "spec", "train", "runs", "studies", "runplan", "report_page"},
    "report_page": {"atomic"},
    "inventory": {"config", "metrics", "spec", "results"},
    "cli": {"config", "options", "atomic", "data", "metrics", "model", "train", "train_stacked", "reproduce", "bench",
            "precision",
            "results", "inventory"},
    "__main__": {"cli"},
    "__init__": set(),
}


def _station(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path):
    """(imported station, imported names) of every relative import in ``path``."""
    package = list(path.relative_to(PACKAGE).parent.parts)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                yield target[0], [a.name for a in node.names]
            else:  # from . import config, findings
                for alias in node.names:
                    yield alias.name, []


def test_every_module_imports_only_the_layers_below_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        station = _station(path)
        assert station in ALLOWED, f"{path.relative_to(PACKAGE)}: a new station; add it to ALLOWED and ARCHITECTURE.md"
        for target, _ in _imports(path):
            if target != station and target not in ALLOWED[station]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not wrong, "; ".join(wrong)


def test_no_module_imports_a_private_name_of_another():
    private = [f"{path.relative_to(PACKAGE)} imports {name} from {target}"
               for path in sorted(PACKAGE.rglob("*.py")) for target, names in _imports(path)
               for name in names if name.startswith("_") and target != _station(path)]
    assert not private, "; ".join(private)


def test_the_documented_layers_match():
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    for station in ALLOWED:
        if not station.startswith("__"):
            assert f"`{station}" in text, f"ARCHITECTURE.md does not place {station}"
