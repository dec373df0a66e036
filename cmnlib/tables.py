"""Tables 1 (IEMOCAP) and 2 (CMU-MOSEI): the paper's reported rows beside reproduced rows
on the data actually used, the Bayes ceilings of synthetic data, and a claims audit.

Every table carries its data source (``DataFrame.attrs['data']``), written into the
Markdown and LaTeX files as a caption and into the CSV as a column.
"""
from __future__ import annotations

import html
from pathlib import Path

import mistune
import numpy as np
import pandas as pd

from . import config, findings
from .summaries import real_mosei_reference

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

COLUMNS = {
    "iemocap": {"prec": ("macro_precision", "Prec."), "recall": ("macro_recall", "Recall"),
                "f1": ("macro_f1", "F1 (unweighted)"), "acc": ("accuracy", "Acc (4-class)")},
    "mosei": {"acc2": ("acc2_has0", "Acc2"), "f1": ("f1_has0", "F1"),
              "acc2_non0": ("acc2_non0", "Acc2 (non-zero)"), "f1_non0": ("f1_non0", "F1 (non-zero)"),
              "mae": ("mae", "MAE"), "corr": ("corr", "Corr")},
}
COLUMNS["sims"] = {"acc2": ("acc2", "Acc2"), "acc3": ("acc3", "Acc3"), "acc5": ("acc5", "Acc5"),
                   "f1": ("f1", "F1"), "mae": ("mae", "MAE"), "corr": ("corr", "Corr")}
PERCENT = {"prec", "recall", "f1", "acc", "acc2", "acc2_non0", "f1_non0", "acc3", "acc5"}
# the paper's tables: Table 1 is IEMOCAP, Table 2 CMU-MOSEI; other data sets have no reported rows
REPORTED = "reported (paper)"  # the kind of a results_frame row that the paper reports
PAPER_TABLES = {"iemocap": ("table1_iemocap", PAPER_TABLE1), "mosei": ("table2_mosei", PAPER_TABLE2)}


def table_columns(dataset: str) -> dict:
    """{column: (metric key, label)} of ``dataset``'s table, by its metric family."""
    return COLUMNS[config.dataset_info(dataset).metrics]


def table_name(dataset: str) -> str:
    """The file name of ``dataset``'s table: the paper's table number where it has one
    (table1_iemocap, table2_mosei), else ``table_<dataset>``."""
    return PAPER_TABLES[dataset][0] if dataset in PAPER_TABLES else f"table_{dataset}"


