"""Beyond the paper (notebook 08): CMN variants that use word alignment
(:data:`cmnlib.model.cmn.ALIGNMENTS`), ablated over seeds against the paper's CMN and the
early-fusion LSTM; the recorded long runs (30 epochs, the paper's width, the paper-size
set); the ablation's three targets; and the claims-audit row on Guide-Attention.

The study owns its run specs (:func:`alignment_specs`), its records
(:data:`ALIGNMENT_RECORDS`, shipped in ``cmnlib/resources/recorded``), its questions and
targets (:data:`ALIGNMENT_TARGETS`) and its tables.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import results as R
from ..atomic import write_json
from ..data.bayes import has_ceiling
from ..data.sources import bayes_ceilings, load_dataset
from ..data.split import DataBundle
from ..findings import CONFIDENCE, SUPPORTED, NOT_SUPPORTED, Question, exceeds, fixed, holm, select, sentence
from ..metrics import headline
from ..model.cmn import ALIGNMENTS
from ..reporting import curve_summary, training_notes
from ..results import Record, RunResult
from ..runs import feasible, train_specs
from ..spec import TRAINER_VERSION, RunSpec
from ..train import train_seeds
from .bayes import (RECORD_SUBSETS, SameSplitRule, against_ceiling, bayes_rule, record_rule, rules_for_record,
                    test_split_size)
from .common import ABOVE_TEXT_CEILING, NEAR_LA_CEILING, NEAR_LA_RULE, compare, score_columns, text_ceiling_finding
from .paper import evidence_status

PAPER = "none"      # the paper's CMN among the variants
BASELINE = "ef_lstm"  # the early-fusion LSTM on the same modalities


def alignment_specs(dataset: str, profile: str = "quick", alignments=ALIGNMENTS, modalities: str = "LA",
                    overrides: dict | None = None, train: dict | None = None) -> dict[str, RunSpec]:
    """The runs of :func:`train_alignments`: name (each alignment, 'ef_lstm') -> RunSpec.
    ``overrides``: other CMN fields for every variant; ``train``: training settings that
    differ from the profile's for every row."""
    overrides = dict(overrides or {})
    specs = {a: RunSpec(model="cmn", dataset=dataset, modalities=modalities, profile=profile,
                        model_overrides=overrides if a == PAPER else {**overrides, "alignment": a})
             for a in alignments}
    specs[BASELINE] = RunSpec(model="ef_lstm", dataset=dataset, modalities=modalities, profile=profile)
    return {name: spec.with_training(**train) if train else spec for name, spec in specs.items()}


def train_alignments(bundle: DataBundle, profile: str = "quick", seeds: int = 2, alignments=ALIGNMENTS,
                     modalities: str = "LA", overrides: dict | None = None, train: dict | None = None,
                     processes: int | None = None, progress: bool = True) -> dict[str, RunResult]:
    """CMN with each ``alignment`` and the early-fusion LSTM on the same modalities, same
    data, profile and seeds: name -> result ('none' is the tables' CMN run, read from the
    cache; 'ef_lstm' the early-fusion baseline); the labels name what differs from the
    profile. ``overrides``: other CMN fields for every variant (e.g. ``{"hidden": 512}``,
    the paper's width). ``train``: training settings that differ from the profile's for
    every row (e.g. ``{"epochs": 30}``; fields of :class:`cmnlib.spec.TrainConfig`).
    Empty on unaligned data, which the variants refuse."""
    specs = alignment_runs(bundle, profile, alignments, modalities, overrides, train)
    return dict(zip(specs, train_specs(list(specs.values()), bundle, seeds, profile, processes, progress)))


def alignment_runs(bundle: DataBundle, profile: str = "quick", alignments=ALIGNMENTS, modalities: str = "LA",
                   overrides: dict | None = None, train: dict | None = None) -> dict[str, RunSpec]:
    """What :func:`train_alignments` trains on ``bundle``: :func:`alignment_specs`, or
    nothing on unaligned data (the variants refuse it) or data without ``modalities``."""
    if not bundle.aligned or not feasible(bundle, (("cmn", modalities),)):
        return {}
    return alignment_specs(bundle.dataset, profile, alignments, modalities, overrides, train)


def alignment_of(spec: RunSpec) -> str | None:
    """The alignment variant a spec trains ('none' for the paper's CMN), None for a model
    that is not CMN."""
    return spec.model_overrides.get("alignment", PAPER) if spec.model == "cmn" else None


def is_variant(spec: RunSpec) -> bool:
    """A CMN that uses word alignment (not the paper's CMN, not EF-LSTM)."""
    return alignment_of(spec) not in (None, PAPER)


