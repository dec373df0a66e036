"""Findings over seeds: intervals against hand-computed values, the three verdicts, and
the sentences and tables generated from them."""
from __future__ import annotations

import math

import pytest

from cmnlib import findings as F
from cmnlib.reporting import show

T_975_DF2 = 4.302653  # Student t, 97.5% quantile, 2 degrees of freedom (any t table)
T_975_DF1 = 12.706205
Q = F.Question("q", "{subject} is above {threshold:g}")  # a question for the arithmetic tests


def q(text: str) -> F.Question:
    """A question whose claim is ``text`` (for the tests of prose)."""
    return F.Question(text, text)


def test_mean_interval_matches_the_t_formula_by_hand():
    # [1, 2, 3]: mean 2, sample sd 1, n 3 -> 2 ± 4.302653 / sqrt(3)
    mean, low, high = F.mean_interval([1.0, 2.0, 3.0])
    half = T_975_DF2 / math.sqrt(3)
    assert mean == 2.0
    assert low == pytest.approx(2 - half, abs=1e-5) and high == pytest.approx(2 + half, abs=1e-5)


def test_two_seeds_give_the_wide_one_degree_of_freedom_interval():
    # [70, 72]: mean 71, sd sqrt(2), half-width 12.706 * sqrt(2) / sqrt(2) = 12.706
    mean, low, high = F.mean_interval([70.0, 72.0])
    assert mean == 71.0 and high - mean == pytest.approx(T_975_DF1, abs=1e-5)


def test_one_seed_is_unbounded_and_inconclusive():
    finding = F.exceeds(Q, "x", "x", [5.0], 0.0)
    assert math.isinf(finding.low) and math.isinf(finding.high)
    assert finding.verdict == F.INCONCLUSIVE
    assert finding.interval_text() == "unbounded (1 seed)"


def test_welch_interval_with_equal_variances_and_sizes_uses_2n_minus_2_degrees_of_freedom():
    # a = [1, 3], b = [0, 2]: diff 1; each variance 2, /2 = 1; se = sqrt(2); dof = 2
    diff, low, high = F.difference_interval([1.0, 3.0], [0.0, 2.0])
    half = T_975_DF2 * math.sqrt(2)
    assert diff == 1.0
    assert low == pytest.approx(1 - half, abs=1e-5) and high == pytest.approx(1 + half, abs=1e-5)


def test_welch_degrees_of_freedom_follow_welch_satterthwaite():
    # a = [1, 2, 3] (var 1, n 3), b = [4, 6] (var 2, n 2): va = 1/3, vb = 1,
    # dof = (4/3)^2 / ((1/3)^2 / 2 + 1^2 / 1) = 1.68421...
    diff, low, high = F.difference_interval([1.0, 2.0, 3.0], [4.0, 6.0])
    dof = (4 / 3) ** 2 / ((1 / 3) ** 2 / 2 + 1.0)
    assert dof == pytest.approx(1.684210, abs=1e-6)
    from scipy import stats
    assert high - diff == pytest.approx(stats.t.ppf(0.975, dof) * math.sqrt(4 / 3), rel=1e-9)
    assert diff == -3.0


@pytest.mark.parametrize("values, threshold, above, verdict", [
    ([10.0, 10.2, 9.8, 10.1], 5.0, True, F.SUPPORTED),       # far above
    ([10.0, 10.2, 9.8, 10.1], 15.0, True, F.NOT_SUPPORTED),  # far below a claimed "above 15"
    ([10.0, 10.2, 9.8, 10.1], 10.0, True, F.INCONCLUSIVE),   # threshold inside the interval
    ([10.0, 10.2, 9.8, 10.1], 15.0, False, F.SUPPORTED),     # "below 15": yes
    ([10.0, 10.2, 9.8, 10.1], 5.0, False, F.NOT_SUPPORTED),  # "below 5": no
])
def test_three_verdicts(values, threshold, above, verdict):
    assert F.exceeds(Q, "x", "x", values, threshold, above=above).verdict == verdict