def _value(metric: str, value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return 100 * value if metric in PERCENT else value


def results_frame(dataset: str, summaries: list[dict], ceilings: dict | None = None) -> pd.DataFrame:
    """Numeric long table: one row per (model, kind) with every column of the paper's table.

    kinds: 'reported (paper)', 'mean over seeds', 'std over seeds', 'ensemble',
    'Bayes ceiling'. Values in percent (MAE and Corr as they are).
    """
    columns = table_columns(dataset)
    rows = []
    reported = PAPER_TABLES[dataset][1] if dataset in PAPER_TABLES else []
    for row in reported:
        rows.append({"model": row["model"], "kind": REPORTED, "seeds": None,
                     **{c: row.get(c) for c in columns}})
    for summary in summaries:
        n = len(summary["seeds"])
        for kind, source in (("mean over seeds", summary["mean"]), ("std over seeds", summary["std"]),
                             ("ensemble", summary["ensemble"]["test"])):
            if summary["spec"]["model"] == "majority" and kind != "mean over seeds":
                continue  # a constant: seeds and ensembles add nothing
            rows.append({"model": summary["label"], "kind": kind, "seeds": n,
                         **{c: _value(c, source.get(key)) for c, (key, _) in columns.items()}})
    if ceilings is not None:
        for subset in ("L", "A", "V", "LA", "LAV"):
            c = ceilings[subset]
            if dataset == "iemocap":
                values = {"acc": 100 * c["accuracy"], "f1": 100 * c["macro_f1"]}
            else:
                values = {"acc2": 100 * c["acc2_has0"], "f1": 100 * c["f1_has0"],
                          "acc2_non0": 100 * c["acc2_non0"], "f1_non0": 100 * c["f1_non0"]}
            rows.append({"model": f"Bayes-optimal ({'+'.join(subset)})", "kind": "Bayes ceiling",
                         "seeds": None, **{k: values.get(k) for k in columns}})
    frame = pd.DataFrame(rows)
    frame.attrs["columns"] = {c: label for c, (_, label) in columns.items()}
    frame.attrs["precision"] = precision_of(summaries)
    return frame


def precision_of(summaries: list[dict]) -> str:
    """The precision the runs trained in ('fp32', 'bf16', or both joined); runs cached before
    the field existed are fp32."""
    found = sorted({s.get("spec", {}).get("train", {}).get("precision", "fp32") for s in summaries})
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
            digits = 3 if column in ("mae", "corr") else decimals
            if value is None or pd.isna(value):
                row[label] = "-"
            elif kind == "mean over seeds" and len(std) and not pd.isna(std[column].iloc[0]) and group["seeds"].iloc[0] > 1:
                row[label] = f"{value:.{digits}f} ± {std[column].iloc[0]:.{digits}f}"
            else:
                row[label] = f"{value:.{digits}f}"
        if kind in ("mean over seeds", "ensemble"):
            n = int(group["seeds"].iloc[0])
            row["Rows"] = f"{kind} ({n} seed{'s' if n > 1 else ''})" if kind == "mean over seeds" else f"ensemble of {n}"
        out.append(row)
    table = pd.DataFrame(out)
    table.attrs["data"] = f"{data_label}; precision {frame.attrs.get('precision', 'fp32')}"
    return table


def reported_table(dataset: str, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's own rows for ``dataset`` (its Table 1 or 2, on the real benchmark), with
    the same column labels as the reproduced table; empty for a data set the paper does not
    report on. ``attrs['data']`` says where the numbers come from."""
    columns = table_columns(dataset)
    rows = [{"Model": r["model"], **{label: "-" if r.get(c) is None else f"{r[c]:.1f}"
                                     for c, (_, label) in columns.items()}}
            for r in (PAPER_TABLES[dataset][1] if dataset in PAPER_TABLES else [])]
    table = pd.DataFrame(rows)
    if not table.empty:  # drop the columns the paper does not report
        table = table.loc[:, (table != "-").any(axis=0)]
    table.attrs["data"] = (f"reported by the paper (real {dataset.upper()}, its "
                           f"{'Table 1' if dataset == 'iemocap' else 'Table 2'}), not run here"
                           if dataset in PAPER_TABLES else "")
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
    csv.to_csv(folder / f"{name}.csv", index=False)
    (folder / f"{name}.md").write_text(f"**{name}** — data: {data}\n\n" + table.to_markdown(index=False) + "\n")
    latex = table.to_latex(index=False, caption=f"{name} (data: {data})", label=f"tab:{name}",
                           escape=True)
    (folder / f"{name}.tex").write_text(latex)
    prose = any(table[c].astype(str).str.len().max() > 40 for c in table.columns
                if table[c].dtype == object or pd.api.types.is_string_dtype(table[c]))
    fragment = table.to_html(index=False, border=0, na_rep="", classes="result prose" if prose else "result")
    (folder / f"{name}.html").write_text(f"<p class='meta'>data: {html.escape(data)}</p>\n{fragment}\n")
    return [folder / f"{name}.{ext}" for ext in ("csv", "md", "tex", "html")]


# ---------------------------------------------------------------------------------------
# Claims audit
# ---------------------------------------------------------------------------------------

def _relative(a: float, b: float) -> float:
    return 100 * (a / b - 1)


def _ensembles(frame: pd.DataFrame, metric: str) -> pd.Series:
    """The ensemble rows' ``metric`` by model label."""
    return frame[frame.kind == "ensemble"].set_index("model")[metric]


SETTLED_BY = {
    "iemocap_gains": "CMN trained on real IEMOCAP with the paper's settings, scored with the same metrics; "
                     "E1/E2 and RAVEN come from other papers with other features and splits",
    "sota": "nothing more: Table 1 itself lists MulT above CMN",
    "modules": "nothing more: counted from the code (cmnlib.model.transformer_modules)",
    "mosei": "CMN (L+A) trained on real MOSEI, Acc2 reported with its convention beside the constant "
             "predictor (71.0 over all samples, 62.9 without zero labels)",
    "fusion": "the same finding over seeds on the real data set (cmn reproduce --data ...)",
    "guide": "the ablation of notebook 08 on word-aligned real data (MulT's aligned pickles, MMSA's "
             "aligned_50), where the words that need the audio are not known: the scores against the "
             "paper's CMN and the text-only LSTM",
}
STATUS_ORDER = ("refuted by the paper's own numbers", "holds as arithmetic on the paper's numbers",
                "holds as a count", "tested on real data", "synthetic evidence only")


def claims_audit(data_labels: dict, module_counts: dict | None = None,
                 fusion_findings: dict | None = None, extra_rows: list[dict] | None = None) -> pd.DataFrame:
    """Every claim of the paper's results section with a verdict, its evidence, a status and
    what real data would settle.

    Verdicts: 'supported', 'not supported', 'arithmetic checks' (the paper's own numbers
    give the stated ratio), 'below a constant predictor'; and for the claim that fusion
    beats a single modality, the verdict of a finding over seeds (``fusion_findings``:
    dataset -> :func:`unimodal_finding`): supported / not supported / inconclusive on the
    data named. Status (one of :data:`STATUS_ORDER`) says what kind of evidence decides the
    verdict; a finding on data labelled SYNTHETIC is 'synthetic evidence only'.
    ``extra_rows``: rows of the same columns from later analyses (notebook 08's
    :func:`guide_attention_claim`).
    """
    cmn = PAPER_TABLE1[0]
    e1, e2 = PAPER_TABLE1[3], PAPER_TABLE1[4]
    raven, mult = PAPER_TABLE1[2], PAPER_TABLE1[1]
    rows = []

    def add(claim, verdict, evidence, status, settled):
        rows.append({"claim": claim, "verdict": verdict, "evidence": evidence, "status": status,
                     "real data would settle": SETTLED_BY[settled]})

    stated = {"precision vs E1/E2": (19.1, 3.8, "prec"), "recall vs E1/E2": (17.6, 6.6, "recall")}
    for name, (s1, s2, key) in stated.items():
        r1, r2 = _relative(cmn[key], e1[key]), _relative(cmn[key], e2[key])
        checks = abs(r1 - s1) < 0.15 and abs(r2 - s2) < 0.15
        add(f"IEMOCAP: CMN improves {name} by {s1}% / {s2}% (relative)",
            "arithmetic checks" if checks else "not supported",
            f"from Table 1: {r1:.1f}% / {r2:.1f}%; an empirical test needs real IEMOCAP (not testable on this data)",
            "holds as arithmetic on the paper's numbers" if checks else "refuted by the paper's own numbers",
            "iemocap_gains")
    f_raven, f_e1, f_e2 = (_relative(cmn["f1"], x["f1"]) for x in (raven, e1, e2))
    checks = max(abs(f_raven - 1.3), abs(f_e1 - 21.0), abs(f_e2 - 2.1)) < 0.15
    add("IEMOCAP: CMN improves F1 over RAVEN / E1 / E2 by 1.3% / 21.0% / 2.1%",
        "arithmetic checks" if checks else "not supported",
        f"from Table 1: {f_raven:.1f}% / {f_e1:.1f}% / {f_e2:.1f}%; the baselines' rows come "
        "from other papers with other features and splits",
        "holds as arithmetic on the paper's numbers" if checks else "refuted by the paper's own numbers",
        "iemocap_gains")
    add("IEMOCAP: CMN is state of the art", "not supported",
        f"the paper's own Table 1 lists MulT at F1 {mult['f1']} > CMN {cmn['f1']}",
        "refuted by the paper's own numbers", "sota")
    if module_counts:
        add("CMN uses 2 transformer modules where MulT uses 6", "supported (as a count of modules)",
            f"CMN (L+A): {module_counts['cmn_modules']} stacks; MulT: {module_counts['mult_crossmodal']} "
            f"crossmodal + {module_counts['mult_memory']} memory transformers; but at the paper settings CMN has "
            f"{module_counts['cmn_params'] / 1e6:.1f} M parameters vs MulT's {module_counts['mult_params'] / 1e6:.2f} M",
            "holds as a count", "modules")
    add("MOSEI: CMN reaches Acc2 42.5 / F1 42.5 (called unsatisfying, not analysed)", "below a constant predictor",
        f"the real MOSEI test set is {REAL_MOSEI_TEST_NONNEG}% non-negative, so predicting 'non-negative' always "
        f"scores Acc2 {REAL_MOSEI_TEST_NONNEG}; 42.5 is {REAL_MOSEI_TEST_NONNEG - 42.5:.1f} points below it",
        "refuted by the paper's own numbers", "mosei")
    for dataset, finding in (fusion_findings or {}).items():
        if finding is None:
            continue
        label = data_labels.get(dataset, "")
        add(f"{dataset.upper()}: fusing L+A with CMN beats the best single modality",
            f"{finding.verdict} on this data", f"{label}: " + findings.sentence(finding),
            "synthetic evidence only" if "SYNTHETIC" in label else "tested on real data", "fusion")
    rows += list(extra_rows or [])
    return pd.DataFrame(rows)


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
        items = "\n".join(f"  * {r.claim}: **{r.verdict}**. {r.evidence[:1].upper()}{r.evidence[1:]}."
                           for r in rows.itertuples())
        parts.append(f"* **{status.capitalize()}** ({len(rows)} claim{'s' if len(rows) > 1 else ''}):\n{items}")
    open_questions = audit[~audit["real data would settle"].str.startswith("nothing more")]
    settle = "\n".join(f"* {r.claim}: {r['real data would settle']}."
                        for _, r in open_questions.drop_duplicates("real data would settle").iterrows())
    return "\n".join(parts) + ("\n\n**What real data would settle:**\n\n" + settle if settle else "")


def save_verdict(markdown: str, tables_dir: str | Path) -> list[Path]:
    """Write the verdict (:func:`verdict_markdown`) as ``verdict.md`` and as an HTML
    fragment ``verdict.html`` (mistune, the Markdown renderer nbconvert uses), which
    the report's index page shows first."""
    folder = Path(tables_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "verdict.md").write_text(markdown + "\n")
    (folder / "verdict.html").write_text(mistune.html(markdown))
    return [folder / "verdict.md", folder / "verdict.html"]


def seed_scores(summary: dict, metric: str) -> list[float]:
    """One model's test ``metric`` per seed, in percent."""
    return [100 * float(m["test"][metric]) for m in summary["members"]]


def _by_label(summaries: list[dict]) -> dict:
    return {s["label"]: s for s in summaries}


def unimodal_finding(summaries: list[dict], dataset: str, model: str = "CMN (L+A)"):
    """Does ``model`` beat the best unimodal LSTM (best by mean over seeds)? Welch's
    interval for the difference of mean test scores (headline metric); None when either
    side is missing."""
    metric, label = config.headline(dataset)
    runs = _by_label(summaries)
    unimodal = {k: v for k, v in runs.items() if k.startswith("LSTM (")}
    if model not in runs or not unimodal:
        return None
    best = max(unimodal, key=lambda k: np.mean(seed_scores(unimodal[k], metric)))
    return findings.beats(f"{model} scores above the best unimodal model, {best}",
                          f"{label} of {model} minus {best}, points", seed_scores(runs[model], metric),
                          seed_scores(unimodal[best], metric))


def quality_findings(summaries: list[dict], dataset: str, ceilings: dict | None,
                     tolerance: float = 3.0, model: str = "CMN (L+A)") -> list:
    """The synthetic benchmark's targets as findings over seeds: ``model`` within
    ``tolerance`` points of the L+A Bayes ceiling (when the data has one), and above the
    best unimodal LSTM."""
    metric, label = config.headline(dataset)
    runs = _by_label(summaries)
    out = []
    if ceilings is not None and model in runs:
        ceiling = 100 * ceilings["LA"][metric]
        out.append(findings.exceeds(f"{model} comes within {tolerance:g} points of the L+A Bayes ceiling "
                                    f"({ceiling:.1f})", f"L+A ceiling minus {label}, points",
                                    [ceiling - v for v in seed_scores(runs[model], metric)], tolerance, above=False))
    beats = unimodal_finding(summaries, dataset, model)
    if beats is not None:
        out.append(beats)
    return out


def text_ceiling_findings(summaries: list[dict], dataset: str, ceilings: dict | None,
                          models=("CMN (L+A)", "CMN (L+A+V)", "MulT (L+A+V)", "EF-LSTM (L+A+V)")) -> list:
    """Does each fusion model score above the language-only Bayes ceiling, i.e. use more
    than the text? Empty without ceilings (real data). For a macro-F1 the ceiling belongs
    to the accuracy-optimal rule and is not a hard bound (see :func:`ceiling_gaps`)."""
    if ceilings is None:
        return []
    metric, label = config.headline(dataset)
    ceiling = 100 * ceilings["L"][metric]
    runs = _by_label(summaries)
    return [findings.exceeds(f"{m} scores above the language-only ceiling ({ceiling:.1f})", f"test {label}",
                             seed_scores(runs[m], metric), ceiling) for m in models if m in runs]


# ---------------------------------------------------------------------------------------
# Beyond the paper (notebook 07)
# ---------------------------------------------------------------------------------------

def _subset_of(label: str) -> str | None:
    """'CMN (L+A)' -> 'LA', 'LSTM (V)' -> 'V'; None for a model without input modalities."""
    if "(" not in label or label.startswith("Majority"):
        return None
    return label[label.index("(") + 1:label.index(")")].replace("+", "")


def ceiling_gaps(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Each model's ensemble beside the Bayes ceiling of **its own** modality subset.

    ``captured`` is the share of the possible gain over the constant predictor that the
    model realises: (score - constant) / (ceiling - constant); 100% = Bayes-optimal.
    Needs a frame with ceilings (synthetic data); returns an empty frame otherwise. The
    ceilings belong to the accuracy-optimal (Bayes) rule: a macro-F1 may exceed its
    "ceiling" (a rule favouring rare classes), an accuracy never does.
    """
    metric = "f1" if dataset == "iemocap" else "acc2"
    ceilings = frame[frame.kind == "Bayes ceiling"].set_index("model")[metric]
    if ceilings.empty:
        return pd.DataFrame()
    scores = _ensembles(frame, metric)
    constant = frame[(frame.kind == "mean over seeds") & frame.model.str.startswith("Majority")][metric]
    base = float(constant.iloc[0]) if len(constant) else float("nan")
    rows = []
    for model, score in scores.items():
        subset = _subset_of(model)
        ceiling = ceilings.get(f"Bayes-optimal ({'+'.join(subset)})") if subset else None
        if ceiling is None:
            continue
        rows.append({"model": model, "modalities": "+".join(subset), metric: round(float(score), 1),
                     "ceiling": round(float(ceiling), 1), "gap": round(float(ceiling - score), 1),
                     "captured %": round(100 * (score - base) / (ceiling - base), 0)})
    out = pd.DataFrame(rows)
    text_only = ceilings.get("Bayes-optimal (L)")
    out.attrs.update(metric=table_columns(dataset)[metric][1], constant=base,
                     text_ceiling=None if text_only is None else float(text_only))
    return out


def constant_predictors_real_mosei(stats: dict | None = None) -> pd.DataFrame:
    """What predicting one class always scores on the **real** CMU-MOSEI test set under the
    two Acc2 conventions, from the real label rates shipped with cmnlib; beside the paper's
    CMN row. The non-zero convention drops the test samples labelled exactly 0."""
    if stats is None:
        stats = real_mosei_reference()
    nonneg, zero = stats["non_negative_rate"]["test"], stats["zero_rate"]["test"]
    positive_among_nonzero = (nonneg - zero) / (1 - zero)
    rows = [
        {"predictor": "always non-negative / positive", "Acc2 (non-negative vs negative, all)": 100 * nonneg,
         "Acc2 (positive vs negative, non-zero)": 100 * positive_among_nonzero},
        {"predictor": "always negative", "Acc2 (non-negative vs negative, all)": 100 * (1 - nonneg),
         "Acc2 (positive vs negative, non-zero)": 100 * (1 - positive_among_nonzero)},
        {"predictor": "paper: CMN (L+A), Table 2", "Acc2 (non-negative vs negative, all)": PAPER_TABLE2[0]["acc2"],
         "Acc2 (positive vs negative, non-zero)": PAPER_TABLE2[0]["acc2"]},
    ]
    return pd.DataFrame(rows).set_index("predictor").round(1)


def _score_columns(summary: dict, metric: str, label: str) -> dict:
    """A run's test ``metric`` as '<label>: mean / std / ensemble' columns (percent, one
    decimal) and its number of seeds: the columns of the wiring and alignment tables."""
    return {f"{label}: mean": round(100 * summary["mean"][metric], 1),
            f"{label}: std": round(100 * summary["std"][metric], 1),
            f"{label}: ensemble": round(100 * summary["ensemble"]["test"][metric], 1),
            "seeds": len(summary["seeds"])}


def wiring_table(dataset: str, summaries: dict[str, dict], default: str = "encoder_decoder") -> pd.DataFrame:
    """CMN with each MUA wiring (``summaries``: wiring -> its :func:`cmnlib.train.train_seeds`
    summary, same data, profile and seeds): test mean ± std over seeds and the ensemble, one
    row per wiring; ``attrs['findings']`` compares each other wiring with ``default`` over
    seeds (Welch's interval)."""
    metric, label = config.headline(dataset)
    table = pd.DataFrame([{"wiring": w, **_score_columns(s, metric, label)} for w, s in summaries.items()])
    base = seed_scores(summaries[default], metric) if default in summaries else None
    table.attrs["findings"] = [] if base is None else [
        findings.beats(f"{w} scores above {default}", f"{label}: {w} minus {default}, points",
                       seed_scores(s, metric), base)
        for w, s in summaries.items() if w != default]
    return table


def alignment_table(dataset: str, summaries: dict[str, dict], ceilings: dict | None = None) -> pd.DataFrame:
    """The alignment ablation (notebook 08): one row per CMN alignment variant and the
    early-fusion LSTM (``summaries``: name -> summary, from
    :func:`cmnlib.runs.train_alignments`), headline metric as test mean ± std over seeds and
    ensemble, in percent; with the data's language-only and L+A Bayes ceilings as rows when
    it has them."""
    metric, label = config.headline(dataset)
    rows = [{"model": s["label"], **_score_columns(s, metric, label)} for s in summaries.values()]
    for subset in ("L", "LA"):
        if ceilings is not None and subset in ceilings:
            rows.append({"model": f"Bayes ceiling ({'+'.join(subset)})",
                         f"{label}: mean": round(100 * ceilings[subset][metric], 1)})
    return pd.DataFrame(rows)


_VARIANT_COLUMNS = {"none": "paper's CMN", "shared_positions": "shared positions", "diagonal_prior": "diagonal prior",
                    "relative_bias": "relative bias", "stepwise_fusion": "step-wise fusion", "ef_lstm": "EF-LSTM"}


def records_overview(records: dict[str, dict]) -> pd.DataFrame:
    """The recorded long runs at a glance (notebook 08): one row per record (its title), the
    headline test metric's mean over its seeds for each model it holds (columns: the paper's
    CMN, each alignment variant, EF-LSTM), the seeds, and the data's language-only and L+A
    Bayes ceilings, in percent. Models a record does not hold are left empty."""
    rows = []
    for record in records.values():
        metric, label = config.headline(record["call"]["dataset"])
        row = {"record": record["title"], "metric": label}
        for name, summary in record["summaries"].items():
            row[_VARIANT_COLUMNS.get(name, name)] = round(float(np.mean(seed_scores(summary, metric))), 1)
        row["seeds"] = record["call"]["seeds"]
        for subset, column in (("L", "L ceiling"), ("LA", "L+A ceiling")):
            if record.get("ceilings") and subset in record["ceilings"]:
                row[column] = round(100 * record["ceilings"][subset][metric], 1)
        rows.append(row)
    columns = ["record", "metric", *[c for c in _VARIANT_COLUMNS.values() if any(c in r for r in rows)], "seeds",
               *[c for c in ("L ceiling", "L+A ceiling") if any(c in r for r in rows)]]
    return pd.DataFrame(rows, columns=columns)


def record_label(record: dict) -> str:
    """Which data and which machine a record of long runs (:func:`cmnlib.runs.recorded`, or
    :func:`cmnlib.runs.retrain`) comes from, for its tables' captions."""
    where = (f"recorded on {record['machine']}, {record['recorded']}, torch {record['torch']} "
             f"(shipped with cmnlib as resources/recorded/{record['name']}.json, not retrained in this run)"
             if record.get("recorded") else f"trained on {record['machine']}")
    return f"{record['data']}; {record['description']}; {where}"


def alignment_findings(dataset: str, summaries: dict[str, dict], ceilings: dict | None,
                       tolerance: float = 1.0, near_ceiling: float | None = None) -> list:
    """The ablation's questions as findings over seeds, for every variant other than 'none'
    (the paper's CMN): does it score above the language-only ceiling (it uses the audio),
    and does it lose more than ``tolerance`` points against the paper's CMN (Welch's
    interval for the difference; 'loses nothing' is supported when the whole interval of
    variant minus paper lies above -tolerance). With ``near_ceiling`` (points), also for
    every model, the paper's CMN included: does it come within that many points of the L+A
    ceiling (the issue's paper-size target: 3)?"""
    metric, label = config.headline(dataset)
    if "none" not in summaries:
        return []
    paper = seed_scores(summaries["none"], metric)
    out = []
    if near_ceiling is not None and ceilings is not None and "LA" in ceilings:
        target = 100 * ceilings["LA"][metric]
        for summary in summaries.values():
            out.append(findings.exceeds(f"{summary['label']} comes within {near_ceiling:g} points of the L+A "
                                        f"ceiling ({target:.1f})", f"test {label}", seed_scores(summary, metric),
                                        target - near_ceiling))
    for name, summary in summaries.items():
        if name == "none":
            continue
        scores = seed_scores(summary, metric)
        if ceilings is not None:
            ceiling = 100 * ceilings["L"][metric]
            out.append(findings.exceeds(f"{summary['label']} scores above the language-only ceiling ({ceiling:.1f})",
                                        f"test {label}", scores, ceiling))
        out.append(findings.beats(f"{summary['label']} loses no more than {tolerance:g} point(s) against the "
                                  f"paper's CMN", f"{label}: variant minus the paper's CMN, points",
                                  scores, paper, threshold=-tolerance))
    return out


ALIGNMENT_TARGETS = {
    "quick": "quick MOSEI-like set: an alignment-aware CMN scores above the language-only ceiling (uses the audio)",
    "iemocap": "IEMOCAP-like set: the alignment-aware CMN loses no more than 1 point against the paper's CMN",
    "paper": "paper-size MOSEI-like set: an alignment-aware CMN comes within 3 points of the L+A ceiling",
}


def alignment_targets(ablation: dict[str, list], records: dict[str, dict]) -> pd.DataFrame:
    """The alignment ablation's quality targets (:data:`ALIGNMENT_TARGETS`), each judged from
    the findings over seeds of every alignment variant that bears on it: ``ablation``, the
    notebook's findings per data set (:func:`alignment_findings`; 'mosei' and 'iemocap'), and
    ``records``, the recorded long runs (:func:`cmnlib.runs.recorded`; MOSEI-like quick-scale
    ones count for the quick target, paper-size ones for the paper-size target, IEMOCAP-like
    ones for the IEMOCAP target).

    A target is met when some variant's finding is supported, not met when every variant's
    finding is not supported, and open otherwise (or when nothing measured it); the row
    names the variants that meet it and the finding closest to meeting it (the highest lower
    end of its interval)."""
    evidence = {key: [] for key in ALIGNMENT_TARGETS}
    evidence["quick"] += [f for f in ablation.get("mosei", []) if "language-only ceiling" in f.claim]
    evidence["iemocap"] += [f for f in ablation.get("iemocap", []) if "loses no more" in f.claim]
    for record in records.values():
        dataset, scale = record["call"]["dataset"], record["call"]["scale"]
        found = alignment_findings(dataset, record["summaries"], record["ceilings"],
                                   near_ceiling=3 if scale == "paper" else None)
        if dataset == "iemocap":
            evidence["iemocap"] += [f for f in found if "loses no more" in f.claim]
        elif dataset == "mosei":
            wanted = "comes within 3 points" if scale == "paper" else "language-only ceiling"
            evidence["paper" if scale == "paper" else "quick"] += [f for f in found if wanted in f.claim]
    rows = []
    for key, target in ALIGNMENT_TARGETS.items():
        variants = [f for f in evidence[key] if "alignment=" in f.claim]  # not EF-LSTM, not the paper's CMN
        verdicts = [f.verdict for f in variants]
        verdict = ("met" if findings.SUPPORTED in verdicts else
                   "not met" if verdicts and set(verdicts) == {findings.NOT_SUPPORTED} else "open")
        # closest to being met: the highest lower end of the interval against the threshold
        best = max(variants, key=lambda f: f.low - f.threshold, default=None)
        rows.append({"target": target, "verdict": verdict,
                     "met by": "; ".join(_model_of(f.claim) for f in variants if f.verdict == findings.SUPPORTED)
                     or "none",
                     "closest": (f"{_model_of(best.claim)}: {best.estimate:.1f} {best.interval_text()} against "
                                 f"{best.threshold:.1f} ({best.seeds} seeds)") if best else "not measured"})
    return pd.DataFrame(rows)


def _model_of(claim: str) -> str:
    """The model label at the start of an alignment finding's claim."""
    for verb in (" scores above", " loses no more", " comes within"):
        if verb in claim:
            return claim.split(verb)[0]
    return claim


def guide_attention_claim(data_label: str, paper_aligned, paper_text, variant_text: list) -> dict:
    """The claims-audit row on the paper's statement that Guide-Attention lets language guide
    where audio attends (captures the interaction between the modalities), judged by notebook
    08's ablation on ``data_label``: ``paper_aligned``, the paper's CMN's finding that audio
    steps of ambiguous words attend to their own word (:func:`cmnlib.analysis.aligned_findings`);
    ``paper_text``, its finding of scoring above the language-only ceiling
    (:func:`text_ceiling_findings`); ``variant_text``, the same for the alignment variants.

    Supported when both findings on the paper's CMN are supported, not supported when
    either is not, inconclusive otherwise; the evidence names the variants that do score
    above the ceiling."""
    own = [f for f in (paper_aligned, paper_text) if f is not None]
    if own and all(f.verdict == "supported" for f in own):
        verdict = "supported"
    elif any(f.verdict == "not supported" for f in own):
        verdict = "not supported"
    else:
        verdict = "inconclusive"
    better = [f.claim.split(" scores above")[0] for f in variant_text if f.verdict == "supported"]
    evidence = " ".join(findings.sentence(f) for f in own)
    evidence += (f" Variants that do score above the ceiling: {', '.join(better)}." if better
                 else " No alignment variant is decided above the ceiling with these seeds.")
    return {"claim": "MOSEI-like: Guide-Attention lets language guide where audio attends "
                     "(captures the interaction between the modalities)",
            "verdict": f"{verdict} on this data", "evidence": f"{data_label}: {evidence}",
            "status": "synthetic evidence only" if "SYNTHETIC" in data_label else "tested on real data",
            "real data would settle": SETTLED_BY["guide"]}


def precision_findings(dataset: str, summaries: dict[str, dict]) -> list:
    """bf16 against fp32 (``summaries``: precision -> summary, same model, data and seeds):
    does mixed precision change the headline metric by more than the seed-to-seed variation
    of fp32 (twice its standard deviation over seeds, at least one point)? Two one-sided
    findings with Welch's interval for bf16 minus fp32: not more than that below, not more
    than that above; both supported means the precisions agree."""
    if not {"fp32", "bf16"} <= set(summaries):
        return []
    metric, label = config.headline(dataset)
    fp32, bf16 = seed_scores(summaries["fp32"], metric), seed_scores(summaries["bf16"], metric)
    tolerance = max(1.0, 2 * float(np.std(fp32, ddof=1))) if len(fp32) > 1 else 1.0
    model = summaries["fp32"]["label"]
    return [findings.beats(f"{model} in bf16 scores no more than {tolerance:.1f} points below fp32",
                           f"{label}: bf16 minus fp32, points", bf16, fp32, threshold=-tolerance),
            findings.beats(f"{model} in bf16 scores no more than {tolerance:.1f} points above fp32",
                           f"{label}: fp32 minus bf16, points", fp32, bf16, threshold=-tolerance)]


def precision_table(dataset: str, summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per precision: the headline metric per seed, mean ± std, the ensemble, and
    the training seconds of all seeds."""
    metric, label = config.headline(dataset)
    return pd.DataFrame([{"precision": p, f"test {label} per seed": ", ".join(f"{v:.1f}" for v in seed_scores(s, metric)),
                          "mean": round(100 * s["mean"][metric], 1), "std": round(100 * s["std"][metric], 1),
                          "ensemble": round(100 * s["ensemble"]["test"][metric], 1),
                          "train s": round(sum(m["train_seconds"] for m in s["members"]), 1)}
                         for p, s in summaries.items()])