# ---------------------------------------------------------------------------------------
# Questions and targets
# ---------------------------------------------------------------------------------------
LOSES_NOTHING = Question("loses_nothing", "{subject} loses no more than {tolerance:g} point(s) against the paper's CMN")


@dataclass(frozen=True)
class Target:
    """A target of the ablation: met when some alignment variant's finding on ``question``
    is supported on the data it names (``dataset``, and ``scale`` unless None)."""

    key: str
    text: str
    question: Question
    dataset: str
    scale: str | None = None

    def covers(self, dataset: str, scale: str, question: Question) -> bool:
        return (self.dataset == dataset and self.question.key == question.key
                and self.scale in (None, scale))


ALIGNMENT_TARGETS = (
    Target("quick", "quick MOSEI-like set: an alignment-aware CMN scores above the language-only ceiling "
                    "(uses the audio)", ABOVE_TEXT_CEILING, "mosei", "quick"),
    Target("iemocap", "IEMOCAP-like set: the alignment-aware CMN loses no more than 1 point against the paper's "
                      "CMN", LOSES_NOTHING, "iemocap"),
    Target("paper", "paper-size MOSEI-like set: an alignment-aware CMN comes within 3 points of the L+A ceiling",
           NEAR_LA_CEILING, "mosei", "paper"),
)


def _target_of(dataset: str, scale: str, question: Question) -> str | None:
    return next((t.key for t in ALIGNMENT_TARGETS if t.covers(dataset, scale, question)), None)


def alignment_findings(dataset: str, results: dict[str, RunResult], ceilings: dict | None, tolerance: float = 1.0,
                       near_ceiling: float | None = None, scale: str = "quick", bundle: DataBundle | None = None,
                       test_size: int | None = None, rules: dict[str, SameSplitRule] | None = None) -> list:
    """The ablation's questions as findings, for every variant other than the paper's CMN:
    does it score above the language-only ceiling (it uses the audio:
    :func:`cmnlib.studies.common.text_ceiling_finding`, against the Bayes rule on the same
    test utterances of ``bundle`` when the runs hold their outputs, else against the
    expected ceiling with the test sampling of ``test_size`` utterances; ``rules``: subset
    -> the rule on the same utterances where there is no ``bundle``, as a record keeps
    them), and does it lose
    more than ``tolerance`` points against the paper's CMN (the difference paired seed by
    seed where the runs are pairs; 'loses nothing' is supported when the whole interval of
    variant minus paper lies above -tolerance). With ``near_ceiling`` (points), also for
    every model, the paper's CMN included: does it come within that many points of the
    L+A ceiling? Each finding names the target (:data:`ALIGNMENT_TARGETS`) it bears on for
    data of ``dataset`` at ``scale``."""
    metric = headline(dataset)
    if PAPER not in results:
        return []
    def rule_of(subset: str) -> SameSplitRule | None:
        return bayes_rule(bundle, subset, metric=metric.key) if bundle is not None else (rules or {}).get(subset)
    rule = rule_of("L")
    out = []
    if near_ceiling is not None and ceilings is not None and "LA" in ceilings:
        ceiling = 100 * ceilings["LA"][metric.key]
        target = _target_of(dataset, scale, NEAR_LA_CEILING)
        rule_la = rule_of("LA")
        statistic = f"test {metric.label} minus the L+A rule, points"
        for result in results.values():
            out.append(against_ceiling(NEAR_LA_RULE, result, rule_la, ceiling, metric.key, statistic, test_size,
                                       -near_ceiling, target, tolerance=near_ceiling, ceiling=ceiling)
                       or exceeds(NEAR_LA_CEILING, result.spec, f"test {metric.label}", result.scores(metric.key),
                                  ceiling - near_ceiling, bounds=(0.0, 100.0), tolerance=near_ceiling,
                                  ceiling=ceiling, target=target))
    for name, result in results.items():
        if name == PAPER:
            continue
        if ceilings is not None:
            out.append(text_ceiling_finding(result, ceilings, _target_of(dataset, scale, ABOVE_TEXT_CEILING),
                                            rule, test_size))
        out.append(compare(LOSES_NOTHING, result, results[PAPER], metric.key,
                           f"{metric.label}: variant minus the paper's CMN, points", threshold=-tolerance,
                           tolerance=tolerance, target=_target_of(dataset, scale, LOSES_NOTHING)))
    return out


def record_findings(record: Record) -> list:
    """:func:`alignment_findings` of a record of long runs, with the 3-point question on a
    paper-size set: against the Bayes rules the record keeps, on the same test utterances,
    where its runs hold their test outputs (else against the expected ceiling with the
    test split's sampling)."""
    call = record.call
    return alignment_findings(call["dataset"], record.runs, record.ceilings,
                              near_ceiling=3 if call["scale"] == "paper" else None, scale=call["scale"],
                              test_size=test_split_size(call["dataset"], call["scale"]),
                              rules={s: record_rule(record, s, headline(call["dataset"]).key) for s in RECORD_SUBSETS})