def test_margin_is_the_gap_between_interval_and_threshold():
    f = F.Finding(Q, ("c",), "x", estimate=10.0, low=8.0, high=12.0, threshold=5.0, seeds=3)
    assert f.verdict == F.SUPPORTED and f.margin == pytest.approx(3.0)
    g = F.Finding(Q, ("c",), "x", estimate=10.0, low=8.0, high=12.0, threshold=11.0, seeds=3)
    assert g.verdict == F.INCONCLUSIVE and g.margin == pytest.approx(-1.0)  # overlaps by 1
    h = F.Finding(Q, ("c",), "x", estimate=10.0, low=8.0, high=12.0, threshold=13.5, seeds=3)
    assert h.verdict == F.NOT_SUPPORTED and h.margin == pytest.approx(1.5)


def test_identical_seeds_give_a_point_interval_that_decides_nothing():
    diff, low, high = F.difference_interval([3.0, 3.0], [1.0, 1.0])
    assert (diff, low, high) == (2.0, 2.0, 2.0)
    # two collapsed models, 69.0 in both seeds: a zero-width interval is no evidence
    found = F.beats(Q, "a", "b", "a - b", [69.0, 69.0], [69.0, 69.0], threshold=-1.0, paired=True)
    assert (found.low, found.high) == (0.0, 0.0) and found.flag == F.NO_SPREAD
    assert found.verdict == F.INCONCLUSIVE and "no width" in F.sentence(found)
    assert F.findings_table([found]).loc[0, "verdict"] == "inconclusive (no spread)"


def test_an_interval_beyond_the_metric_range_decides_nothing():
    # Acc2 over two seeds [60, 95]: mean 77.5, half-width 12.706 * 24.75 = 314 -> far past 100
    wide = F.exceeds(Q, "m", "Acc2", [60.0, 95.0], 30.0, bounds=(0.0, 100.0))
    assert wide.high > 100 and wide.flag == F.OUT_OF_RANGE and wide.verdict == F.INCONCLUSIVE
    inside = F.exceeds(Q, "m", "Acc2", [80.0, 80.5, 80.2], 30.0, bounds=(0.0, 100.0))
    assert inside.flag is None and inside.verdict == F.SUPPORTED


def test_a_verdict_decided_below_the_display_precision_shows_enough_digits():
    # interval low end 79.996, threshold 79.99: decided by 0.006, shown with two decimals
    f = F.Finding(Q, ("c",), "x", estimate=80.0, low=79.996, high=80.004, threshold=79.99, seeds=3)
    assert f.verdict == F.SUPPORTED and f.margin_text() == "+0.01"  # not "+0.0"
    assert "by 0.01)" in F.sentence(f)
    g = F.Finding(Q, ("c",), "x", estimate=80.0, low=78.0, high=82.0, threshold=75.0, seeds=3)
    assert g.margin_text() == "+3.0"


def test_paired_interval_matches_scipy_on_the_differences():
    from scipy import stats
    # the IEMOCAP-like example: per-seed differences [0, -0.03, 0.18, -0.12]
    a = [66.0, 65.97, 67.18, 64.88]
    b = [66.0, 66.0, 67.0, 65.0]
    diff, low, high = F.paired_interval(a, b)
    d = [x - y for x, y in zip(a, b)]
    expected = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert diff == pytest.approx(sum(d) / 4)
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-9)
    paired = F.beats(Q, "v", "p", "v - p", a, b, threshold=-1.0, paired=True)
    welch = F.beats(Q, "v", "p", "v - p", a, b, threshold=-1.0, paired=False)
    assert paired.method == F.PAIRED and welch.method == F.WELCH
    assert paired.verdict == F.SUPPORTED and welch.verdict == F.INCONCLUSIVE  # pairing decides it
    assert paired.high - paired.low < (welch.high - welch.low) / 5
    with pytest.raises(ValueError, match="one value per seed"):
        F.paired_interval([1.0, 2.0], [1.0])


def test_p_value_agrees_with_scipy_one_sided_tests():
    from scipy import stats
    values = [1.2, 0.4, 0.9, 1.6, 0.7]
    f = F.exceeds(Q, "x", "x", values, 0.5)
    assert f.p_value == pytest.approx(stats.ttest_1samp(values, 0.5, alternative="greater").pvalue, rel=1e-9)
    g = F.exceeds(Q, "x", "x", values, 0.5, above=False)
    assert g.p_value == pytest.approx(stats.ttest_1samp(values, 0.5, alternative="less").pvalue, rel=1e-9)
    a, b = [3.0, 4.0, 6.0], [1.0, 3.5, 4.0]
    h = F.beats(Q, "a", "b", "a - b", a, b, threshold=0.0, paired=True)
    assert h.p_value == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue, rel=1e-9)
    w = F.beats(Q, "a", "b", "a - b", a, b, threshold=0.0, paired=False)
    assert w.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue,
                                      rel=1e-9)
    # the verdict and the p-value say the same: supported exactly when p < 2.5%
    for finding in (f, g, h, w):
        assert (finding.verdict == F.SUPPORTED) == (finding.p_value < 0.025)


