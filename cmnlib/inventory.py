"""The runs on disk (``cmn runs``): what each run folder holds, which are stale, and pruning
the ones a user names.

A run folder is named by a hash of its spec, its data and the trainer's version
(:meth:`cmnlib.spec.RunSpec.folder_name`), so a change to the trainer leaves the old
folders behind: they are never read again. Such a folder is *stale*: its name is not the
one its own ``run.json`` gives today.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from .metrics import headline
from .config import NUDGED
from .results import RESULT_FILE, RUN_FILE, RunResult, read_run
from .spec import RunSpec


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2 ** 20


def run_folders(root: Path) -> list[Path]:
    """The run folders under ``root`` (those holding a ``run.json``), by name."""
    root = Path(root)
    return sorted(p.parent for p in root.glob(f"*/{RUN_FILE}")) if root.is_dir() else []


def read_run_file(folder: Path) -> tuple[dict, RunSpec, bool]:
    """A run folder's ``run.json``, its spec, and whether the folder is current (its name is
    the one the spec and data give today; else stale). Raises OSError, ValueError, KeyError
    or TypeError when the file cannot be read as a run's."""
    run = json.loads((Path(folder) / RUN_FILE).read_text())
    spec = RunSpec.from_dict(run["spec"])
    nudged = run.get("initial_weights") == NUDGED  # the portability guard's runs (cmnlib.numerics)
    return run, spec, spec.folder_name(run.get("data_hash") or "unknown", nudged=nudged) == Path(folder).name


def _result_files(folder: Path) -> list[tuple[int, Path]]:
    """(seed, result file) of each seed folder holding a result, by seed."""
    found = [(int(p.parent.name[4:]), p) for p in Path(folder).glob(f"seed*/{RESULT_FILE}")
             if p.parent.name[4:].isdigit()]
    return sorted(found)


def describe(folder: Path) -> dict:
    """One run folder as a row: the model's label, data set, data, seeds finished, epochs,
    the headline metric's mean over the finished seeds, size, and whether it is stale. A
    folder whose ``run.json`` cannot be read is a row that says so."""
    folder = Path(folder)
    try:
        run, spec, current = read_run_file(folder)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return {"run": folder.name, "model": f"unreadable run.json ({type(error).__name__})", "dataset": "",
                "data": "", "seeds": "", "epochs": "", "headline": "", "MB": round(_size_mb(folder), 1),
                "state": "broken"}
    metric = headline(spec.dataset)
    seeds, scores = [], []
    for _, result_file in _result_files(folder):
        try:
            found = json.loads(result_file.read_text())
        except (OSError, ValueError):
            continue
        seeds.append(int(found["seed"]))
        if metric.key in found.get("test", {}):
            scores.append(float(found["test"][metric.key]))
    mean = sum(scores) / len(scores) if scores else None
    return {"run": folder.name, "model": spec.label, "dataset": spec.dataset, "data": run.get("data", ""),
            "seeds": ",".join(map(str, seeds)) or "none finished",
            "epochs": (spec.train.epochs if spec.train else ""),
            "headline": "" if mean is None else (f"{metric.label} {100 * mean:.1f}" if metric.percent
                                                 else f"{metric.label} {mean:.3f}"),
            "MB": round(_size_mb(folder), 1), "state": "current" if current else "stale"}


def inventory(root: Path) -> pd.DataFrame:
    """Every run folder under ``root`` as a row (:func:`describe`)."""
    return pd.DataFrame([describe(f) for f in run_folders(root)],
                        columns=["run", "model", "dataset", "data", "seeds", "epochs", "headline", "MB", "state"])


def prune(root: Path, names: list[str]) -> list[Path]:
    """Delete the run folders ``names`` under ``root`` (each must be a run folder there: a
    ValueError names the first that is not, and nothing is deleted). Returns what was
    removed."""
    root = Path(root)
    folders = [root / name for name in names]
    for name, folder in zip(names, folders):
        if Path(name).name != name or not (folder / RUN_FILE).is_file():
            raise ValueError(f"{folder}: not a run folder under {root} (no {RUN_FILE}); nothing was deleted")
    for folder in folders:
        shutil.rmtree(folder)
    return folders


def finished_seeds(folder: Path) -> list[int]:
    """The seeds of a run folder whose result file exists, in order."""
    return [seed for seed, _ in _result_files(folder)]


def runs_on(root: Path, data_hash: str | None, leave_out=()) -> list[RunResult]:
    """Every current run under ``root`` trained on the data whose hash is ``data_hash``, with
    all its finished seeds, by label; the runs of ``leave_out`` (RunResults, e.g. a table's
    own rows) are left out, and so are stale, broken and unfinished folders (``cmn runs``
    lists those). What a user trained on their data with ``cmn train`` shows up here."""
    if data_hash is None:
        return []
    known = {Path(r.folder).name for r in leave_out if r.folder is not None}
    found = []
    for folder in run_folders(root):
        try:
            run, _, current = read_run_file(folder)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if run.get("data_hash") != data_hash or not current or folder.name in known:
            continue
        seeds = finished_seeds(folder)
        if not seeds:
            continue
        try:
            found.append(read_run(folder, seeds))
        except (OSError, ValueError):
            continue  # a seed that cannot be read: cmn runs names it
    return sorted(found, key=lambda r: (r.label, r.seeds))