def alignment_targets(ablation: dict[str, list], records: dict[str, Record]) -> pd.DataFrame:
    """The ablation's targets (:data:`ALIGNMENT_TARGETS`), each judged from the findings of
    every alignment variant that bears on it: ``ablation``, the notebook's findings per data
    set (:func:`alignment_findings`), and the recorded long runs ``records`` (their findings
    are computed here, with the 3-point question on paper-size sets).

    Where a record confirms a target on fresh data (its call's ``confirms``), the target is
    judged on that record alone: the variants and schedules were chosen by looking at the
    other runs' test scores, so those runs are not evidence for the choice. A confirmation
    on the data or the training seeds that chose (the same data hash, or a seed in common)
    is refused with a ValueError. Without a confirmation the row says so.

    The k variants compete for one target (any of them would meet it), so a target is met
    only when Holm's procedure over their k one-sided p-values rejects some variant's null
    at the one-sided level of the findings' intervals (2.5% for 95% intervals): a single
    supported finding among many is not enough by itself. A target is not met when every
    variant's finding is not supported, and open otherwise (or when nothing measured it).
    The row names the variants that meet it after the correction and the finding closest
    to meeting it (the highest lower end of its interval against the threshold)."""
    confirming = {r.call["confirms"]: r for r in records.values() if r.call.get("confirms")}
    chose = [r for r in records.values() if not r.call.get("confirms")]
    for key, record in confirming.items():
        for other in chose:
            if other.call["dataset"] != record.call["dataset"]:
                continue
            if other.data_hash == record.data_hash:
                raise ValueError(f"record {record.name} confirms target {key!r} on the data that chose it "
                                 f"(hash {record.data_hash[:12]}, as {other.name})")
            common = set(other.runs[PAPER].seeds) & set(record.runs[PAPER].seeds)
            if common:
                raise ValueError(f"record {record.name} confirms target {key!r} with training seeds that chose it "
                                 f"({sorted(common)}, as {other.name})")
    found = [f for group in ablation.values() for f in group]
    for record in chose:
        found += record_findings(record)
    rows = []
    for target in ALIGNMENT_TARGETS:
        confirmation = confirming.get(target.key)
        pool = record_findings(confirmation) if confirmation is not None else found
        variants = [f for f in select(pool, target.question, target.key) if is_variant(f.subject)]
        verdicts = [f.verdict for f in variants]
        alpha = (1 - CONFIDENCE) / 2
        rejected = holm([f.p_value if f.flag is None else 1.0 for f in variants], alpha)
        meeting = [f for f, r in zip(variants, rejected) if r and f.verdict == SUPPORTED]
        verdict = ("met" if meeting else
                   "not met" if verdicts and set(verdicts) == {NOT_SUPPORTED} else "open")
        best = max(variants, key=lambda f: f.low - f.threshold, default=None)
        rows.append({"target": target.text, "verdict": verdict,
                     "judged on": (f"fresh draw only ({confirmation.title})" if confirmation is not None
                                   else "the ablation and its records (no fresh-draw confirmation)"),
                     "competing": len(variants),
                     "supported before correction": sum(v == SUPPORTED for v in verdicts),
                     "met by": "; ".join(f.subject.label for f in meeting) or "none",
                     "closest": (f"{best.subject.label}: {fixed(best.estimate, 1)} {best.interval_text()} against "
                                 f"{fixed(best.threshold, 1)} ({best.seeds} seeds)") if best else "not measured"})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------

def alignment_table(dataset: str, results: dict[str, RunResult], ceilings: dict | None = None) -> pd.DataFrame:
    """One row per CMN alignment variant and the early-fusion LSTM (``results``: name ->
    result, from :func:`train_alignments` or a record), headline metric as test mean ±
    std over seeds and ensemble, in percent; with the data's language-only and L+A Bayes
    ceilings as rows when it has them."""
    metric = headline(dataset)
    rows = [{"model": r.label, **score_columns(r, metric.key, metric.label)} for r in results.values()]
    for subset in ("L", "LA"):
        if ceilings is not None and subset in ceilings:
            rows.append({"model": f"Bayes ceiling ({'+'.join(subset)})",
                         f"{metric.label}: mean": round(100 * ceilings[subset][metric.key], 1)})
    return pd.DataFrame(rows)