def test_holm_on_a_worked_example():
    # Holm (1979) style example: p = 0.01, 0.04, 0.03, 0.005 at alpha 0.05.
    # sorted: 0.005 <= 0.05/4 = 0.0125 yes; 0.01 <= 0.05/3 = 0.0167 yes; 0.03 <= 0.05/2 = 0.025 no: stop.
    p = [0.01, 0.04, 0.03, 0.005]
    assert F.holm(p, 0.05) == [True, False, False, True]
    # adjusted: 0.005*4 = 0.02; max(0.02, 0.01*3) = 0.03; max(0.03, 0.03*2) = 0.06; max(0.06, 0.04) = 0.06
    assert F.holm_adjusted(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [a <= 0.05 for a in F.holm_adjusted(p)] == F.holm(p, 0.05)
    assert F.holm([], 0.05) == [] and F.holm([0.2], 0.25) == [True]


def test_the_declared_parity_procedure_keeps_its_false_equivalence_rate():
    """Two one-sided paired tests with the declared margin and seeds, simulated with the true
    difference exactly at the margin: equivalence is declared at most 2.5% of the time (plus
    Monte Carlo error), the nominal level of each one-sided 95% interval."""
    import numpy as np
    from scipy import stats
    from cmnlib.studies.precision import PARITY
    rng = np.random.default_rng(2026)
    reps, n, margin, sd = 40_000, PARITY.seeds, PARITY.margin, 2.0
    diffs = rng.normal(margin, sd, size=(reps, n))  # bf16 minus fp32, per seed, at the margin
    mean, se = diffs.mean(1), diffs.std(1, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.975, n - 1) * se
    equivalent = (mean - half > -margin) & (mean + half < margin)
    rate = equivalent.mean()
    assert rate <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / reps)
    # and the same rule through the findings themselves, on a few of the simulated studies
    for row in diffs[:50]:
        zero = [0.0] * n
        low = F.beats(Q, "b", "f", "d", list(row), zero, threshold=-margin, paired=True)
        high = F.beats(Q, "f", "b", "d", zero, list(row), threshold=-margin, paired=True)
        both = low.verdict == high.verdict == F.SUPPORTED
        assert both == bool((row.mean() - stats.t.ppf(0.975, n - 1) * row.std(ddof=1) / np.sqrt(n) > -margin)
                            and (row.mean() + stats.t.ppf(0.975, n - 1) * row.std(ddof=1) / np.sqrt(n) < margin))


def test_bad_values_are_refused_with_the_values_named():
    with pytest.raises(ValueError, match="nan"):
        F.mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="both sides"):
        F.difference_interval([], [1.0])


def test_sentence_and_table_follow_the_verdict():
    beats = F.Question("beats", "{subject} beats the {baseline}")
    supported = F.beats(beats, "CMN", "LSTM", "Acc2 difference", [80.0, 81.0, 80.5], [70.0, 70.5, 71.0],
                        unit=" points", paired=False)
    unclear = F.beats(beats, "CMN", "LSTM", "Acc2 difference", [80.0, 70.0], [75.0, 74.0], unit=" points",
                      paired=False)
    assert F.sentence(supported).startswith("Supported: CMN beats the LSTM")
    # diff 10, se sqrt(0.25/3 * 2), dof 4, t 2.776445: low = 10 - 1.1335 = 8.87 -> "by 8.9 points"
    assert "the whole interval lies above 0.0 points, by 8.9 points" in F.sentence(supported)
    assert F.sentence(unclear).startswith("Inconclusive:") and "seeds would decide it" in F.sentence(unclear)
    table = F.findings_table([supported, unclear])
    assert list(table["verdict"]) == [F.SUPPORTED, F.INCONCLUSIVE]
    assert table.loc[0, "threshold"] == "> 0.0 points" and table.loc[0, "seeds"] == 3
    assert list(table.index) == [0, 1]


