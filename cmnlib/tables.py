"""The paper's published numbers (Tables 1 and 2) and the shared formatting of result
tables: the reproduced rows of a data set's table beside its Bayes ceilings, the paper's own
rows as a table of their own, and :func:`save_table`, which writes every table of the
report (CSV, Markdown, LaTeX and an HTML fragment).

Every table carries its data source (``DataFrame.attrs['data']``), written into the
Markdown and LaTeX files as a caption and into the CSV as a column. What a study asks of
its runs lives in its module (:mod:`cmnlib.studies`).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_text
from .config import dataset_info
from .metrics import table_metrics
from .results import RunResult

# ---------------------------------------------------------------------------------------
# What the paper reports (Zhang & Li 2023, Tables 1 and 2), in percent
# ---------------------------------------------------------------------------------------
PAPER_TABLE1 = [  # IEMOCAP: precision, recall, unweighted F1
    {"model": "CMN (L+A)", "prec": 67.4, "recall": 67.4, "f1": 67.4},
    {"model": "MulT (L+A+V)", "f1": 71.5},
    {"model": "RAVEN", "f1": 66.5},
    {"model": "E1 (L+A) (Sahu 2019)", "prec": 56.6, "recall": 57.3, "f1": 55.7},
    {"model": "E2 (L+A) (Sahu 2019)", "prec": 64.9, "recall": 63.2, "f1": 66.0},
]
PAPER_TABLE2 = [  # CMU-MOSEI binary sentiment
    {"model": "CMN (L+A)", "acc2": 42.5, "f1": 42.5},
    {"model": "MulT (L+A+V)", "acc2": 81.1, "f1": 81.0},
    {"model": "RAVEN (L+A+V)", "acc2": 79.0, "f1": 79.5},
    {"model": "Graph-MFN", "acc2": 76.9, "f1": 77.0},
]
REAL_MOSEI_TEST_NONNEG = 71.0  # 3,312 of 4,662 test segments (SDK standard folds)

# the paper's tables: Table 1 is IEMOCAP, Table 2 CMU-MOSEI; other data sets have no reported rows
REPORTED = "reported (paper)"  # the kind of a results_frame row that the paper reports
PAPER_ROWS = {1: PAPER_TABLE1, 2: PAPER_TABLE2}  # by the paper's table number (DatasetInfo.paper_table)


def paper_table(dataset: str) -> int | None:
    """The number of the paper's table that reports ``dataset`` (1: IEMOCAP, 2: MOSEI), or
    None for a data set the paper does not report on."""
    return dataset_info(dataset).paper_table


def paper_rows(dataset: str) -> list[dict]:
    """The rows the paper reports for ``dataset`` (empty for the others)."""
    number = paper_table(dataset)
    return PAPER_ROWS[number] if number is not None else []


def table_columns(dataset: str) -> dict:
    """{column: Metric} of ``dataset``'s table, from the metric registry
    (:func:`cmnlib.metrics.table_metrics`)."""
    return {m.column: m for m in table_metrics(dataset)}


def table_name(dataset: str) -> str:
    """The file name of ``dataset``'s table: the paper's table number where it has one
    (table1_iemocap, table2_mosei), else ``table_<dataset>``."""
    number = paper_table(dataset)
    return f"table{number if number is not None else ''}_{dataset}"


def _shown(metric, value: float | None) -> float | None:
    """A metric's value as the tables hold it: rates in percent, MAE and Corr as they are;
    None for a missing or undefined (NaN) value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return 100 * value if metric.percent else value


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else value


def _values(result: RunResult, columns: dict, kind: str) -> dict:
    """The table's columns of one result: its mean or std over seeds, or its ensemble."""
    ensemble = result.ensemble() if kind == "ensemble" else None
    values = {}
    for column, metric in columns.items():
        if not result.has_metric(metric.key):
            values[column] = None
        elif kind == "mean over seeds":  # of the per-seed values in percent, as the findings take them
            values[column] = _none_if_nan(result.mean(metric.key, percent=True))
        elif kind == "std over seeds":
            values[column] = _none_if_nan(result.std(metric.key, percent=True))
        else:
            values[column] = _shown(metric, ensemble.get(metric.key))
    return values


def results_frame(dataset: str, results: list[RunResult], ceilings: dict | None = None) -> pd.DataFrame:
    """Numeric long table: one row per (model, kind) with every column of the data set's
    table (the metric registry's columns, :func:`cmnlib.metrics.table_metrics`), computed
    from the runs' stored outputs.

    kinds: 'reported (paper)', 'mean over seeds', 'std over seeds', 'ensemble',
    'Bayes ceiling'. Values in percent (MAE and Corr as they are).
    """
    columns = table_columns(dataset)
    rows = []
    for row in paper_rows(dataset):
        rows.append({"model": row["model"], "kind": REPORTED, "seeds": None,
                     **{c: row.get(c) for c in columns}})
    for result in results:
        for kind in ("mean over seeds", "std over seeds", "ensemble"):
            if not result.trained and kind != "mean over seeds":
                continue  # a constant: seeds and ensembles add nothing
            rows.append({"model": result.label, "kind": kind, "seeds": len(result.seeds),
                         **_values(result, columns, kind)})
    if ceilings is not None:
        for subset in ("L", "A", "V", "LA", "LAV"):
            rows.append({"model": f"Bayes-optimal ({'+'.join(subset)})", "kind": "Bayes ceiling", "seeds": None,
                         **{c: _shown(m, ceilings[subset].get(m.key)) for c, m in columns.items()}})
    frame = pd.DataFrame(rows)
    frame.attrs["columns"] = {c: m.label for c, m in columns.items()}
    frame.attrs["rates"] = {c: m.percent for c, m in columns.items()}  # percent (1 decimal) or not (3)
    frame.attrs["precision"] = precision_of(results)
    return frame


