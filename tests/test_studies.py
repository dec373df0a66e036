"""The studies' findings, tables and audit rows on hand-made runs whose expected values are
computed by hand: the paper's targets and claims, beyond the paper, the precision parity,
and the claims audit assembled by one writer whatever order the studies saved their rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmnlib import findings, plots
from cmnlib.studies import audit, beyond, common, paper, precision
from cmnlib.tables import REAL_MOSEI_TEST_NONNEG
from fake_runs import fake_run

CEILINGS = {s: {"acc2_has0": c, "f1_has0": c, "acc2_non0": c, "f1_non0": c}
            for s, c in {"L": 0.80, "A": 0.70, "V": 0.72, "LA": 0.90, "LAV": 0.92}.items()}
COUNTS = {"cmn_modules": 2, "mult_crossmodal": 6, "mult_memory": 3, "cmn_params": 15_495_174,
          "mult_params": 1_073_731}


def _seeded(model, modalities, acc2_per_seed, **kw):
    return fake_run(model, modalities, [{"acc2_has0": a} for a in acc2_per_seed],
                    ensemble={"acc2_has0": max(acc2_per_seed)}, **kw)


SEEDED = [_seeded("cmn", "LA", [0.85, 0.86, 0.87]), _seeded("lstm_l", "L", [0.78, 0.80, 0.79]),
          _seeded("lstm_a", "A", [0.70, 0.71, 0.72])]


def test_quality_findings_over_seeds_against_the_ceiling_and_the_best_unimodal_model():
    gap, beats = paper.quality_findings(SEEDED, "mosei", CEILINGS)
    # ceiling 90: gaps 5, 4, 3 -> mean 4, sd 1, n 3: 4 ± 4.3027/sqrt(3) = [1.52, 6.48] contains 3
    assert gap.estimate == pytest.approx(4.0) and gap.high == pytest.approx(4 + 4.302653 / 3 ** 0.5, abs=1e-4)
    assert gap.verdict == "inconclusive" and not gap.above
    assert gap.claim == "CMN (L+A) comes within 3 points of the L+A Bayes ceiling (90.0)"
    # a wider tolerance puts the whole interval below it
    assert paper.quality_findings(SEEDED, "mosei", CEILINGS, tolerance=7.0)[0].verdict == "supported"
    # CMN 86 vs the best unimodal LSTM (L) 79 (not A), same seeds and data: paired,
    # per-seed differences 7, 6, 8 -> mean 7, sd 1, dof 2: 7 ± 4.302653 / sqrt(3)
    assert beats.subjects[1].model == "lstm_l" and beats.question is paper.BEATS_UNIMODAL
    assert beats.claim == "CMN (L+A) scores above the best unimodal model, LSTM (L)"
    assert beats.estimate == pytest.approx(7.0) and beats.paired and beats.method == findings.PAIRED
    assert beats.low == pytest.approx(7 - 4.302653 / 3 ** 0.5, abs=1e-4) and beats.verdict == "supported"
    real = paper.quality_findings(SEEDED, "mosei", None)
    assert real == [beats]


def test_the_targets_asked_are_said_in_one_line_per_data_set():
    class Bundle:
        short_label = "real MOSI"
    assert paper.targets_asked(Bundle(), None) == ("real MOSI: no Bayes ceiling is known for real data, so only CMN "
                                                    "against the best unimodal model is asked.")
    assert paper.targets_asked(Bundle(), CEILINGS).startswith("real MOSI: both targets are asked")


def test_text_ceiling_findings_ask_whether_fusion_beats_the_text_ceiling():
    # neither the unimodal LSTMs nor CMN on language alone are asked
    (cmn,) = common.text_ceiling_findings(SEEDED + [_seeded("cmn", "L", [0.79, 0.80, 0.81])], CEILINGS)
    # L ceiling 80: CMN's 85-87 lie above it
    assert cmn.threshold == pytest.approx(80.0) and cmn.verdict == "supported" and cmn.subject.model == "cmn"
    assert common.text_ceiling_findings(SEEDED, None) == []


def test_one_models_seeds_against_both_ceilings_as_notebook_03_asks():
    two_seeds = [_seeded("cmn", "LA", [0.80, 0.82])]
    ceilings = {"L": {"acc2_has0": 0.78}, "LA": {"acc2_has0": 0.90}}
    (above_text,) = common.text_ceiling_findings(two_seeds, ceilings)
    # scores 80, 82: mean 81, sd sqrt(2), n 2 -> 81 ± 12.706: contains the text ceiling 78
    assert above_text.estimate == pytest.approx(81.0) and above_text.threshold == pytest.approx(78.0)
    assert above_text.verdict == "inconclusive"
    # gaps to the L+A ceiling: 10, 8 -> 9 ± 12.706: contains 3; no unimodal runs, no such finding
    (near_top,) = paper.quality_findings(two_seeds, "mosei", ceilings)
    assert near_top.estimate == pytest.approx(9.0) and near_top.verdict == "inconclusive"
    assert paper.quality_findings(two_seeds, "mosei", None) == []


def test_ceiling_gaps_use_each_models_own_modalities():
    runs = [_seeded("cmn", "LA", [0.85, 0.86]), _seeded("lstm_l", "L", [0.78, 0.79]),
            _seeded("majority", "L", [0.70, 0.70])]
    gaps = beyond.ceiling_gaps(runs, "mosei", CEILINGS).set_index("model")
    assert gaps.loc["CMN (L+A)", "ceiling"] == pytest.approx(90.0)
    assert gaps.loc["LSTM (L)", "ceiling"] == pytest.approx(80.0)
    # captured = (ensemble - constant) / (ceiling - constant): (86 - 70) / (90 - 70), (79 - 70) / (80 - 70)
    assert gaps.loc["CMN (L+A)", "captured %"] == pytest.approx(80.0)
    assert gaps.loc["LSTM (L)", "captured %"] == pytest.approx(90.0)
    assert "Majority / mean" not in gaps.index
    assert gaps.attrs["text_ceiling"] == pytest.approx(80.0) and gaps.attrs["metric"] == "Acc2"
    assert beyond.ceiling_gaps(runs, "mosei", None).empty  # real data: no ceilings


def test_ceiling_gaps_with_the_data_use_the_best_rule_on_the_same_test_split(tiny_iemocap_dir, data_home):
    """IEMOCAP-like macro-F1: each model beside its own subset's macro-F1-optimal rule on
    the test utterances (the expected "ceiling" is the accuracy-optimal rule's F1), and the
    plot reads the reference column by its name."""
    from cmnlib.data import load_dataset
    from cmnlib.data import bayes
    bundle = load_dataset("iemocap", str(tiny_iemocap_dir / "iemocap_data.pkl"))
    runs = [fake_run("cmn", "LA", [{"macro_f1": 0.6}], ensemble={"macro_f1": 0.6}, dataset="iemocap"),
            fake_run("lstm_l", "L", [{"macro_f1": 0.4}], ensemble={"macro_f1": 0.4}, dataset="iemocap")]
    ceilings = bundle.meta["file_metadata"]["bayes_ceilings"]
    gaps = beyond.ceiling_gaps(runs, "iemocap", ceilings, bundle=bundle).set_index("model")
    assert gaps.attrs["reference"] == beyond.SAME_SPLIT and "ceiling" not in gaps
    for label, subset in (("CMN (L+A)", "LA"), ("LSTM (L)", "L")):
        expected = bayes.bayes_rule(bundle, subset, metric="macro_f1").score("macro_f1")
        assert gaps.loc[label, beyond.SAME_SPLIT] == pytest.approx(round(expected, 1))
    text_rule = bayes.bayes_rule(bundle, "L", metric="macro_f1")
    assert gaps.attrs["text_ceiling"] == pytest.approx(text_rule.score("macro_f1"))
    assert plots.ceiling_gaps(gaps.reset_index(), "t", "gaps", data="x") is not None
    # without the data: the expected ceilings, named as such
    assert "ceiling" in beyond.ceiling_gaps(runs, "iemocap", ceilings)


def test_constant_predictors_under_both_acc2_conventions():
    stats = {"non_negative_rate": {"test": 0.7}, "zero_rate": {"test": 0.2}}
    table = beyond.constant_predictors_real_mosei(stats)
    # all samples: 70% non-negative; non-zero only: (0.7 - 0.2) / 0.8 = 62.5% positive
    assert table.iloc[0].tolist() == [70.0, 62.5]
    assert table.iloc[1].tolist() == [30.0, 37.5]
    shipped = beyond.constant_predictors_real_mosei()
    assert shipped.iloc[0, 0] == pytest.approx(REAL_MOSEI_TEST_NONNEG, abs=0.05)


def test_wiring_table_rows_and_findings_against_the_default():
    runs = {"encoder_decoder": _seeded("cmn", "LA", [0.80, 0.81, 0.82]),
            "stacked": _seeded("cmn", "LA", [0.70, 0.72, 0.71], mua="stacked")}
    table = beyond.wiring_table("mosei", runs)
    assert list(table["wiring"]) == ["encoder_decoder", "stacked"] and list(table.index) == [0, 1]
    assert table.loc[1, "Acc2: mean"] == pytest.approx(71.0) and table.loc[1, "Acc2: ensemble"] == pytest.approx(72.0)
    assert table.loc[1, "Acc2: std"] == pytest.approx(1.0)
    (stacked,) = table.attrs["findings"]
    # paired per seed: -10, -9, -11 -> -10 ± 4.3027 / sqrt(3), well below 0: "stacked scores
    # above encoder_decoder" is not supported
    assert stacked.estimate == pytest.approx(-10.0) and stacked.paired and stacked.verdict == "not supported"
    assert stacked.high == pytest.approx(-10 + 4.302653 / 3 ** 0.5, abs=1e-4)
    assert stacked.claim == "stacked scores above encoder_decoder" and stacked.subject.model_overrides == {
        "mua": "stacked"}


def test_the_papers_claims_recompute_its_relative_improvements():
    claims = audit.claims_audit(paper.audit_rows({}, COUNTS))
    verdicts = dict(zip(claims.claim, claims.verdict))
    glance = audit.claims_overview(claims)  # what notebook 06 shows before the generated evidence
    assert list(glance.columns) == ["claim", "verdict", "status"] and glance.claim.tolist() == claims.claim.tolist()
    # 67.4 / 56.6 - 1 = 19.1%, 67.4 / 64.9 - 1 = 3.9% (stated 3.8: within rounding of the inputs)
    precision_claim = next(c for c in verdicts if "precision" in c)
    assert verdicts[precision_claim] == "arithmetic checks"
    assert "19.1% / 3.9%" in claims.set_index("claim").loc[precision_claim, "evidence"]
    sota = next(c for c in verdicts if c.startswith("IEMOCAP: CMN is state of the art"))
    assert verdicts[sota] == "not supported"  # MulT 71.5 > 67.4 in Table 1
    assert "MulT uses vision" in claims.set_index("claim").loc[sota, "evidence"]  # the caveat a fair reader wants
    mosei = next(c for c in verdicts if c.startswith("MOSEI: CMN reaches"))
    assert verdicts[mosei] == "below a constant predictor"
    # 67.4 / 64.9 - 1 = 3.852% is stated as 3.8: the paper truncates, and the audit says so
    assert "truncates rather than rounds (3.85% is stated as 3.8%)" in claims.set_index("claim").loc[
        precision_claim, "evidence"]
    abstract = next(c for c in verdicts if c.startswith("Abstract:"))
    assert verdicts[abstract] == "not supported for MOSEI"
    assert "42.5 against 76.9-81.1" in claims.set_index("claim").loc[abstract, "evidence"]  # Table 2's other rows
    flags = next(c for c in verdicts if c.startswith("Red flags"))
    assert verdicts[flags] == "what micro-averaging gives"
    modules = next(c for c in verdicts if "modules" in c)
    assert "15.5 M" in claims.set_index("claim").loc[modules, "evidence"]


class _Part:
    """A split with the two fields uninformative_modalities reads."""

    def __init__(self, features, lengths):
        self.features, self.lengths = features, lengths


class _Bundle(dict):
    pass


def _bundle_with_audio(audio: np.ndarray) -> _Bundle:
    """A train split of 2 utterances, 3 steps (lengths 3 and 2), with the given (2, 3, 2) audio."""
    text = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    return _Bundle(train=_Part({"text": text, "audio": audio}, {"text": [3, 2], "audio": [3, 2]}))


FUSION_RUNS = [_seeded("cmn", "LA", [0.85, 0.86, 0.87]), _seeded("cmn", "L", [0.80, 0.82, 0.81]),
               _seeded("lstm_l", "L", [0.78, 0.80, 0.79]), _seeded("lstm_a", "A", [0.70, 0.71, 0.69]),
               _seeded("majority", "LA", [0.69, 0.69, 0.69])]
T2 = 4.302653  # Student t, 97.5%, 2 degrees of freedom


def test_fusion_is_judged_against_the_same_model_on_language_alone_paired_by_seed():
    gain, alone, text = paper.fusion_findings(FUSION_RUNS, "mosei")
    # CMN (L+A) 85, 86, 87 minus CMN (L) 80, 82, 81 (same seeds, same data): differences 5, 4, 6
    assert gain.question is paper.FUSION_GAIN and gain.paired and gain.method == findings.PAIRED
    assert [s.label for s in gain.subjects] == ["CMN (L+A)", "CMN (L)"]
    assert gain.estimate == pytest.approx(5.0) and gain.low == pytest.approx(5 - T2 / 3 ** 0.5, abs=1e-4)
    assert gain.verdict == "supported"
    assert gain.claim == "CMN (L+A) scores above the same model on language alone, CMN (L)"
    # LSTM (A) 70, 71, 69 against the constant's 69.0 (no seed variance): one-sample, mean 70, sd 1
    assert alone.question is paper.ALONE_INFORMS and alone.threshold == pytest.approx(69.0)
    assert alone.high == pytest.approx(70 + T2 / 3 ** 0.5, abs=1e-4) and alone.verdict == "inconclusive"
    assert alone.claim == "LSTM (A) scores above the constant predictor (69.0)"
    # CMN (L) 80, 82, 81 minus LSTM (L) 78, 80, 79: 2, 2, 2 -> no spread, never decided
    assert text.question is paper.TEXT_MODEL_GAIN and text.estimate == pytest.approx(2.0)
    assert text.flag == findings.NO_SPREAD and text.verdict == "inconclusive"


def test_a_fusion_gain_on_features_that_carry_nothing_is_never_supported():
    varied = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    assert paper.fusion_findings(FUSION_RUNS, "mosei", bundle=_bundle_with_audio(varied))[0].verdict == "supported"
    # all zeros within the true lengths (the padded step of utterance 2 holds a 7, never read)
    zero_audio = np.zeros((2, 3, 2), dtype=np.float32)
    zero_audio[1, 2] = 7.0
    zeros = paper.fusion_findings(FUSION_RUNS, "mosei", bundle=_bundle_with_audio(zero_audio))[0]
    assert zeros.flag == findings.NO_INFORMATION and zeros.verdict == "inconclusive"
    assert "audio: every value is 0" in findings.sentence(zeros) and zeros.low > 0  # decided-looking, yet not
    same = paper.fusion_findings(FUSION_RUNS, "mosei", bundle=_bundle_with_audio(np.full((2, 3, 2), 0.5)))[0]
    assert same.verdict == "inconclusive" and "the same vector" in findings.sentence(same)
    # text-only data: only CMN (L) against LSTM (L) applies
    text_only = [r for r in FUSION_RUNS if r.spec.modalities == "L" or r.model == "majority"]
    assert [f.question for f in paper.fusion_findings(text_only, "mosei")] == [paper.TEXT_MODEL_GAIN]


def test_the_fusion_claim_is_judged_by_the_paired_finding_and_names_an_audio_that_gives_nothing_alone():
    fusion = {"mosei": paper.fusion_findings(FUSION_RUNS, "mosei"), "iemocap": []}
    claims = audit.claims_audit(paper.audit_rows({"mosei": "SYNTHETIC"}, None, fusion))
    row = claims[claims.claim.str.contains("fusing L+A helps CMN", regex=False)].iloc[0]
    assert row.verdict == "supported on this data" and "IEMOCAP: fusing" not in " ".join(claims.claim)
    assert row.evidence.startswith("SYNTHETIC: Supported: CMN (L+A) scores above the same model on language alone")
    assert "On its own: Inconclusive: LSTM (A) scores above the constant predictor" in row.evidence
    assert "not shown to inform a model by itself" in row.evidence
    close = [_seeded("cmn", "LA", [0.80, 0.78]), _seeded("cmn", "L", [0.79, 0.80])]
    rows = paper.audit_rows({"mosei": "SYNTHETIC"}, None, {"mosei": paper.fusion_findings(close, "mosei")})
    assert rows[-1]["verdict"] == "inconclusive on this data"
    assert paper.fusion_findings([SEEDED[0]], "mosei") == []  # nothing to compare with


def test_the_verdict_groups_claims_by_status_and_says_what_real_data_would_settle():
    fusion = {"mosei": paper.fusion_findings(FUSION_RUNS, "mosei")}
    synthetic = audit.claims_audit(paper.audit_rows({"mosei": "SYNTHETIC MOSEI-like"}, COUNTS, fusion))
    status = dict(zip(synthetic.claim, synthetic.status))
    by_start = {claim.split(" (")[0]: s for claim, s in status.items()}
    assert by_start["IEMOCAP: CMN is state of the art"] == "refuted by the paper's own numbers"
    assert by_start["MOSEI: CMN reaches Acc2 42.5 / F1 42.5"] == "contradicted by the real MOSEI labels"
    assert by_start["MOSEI: fusing L+A helps CMN, against the same model on language alone"] == \
        "synthetic evidence only"
    fusion_claim = next(c for c in status if "fusing" in c)
    assert "the paper makes no such claim" in fusion_claim  # the companion's question, not presented as the paper's
    text = audit.verdict_markdown(synthetic)
    # refuted claims come first, the synthetic finding last; every status present gets a paragraph
    assert text.index("Refuted by the paper's own numbers** (2 claims)") < text.index("Holds as arithmetic") \
        < text.index("Holds as a count") < text.index("Synthetic evidence only** (1 claim)")
    settle = text.split("What real data would settle:")[1]
    assert ".." not in text.replace("...", "")  # evidence that ends a sentence gets no second full stop
    assert "state of the art" not in settle and "transformer modules" not in settle  # decided already
    assert "MOSEI: CMN reaches Acc2 42.5" in settle and "fusing L+A" in settle
    # the same finding on data not labelled SYNTHETIC counts as tested on real data
    real = paper.audit_rows({"mosei": "REAL MOSEI from x.pkl"}, None, fusion)
    assert real[-1]["status"] == "tested on real data"


def test_one_writer_assembles_the_audit_whatever_order_the_studies_saved_their_rows(tmp_path):
    paper_rows = paper.audit_rows({}, COUNTS)
    guide = {"claim": "MOSEI-like: Guide-Attention ...", "verdict": "inconclusive on this data", "evidence": "e",
             "status": "synthetic evidence only", "real data would settle": "real data"}
    first, second = tmp_path / "a", tmp_path / "b"
    audit.save_rows("alignment", [guide], ["SYNTHETIC MOSEI-like", "SYNTHETIC IEMOCAP-like"], first)
    audit.save_rows("paper", paper_rows, ["SYNTHETIC MOSEI-like", "SYNTHETIC IEMOCAP-like"], first)
    audit.save_rows("paper", paper_rows, ["SYNTHETIC MOSEI-like", "SYNTHETIC IEMOCAP-like"], second)
    audit.save_rows("alignment", [guide], ["SYNTHETIC MOSEI-like", "SYNTHETIC IEMOCAP-like"], second)
    audit.assemble(first)
    audit.assemble(second)
    for name in ("claims_audit.csv", "claims_audit.md", "verdict.md", "verdict.html"):
        assert (first / name).read_text() == (second / name).read_text()
    table = pd.read_csv(first / "claims_audit.csv")
    assert list(table.claim) == [r["claim"] for r in paper_rows] + [guide["claim"]]  # the paper's rows first
    assert set(table.data) == {"SYNTHETIC MOSEI-like; SYNTHETIC IEMOCAP-like"}
    assert audit.save_rows("paper", paper_rows, [], None) is None  # outside the batch runner: nothing
    assert audit.assemble(tmp_path / "empty") == []
    with pytest.raises(ValueError, match="unknown study 'typo'"):
        audit.save_rows("typo", [], [], tmp_path)


def test_precision_findings_by_hand():
    from scipy import stats
    fp32 = _seeded("cmn", "LA", [0.80, 0.82, 0.81, 0.83])
    bf16 = [0.802, 0.819, 0.812, 0.828]
    same = {"fp32": fp32, "bf16": _seeded("cmn", "LA", bf16, train={"precision": "bf16"})}
    below, above = precision.precision_findings("mosei", same)
    # paired: differences 0.2, -0.1, 0.2, -0.2 points; t interval with 3 dof inside ±1 (declared)
    d = 100 * (np.array(bf16) - [0.80, 0.82, 0.81, 0.83])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert below.threshold == -1.0 and below.paired
    assert below.low == pytest.approx(d.mean() - half) and above.high == pytest.approx(-d.mean() + half)
    assert below.verdict == above.verdict == "supported"
    assert below.claim == "CMN (L+A) in bf16 scores no more than 1.0 points below fp32"
    # identical means, but the per-seed differences (+-1) are too spread for a 1-point margin
    spread = {"fp32": fp32, "bf16": _seeded("cmn", "LA", [0.81, 0.81, 0.82, 0.82], train={"precision": "bf16"})}
    assert [f.verdict for f in precision.precision_findings("mosei", spread)] == ["inconclusive"] * 2
    worse = {"fp32": fp32, "bf16": _seeded("cmn", "LA", [0.70, 0.71, 0.70, 0.71], train={"precision": "bf16"})}
    assert precision.precision_findings("mosei", worse)[0].verdict == "not supported"
    assert precision.precision_findings("mosei", {"fp32": fp32}) == []
    table = precision.precision_table("mosei", same)
    assert table.loc[0, "test Acc2 per seed"] == "80.0, 82.0, 81.0, 83.0" and table.loc[0, "mean"] == 81.5


def test_no_code_selects_findings_or_runs_by_their_prose():
    """Claims and labels are generated and never parsed: no library module or notebook reads
    a finding's ``claim`` or a run's ``label`` to decide anything."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    # (the data package's ``.label`` is a sentiment label, not a run's)
    sources = [p for p in (root / "cmnlib").rglob("*.py") if "data" not in p.relative_to(root).parts]
    sources += sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))
    pattern = re.compile(r"""(\bin|==|!=)\s+\w+\.(claim|label)\b"""
                         r"""|\.(claim|label)\s*(==|!=|\.startswith|\.split|\.endswith|\[)"""
                         r"""|\[["']claim["']\]""")
    offenders = [f"{p.relative_to(root)}:{i}: {line.strip()}" for p in sources
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, "\n".join(offenders)
    assert findings.select  # the way to pick findings


def test_runs_that_share_seeds_and_data_are_compared_seed_by_seed_in_every_study():
    """No study compares pairs unpaired: every difference finding between runs with the same
    seeds and data hash is paired; runs on other data (or other seeds) use Welch's interval."""
    a, b = _seeded("cmn", "LA", [0.80, 0.82, 0.81]), _seeded("lstm_l", "L", [0.78, 0.79, 0.80])
    assert findings.pairs(a, b)
    other_data = fake_run("lstm_l", "L", [{"acc2_has0": v} for v in (0.78, 0.79, 0.80)])
    other_data.data_hash = "another hash"
    other_seeds = _seeded("lstm_l", "L", [0.78, 0.79, 0.80])
    other_seeds.members[2].seed = 7
    assert not findings.pairs(a, other_data) and not findings.pairs(a, other_seeds)
    unpaired = common.compare(paper.BEATS_UNIMODAL, a, other_data, "acc2_has0", "d")
    assert not unpaired.paired and unpaired.method == findings.WELCH
    # each study that compares two runs, on runs that are pairs
    from cmnlib.studies import alignment
    studied = [paper.unimodal_finding([a, b], "mosei"),
               *[f for f in paper.fusion_findings([a, b, _seeded("cmn", "L", [0.79, 0.81, 0.80])], "mosei")
                 if f.kind == findings.DIFFERENCE],
               *beyond.wiring_table("mosei", {"encoder_decoder": a, "stacked": _seeded(
                   "cmn", "LA", [0.79, 0.83, 0.80], mua="stacked")}).attrs["findings"],
               *precision.precision_findings("mosei", {"fp32": a, "bf16": _seeded("cmn", "LA", [0.81, 0.80, 0.83])}),
               *[f for f in alignment.alignment_findings("mosei", {alignment.PAPER: a, "diagonal_prior": _seeded(
                   "cmn", "LA", [0.79, 0.83, 0.80], alignment="diagonal_prior")}, None)
                 if f.kind == findings.DIFFERENCE]]
    assert len(studied) == 7 and all(f.paired and f.method == findings.PAIRED for f in studied)


def test_the_parity_study_is_declared_before_it_runs():
    """The parity's arms, seeds and margin are fixed in code (not computed from scores): the
    findings use the declared margin whatever the fp32 seeds' spread."""
    assert precision.PARITY.arms == ("fp32", "bf16") and precision.PARITY.seeds == 20
    assert precision.PARITY.margin == 1.0 and "0.9 points" in precision.PARITY.why
    noisy = _seeded("cmn", "LA", [0.60, 0.90, 0.75])  # an fp32 sd of 15 points
    low, high = precision.precision_findings("mosei", {"fp32": noisy, "bf16": _seeded("cmn", "LA", [0.61, 0.89, 0.76])})
    assert low.threshold == high.threshold == -precision.PARITY.margin


def test_the_settings_table_reads_the_profiles_and_leaves_no_cell_empty(monkeypatch):
    from dataclasses import replace

    from cmnlib import config
    from cmnlib.studies import paper
    table = paper.settings_table()
    assert list(table.columns) == ["setting", "the paper specifies", "section", "paper profile", "quick profile", "why"]
    assert (table.astype(str).map(len) > 0).all().all()
    assert set(table["section"]) <= {"2.3", "3", "4.1", "4.2"}  # the paper's sections
    by_setting = table.set_index("setting")
    assert by_setting.loc["learning rate", "paper profile"] == "1e-4"  # section 4.1: 1e-4
    assert by_setting.loc["batch size", "paper profile"] == "32"
    # the three MOSEI test sizes, reconciled in this one row
    assert all(f"{n:,}" in " ".join(by_setting.loc["MOSEI split"].astype(str)) for n in (4643, 4659, 4662))
    # the profile columns come from the registry: change a profile, the table follows
    quick = config.PROFILES["quick"]
    monkeypatch.setitem(config.PROFILES, "quick", replace(quick, train={**quick.train, "lr": 3e-4}))
    assert paper.settings_table().set_index("setting").loc["learning rate", "quick profile"] == "3e-4"
