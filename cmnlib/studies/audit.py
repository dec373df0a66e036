"""The claims audit and the verdict on the paper: one table assembled from every study's
rows, and one writer for it.

Each study states its rows (``claim``, ``verdict``, ``evidence``, ``status``, ``real data
would settle``): the paper's own claims (:func:`cmnlib.studies.paper.audit_rows`) and
Guide-Attention (:func:`cmnlib.studies.alignment.guide_attention_claim`). A notebook that
produces rows saves them with :func:`save_rows` into the report's ``tables/audit/``; after
every notebook has run, the batch runner calls :func:`assemble`, which writes
``claims_audit`` and the verdict from whatever rows are there, in the studies' fixed order,
whatever order the notebooks ran in.
"""
from __future__ import annotations

import json
from pathlib import Path

import mistune
import pandas as pd

from ..atomic import write_json, write_text
from ..tables import save_table

COLUMNS = ("claim", "verdict", "evidence", "status", "real data would settle")
STATUS_ORDER = ("refuted by the paper's own numbers", "contradicted by the real MOSEI labels",
                "questioned by the paper's own numbers", "holds as arithmetic on the paper's numbers",
                "holds as a count", "tested on real data", "synthetic evidence only")
STUDY_ORDER = ("paper", "alignment")  # the order of the audit's rows
AUDIT_FOLDER = "audit"


def claims_audit(rows: list[dict]) -> pd.DataFrame:
    """The rows as a table with the audit's columns."""
    return pd.DataFrame([{c: row[c] for c in COLUMNS} for row in rows], columns=list(COLUMNS))


def claims_overview(audit: pd.DataFrame) -> pd.DataFrame:
    """A :func:`claims_audit` table at a glance: each claim, its verdict and its status (the
    evidence and what real data would settle are in :func:`verdict_markdown` and the
    report's full table)."""
    return audit[["claim", "verdict", "status"]]


def verdict_markdown(audit: pd.DataFrame) -> str:
    """"What this companion concludes about the paper", generated from a :func:`claims_audit`
    table: one paragraph per status (refuted, holds, tested, synthetic only) listing its
    claims with their verdicts, then what real data would settle (every claim whose answer
    does not already follow from the paper's own numbers or the code)."""
    parts = []
    for status in STATUS_ORDER:
        rows = audit[audit.status == status]
        if rows.empty:
            continue
        items = "\n".join(f"  * {r.claim}: **{r.verdict}**. {_sentence(r.evidence)}" for r in rows.itertuples())
        claims = f"{len(rows)} claim{'s' if len(rows) > 1 else ''}"
        parts.append(f"* **{status[0].upper() + status[1:]}** ({claims}):\n{items}")
    open_questions = audit[~audit["real data would settle"].str.startswith("nothing more")]
    settle = "\n".join(f"* {r.claim}: {_sentence(r['real data would settle'])}"
                       for _, r in open_questions.drop_duplicates("real data would settle").iterrows())
    return "\n".join(parts) + ("\n\n**What real data would settle:**\n\n" + settle if settle else "")


def save_rows(study: str, rows: list[dict], data_labels: list[str], tables_dir: str | Path | None) -> Path | None:
    """A study's audit rows and the labels of the data behind them, into
    ``<tables_dir>/audit/<study>.json`` for :func:`assemble` (nothing when ``tables_dir`` is
    None: a notebook run outside the batch runner)."""
    if tables_dir is None:
        return None
    if study not in STUDY_ORDER:
        raise ValueError(f"unknown study {study!r}; one of {', '.join(STUDY_ORDER)}")
    return write_json(Path(tables_dir) / AUDIT_FOLDER / f"{study}.json",
                      {"rows": [{c: row[c] for c in COLUMNS} for row in rows], "data": list(data_labels)})


def assemble(tables_dir: str | Path) -> list[Path]:
    """The one writer of the claims audit and the verdict: every study's saved rows (in
    :data:`STUDY_ORDER`) as ``claims_audit.{csv,md,tex,html}`` and ``verdict.{md,html}``
    (mistune, the Markdown renderer nbconvert uses; the report's index shows it first).
    Nothing is written when no study saved rows."""
    folder = Path(tables_dir)
    saved = [json.loads(p.read_text()) for study in STUDY_ORDER
             if (p := folder / AUDIT_FOLDER / f"{study}.json").exists()]
    if not saved:
        return []
    rows = [row for part in saved for row in part["rows"]]
    labels = list(dict.fromkeys(label for part in saved for label in part["data"]))
    audit = claims_audit(rows)
    written = save_table(audit, "claims_audit", folder, data="; ".join(labels))
    markdown = verdict_markdown(audit)
    written.append(write_text(folder / "verdict.md", markdown + "\n"))
    written.append(write_text(folder / "verdict.html", mistune.html(markdown)))
    return written


def _sentence(text: str) -> str:
    """``text`` capitalised and ended with one full stop (evidence may already end with one)."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