def test_each_finding_keeps_its_own_decimals_and_the_table_shows_without_index():
    ratio = F.exceeds(q("attention concentrates"), "m", "ratio", [1.18, 1.21, 1.16], 1.25, unit="x", digits=2)
    score = F.exceeds(q("score above"), "m", "Acc2", [80.02, 80.04], 79.0)
    table = F.findings_table([ratio, score])
    assert table.loc[0, "threshold"] == "> 1.25x" and table.loc[0, "mean"] == "1.18x"
    assert table.loc[1, "mean"] == "80.0" and table.loc[1, "threshold"] == "> 79.0"
    assert "1.25x" in F.sentence(ratio) and F.sentence(ratio).startswith("Not supported:")
    html = show(F.findings_table([ratio, score])).to_html()
    assert "attention concentrates" in html and "row_heading" not in html  # no index column


def test_bullets_list_the_sentences_with_their_prefixes():
    a = F.exceeds(Q, "a", "x", [3.0, 3.1, 2.9], 1.0)
    b = F.exceeds(Q, "b", "x", [0.0, 0.1, -0.1], 1.0)
    text = F.bullets({"mosei": [a], "iemocap": [b]})
    assert text.split("\n") == [f"* mosei: {F.sentence(a)}", f"* iemocap: {F.sentence(b)}"]
    assert F.bullets([a]) == f"* {F.sentence(a)}"
    table = F.findings_table({"mosei": [a], "iemocap": [b]})
    assert list(table.columns[:2]) == ["data", "claim"] and list(table["data"]) == ["mosei", "iemocap"]
    html = show(table).to_html()
    assert html.index("mosei") < html.index("iemocap") and ">data<" in html


def test_the_claim_is_generated_from_the_fields_and_code_selects_by_them():
    above = F.Question("above", "{subject} scores above the {kind} ceiling ({threshold:.1f})")
    loses = F.Question("loses", "{subject} loses no more than {tolerance:g} point(s) against {baseline}")
    a = F.exceeds(above, "CMN", "Acc2", [85.0, 86.0], 81.58, kind="language-only", target="quick")
    b = F.beats(loses, "variant", "paper", "Acc2 difference", [80.0, 81.0], [79.0, 80.0], threshold=-1.0, paired=False,
                tolerance=1.0)
    assert a.claim == "CMN scores above the language-only ceiling (81.6)"
    assert b.claim == "variant loses no more than 1 point(s) against paper"
    assert (a.kind, b.kind, b.subjects, b.subject) == (F.THRESHOLD, F.DIFFERENCE, ("variant", "paper"), "variant")
    # rewording a question changes the prose, never which findings are selected
    reworded = F.Question("above", "{subject} uses more than the text ({threshold:.1f})")
    c = F.exceeds(reworded, "CMN", "Acc2", [85.0, 86.0], 81.58, target="quick")
    assert F.select([a, b, c], above) == [a, c] and F.select({"x": [a, b]}, "loses") == [b]
    assert F.select([a, b, c], target="quick") == [a, c] and F.select([a, b], above, target="paper") == []


def test_an_inconclusive_finding_says_how_many_seeds_would_decide_it():
    from scipy import stats
    # [80, 84]: mean 82, sd 2.83; threshold 81: gap 1. n seeds decide when t(n-1) * 2.83 / sqrt(n) < 1
    f = F.exceeds(Q, "x", "x", [80.0, 84.0], 81.0)
    n = f.seeds_to_decide()
    sd = math.sqrt(8)
    assert stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < 1 <= stats.t.ppf(0.975, n - 2) * sd / math.sqrt(n - 1)
    assert f"about {n} seeds would decide it" in F.sentence(f)
    assert F.exceeds(Q, "x", "x", [80.0, 82.0], 81.0).seeds_to_decide() is None  # the mean on the threshold
    assert F.exceeds(Q, "x", "x", [80.0], 70.0).seeds_to_decide() is None         # one seed: no spread known


