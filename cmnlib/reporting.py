"""Small summaries of training runs for the notebooks (tables and one-line checks), and
:func:`show`, how a notebook displays a table."""
from __future__ import annotations

import hashlib
import numbers
from pathlib import Path

import pandas as pd

from .data.sources import data_dir


def _cell(value) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    return "" if pd.isna(value) else f"{value:,.10g}"  # as rounded by the table's maker, no float noise


def show(frame: pd.DataFrame, caption: str | None = None):
    """A table as a notebook shows it: without the 0..n row numbers (a meaningful index, e.g.
    a named one, stays), integers with thousands separators, floats as rounded by the
    function that made the table (no trailing float noise), text left-aligned."""
    default_index = isinstance(frame.index, pd.RangeIndex) and frame.index.name is None
    # the HTML's element ids from the content, not pandas' random uuid: the same table
    # renders to the same bytes (nbval compares them), two tables never share ids
    uuid = hashlib.sha256((frame.to_csv() + (caption or "")).encode()).hexdigest()[:10]
    styled = frame.style.set_uuid(uuid).format(_cell, na_rep="")
    if default_index:
        styled = styled.hide(axis="index")
    styled = styled.set_properties(**{"text-align": "left"})
    return styled.set_caption(caption) if caption else styled


def run_table(summaries: list[dict], metric: str) -> pd.DataFrame:
    """One row per model: seeds, selected epochs, test metric per seed, mean ± std, ensemble."""
    rows = []
    for s in summaries:
        values = [100 * m["test"][metric] for m in s["members"]]
        rows.append({"model": s["label"], "seeds": len(values),
                     "selected epochs": ", ".join(str(m["best_epoch"]) for m in s["members"]),
                     f"test {metric} % per seed": ", ".join(f"{v:.1f}" for v in values),
                     "mean": round(100 * s["mean"][metric], 1),
                     "std": round(100 * s["std"][metric], 1),
                     "ensemble": round(100 * s["ensemble"]["test"][metric], 1),
                     "train s": round(sum(m["train_seconds"] for m in s["members"]), 1)})
    return pd.DataFrame(rows)


def checkpoint_listing(summaries: list[dict]) -> pd.DataFrame:
    """The files each run wrote, relative to the data folder, with their sizes."""
    rows = []
    root = data_dir()
    for s in summaries:
        for path in sorted(Path(s["folder"]).rglob("*")):
            if path.is_file():
                try:
                    shown = path.relative_to(root)
                except ValueError:
                    shown = path
                rows.append({"file": str(shown), "kB": round(path.stat().st_size / 1024, 1)})
    return pd.DataFrame(rows)


def completeness(summaries: list[dict], seeds: int) -> str:
    """A stable one-line statement: every model trained for every seed, and selected on
    the validation split (an epoch >= 1 for trained models)."""
    trained = [s for s in summaries if all(len(m["history"]) or s["spec"]["model"] == "majority"
                                           for m in s["members"])]
    ok = len(trained) == len(summaries) and all(len(s["members"]) == seeds for s in summaries)
    return f"{len(summaries)} models x {seeds} seeds trained and selected on validation: {'yes' if ok else 'NO'}"