def precision_of(results: list[RunResult]) -> str:
    """The precision the runs trained in ('fp32', 'bf16', or both joined)."""
    found = sorted({r.spec.train.precision for r in results})
    return " and ".join(found) if found else "fp32"


def display_table(frame: pd.DataFrame, data_label: str, decimals: int = 1) -> pd.DataFrame:
    """The reproduced rows of a :func:`results_frame` as the paper lays out its tables:
    'mean ± std' cells, labelled columns, the Bayes ceilings (synthetic data) last. The
    paper's own rows, measured on the real data, are a table of their own
    (:func:`reported_table`), so that nobody compares across them by accident."""
    labels = frame.attrs["columns"]
    out = []
    for (model, kind), group in frame.groupby(["model", "kind"], sort=False):
        if kind in ("std over seeds", REPORTED):
            continue
        row = {"Model": model, "Rows": kind}
        std = frame[(frame.model == model) & (frame.kind == "std over seeds")]
        for column, label in labels.items():
            value = group[column].iloc[0]
            digits = decimals if frame.attrs["rates"][column] else 3
            if value is None or pd.isna(value):
                row[label] = "-"
            elif (kind == "mean over seeds" and len(std) and not pd.isna(std[column].iloc[0])
                  and group["seeds"].iloc[0] > 1):
                row[label] = f"{value:.{digits}f} ± {std[column].iloc[0]:.{digits}f}"
            else:
                row[label] = f"{value:.{digits}f}"
        if kind in ("mean over seeds", "ensemble"):
            n = int(group["seeds"].iloc[0])
            row["Rows"] = (f"{kind} ({n} seed{'s' if n > 1 else ''})" if kind == "mean over seeds"
                           else f"ensemble of {n}")
        out.append(row)
    table = pd.DataFrame(out)
    table.attrs["data"] = f"{data_label}; precision {frame.attrs.get('precision', 'fp32')}"
    return table


def reported_table(dataset: str, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's own rows for ``dataset`` (its Table 1 or 2, on the real benchmark), with
    the same column labels as the reproduced table; empty for a data set the paper does not
    report on. ``attrs['data']`` says where the numbers come from."""
    columns = table_columns(dataset)
    rows = [{"Model": r["model"], **{m.label: "-" if r.get(c) is None else f"{r[c]:.1f}"
                                     for c, m in columns.items()}}
            for r in paper_rows(dataset)]
    table = pd.DataFrame(rows)
    if not table.empty:  # drop the columns the paper does not report
        table = table.loc[:, (table != "-").any(axis=0)]
    number = paper_table(dataset)
    table.attrs["data"] = (f"reported by the paper (real {dataset.upper()}, its Table {number}), not run here"
                           if number is not None else "")
    return table


def save_table(table: pd.DataFrame, name: str, tables_dir: str | Path | None,
               numeric: pd.DataFrame | None = None, data: str | None = None) -> list[Path]:
    """Write ``name``.csv (``numeric`` when given, with a data column), .md, .tex and an
    .html fragment (the displayed table with the data source as its caption, which the
    report's index page shows inline). ``data``: the data source label (default:
    ``table.attrs['data']``)."""
    if tables_dir is None:
        return []
    folder = Path(tables_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = data if data is not None else table.attrs.get("data", "")
    csv = (numeric if numeric is not None else table).assign(data=data)
    write_text(folder / f"{name}.csv", csv.to_csv(index=False))
    write_text(folder / f"{name}.md", f"**{name}** — data: {data}\n\n" + table.to_markdown(index=False) + "\n")
    latex = table.to_latex(index=False, caption=f"{name} (data: {data})", label=f"tab:{name}",
                           escape=True)
    write_text(folder / f"{name}.tex", latex)
    prose = any(table[c].astype(str).str.len().max() > 40 for c in table.columns
                if table[c].dtype == object or pd.api.types.is_string_dtype(table[c]))
    fragment = table.to_html(index=False, border=0, na_rep="", classes="result prose" if prose else "result")
    write_text(folder / f"{name}.html", f"<p class='meta'>data: {html.escape(data)}</p>\n{fragment}\n")
    return [folder / f"{name}.{ext}" for ext in ("csv", "md", "tex", "html")]


def save_notes(markdown: str, name: str, tables_dir: str | Path | None, data: str | None = None) -> Path | None:
    """Write generated prose (every finding's sentence, every training note) to
    ``name``.md beside the tables, with its data source; a notebook shows a digest and
    links this. Nothing when ``tables_dir`` is None (a notebook run on its own)."""
    if tables_dir is None:
        return None
    folder = Path(tables_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return write_text(folder / f"{name}.md", f"**{name}** — data: {data or ''}\n\n{markdown}\n")