VARIANT_COLUMNS = {PAPER: "paper's CMN", "shared_positions": "shared positions", "diagonal_prior": "diagonal prior",
                   "relative_bias": "relative bias", "stepwise_fusion": "step-wise fusion", BASELINE: "EF-LSTM"}


# subset -> (its expected-ceiling column, its this-split rule column) in records_overview
_REFERENCE_COLUMNS = {"L": ("L ceiling", "L rule, this test split"), "LA": ("L+A ceiling", "L+A rule, this test split")}


def records_overview(records: dict[str, Record]) -> pd.DataFrame:
    """The recorded long runs at a glance: one row per record (its title), the headline
    test metric's mean over its seeds for each model it holds (columns: the paper's CMN,
    each alignment variant, EF-LSTM), the seeds, the data's language-only and L+A Bayes
    ceilings (expectations over the generating process; an accuracy's only) and, where the
    record keeps them, the same rules' scores on this record's own test split (what its runs
    are judged against: the Bayes rule for an accuracy, its F1-optimal form for an F1), in
    percent. Models a record does not hold are left empty."""
    rows = []
    for record in records.values():
        metric = headline(record.call["dataset"])
        row = {"record": record.title, "metric": metric.label}
        for name, result in record.runs.items():
            row[VARIANT_COLUMNS.get(name, name)] = round(float(np.mean(result.scores(metric.key))), 1)
        row["seeds"] = record.call["seeds"]
        for subset, (ceiling, rule_column) in _REFERENCE_COLUMNS.items():
            # an F1 has no ceiling: the metadata's F1 is the accuracy-optimal rule's, which
            # a rule weighted for the F1 beats; its F1-optimal rule on the split stands instead
            if record.ceilings and subset in record.ceilings and has_ceiling(metric.key):
                row[ceiling] = round(100 * record.ceilings[subset][metric.key], 1)
            rule = record_rule(record, subset, metric.key)
            if rule is not None:
                row[rule_column] = round(rule.score(metric.key), 1)
        rows.append(row)
    extra = [c for pair in zip(*_REFERENCE_COLUMNS.values()) for c in pair]  # ceilings first, then the rules
    columns = ["record", "metric", *[c for c in VARIANT_COLUMNS.values() if any(c in r for r in rows)], "seeds",
               *[c for c in extra if any(c in r for r in rows)]]
    return pd.DataFrame(rows, columns=columns)


def record_label(record: Record) -> str:
    """Which data and which machine a record of long runs comes from, for its tables'
    captions; a record without stored outputs says it is metric-only."""
    prov = record.provenance
    if record.recorded:
        where = (f"recorded on {prov['machine']}, {prov['date']}, torch {prov['torch']} "
                 f"(shipped with cmnlib as resources/recorded/{record.name}.json, not retrained in this run"
                 + ("; metric-only: the metrics it was written with, no stored outputs" if record.metric_only else "")
                 + (f"; trained by trainer version {record.trainer}, whose float32 step drew other dropout "
                    "masks and rounded Adam's updates otherwise: the same models and recipe"
                    if record.trainer != TRAINER_VERSION else "")
                 + ")")
    else:
        where = f"trained on {prov['machine']}"
    return f"{record.data}; {record.description}; {where}"


def record_curves(records: dict) -> pd.DataFrame:
    """One row per record: what its learning curves say in counts
    (:func:`cmnlib.reporting.curve_summary`), with its epoch cap; the notes in full are
    :func:`record_notes`."""
    rows = []
    for record in records.values():
        cap = record.runs[PAPER].spec.train.epochs
        rows.append({"record": record.title, "epoch cap": cap,
                     **curve_summary(list(record.runs.values()), headline(record.call["dataset"]).key, cap,
                                     constant=record.constant)})
    return pd.DataFrame(rows)


def ablation_curves(results: dict[str, dict[str, RunResult]], bundles: dict[str, DataBundle],
                    max_epochs: int) -> pd.DataFrame:
    """One row per data set of the ablation (``results``: data set -> name -> run): what its
    learning curves say in counts (:func:`cmnlib.reporting.curve_summary`), with the epoch
    cap; the notes in full are :func:`ablation_notes`."""
    return pd.DataFrame([{"data": bundles[d].short_label, "epoch cap": max_epochs,
                          **curve_summary(list(runs.values()), headline(d).key, max_epochs)}
                         for d, runs in results.items() if runs])


def ablation_notes(results: dict[str, dict[str, RunResult]], max_epochs: int) -> str:
    """Every note of :func:`cmnlib.reporting.training_notes` on the ablation's runs, as
    Markdown bullets named by data set."""
    return "\n".join(f"* **{d}**: {note}" for d, runs in results.items() if runs
                     for note in training_notes(list(runs.values()), headline(d).key, max_epochs))