def test_the_digest_counts_the_verdicts_and_names_the_clearest_each_way():
    # intervals by hand: [80, 82, 84] has mean 82 and half-width 4.30 * 2 / sqrt(3) = 4.97
    clear = F.exceeds(q("A beats 70"), "A", "Acc2", [80.0, 82.0, 84.0], 70.0)      # [77.0, 87.0]: by 7.0
    narrow = F.exceeds(q("B beats 76"), "B", "Acc2", [80.0, 82.0, 84.0], 76.0)     # by 1.0: less clear
    wrong = F.exceeds(q("C beats 90"), "C", "Acc2", [80.0, 82.0, 84.0], 90.0)      # [77.0, 87.0] below 90
    open_ = F.exceeds(q("D beats 85"), "D", "Acc2", [80.0, 82.0, 84.0], 85.0)      # contains 85
    flat = F.exceeds(q("E beats 60"), "E", "Acc2", [69.0, 69.0], 60.0)             # no spread
    text = F.digest({"mosei": [clear, narrow, wrong, open_, flat]})
    sentences = text.split(". ")
    assert len(sentences) == 3
    assert sentences[0] == ("Of 5 findings, 2 are supported, 1 not supported and 2 inconclusive (1 of them with a "
                            "degenerate interval)")
    assert sentences[1].startswith("Most clearly supported: mosei: A beats 70 (82.0")
    assert sentences[2].startswith("Most clearly not supported: mosei: C beats 90 (82.0")
    # with nothing contradicted, the third sentence names the open finding nearest a decision
    assert "the closest to being decided: D beats 85" in F.digest([clear, open_, flat])
    assert F.digest([]) == "No findings."
    assert F.digest([clear], most=1) == "Of 1 finding, 1 is supported, 0 not supported and 0 inconclusive."
    counts = F.verdict_counts({"quick": [clear, wrong, flat], "paper": [open_]})
    assert counts.to_dict("records") == [
        {"group": "quick", "findings": 3, "supported": 1, "not supported": 1, "inconclusive": 1,
         "of them degenerate": 1},
        {"group": "paper", "findings": 1, "supported": 0, "not supported": 0, "inconclusive": 1,
         "of them degenerate": 0}]


def test_a_number_that_rounds_to_zero_never_shows_a_minus_sign():
    from cmnlib.findings import fixed
    assert fixed(-0.04, 1) == "0.0" and fixed(-0.0, 2) == "0.00" and fixed(0.04, 1) == "0.0"
    assert fixed(-0.06, 1) == "-0.1" and fixed(-2.5, 0) == "-2" and fixed(7.95, 1) == f"{7.95:.1f}"


def test_an_interval_with_the_test_split_says_how_many_seeds_or_utterances_would_decide_it():
    """By hand: the half-width t(dof) * sqrt(v_seed / S + v_test * 1000 / n), with
    Welch-Satterthwaite's dof, falls under the gap between the mean and the threshold first
    at the seeds (on this 1,000-utterance split) or the utterances (with these seeds) that
    the finding names, and not one step before. (With few seeds a larger split can widen
    the interval: the dof fall towards the seeds' own.)"""
    from scipy import stats

    from cmnlib.findings import WITH_TEST_SPLIT, Finding, Question, satterthwaite, sentence

    size = 1000

    def half(var_seed, var_test, seeds, n):
        test = var_test * size / n
        dof = satterthwaite([(var_seed / seeds, seeds - 1), (test, n - 1)])
        return stats.t.ppf(0.975, dof) * math.sqrt(var_seed / seeds + test)

    def finding(gap, var_seed, var_test, seeds):
        h = half(var_seed, var_test, seeds, size)
        return Finding(Question("q", "{subject} beats the rule"), ("m",), "d", gap, gap - h, gap + h, 0.0, seeds,
                       method=WITH_TEST_SPLIT, dof=5.0, sampling=(var_seed, var_test, size))

    # the seeds' spread dominates: more seeds decide it, a larger split with 2 seeds does not
    seedy = finding(2.0, 4.0, 0.05, 2)
    assert seedy.verdict == "inconclusive"
    seeds, utterances = seedy.to_decide()
    assert half(4.0, 0.05, seeds, size) < 2.0 <= half(4.0, 0.05, seeds - 1, size) and utterances is None
    assert f"about {seeds} seeds on this test split would decide it" in sentence(seedy)
    # the split's sampling dominates: no number of seeds decides it on this split, more utterances do
    sampled = finding(1.5, 0.05, 1.0, 3)
    assert sampled.verdict == "inconclusive"
    seeds, utterances = sampled.to_decide()
    assert seeds is None and half(0.05, 1.0, 3, utterances) < 1.5 <= half(0.05, 1.0, 3, 0.97 * utterances)
    assert f"about {utterances:,} test utterances with these 3 seeds would decide it" in sentence(sampled)
    # both wide: neither alone
    both = finding(0.5, 4.0, 0.25, 2)
    assert both.to_decide() == (None, None) and "both are needed" in sentence(both)
