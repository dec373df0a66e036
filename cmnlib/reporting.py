"""Small summaries of training runs for the notebooks (tables and one-line checks), and
:func:`show`, how a notebook displays a table."""
from __future__ import annotations

import hashlib
import numbers
from pathlib import Path

import pandas as pd

from .data.sources import data_dir
from . import metrics
from .findings import fixed
from .metrics import label
from .results import RunResult


MISSING = "–"  # a value a table does not have (not reported, not trained, not defined): never an empty cell


def _cell(value) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return MISSING if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    return MISSING if pd.isna(value) else f"{value:,.10g}"  # as rounded by the table's maker, no float noise


def _is_float(value) -> bool:
    """A real number that is not an integer, a bool or missing: what gets decimals."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)) and not pd.isna(value)


def _decimals(values) -> int:
    """The decimals a column's floats were rounded to by the table's maker: the most any of
    them shows (at 10 significant digits, so float noise does not count)."""
    most = 0
    for value in values:
        if _is_float(value):
            text = f"{value:.10g}"
            if "e" not in text and "." in text:
                most = max(most, len(text.split(".")[1]))
    return most


def _column_format(values):
    """One formatter for a column: its floats with the same number of decimals (79.0 beside
    79.5, not 79), thousands separators, integers as integers, text as it is."""
    decimals = _decimals(values)

    def shown(value) -> str:
        if _is_float(value):
            return fixed(value, decimals, thousands=True)
        return _cell(value)
    return shown


def _metric_in(header: str) -> metrics.Metric | None:
    """The registry metric a column header names ("Acc2", "Acc2: mean", "F1 (unweighted)",
    "Acc2 (non-negative vs negative, all)"): the longest display name it starts with, followed
    by nothing, a colon or a parenthesis. (Presentation only: it decides a caption's unit;
    the table makers name their columns from the same registry.)"""
    names = {m.label: m for family in metrics.FAMILIES.values() for m in family.metrics}
    matching = [name for name in names if header == name or header.startswith((name + ":", name + " ("))]
    return names[max(matching, key=len)] if matching else None


def percent_caption(frame: pd.DataFrame, caption: str | None) -> str | None:
    """``caption`` with the unit of the scores added where the table shows rates in percent
    (accuracies, F1) and neither the caption nor a header says "%": "scores in %", or "all
    but MAE, Corr in %" when the table also shows metrics that are not rates."""
    names = [str(c) for c in (frame.columns.get_level_values(-1) if frame.columns.nlevels > 1 else frame.columns)]
    shown = [m for m in map(_metric_in, names) if m is not None]
    if not any(m.percent for m in shown) or "%" in (caption or "") or any("%" in n for n in names):
        return caption
    others = list(dict.fromkeys(m.label for m in shown if not m.percent))
    unit = f"all but {', '.join(others)} in %" if others else "scores in %"
    return f"{caption}; {unit}" if caption else unit


def show(frame: pd.DataFrame | None, caption: str | None = None):
    """A table as a notebook shows it: without the 0..n row numbers (a meaningful index, e.g.
    a named one, stays), integers with thousands separators, each column's floats with one
    number of decimals (as many as the function that made the table rounded them to), a
    missing value as "–" (never an empty cell), text left-aligned, and the unit of its
    rates in the caption (:func:`percent_caption`). None (a table that does not apply to
    this data, e.g. Bayes ceilings of real data) shows nothing, as a bare None would."""
    if frame is None:
        return None
    caption = percent_caption(frame, caption)
    default_index = isinstance(frame.index, pd.RangeIndex) and frame.index.name is None
    # the HTML's element ids from the content, not pandas' random uuid: the same table
    # renders to the same bytes (nbval compares them), two tables never share ids
    uuid = hashlib.sha256((frame.to_csv() + (caption or "")).encode()).hexdigest()[:10]
    formats = ({column: _column_format(frame[column].tolist()) for column in frame.columns}
               if frame.columns.is_unique else _cell)
    styled = frame.style.set_uuid(uuid).format(formats, na_rep=MISSING)
    if default_index:
        styled = styled.hide(axis="index")
    styled = styled.set_properties(**{"text-align": "left"})
    return styled.set_caption(caption) if caption else styled