def record_notes(record: Record) -> list[str]:
    """What a record's learning curves say (:func:`cmnlib.reporting.training_notes`), with
    its epoch cap and its constant predictor's score."""
    return training_notes(list(record.runs.values()), headline(record.call["dataset"]).key,
                          record.runs[PAPER].spec.train.epochs, constant=record.constant)


# ---------------------------------------------------------------------------------------
# Recorded runs: the long runs, trained once and shipped
# ---------------------------------------------------------------------------------------
RECORDED_DIR = R.RECORDED_DIR

# longer training that does not stop on one noisy epoch: at the quick profile's lr 1e-3 the
# validation accuracy of the MOSEI-like runs swings by up to 10 points between epochs
_DECAY = {"epochs": 30, "patience": 8, "lr_schedule": "plateau"}
_EVERY = ("none", "shared_positions", "diagonal_prior", "relative_bias", "stepwise_fusion")
# The ablation's runs that are too long for CI (notebook 08 shows them; tools/record_runs.py
# writes them): name -> arguments of record_alignments. Each names its variants, so a new
# variant does not make a record stale.
ALIGNMENT_RECORDS = {
    "alignment_mosei_quick_hidden512": dict(
        title="quick set, hidden 512",
        description="quick MOSEI-like set, the paper's width (hidden 512), the quick profile's 8 epochs",
        dataset="mosei", scale="quick", seeds=2, alignments=("none", "diagonal_prior", "relative_bias"),
        overrides={"hidden": 512}),
    "alignment_mosei_quick_hidden512_lr1e-4": dict(
        title="quick set, hidden 512, lr 1e-4, learning-rate decay",
        description="quick MOSEI-like set, the paper's width (hidden 512) at the paper's learning rate 1e-4 (at the "
                    "quick profile's 1e-3 every wide CMN collapses to the constant predictor), 30 epochs with "
                    "patience 8 and the learning rate halved when the validation loss stops improving",
        dataset="mosei", scale="quick", seeds=2, alignments=("none", "stepwise_fusion"), overrides={"hidden": 512},
        train={**_DECAY, "lr": 1e-4}),
    # The width-64 side of the capacity question (CAPACITY_PAIR): the hidden-512 record above
    # at the quick profile's width, all else equal (variants, seeds, data, lr, schedule).
    "alignment_mosei_quick_hidden64_lr1e-4": dict(
        title="quick set, hidden 64, lr 1e-4, learning-rate decay",
        description="quick MOSEI-like set, the quick profile's width (hidden 64) at the paper's learning rate 1e-4, "
                    "30 epochs with patience 8 and the learning rate halved when the validation loss stops "
                    "improving: the hidden-512 record's settings but its width",
        dataset="mosei", scale="quick", seeds=2, alignments=("none", "stepwise_fusion"),
        train={**_DECAY, "lr": 1e-4}),
    "alignment_mosei_quick_30epochs": dict(
        title="quick set, 30 epochs",
        description="quick MOSEI-like set, every variant allowed 30 epochs (early stopping unchanged: patience 3)",
        dataset="mosei", scale="quick", seeds=4, alignments=_EVERY, train={"epochs": 30}),
    "alignment_mosei_quick_plateau": dict(
        title="quick set, 30 epochs, learning-rate decay, 4 seeds",
        description="quick MOSEI-like set, the paper's CMN and the best variant, 4 seeds, 30 epochs with patience 8 "
                    "and the learning rate halved when the validation loss stops improving",
        dataset="mosei", scale="quick", seeds=4, alignments=("none", "stepwise_fusion"), train=_DECAY),
    "alignment_mosei_paper_30epochs": dict(
        title="paper-size set, 30 epochs",
        description="paper-size MOSEI-like set (16,326 training utterances), every variant allowed 30 epochs "
                    "(early stopping unchanged: patience 3)",
        dataset="mosei", scale="paper", seeds=2, alignments=_EVERY, train={"epochs": 30}),
    "alignment_mosei_paper_4seeds": dict(
        title="paper-size set, 30 epochs, 4 seeds",
        description="paper-size MOSEI-like set, the paper's CMN and the two best variants of the 2-seed run with "
                    "4 seeds, 30 epochs (patience 3)",
        dataset="mosei", scale="paper", seeds=4, alignments=("none", "diagonal_prior", "stepwise_fusion"),
        train={"epochs": 30}),
    "alignment_mosei_paper_plateau": dict(
        title="paper-size set, 30 epochs, learning-rate decay, 4 seeds",
        description="paper-size MOSEI-like set, the paper's CMN and the best variant, 4 seeds, 30 epochs with "
                    "patience 8 and the learning rate halved when the validation loss stops improving",
        dataset="mosei", scale="paper", seeds=4, alignments=("none", "stepwise_fusion"),
        train=_DECAY),
    # The quick set's choice (step-wise fusion, with learning-rate decay) was made by looking
    # at the test scores of the records above; it is judged on a new synthetic draw with
    # training seeds that chose nothing.
    "alignment_mosei_quick_plateau_confirm": dict(
        title="fresh draw: quick set, 30 epochs, learning-rate decay, 4 fresh seeds",
        description="confirmation on a new synthetic draw (generator seed 1: new train, validation and test "
                    "utterances) with training seeds 10-13, never used to choose: the paper's CMN and the variant "
                    "chosen on the quick set (step-wise fusion with learning-rate decay), 30 epochs, patience 8",
        dataset="mosei", scale="quick", seeds=[10, 11, 12, 13], alignments=("none", "stepwise_fusion"),
        train=_DECAY, data_seed=1, confirms="quick"),
    # Likewise the paper-size choice (step-wise fusion with learning-rate decay, made from the
    # paper-size records' test scores), on a new paper-size draw with seeds that chose nothing.
    "alignment_mosei_paper_plateau_confirm": dict(
        title="fresh draw: paper-size set, 30 epochs, learning-rate decay, 4 fresh seeds",
        description="confirmation on a new paper-size synthetic draw (generator seed 1: new train, validation and "
                    "test utterances) with training seeds 10-13, never used to choose: the paper's CMN and the "
                    "variant chosen on the paper-size set (step-wise fusion with learning-rate decay), 30 epochs, "
                    "patience 8",
        dataset="mosei", scale="paper", seeds=[10, 11, 12, 13], alignments=("none", "stepwise_fusion"),
        train=_DECAY, data_seed=1, confirms="paper"),
    "alignment_iemocap_quick_4seeds": dict(
        title="IEMOCAP-like quick set, 4 seeds",
        description="quick IEMOCAP-like set, every variant with 4 seeds, the quick profile's 8 epochs",
        dataset="iemocap", scale="quick", seeds=4, alignments=_EVERY),
}


