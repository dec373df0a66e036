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


def test_identical_seeds_give_a_point_interval():
    diff, low, high = F.difference_interval([3.0, 3.0], [1.0, 1.0])
    assert (diff, low, high) == (2.0, 2.0, 2.0)
    assert F.beats(Q, "a", "b", "a - b", [3.0, 3.0], [1.0, 1.0]).verdict == F.SUPPORTED


def test_bad_values_are_refused_with_the_values_named():
    with pytest.raises(ValueError, match="nan"):
        F.mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="both sides"):
        F.difference_interval([], [1.0])


def test_sentence_and_table_follow_the_verdict():
    beats = F.Question("beats", "{subject} beats the {baseline}")
    supported = F.beats(beats, "CMN", "LSTM", "Acc2 difference", [80.0, 81.0, 80.5], [70.0, 70.5, 71.0],
                        unit=" points")
    unclear = F.beats(beats, "CMN", "LSTM", "Acc2 difference", [80.0, 70.0], [75.0, 74.0], unit=" points")
    assert F.sentence(supported).startswith("Supported: CMN beats the LSTM")
    # diff 10, se sqrt(0.25/3 * 2), dof 4, t 2.776445: low = 10 - 1.1335 = 8.87 -> "by 8.9 points"
    assert "the whole interval lies above 0.0 points, by 8.9 points" in F.sentence(supported)
    assert F.sentence(unclear).startswith("Inconclusive:") and "more seeds" in F.sentence(unclear)
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
    b = F.beats(loses, "variant", "paper", "Acc2 difference", [80.0, 81.0], [79.0, 80.0], threshold=-1.0,
                tolerance=1.0)
    assert a.claim == "CMN scores above the language-only ceiling (81.6)"
    assert b.claim == "variant loses no more than 1 point(s) against paper"
    assert (a.kind, b.kind, b.subjects, b.subject) == (F.THRESHOLD, F.DIFFERENCE, ("variant", "paper"), "variant")
    # rewording a question changes the prose, never which findings are selected
    reworded = F.Question("above", "{subject} uses more than the text ({threshold:.1f})")
    c = F.exceeds(reworded, "CMN", "Acc2", [85.0, 86.0], 81.58, target="quick")
    assert F.select([a, b, c], above) == [a, c] and F.select({"x": [a, b]}, "loses") == [b]
    assert F.select([a, b, c], target="quick") == [a, c] and F.select([a, b], above, target="paper") == []