def run_table(results: list[RunResult], metric: str) -> pd.DataFrame:
    """One row per model: seeds, selected epochs, test metric per seed, mean ± std, ensemble."""
    rows = []
    for r in results:
        values = [100 * v for v in r.scores(metric, percent=False)]
        rows.append({"model": r.label, "seeds": len(values),
                     "selected epochs": ", ".join(str(m.best_epoch) for m in r.members),
                     f"test {label(metric, r.dataset)} % per seed": ", ".join(f"{v:.1f}" for v in values),
                     "mean": round(r.mean(metric, percent=True), 1),
                     "std": round(r.std(metric, percent=True), 1),
                     "ensemble": round(100 * r.ensemble()[metric], 1),
                     "train s": round(sum(m.train_seconds for m in r.members), 1)})
    return pd.DataFrame(rows)


def checkpoint_listing(results: list[RunResult]) -> pd.DataFrame:
    """The files each run wrote, relative to the data folder, with their sizes."""
    rows = []
    root = data_dir()
    for r in results:
        for path in sorted(Path(r.folder).rglob("*")):
            if path.is_file():
                try:
                    shown = path.relative_to(root)
                except ValueError:
                    shown = path
                rows.append({"file": str(shown), "kB": round(path.stat().st_size / 1024, 1)})
    return pd.DataFrame(rows)


def completeness(results: list[RunResult], seeds: int) -> str:
    """A stable one-line statement: every model trained for every seed, and selected on
    the validation split (an epoch >= 1 for trained models)."""
    trained = [r for r in results if all(len(m.history) or r.model == "majority" for m in r.members)]
    ok = len(trained) == len(results) and all(len(r.members) == seeds for r in results)
    return f"{len(results)} models x {seeds} seeds trained and selected on validation: {'yes' if ok else 'NO'}"


def collapsed_models(results: list[RunResult], metric: str, constant: float, tolerance: float = 0.05) -> list[str]:
    """The labels of the trained runs whose every seed's test ``metric`` is within
    ``tolerance`` points of the constant predictor's score ``constant`` (percent): models
    that predict one answer for every utterance."""
    return [r.label for r in results if r.model != "majority" and r.trained
            and all(abs(100 * v - constant) <= tolerance for v in r.scores(metric, percent=False))]


def curve_summary(results: list[RunResult], metric: str, max_epochs: int, constant: float | None = None) -> dict:
    """The counts behind :func:`training_notes`, one row's worth: trained seeds, seeds that
    selected the capped last epoch (still improving), seeds stopped early, collapsed models."""
    trained = [r for r in results if r.model != "majority" and r.trained]
    members = [m for r in trained for m in r.members]
    if constant is None:
        majority = [r for r in results if r.model == "majority"]
        constant = 100 * majority[0].mean(metric) if majority else None
    collapsed = collapsed_models(trained, metric, constant) if constant is not None else []
    return {"seeds trained": len(members),
            "still improving at the cap": sum(m.best_epoch == m.epochs_run == max_epochs for m in members),
            "stopped early": sum(m.epochs_run < max_epochs for m in members),
            "collapsed models": ", ".join(collapsed) or "none"}