# Capacity or mechanism, declared before its width-64 record was trained: the two records
# differ in width alone, so each model of both is compared at hidden 512 against hidden 64,
# paired seed by seed; and the variant against the paper's CMN is asked at each width.
CAPACITY_PAIR = ("alignment_mosei_quick_hidden64_lr1e-4", "alignment_mosei_quick_hidden512_lr1e-4")
WIDER_SCORES_MORE = Question("wider_scores_more", "{subject} scores higher at hidden 512 than at hidden 64")
VARIANT_GAINS = Question("variant_gains", "{subject} scores above the paper's CMN at hidden {width}")


def capacity_findings(records: dict[str, Record]) -> list:
    """The capacity question from the two records of :data:`CAPACITY_PAIR` (none when
    either is absent): for each model both hold at the two widths, hidden 512 against
    hidden 64 (paired by seed: the same seeds, data and training settings, so the same data
    order; records trained on two CPUs also differ in float rounding, which acts as extra
    noise within each pair); and at each width, each alignment
    variant against the paper's CMN (EF-LSTM is no variant). A variant that gains at both
    widths gains by its mechanism; one that gains only at one width, or a width that moves every model alike, points to
    capacity."""
    narrow, wide = (records.get(name) for name in CAPACITY_PAIR)
    if narrow is None or wide is None:
        return []
    metric = headline(narrow.call["dataset"])
    statistic = f"{metric.label}, points"
    # EF-LSTM takes no width: both records train it alike, so it is no width comparison
    out = [compare(WIDER_SCORES_MORE, wide.runs[name], narrow.runs[name], metric.key,
                   f"{statistic}: hidden 512 minus hidden 64")
           for name in narrow.runs if name in wide.runs
           and wide.runs[name].spec.to_dict() != narrow.runs[name].spec.to_dict()]
    for record, width in ((narrow, 64), (wide, 512)):
        out += [compare(VARIANT_GAINS, result, record.runs[PAPER], metric.key,
                        f"{statistic}: variant minus the paper's CMN at hidden {width}", width=width)
                for result in record.runs.values() if is_variant(result.spec)]
    return out


