"""The paper's study: Tables 1-2 reproduced on the data at hand, the targets of the
synthetic stand-in, and the paper's own claims checked (notebooks 05 and 06).

It owns the table's run specs (:data:`TABLE_MODELS`), its questions over seeds (CMN within
3 points of the L+A ceiling; CMN above the best unimodal model), and the claims-audit rows
on what the paper states in its results section. The paper's published numbers are in
:mod:`cmnlib.tables`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import config
from ..data.inspect import uninformative_modalities
from ..data.split import DataBundle
from ..findings import SUPPORTED, Question, exceeds, select, sentence
from ..inventory import runs_on
from ..metrics import headline
from ..reporting import run_table
from ..results import RunResult, find
from ..runs import feasible, train_specs
from ..spec import RunSpec
from ..tables import PAPER_ROWS, PAPER_TABLE1, REAL_MOSEI_TEST_NONNEG
from ..train import runs_root
from .bayes import against_ceiling, bayes_rule
from .common import NEAR_LA_CEILING, NEAR_LA_RULE, compare

# the reproduced rows of Tables 1-2, in table order: (model, modalities). CMN (L) is not in
# the paper: it is the same model without the audio, so that fusion is judged as fusion
# (CMN (L+A) against CMN (L)), and on text-only data it is the CMN a user can train.
TABLE_MODELS = (("cmn", "LA"), ("cmn", "LAV"), ("cmn", "L"), ("mult", "LAV"), ("ef_lstm", "LAV"),
                ("lstm_l", "L"), ("lstm_a", "A"), ("lstm_v", "V"), ("majority", "LA"))
PAPER_CMN = ("cmn", "LA")  # the paper's model: CMN on language and audio
TEXT_CMN = ("cmn", "L")    # the same model on language alone

BEATS_UNIMODAL = Question("beats_unimodal", "{subject} scores above the best unimodal model, {baseline}")
# fusion judged as fusion: the same architecture with and without the added modalities
FUSION_GAIN = Question("fusion_gain", "{subject} scores above the same model on language alone, {baseline}")
# a modality on its own: does its unimodal model learn anything the label's prior does not give?
ALONE_INFORMS = Question("alone_informs", "{subject} scores above the constant predictor ({threshold:.1f})")
# on language alone: does CMN's attention add anything to the LSTM it starts from?
TEXT_MODEL_GAIN = Question("text_model_gain", "{subject} scores above {baseline}")


def table_specs(dataset: str, profile: str = "quick", models=TABLE_MODELS) -> list[RunSpec]:
    """The RunSpecs of the reproduced rows of Tables 1-2."""
    return [RunSpec(model=m, dataset=dataset, modalities=mods, profile=profile) for m, mods in models]


def train_table_models(bundle: DataBundle, profile: str = "quick", seeds: int = 2, models=TABLE_MODELS,
                       progress: bool = True, processes: int | None = None) -> list[RunResult]:
    """Train (or reuse from the cache) every reproduced row's model; one result per row.
    Early fusion concatenates the modalities step by step, so on unaligned data (MMSA's
    ``unaligned_50.pkl``, for example) its row is left out; so are the rows of models whose
    modalities the data lacks."""
    return train_specs(table_specs(bundle.dataset, profile, feasible(bundle, models)), bundle, seeds, profile,
                       processes, progress)


def other_runs(bundle: DataBundle, table: list[RunResult], root=None) -> tuple[pd.DataFrame | None, str]:
    """The runs on ``bundle``'s data that are not rows of ``table`` (the user's own runs, e.g.
    from ``cmn train``), as :func:`cmnlib.reporting.run_table` rows, and one sentence that
    says what is shown. Only on real data: on the synthetic stand-in the other notebooks
    train many variants, shown where they are trained (07, 08)."""
    if bundle.meta.get("synthetic"):
        return None, (f"{bundle.short_label}: the synthetic stand-in; the other notebooks' runs are shown where they "
                      "are trained (07, 08).")
    found = runs_on(root or runs_root(), bundle.meta.get("source_hash"), leave_out=table)
    if not found:
        return None, (f"{bundle.short_label}: no other run on this data (`cmn train --dataset {bundle.dataset} "
                      "--data ...` trains one, and it appears here).")
    return run_table(found, headline(bundle.dataset).key), (
        f"{bundle.short_label}: {len(found)} other run{'s' if len(found) != 1 else ''} on the same data "
        "(the same file, by its hash), each labelled by model, modalities, options and training changes.")


def unimodal_finding(results: list[RunResult], dataset: str, model: tuple[str, str] = PAPER_CMN):
    """Does ``model`` ((name, modalities)) beat the best unimodal LSTM (best by mean over
    seeds)? The difference of test scores (headline metric), paired seed by seed when both
    were trained with the same seeds on the same data; None when either side is missing."""
    metric = headline(dataset)
    fused = find(results, *model)
    unimodal = [r for r in results if r.model in config.UNIMODAL_MODELS]
    if fused is None or not unimodal:
        return None
    best = max(unimodal, key=lambda r: np.mean(r.scores(metric.key)))
    return compare(BEATS_UNIMODAL, fused, best, metric.key,
                   f"{metric.label} of {fused.label} minus {best.label}, points")


def _unimodal(results: list[RunResult], letter: str) -> RunResult | None:
    """The unimodal LSTM of modality ``letter`` among ``results``, or None."""
    return next((r for r in results if config.UNIMODAL_MODELS.get(r.model) == letter), None)


def fusion_findings(results: list[RunResult], dataset: str, model: tuple[str, str] = PAPER_CMN,
                    bundle: DataBundle | None = None) -> list:
    """Fusion judged as fusion, and what each modality gives on its own:

    * ``model`` (CMN on L+A by default) against the same model on language alone (CMN (L)),
      paired seed by seed: the only difference is the added modality. When the data say that
      modality cannot inform a model (all-zero or constant features,
      :func:`cmnlib.data.inspect.uninformative_modalities` on ``bundle``'s train split), the
      finding carries that, and its verdict cannot be "supported" (:data:`cmnlib.findings.NO_INFORMATION`);
    * each added modality's unimodal LSTM against the constant predictor (the majority /
      mean row): a modality whose model alone does no better carries its information, if
      any, only jointly with the language (the synthetic MOSEI-like audio is built so);
    * on language alone, CMN (L) against LSTM (L): what the attention adds to the LSTM.

    The findings whose runs are missing are left out; the list may be empty."""
    metric = headline(dataset)
    statistic = f"{metric.label} of {{a}} minus {{b}}, points"
    out = []
    fused, alone = find(results, *model), find(results, *TEXT_CMN)
    if fused is not None and alone is not None and fused.spec.modalities != alone.spec.modalities:
        added = [config.LETTER_TO_MODALITY[c] for c in fused.spec.modalities if c not in alone.spec.modalities]
        empty = {} if bundle is None else uninformative_modalities(bundle)
        lacking = "; ".join(f"{m}: {empty[m]}" for m in added if m in empty)
        extra = {"no_information": lacking} if lacking else {}
        out.append(compare(FUSION_GAIN, fused, alone, metric.key,
                           statistic.format(a=fused.label, b=alone.label), **extra))
    constant = next((r for r in results if not r.trained), None)
    if fused is not None and constant is not None:
        # the constant predictor's score does not depend on the seed: a one-sample question
        floor = 100 * constant.mean(metric.key)
        for letter in fused.spec.modalities:
            unimodal = _unimodal(results, letter)
            if letter != "L" and unimodal is not None:
                out.append(exceeds(ALONE_INFORMS, unimodal.spec, f"test {metric.label}", unimodal.scores(metric.key),
                                   floor, bounds=(0.0, 100.0)))
    text_lstm = _unimodal(results, "L")
    if alone is not None and text_lstm is not None:
        out.append(compare(TEXT_MODEL_GAIN, alone, text_lstm, metric.key,
                           statistic.format(a=alone.label, b=text_lstm.label)))
    return out


def targets_asked(bundle: DataBundle, ceilings: dict | None) -> str:
    """One line saying which of the synthetic benchmark's targets :func:`quality_findings`
    asks on ``bundle``: both where the data has Bayes ceilings (the synthetic stand-in),
    else only "above the best unimodal model", and why."""
    if ceilings is not None:
        return f"{bundle.short_label}: both targets are asked (the data's Bayes ceilings are known)."
    return (f"{bundle.short_label}: no Bayes ceiling is known for real data, so only CMN against the best unimodal "
            "model is asked.")


def quality_findings(results: list[RunResult], dataset: str, ceilings: dict | None, tolerance: float = 3.0,
                     model: tuple[str, str] = PAPER_CMN, bundle: DataBundle | None = None) -> list:
    """The synthetic benchmark's targets as findings: ``model`` within ``tolerance`` points
    of the L+A Bayes ceiling (when the data has one), and above the best unimodal LSTM.
    With ``bundle`` (the data the runs were scored on) and runs that hold their test
    outputs, "within the ceiling" is judged against the L+A Bayes rule on the same test
    utterances (an F1 against the rule's F1-optimal form), test sampling included
    (:func:`cmnlib.studies.bayes.against_rule`); else against the expected ceiling over seeds."""
    metric = headline(dataset)
    fused = find(results, *model)
    out = []
    if ceilings is not None and fused is not None:
        ceiling = 100 * ceilings["LA"][metric.key]
        rule = None if bundle is None else bayes_rule(bundle, "LA", metric=metric.key)
        out.append(against_ceiling(NEAR_LA_RULE, fused, rule, ceiling, metric.key,
                                   f"test {metric.label} minus the L+A rule, points", threshold=-tolerance,
                                   tolerance=tolerance, ceiling=ceiling)
                   or exceeds(NEAR_LA_CEILING, fused.spec, f"L+A ceiling minus {metric.label}, points",
                              [ceiling - v for v in fused.scores(metric.key)], tolerance, above=False,
                              bounds=(ceiling - 100, ceiling), tolerance=tolerance, ceiling=ceiling))
    found = unimodal_finding(results, dataset, model)
    if found is not None:
        out.append(found)
    return out


# ---------------------------------------------------------------------------------------
# The claims audit: the paper's own statements
# ---------------------------------------------------------------------------------------
SETTLED_BY = {
    "iemocap_gains": "CMN trained on real IEMOCAP with the paper's settings, scored with the same metrics; "
                     "E1/E2 and RAVEN come from other papers with other features and splits",
    "sota": "nothing more: Table 1 itself lists MulT above CMN",
    "modules": "nothing more: counted from the code (cmnlib.model.transformer_modules)",
    "mosei_acc2": "CMN (L+A) trained on real MOSEI, Acc2 reported with its convention beside the constant "
                  "predictor (71.0 over all samples, 62.9 without zero labels)",
    "fusion": "the same paired finding over seeds on the real data set (cmn reproduce --data ...)",
    "abstract": "nothing more: Table 2 itself gives CMN the lowest MOSEI accuracy",
    "averaging": "the paper's predictions, or CMN trained on real IEMOCAP and scored with micro and macro "
                 "averages side by side",
}


def _relative(a: float, b: float) -> float:
    return 100 * (a / b - 1)


def evidence_status(data_label: str) -> str:
    """The audit's status of a finding on data labelled ``data_label``."""
    return "synthetic evidence only" if "SYNTHETIC" in data_label else "tested on real data"


def audit_rows(data_labels: dict, module_counts: dict | None = None, fusion: dict | None = None) -> list[dict]:
    """Every claim the paper makes about its results (abstract, section 4.2, conclusion) as
    a row of the claims audit (:mod:`cmnlib.studies.audit`): the claim, a verdict, its
    evidence, a status and what real data would settle; and the red flags in its own
    numbers.

    Statuses say where the evidence comes from: the paper's own numbers (refuted, or holding
    as arithmetic), the code (a count), external evidence (the real MOSEI labels), real or
    synthetic data. The question whether fusing L+A helps CMN is this companion's, not the
    paper's: judged as fusion (the same model with and without the audio, paired by seed),
    its verdict is that of a finding over seeds on the data named (``fusion``: dataset ->
    :func:`fusion_findings`; ``data_labels``: dataset -> label). When the audio's own model
    does no better than the constant predictor, the row's evidence says so."""
    cmn = PAPER_TABLE1[0]
    e1, e2 = PAPER_TABLE1[3], PAPER_TABLE1[4]
    raven, mult = PAPER_TABLE1[2], PAPER_TABLE1[1]
    rows = []

    def add(claim, verdict, evidence, status, settled):
        rows.append({"claim": claim, "verdict": verdict, "evidence": evidence, "status": status,
                     "real data would settle": SETTLED_BY[settled]})

    def arithmetic(stated: tuple, computed: tuple) -> tuple[bool, str]:
        """Whether the stated relative gains follow from Table 1, and how the paper rounded."""
        checks = all(abs(c - st) < 0.15 for st, c in zip(stated, computed))
        truncated = [f"{c:.2f}% is stated as {st}%" for st, c in zip(stated, computed) if checks and round(c, 1) != st]
        return checks, ("; the paper truncates rather than rounds (" + ", ".join(truncated) + ")" if truncated else "")

    stated = {"precision vs E1/E2": (19.1, 3.8, "prec"), "recall vs E1/E2": (17.6, 6.6, "recall")}
    for name, (s1, s2, key) in stated.items():
        r1, r2 = _relative(cmn[key], e1[key]), _relative(cmn[key], e2[key])
        checks, rounding = arithmetic((s1, s2), (r1, r2))
        add(f"IEMOCAP: CMN improves {name} by {s1}% / {s2}% (relative; section 4.2)",
            "arithmetic checks" if checks else "not supported",
            f"from Table 1: {r1:.1f}% / {r2:.1f}%{rounding}; an empirical test needs real IEMOCAP (not testable on "
            "this data)",
            "holds as arithmetic on the paper's numbers" if checks else "refuted by the paper's own numbers",
            "iemocap_gains")
    f_raven, f_e1, f_e2 = (_relative(cmn["f1"], x["f1"]) for x in (raven, e1, e2))
    checks, rounding = arithmetic((1.3, 21.0, 2.1), (f_raven, f_e1, f_e2))
    add("IEMOCAP: CMN improves F1 over RAVEN / E1 / E2 by 1.3% / 21.0% / 2.1% (section 4.2)",
        "arithmetic checks" if checks else "not supported",
        f"from Table 1: {f_raven:.1f}% / {f_e1:.1f}% / {f_e2:.1f}%{rounding}; the baselines' rows come from other "
        "papers with other features and splits",
        "holds as arithmetic on the paper's numbers" if checks else "refuted by the paper's own numbers",
        "iemocap_gains")
    add("IEMOCAP: CMN is state of the art (section 4.2: better than the other models; section 5: the field's "
        "advanced level)", "not supported",
        f"the paper's own Table 1 lists MulT at F1 {mult['f1']} > CMN {cmn['f1']}. MulT uses vision as well (L+A+V), "
        f"CMN language and audio; among Table 1's language-and-audio rows (E1 {e1['f1']}, E2 {e2['f1']}) CMN's F1 "
        "is the highest", "refuted by the paper's own numbers", "sota")
    mosei_rows = PAPER_ROWS[2][1:]  # every row but CMN's (the first)
    lowest = min(r["acc2"] for r in mosei_rows)
    add("Abstract: on IEMOCAP and MOSEI the model improves the accuracy of sentiment classification",
        "not supported for MOSEI",
        f"the paper's own Table 2 gives CMN Acc2 42.5 against {lowest}-{max(r['acc2'] for r in mosei_rows)} for every "
        "other model; section 4.2 itself calls the MOSEI result unsatisfying", "refuted by the paper's own numbers",
        "abstract")
    if module_counts:
        add("CMN uses 2 transformer modules where MulT uses 6 (section 2)", "supported (as a count of modules)",
            f"CMN (L+A): {module_counts['cmn_modules']} stacks; MulT: {module_counts['mult_crossmodal']} "
            f"crossmodal + {module_counts['mult_memory']} memory transformers; but at the paper settings CMN has "
            f"{module_counts['cmn_params'] / 1e6:.1f} M parameters vs MulT's "
            f"{module_counts['mult_params'] / 1e6:.2f} M",
            "holds as a count", "modules")
    add("MOSEI: CMN reaches Acc2 42.5 / F1 42.5 (Table 2; the paper calls it unsatisfying and does not analyse it)",
        "below a constant predictor",
        f"the real MOSEI test set (the SDK's standard folds) is {REAL_MOSEI_TEST_NONNEG}% non-negative, so predicting "
        f"'non-negative' always scores Acc2 {REAL_MOSEI_TEST_NONNEG}; "
        f"42.5 is {REAL_MOSEI_TEST_NONNEG - 42.5:.1f} points "
        "below it, and below the constant predictor of the other convention too (62.9, notebook 07)",
        "contradicted by the real MOSEI labels", "mosei_acc2")
    add("Red flags in Tables 1-2: CMN's precision = recall = F1 = 67.4 (IEMOCAP) and Acc2 = F1 = 42.5 (MOSEI)",
        "what micro-averaging gives",
        "for single-label predictions micro-averaged precision, recall and F1 all equal the accuracy; the caption's "
        "'unweighted F1' names the macro average, which would differ from precision and recall in general, so the "
        "table probably reports accuracy three times", "questioned by the paper's own numbers", "averaging")
    for dataset, found in (fusion or {}).items():
        gains = select(found, FUSION_GAIN)
        if not gains:
            continue
        label = data_labels.get(dataset, "")
        evidence = f"{label}: " + sentence(gains[0])
        for alone in select(found, ALONE_INFORMS):
            if alone.verdict != SUPPORTED:
                evidence += (f" On its own: {sentence(alone)} So the audio is not shown to inform a model by "
                             "itself: what it adds may come only jointly with the language.")
        add(f"{dataset.upper()}: fusing L+A helps CMN, against the same model on language alone (this companion's "
            "question; the paper makes no such claim)",
            f"{gains[0].verdict} on this data", evidence, evidence_status(label), "fusion")
    return rows


# --------------------------------------------------------------------------------------
# Every setting: what the paper specifies, what this companion chose, and why
# --------------------------------------------------------------------------------------
# The standard features' split sizes, and why the MOSEI test set has three sizes in this
# project: the paper's own split (section 4.1), MulT's word-aligned pickles (the features
# everyone uses, and the paper-size synthetic set), and the SDK's standard folds (whose
# labels give the real constant-predictor rates of notebook 07).
MOSEI_TEST_SIZES = {"paper": 4643, "mult_pickles": 4659, "standard_folds": 4662}


def settings_table() -> pd.DataFrame:
    """One row per hyper-parameter and data choice: what the paper specifies (with its
    section, or "not stated"), what the ``paper`` and ``quick`` profiles use, and why. The
    profile columns are read from :mod:`cmnlib.config`, so the table cannot drift from
    what the code trains."""
    from ..data.synthetic.writers import SPLIT_SIZES
    from ..spec import TrainConfig

    paper_train, quick = config.PROFILES["paper"].train, config.PROFILES["quick"]
    cmn_paper, cmn_quick = config.PROFILES["paper"].cmn, quick.cmn
    mosei, mosei_quick = SPLIT_SIZES["mosei"]["paper"], SPLIT_SIZES["mosei"]["quick"]
    sizes = MOSEI_TEST_SIZES

    def rate(x: float) -> str:  # 0.0001 -> "1e-4", as the paper writes it
        mantissa, exponent = f"{x:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"

    def split(n: dict) -> str:
        return f"{n['train']:,} / {n['valid']:,} / {n['test']:,}"

    def row(setting, specifies, section, paper_profile, quick_profile, why):
        return {"setting": setting, "the paper specifies": specifies, "section": section,
                "paper profile": paper_profile, "quick profile": quick_profile, "why": why}

    not_stated = "not stated"
    rows = [
        row("optimiser", "Adam", "4.1", "Adam", "Adam", "as specified"),
        row("learning rate", "1e-4", "4.1", rate(paper_train["lr"]), rate(quick.train["lr"]),
            "quick: larger steps so that small models learn in 8 epochs on a CPU"),
        row("batch size", "32", "4.1", str(paper_train["batch_size"]), str(quick.train["batch_size"]),
            "quick: fewer steps per epoch"),
        row("epochs", not_stated, "4.1", str(paper_train["epochs"]), str(quick.train["epochs"]),
            "a cap with early stopping; the closest published implementation trains about this long"),
        row("model selection", not_stated, "4.1", f"lowest validation loss, patience {TrainConfig().patience}",
            f"lowest validation loss, patience {quick.train['patience']}",
            "validation split only, for every model (the closest published implementation selects IEMOCAP "
            "models on the test split; this companion does not)"),
        row("models averaged", "up to 10", "4.1", f"{config.PROFILES['paper'].seeds} seeds, predictions averaged",
            f"{quick.seeds} seeds", "quick: minutes on a CPU; findings state their seeds and intervals"),
        row("LSTM width", "512", "4.1", str(cmn_paper["hidden"]), str(cmn_quick["hidden"]),
            "CMN's LSTM width is its attention width (as in MCAN)"),
        row("MUA layers, heads, FF width", not_stated, "2.3", f"{cmn_paper['layers']}, {cmn_paper['heads']}, "
            f"{cmn_paper['ff_size']}", f"{cmn_quick['layers']}, {cmn_quick['heads']}, {cmn_quick['ff_size']}",
            "the closest published implementation's IEMOCAP settings (Delbrouck et al. 2020)"),
        row("dropout (attention, output)", not_stated, "2.3", f"{cmn_paper['dropout']}, {cmn_paper['output_dropout']}",
            f"{cmn_quick['dropout']}, {cmn_quick['output_dropout']}", "the same published implementation"),
        row("MUA wiring", "not stated (Figure 6 is missing)", "2.3", "encoder-decoder", "encoder-decoder",
            "MCAN's; the alternatives (stacked, symmetric) are compared in notebook 07"),
        row("fusion and output", not_stated, "2.3", "AttFlat per modality, sum, LayerNorm, linear", "the same",
            "MCAN's attentional reduction, as in the published implementation"),
        row("loss", not_stated, "4.1", "L1 (MOSEI), cross-entropy (IEMOCAP)", "the same",
            "MulT's regression loss for sentiment; the published implementation's for emotions"),
        row("features", "not described", "3", "GloVe 300, COVAREP 74, FACET 35; word-aligned, 50 steps (IEMOCAP 20)",
            "the same", "the standard public features (MulT's pickles, the SDK)"),
        row("MOSEI split", f"16,265 training and {sizes['paper']:,} test samples (no validation count)", "4.1",
            split(mosei), split(mosei_quick) + " (synthetic)",
            f"the paper's own split is not published; MulT's word-aligned pickles hold {sizes['mult_pickles']:,} test "
            f"utterances and the SDK's standard folds {sizes['standard_folds']:,} labelled test segments (the real "
            f"label rates of notebook 07 come from those)"),
        row("MOSEI metrics", "Acc2, F1 (convention not stated)", "4.2", "both conventions: has 0 and non-zero",
            "the same", "the paper's 42.5 fits neither; both are reported so that no convention is assumed"),
        row("IEMOCAP metrics", "precision, recall, unweighted F1", "4.2", "macro precision, recall, F1 of the "
            "4-class prediction", "the same", "the paper's P = R = F1 = 67.4 is what micro-averaging gives; "
            "macro is what 'unweighted' names"),
    ]
    return pd.DataFrame(rows)