def training_notes(results: list[RunResult], metric: str, max_epochs: int, constant: float | None = None,
                   tolerance: float = 0.05) -> list[str]:
    """What the learning curves show, as sentences generated from the runs (notebook 05):

    * selection by validation loss against the validation ``metric``: how many seeds kept an
      epoch whose validation score is below their best epoch's, and the largest such cost;
    * the epoch cap: how many seeds selected the last epoch of ``max_epochs`` (still
      improving when training stopped);
    * early stopping: how many seeds stopped before the cap, and the largest drop of the
      validation ``metric`` from one epoch to the next (a stop on noise);
    * collapsed models: those whose every seed's test score is within ``tolerance`` points of
      the constant predictor's (``constant``, percent; default: the majority run's score
      among ``results``), i.e. that predict a constant;
    * the spread between seeds: the model whose seeds differ most on the test ``metric``.
    """
    trained = [r for r in results if r.model != "majority" and r.trained]
    if not trained:
        return []
    majority = [r for r in results if r.model == "majority"]
    if constant is None and majority:
        constant = 100 * majority[0].mean(metric)
    notes = []
    key = f"valid_{metric}"
    shown = metrics.label(metric, trained[0].dataset)  # the prose names the metric as the tables do
    costs = []
    for r in trained:
        for m in r.members:
            scores = m.curve(key)
            best = max(range(len(scores)), key=scores.__getitem__)
            kept = m.best_epoch - 1
            if scores[kept] < scores[best]:
                costs.append((100 * (scores[best] - scores[kept]), r.label, m.seed, m.best_epoch, best + 1,
                              100 * scores[kept], 100 * scores[best]))
    n_seeds = sum(len(r.members) for r in trained)
    if costs:
        cost, label, seed, kept, best, kept_score, best_score = max(costs)
        notes.append(f"Selection by validation loss: {len(costs)} of {n_seeds} seeds kept an epoch with a lower "
                     f"validation {shown} than their best; the largest cost is {label}, seed {seed}: epoch {kept} "
                     f"({kept_score:.1f}) instead of epoch {best} ({best_score:.1f}), {cost:.1f} points. Loss and "
                     f"accuracy need not agree; cmnlib selects on the validation loss (TrainConfig.select_on), "
                     f"so the epoch is not tuned to the metric the tables report.")
    else:
        notes.append(f"Selection by validation loss: in all {n_seeds} seeds the epoch with the lowest validation "
                     f"loss also has the best validation {shown}.")
    capped = [(r.label, m.seed) for r in trained for m in r.members if m.best_epoch == m.epochs_run == max_epochs]
    notes.append(f"The epoch cap: {len(capped)} of {n_seeds} seeds selected their last epoch ({max_epochs})"
                 + (", so they were still improving when training stopped; more epochs (the paper profile) may "
                    "change their scores." if capped else "; none was cut short by the cap."))
    stopped = [m.epochs_run for r in trained for m in r.members if m.epochs_run < max_epochs]
    # drops, not rises: a rise between epochs is learning, a drop is noise (or overfitting)
    drops = [(100 * max(a[key] - b[key] for a, b in zip(m.history, m.history[1:])), r.label, m.seed)
             for r in trained for m in r.members if len(m.history) > 1]
    drops = [d for d in drops if d[0] > 0]
    if stopped:
        patience = {r.spec.train.patience for r in trained} - {None}
        after = f" after {'/'.join(str(p) for p in sorted(patience))} epochs without a lower validation loss" \
            if patience else ""
        note = (f"Early stopping: {len(stopped)} of {n_seeds} seeds stopped before the cap{after} (at epochs "
                f"{min(stopped)}-{max(stopped)}).")
        if drops:
            drop, label, seed = max(drops)
            note += (f" Validation {shown} falls by up to {drop:.1f} points from one epoch to the next ({label}, "
                     f"seed {seed}), so such a stop, and the epoch kept, can come from that noise rather than from "
                     f"the end of learning; a decaying learning rate (TrainConfig.lr_schedule) or more patience "
                     f"lets the runs settle.")
        notes.append(note)
    else:
        notes.append(f"Early stopping: none of the {n_seeds} seeds stopped before the cap.")
    if constant is not None:
        collapsed = collapsed_models(trained, metric, constant, tolerance)
        notes.append(f"Collapsed models: {', '.join(collapsed)} score{'s' if len(collapsed) == 1 else ''} the "
                     f"constant predictor's {constant:.1f} in every seed: such a model predicts one side for "
                     f"every utterance, i.e. it found nothing in its input that beats the label prior."
                     if collapsed else f"Collapsed models: none scores the constant predictor's {constant:.1f} in "
                     f"every seed.")
    spread = {r.label: (max(v) - min(v), v) for r in trained
              if len(v := [100 * x for x in r.scores(metric, percent=False)]) > 1}
    if spread:
        label, (width, values) = max(spread.items(), key=lambda kv: kv[1][0])
        notes.append(f"The spread between seeds: {label} differs most, {width:.1f} points (test {shown} "
                     f"{', '.join(f'{v:.1f}' for v in values)}); the tables therefore state mean ± std over seeds and "
                     f"the ensemble, and notebooks 06-07 judge claims with intervals over seeds.")
    return notes