def record_alignments(name: str, title: str, description: str, dataset: str, source: str = "synthetic",
                      scale: str = "quick", profile: str = "quick", seeds: int | list[int] = 2, alignments=ALIGNMENTS,
                      folder: Path | None = None, data_seed: int = 0, confirms: str | None = None, **call) -> Path:
    """Train (or read from the cache) :func:`train_alignments` on ``dataset`` from ``source``
    (the synthetic stand-in at ``scale``, or a path) with ``alignments`` and ``call`` (its
    other arguments: ``overrides``, ``train``, ``processes``), and write them as a
    :class:`cmnlib.results.Record` to ``<folder>/<name>.json`` (default: the package's
    ``resources/recorded``): per-seed test outputs, curves and specs, without weights, with
    the call, the data's label, hash, Bayes ceilings and the Bayes rules on its test split,
    the constant predictor's score (percent), the machine, torch and the date. :func:`recorded` reads it back and
    :func:`retrain` trains the same runs again (the same run folders, see
    :func:`recorded_run_names`). The file is written whole or not at all. ``data_seed``:
    the synthetic generator's seed (another draw: new train, validation and test);
    ``confirms``: the key of the target (:data:`ALIGNMENT_TARGETS`) this record confirms
    on fresh data, judged on it alone."""
    bundle = load_dataset(dataset, source, scale=scale, seed=data_seed)
    runs = train_alignments(bundle, profile, seeds, alignments, **call)
    # the constant predictor's score, against which a collapsed model is told apart
    majority = train_seeds(RunSpec(model="majority", dataset=dataset, modalities="L", profile=profile), bundle, [0],
                           progress=False)
    call = {"dataset": dataset, "source": str(source), "scale": scale, "profile": profile,
            "seeds": list(seeds) if not isinstance(seeds, int) else seeds, "alignments": list(alignments),
            **({"data_seed": data_seed} if data_seed else {}), **({"confirms": confirms} if confirms else {}),
            **{k: v for k, v in call.items() if k not in ("processes", "progress")}}
    record = Record(name=name, title=title, description=description, call=call, data=bundle.source_label,
                    data_hash=bundle.meta.get("source_hash"), ceilings=bayes_ceilings(bundle),
                    constant=100 * majority.mean(headline(dataset).key), runs=runs, provenance=R.provenance_here(),
                    bayes_rules=rules_for_record(bundle))
    return R.write_record(Path(folder or RECORDED_DIR) / f"{name}.json", record)


def keep_rules(name: str, folder: Path | None = None) -> Path:
    """Add to record ``name`` the Bayes rules on its test split (:class:`Record`'s
    ``bayes_rules``), from its data generated again (the synthetic generator is
    deterministic), for a record written before rules were kept; nothing is trained and
    nothing else in the file changes. A ValueError when the data generated today are not
    the data the record was scored on (another hash) or carry no posteriors."""
    path = Path(folder or RECORDED_DIR) / f"{name}.json"
    record = R.read_record(path)  # checks the file before anything is generated
    bundle = record_data(record)
    if bundle.meta.get("source_hash") != record.data_hash:
        raise ValueError(f"{path}: its runs were scored on data of hash {str(record.data_hash)[:12]}, the data "
                         f"generated today have {str(bundle.meta.get('source_hash'))[:12]}: retrain the record")
    rules = rules_for_record(bundle)
    if rules is None:
        raise ValueError(f"{path}: the data {bundle.source_label} carry no per-utterance posteriors")
    payload = json.loads(path.read_text())
    payload["bayes_rules"] = R.rules_payload(rules)
    return write_json(path, payload)


def record_data(record: Record) -> DataBundle:
    """The data ``record``'s call names (data set, source, scale, generator seed), loaded
    (the synthetic sets generated again when absent)."""
    call = record.call
    return load_dataset(call["dataset"], call["source"], scale=call["scale"], seed=call.get("data_seed", 0))


def recorded(name: str, folder: Path | None = None) -> Record:
    """A record written by :func:`record_alignments` (:func:`cmnlib.results.read_record`):
    its runs are marked ``recorded`` and have no folder (no weights were shipped)."""
    return R.read_record(Path(folder or RECORDED_DIR) / f"{name}.json")


def retrain(name: str, folder: Path | None = None, processes: int | None = None, progress: bool = True) -> Record:
    """The runs of record ``name`` trained on this machine (or read from ``data/runs`` when
    cached): the record with live results (weights in their folders) and this machine."""
    record = recorded(name, folder)
    bundle = record_data(record)
    call = {k: v for k, v in record.call.items() if k not in ("confirms", "dataset", "source", "scale", "data_seed")}
    runs = train_alignments(bundle, call.pop("profile"), call.pop("seeds"), processes=processes,
                            progress=progress, **call)
    return replace(record, runs=runs, provenance=R.provenance_here(), recorded=False, data=bundle.source_label,
                   data_hash=bundle.meta.get("source_hash"), bayes_rules=rules_for_record(bundle))


def records(names=None, retrain_them: bool = False, progress: bool = False) -> dict[str, Record]:
    """name -> record for ``names`` (None: every one of :data:`ALIGNMENT_RECORDS`; one name
    may be given as a string): read with :func:`recorded`, or trained on this machine with
    :func:`retrain` when ``retrain_them``."""
    names = list(ALIGNMENT_RECORDS) if names is None else [names] if isinstance(names, str) else list(names)
    return {name: retrain(name, progress=progress) if retrain_them else recorded(name) for name in names}


def recorded_run_names(record: Record) -> dict[str, str]:
    """name -> the run folder (``<model>-<key>``) that the record's specs give with today's
    code, the recorded data hash and the trainer version that trained them: equal to the
    recorded one while the record is consistent (a test checks this for every shipped
    record). Records were trained from the seeds' own weights, never nudged (cmnlib.numerics)."""
    return {key: run.spec.folder_name(record.data_hash, record.trainer, nudged=False)
            for key, run in record.runs.items()}


# ---------------------------------------------------------------------------------------
# The claims audit: Guide-Attention
# ---------------------------------------------------------------------------------------
GUIDE_SETTLED_BY = ("the ablation of notebook 08 on word-aligned real data (MulT's aligned pickles, MMSA's "
                    "aligned_50), where the words that need the audio are not known: the scores against the "
                    "paper's CMN and the text-only LSTM")


def paper_size_text_findings(records: dict[str, Record]) -> list:
    """The paper's CMN on each record of the paper-size target's data (the paper-size
    MOSEI-like set, :data:`ALIGNMENT_TARGETS`): does it score above the
    language-only ceiling (against the Bayes rule on the same test utterances where the
    record keeps its outputs and the rule, else against the expected ceiling with the test
    split's sampling)?
    The paper's own setting is paper-size, so this is the outcome the Guide-Attention row
    weighs most."""
    paper_size = next(t for t in ALIGNMENT_TARGETS if t.key == "paper")  # the paper-size target's data
    out = []
    for record in records.values():
        call = record.call
        if paper_size.covers(call["dataset"], call["scale"], NEAR_LA_CEILING) and PAPER in record.runs \
                and record.ceilings is not None:
            rule = record_rule(record, "L", headline(call["dataset"]).key)
            out.append(text_ceiling_finding(record.runs[PAPER], record.ceilings, None, rule,
                                            test_split_size(call["dataset"], call["scale"])))
    return out


def guide_attention_claim(data_label: str, paper_aligned, paper_text, variant_text: list,
                          paper_size: list = ()) -> dict:
    """The claims-audit row on the paper's statement that Guide-Attention lets language guide
    where audio attends (captures the interaction between the modalities), judged on
    ``data_label``: ``paper_aligned``, the paper's CMN's finding that audio steps of
    ambiguous words attend to their own word (:func:`cmnlib.analysis.aligned_findings`,
    the mechanism); ``paper_text``, its finding of scoring above the language-only rule at
    this profile (the outcome); ``paper_size``, the same outcome for the paper's CMN on the
    paper-size records (:func:`paper_size_text_findings`), the paper's own setting;
    ``variant_text``, the outcome for the alignment variants.

    The outcome is the paper-size one where a record has it (else this profile's). Supported
    when the mechanism and the outcome are both supported; not supported when the outcome is
    not supported, or the mechanism is not and the outcome is not supported either;
    inconclusive otherwise, and the evidence says which part is open. The evidence names the
    variants that do score above the ceiling."""
    outcome = list(paper_size) or [f for f in (paper_text,) if f is not None]
    mechanism = [f for f in (paper_aligned,) if f is not None]
    outcome_verdicts = {f.verdict for f in outcome}
    if outcome and outcome_verdicts == {SUPPORTED} and mechanism and all(f.verdict == SUPPORTED for f in mechanism):
        verdict = SUPPORTED
    elif NOT_SUPPORTED in outcome_verdicts and SUPPORTED not in outcome_verdicts:
        verdict = NOT_SUPPORTED
    else:
        verdict = "inconclusive"
    better = [f.subject.label for f in variant_text if f.verdict == SUPPORTED]
    quick = " ".join(sentence(f) for f in mechanism + [f for f in (paper_text,) if f is not None])
    evidence = f"{data_label}: {quick}"
    if paper_size:
        evidence += " Paper-size records (the paper's setting): " + " ".join(sentence(f) for f in paper_size)
    evidence += (f" Variants that do score above the ceiling: {', '.join(better)}." if better
                 else " No alignment variant is decided above the ceiling with these seeds.")
    return {"claim": "MOSEI-like: Guide-Attention lets language guide where audio attends "
                     "(captures the interaction between the modalities)",
            "verdict": f"{verdict} on this data", "evidence": evidence,
            "status": evidence_status(data_label), "real data would settle": GUIDE_SETTLED_BY}
