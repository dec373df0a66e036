"""Tests for cmnlib.metrics.

Expected values are hand-computed; the derivation is in the comment next to each.
Per-class F1 is 2*TP / (2*TP + FP + FN); "weighted" F1 averages the per-class F1
with weights equal to each class's support in the ground truth.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from cmnlib.metrics import (
    sims_regression_metrics,
    iemocap_binary4_metrics,
    iemocap_metrics,
    majority_rate,
    mosei_binary_metrics,
    mosei_regression_metrics,
)

approx = pytest.approx


# --------------------------------------------------------------------------- #
# MOSEI regression: Has0 vs Non0
# --------------------------------------------------------------------------- #


def test_has0_and_non0_differ_with_zero_labels() -> None:
    labels = [0, 1, -1, 0.5]
    preds = [-0.2, 2, -1, -0.1]
    m = mosei_regression_metrics(preds, labels)

    # Has0 over all 4: truth >= 0 -> [T, T, F, T]; pred >= 0 -> [F, T, F, F]
    # correct at indices 1, 2 -> 2/4
    assert m["acc2_has0"] == approx(0.5)
    # class T (support 3): TP=1, FP=0, FN=2 -> F1 = 2/(2+0+2) = 0.5
    # class F (support 1): TP=1, FP=2, FN=0 -> F1 = 2/(2+2+0) = 0.5
    # weighted = (3*0.5 + 1*0.5)/4 = 0.5
    assert m["f1_has0"] == approx(0.5)

    # Non0 drops index 0 (label 0): truth > 0 -> [T, F, T]; pred > 0 -> [T, F, F]
    # correct at 2 of 3 -> 2/3
    assert m["n"] == 4
    assert m["n_non0"] == 3
    assert m["acc2_non0"] == approx(2 / 3)
    # class T (support 2): TP=1, FP=0, FN=1 -> 2/3
    # class F (support 1): TP=1, FP=1, FN=0 -> 2/3
    # weighted = (2*2/3 + 1*2/3)/3 = 2/3
    assert m["f1_non0"] == approx(2 / 3)


def test_prediction_exactly_zero_is_nonneg_for_has0_but_negative_for_non0() -> None:
    labels = [1, 2, -1]
    preds = [0.0, 0.0, 0.0]
    m = mosei_regression_metrics(preds, labels)
    # Has0: every pred 0 >= 0 -> non-negative; truth [T, T, F] -> 2 of 3 correct
    assert m["acc2_has0"] == approx(2 / 3)
    # Non0: every pred 0 is not > 0 -> negative; truth [T, T, F] -> 1 of 3 correct
    assert m["acc2_non0"] == approx(1 / 3)


def test_label_exactly_zero_counts_as_nonneg_in_has0() -> None:
    # labels [0, 0, -1], preds [0.3, -0.3, -2]: truth >= 0 -> [T, T, F],
    # pred >= 0 -> [T, F, F] -> 2 of 3 correct; Non0 keeps only index 2 (correct)
    m = mosei_regression_metrics([0.3, -0.3, -2], [0, 0, -1])
    assert m["acc2_has0"] == approx(2 / 3)
    assert m["n_non0"] == 1
    assert m["acc2_non0"] == approx(1.0)


def test_all_zero_labels_give_nan_non0() -> None:
    m = mosei_regression_metrics([0.5, -0.5], [0, 0])
    assert m["n_non0"] == 0
    assert math.isnan(m["acc2_non0"])
    assert math.isnan(m["f1_non0"])


# --------------------------------------------------------------------------- #
# MOSEI regression: weighted F1 and MulT's swapped argument order
# --------------------------------------------------------------------------- #


def test_mult_f1_argument_order_flag() -> None:
    labels = [1, 2, 3, -1]  # truth > 0 -> [T, T, T, F]
    preds = [1, 1, 1, 1]  # pred > 0  -> [T, T, T, T]
    # class T: TP=3, FP=1, FN=0 -> F1 = 6/7; class F: TP=0 -> F1 = 0
    # correct order, weights = truth supports (T: 3, F: 1):
    #   (3*6/7 + 1*0)/4 = 18/28 = 9/14
    correct = mosei_regression_metrics(preds, labels)
    assert correct["f1_non0"] == approx(9 / 14)
    # MulT's swapped call weights by predicted counts (T: 4, F: 0):
    #   (4*6/7 + 0*0)/4 = 6/7
    swapped = mosei_regression_metrics(preds, labels, mult_f1_argument_order=True)
    assert swapped["f1_non0"] == approx(6 / 7)
    # accuracy (3 of 4) and Has0 F1 are unaffected by the flag
    assert correct["acc2_non0"] == swapped["acc2_non0"] == approx(0.75)
    assert correct["f1_has0"] == swapped["f1_has0"]


# --------------------------------------------------------------------------- #
# MOSEI regression: acc7 / acc5 rounding and clipping
# --------------------------------------------------------------------------- #


def test_acc7_rounds_half_to_even() -> None:
    # np.round: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0 (== 0)
    m = mosei_regression_metrics([0.5, 1.5, 2.5, -0.5], [0, 2, 2, 0])
    assert m["acc7"] == approx(1.0)
    # Against labels [1, 1, 3, -1], rounding half away from zero (1, 2, 3, -1) would
    # match 3 of 4 (indices 0, 2, 3); half to even (0, 2, 2, 0) matches none.
    m = mosei_regression_metrics([0.5, 1.5, 2.5, -0.5], [1, 1, 3, -1])
    assert m["acc7"] == approx(0.0)


def test_acc7_clips_to_pm3() -> None:
    # 5 -> 3 vs 3 ok; -7 -> -3 vs -3 ok; 2.6 -> 3 vs 3 ok; 1.4 -> 1 vs 2 wrong -> 3/4
    m = mosei_regression_metrics([5, -7, 2.6, 1.4], [3, -3, 3, 2])
    assert m["acc7"] == approx(0.75)


def test_acc5_clips_to_pm2() -> None:
    preds = [2.4, -2.6, 1.0, 0.4]
    labels = [3, -3, 2, 0]
    m = mosei_regression_metrics(preds, labels)
    # acc7: round(2.4)=2 vs 3 no; round(-2.6)=-3 vs -3 yes; 1 vs 2 no; 0 vs 0 yes -> 2/4
    assert m["acc7"] == approx(0.5)
    # acc5: clip to [-2, 2] on both sides: 2 vs 2 yes; -2 vs -2 yes; 1 vs 2 no;
    # 0 vs 0 yes -> 3/4
    assert m["acc5"] == approx(0.75)


# --------------------------------------------------------------------------- #
# MOSEI regression: MAE and correlation
# --------------------------------------------------------------------------- #


def test_mae() -> None:
    # |1-0| + |-1-(-1)| + |0.5-1| + |2-(-1)| = 1 + 0 + 0.5 + 3 = 4.5; 4.5/4 = 1.125
    m = mosei_regression_metrics([1, -1, 0.5, 2], [0, -1, 1, -1])
    assert m["mae"] == approx(1.125)


def test_pearson_known_cases() -> None:
    labels = [-1, 0, 1, 2]
    # preds = 2*labels + 1 -> perfectly linear -> r = 1
    assert mosei_regression_metrics([-1, 1, 3, 5], labels)["corr"] == approx(1.0)
    # preds = -labels -> r = -1
    assert mosei_regression_metrics([1, 0, -1, -2], labels)["corr"] == approx(-1.0)
    # x = [1, 2, 3], y = [1, 3, 2]: deviations [-1, 0, 1] and [-1, 1, 0]
    # sum of products = 1, sums of squares = 2 and 2 -> r = 1/sqrt(2*2) = 0.5
    assert mosei_regression_metrics([1, 3, 2], [1, 2, 3])["corr"] == approx(0.5)


@pytest.mark.filterwarnings("error")
def test_constant_input_gives_nan_corr_without_warning() -> None:
    m = mosei_regression_metrics([0.5, 0.5, 0.5], [1, 2, 3])
    assert math.isnan(m["corr"])
    # the other metrics are still computed: |0.5-1| + |0.5-2| + |0.5-3| = 4.5 -> 1.5
    assert m["mae"] == approx(1.5)
    assert math.isnan(mosei_regression_metrics([1, 2, 3], [2, 2, 2])["corr"])


# --------------------------------------------------------------------------- #
# MOSEI regression: shapes, types
# --------------------------------------------------------------------------- #


def test_accepts_trailing_unit_dims_and_torch() -> None:
    labels = [0, 1, -1, 0.5]
    preds = [-0.2, 2, -1, -0.1]
    flat = mosei_regression_metrics(preds, labels)
    col = mosei_regression_metrics(np.array(preds)[:, None], np.array(labels)[:, None, None])
    tens = mosei_regression_metrics(
        torch.tensor(preds, requires_grad=True).view(-1, 1), torch.tensor(labels)
    )
    assert col == flat
    assert tens == approx(flat)


def test_returns_python_types() -> None:
    m = mosei_regression_metrics([0.1, -0.2, 0.3], [1, -1, 2])
    for key in ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "acc5", "mae", "corr"):
        assert type(m[key]) is float, key
    assert type(m["n"]) is int
    assert type(m["n_non0"]) is int


# --------------------------------------------------------------------------- #
# MOSEI binary head
# --------------------------------------------------------------------------- #


def test_mosei_binary_metrics() -> None:
    pred_nonneg = [1, 1, 0, 0, 1]
    labels = [2, -1, -0.5, 0, 0]  # >= 0 -> [1, 0, 0, 1, 1]
    m = mosei_binary_metrics(pred_nonneg, labels)
    # correct at indices 0, 2, 4 -> 3/5
    assert m["acc2_has0"] == approx(0.6)
    # class 1 (support 3): TP=2 (0, 4), FP=1 (1), FN=1 (3) -> 4/6 = 2/3
    # class 0 (support 2): TP=1 (2), FP=1 (3), FN=1 (1) -> 2/4 = 1/2
    # weighted = (3*2/3 + 2*1/2)/5 = 3/5
    assert m["f1_has0"] == approx(0.6)
    assert m["n"] == 5


def test_mosei_binary_metrics_rejects_non_binary_predictions() -> None:
    with pytest.raises(ValueError, match="pred_nonneg must contain only 0/1"):
        mosei_binary_metrics([0, 2, 1], [1, -1, 1])


# --------------------------------------------------------------------------- #
# IEMOCAP 4-class
# --------------------------------------------------------------------------- #

# classes: 0 neutral, 1 happy, 2 sad, 3 angry
IEMO_TRUE = [0, 0, 0, 0, 1, 1, 2, 3]
IEMO_PRED = [0, 0, 0, 1, 1, 0, 2, 2]


def test_iemocap_accuracy_macro_weighted() -> None:
    m = iemocap_metrics(IEMO_PRED, IEMO_TRUE)
    # correct at indices 0, 1, 2, 4, 6 -> 5/8
    assert m["accuracy"] == approx(0.625)
    assert m["n"] == 8
    # per class (support; predicted count; TP) -> P, R, F1
    #   neutral (4; 4 at 0,1,2,5; 3) -> 3/4, 3/4, 3/4
    #   happy   (2; 2 at 3,4;     1) -> 1/2, 1/2, 1/2
    #   sad     (1; 2 at 6,7;     1) -> 1/2, 1,   2/3
    #   angry   (1; 0;            0) -> 0,   0,   0
    # macro: P = (3/4 + 1/2 + 1/2 + 0)/4 = 7/16
    #        R = (3/4 + 1/2 + 1 + 0)/4 = 9/16
    #        F1 = (3/4 + 1/2 + 2/3 + 0)/4 = (23/12)/4 = 23/48
    assert m["macro_precision"] == approx(7 / 16)
    assert m["macro_recall"] == approx(9 / 16)
    assert m["macro_f1"] == approx(23 / 48)
    # weighted by support 4, 2, 1, 1 (out of 8):
    #   P = (4*3/4 + 2*1/2 + 1*1/2 + 0)/8 = 4.5/8 = 9/16
    #   R = (4*3/4 + 2*1/2 + 1*1 + 0)/8 = 5/8 (= accuracy)
    #   F1 = (4*3/4 + 2*1/2 + 1*2/3 + 0)/8 = (14/3)/8 = 7/12
    assert m["weighted_precision"] == approx(9 / 16)
    assert m["weighted_recall"] == approx(5 / 8)
    assert m["weighted_f1"] == approx(7 / 12)


def test_iemocap_one_vs_rest_per_emotion() -> None:
    m = iemocap_metrics(IEMO_PRED, IEMO_TRUE)
    # neutral: true==0 [1,1,1,1,0,0,0,0], pred==0 [1,1,1,0,0,1,0,0]
    #   wrong at 3, 5 -> 6/8; pos: TP3 FP1 FN1 -> 6/8; neg: TP3 FP1 FN1 -> 6/8
    #   weighted = (4*3/4 + 4*3/4)/8 = 3/4
    assert m["acc_neutral"] == approx(0.75)
    assert m["f1_neutral"] == approx(0.75)
    # happy: true==1 at 4, 5; pred==1 at 3, 4 -> wrong at 3, 5 -> 6/8
    #   pos (2): TP1 FP1 FN1 -> 1/2; neg (6): TP5 FP1 FN1 -> 10/12 = 5/6
    #   weighted = (2*1/2 + 6*5/6)/8 = 6/8
    assert m["acc_happy"] == approx(0.75)
    assert m["f1_happy"] == approx(0.75)
    # sad: true==2 at 6; pred==2 at 6, 7 -> wrong at 7 -> 7/8
    #   pos (1): TP1 FP1 FN0 -> 2/3; neg (7): TP6 FP0 FN1 -> 12/13
    #   weighted = (2/3 + 7*12/13)/8 = (278/39)/8 = 139/156
    assert m["acc_sad"] == approx(0.875)
    assert m["f1_sad"] == approx(139 / 156)
    # angry: true==3 at 7; never predicted -> wrong at 7 -> 7/8
    #   pos (1): TP0 -> 0; neg (7): TP7 FP1 FN0 -> 14/15
    #   weighted = (0 + 7*14/15)/8 = 49/60
    assert m["acc_angry"] == approx(0.875)
    assert m["f1_angry"] == approx(49 / 60)


def test_iemocap_custom_class_names_and_float_indices() -> None:
    # integral floats (e.g. argmax stored as float) are accepted
    m = iemocap_metrics([0.0, 1.0, 1.0], [0, 1, 0], class_names=("a", "b"))
    # correct at 0, 1 -> 2/3
    assert m["accuracy"] == approx(2 / 3)
    assert "acc_a" in m and "f1_b" in m and "acc_neutral" not in m


@pytest.mark.parametrize(
    ("pred", "true", "message"),
    [
        ([0, 1, 4], [0, 1, 2], r"pred_class must hold class indices in \[0, 4\); found \[4\]"),
        ([0, 1, 2], [0, -1, 2], r"true_class must hold class indices in \[0, 4\); found \[-1\]"),
        ([0, 1.5, 2], [0, 1, 2], r"pred_class must hold integer class indices"),
        ([0, 1, 2], [0, 1], r"same number of samples; got 3 and 2"),
        ([0, np.nan], [0, 1], r"pred_class must contain only finite values"),
        ([], [], r"pred_class must be non-empty"),
    ],
)
def test_iemocap_bad_inputs(pred: list, true: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iemocap_metrics(pred, true)


# --------------------------------------------------------------------------- #
# IEMOCAP 4 x binary (MulT form)
# --------------------------------------------------------------------------- #


def test_iemocap_binary4() -> None:
    truth = [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 1],
        [1, 0, 0, 0],
    ]
    pred = [
        [1, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 1, 1],
    ]
    m = iemocap_binary4_metrics(pred, truth)
    # neutral: truth [1,0,0,1], pred [1,0,0,0] -> 3/4
    #   pos (2): TP1 FP0 FN1 -> 2/3; neg (2): TP2 FP1 FN0 -> 4/5
    #   weighted = (2*2/3 + 2*4/5)/4 = 11/15
    assert m["acc_neutral"] == approx(0.75)
    assert m["f1_neutral"] == approx(11 / 15)
    # happy: truth [0,1,0,0], pred all 0 -> 3/4
    #   pos (1): 0; neg (3): TP3 FP1 FN0 -> 6/7; weighted = 3*6/7/4 = 9/14
    assert m["acc_happy"] == approx(0.75)
    assert m["f1_happy"] == approx(9 / 14)
    # sad: truth [0,0,1,0], pred [0,0,1,1] -> 3/4
    #   pos (1): TP1 FP1 FN0 -> 2/3; neg (3): TP2 FP0 FN1 -> 4/5
    #   weighted = (2/3 + 3*4/5)/4 = 23/30
    assert m["acc_sad"] == approx(0.75)
    assert m["f1_sad"] == approx(23 / 30)
    # angry: truth [0,0,1,0], pred [0,0,0,1] -> 2/4
    #   pos (1): TP0 -> 0; neg (3): TP2 FP1 FN1 -> 4/6; weighted = 3*2/3/4 = 1/2
    assert m["acc_angry"] == approx(0.5)
    assert m["f1_angry"] == approx(0.5)
    # means: acc (3/4*3 + 1/2)/4 = 11/16;
    #        f1 (11/15 + 9/14 + 23/30 + 1/2)/4 = (555/210)/4 = 37/56
    assert m["mean_acc"] == approx(11 / 16)
    assert m["mean_f1"] == approx(37 / 56)
    assert m["n"] == 4


def test_iemocap_binary4_bad_inputs() -> None:
    good = np.zeros((3, 4))
    msg = r"pred_positive must have shape \(N, 4\).*got shape \(3, 3\)"
    with pytest.raises(ValueError, match=msg):
        iemocap_binary4_metrics(np.zeros((3, 3)), good)
    msg = r"truth_positive must have shape \(N, 4\).*got shape \(12,\)"
    with pytest.raises(ValueError, match=msg):
        iemocap_binary4_metrics(good, np.zeros(12))
    with pytest.raises(ValueError, match=r"same number of samples; got 3 and 2"):
        iemocap_binary4_metrics(good, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"truth_positive must contain only 0/1"):
        iemocap_binary4_metrics(good, np.full((3, 4), 0.5))
    with pytest.raises(ValueError, match=r"pred_positive must be non-empty"):
        iemocap_binary4_metrics(np.zeros((0, 4)), np.zeros((0, 4)))


# --------------------------------------------------------------------------- #
# Baseline helper
# --------------------------------------------------------------------------- #


def test_majority_rate() -> None:
    assert majority_rate([1, 0, 1, 1]) == approx(0.75)  # three 1s of 4
    assert majority_rate([0, 0, 1, 1]) == approx(0.5)  # tie -> 2 of 4
    assert type(majority_rate([True, False, True])) is float


# --------------------------------------------------------------------------- #
# Input validation for MOSEI regression
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("preds", "labels", "message"),
    [
        (
            [0.1, 0.2, 0.3],
            [1, 2],
            r"preds and labels must have the same number of samples; got 3 and 2",
        ),
        ([], [], r"preds must be non-empty"),
        (
            [0.1, np.nan],
            [1, 2],
            r"preds must contain only finite values; found 1 NaN/inf value\(s\), "
            r"the first at index 1",
        ),
        ([0.1, 0.2], [np.inf, 2], r"labels must contain only finite values"),
        (np.zeros((3, 2)), np.zeros(3), r"preds must have shape \(N,\).*got shape \(3, 2\)"),
        (np.float64(1.0), np.zeros(1), r"preds must have shape \(N,\).*got shape \(\)"),
        (["a", "b"], [1, 2], r"preds must be numeric"),
    ],
)
def test_mosei_regression_bad_inputs(preds: object, labels: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mosei_regression_metrics(preds, labels)


def test_no_warnings_on_degenerate_but_valid_inputs() -> None:
    # a single class in truth and predictions must not trigger sklearn warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = mosei_regression_metrics([1.0, 2.0], [1.0, 2.0])
    # both positive and both predicted positive -> everything correct
    assert m["acc2_has0"] == approx(1.0)
    assert m["f1_non0"] == approx(1.0)


# --------------------------------------------------------------------------- CH-SIMS

def test_sims_metrics_by_hand():
    # float32 as MMSA's arrays; 0.1 and -0.1 sit exactly on cuts and belong to the class below
    preds = np.array([0.1, -0.1, 0.0, 0.7, -1.0, 1.0], np.float32)
    labels = np.array([0.2, -0.2, 0.05, 0.8, -0.9, 0.3], np.float32)
    r = sims_regression_metrics(preds, labels)
    # Acc2 classes: preds 1 0 0 1 0 1, labels 1 0 1 1 0 1 -> 5/6
    assert r["acc2"] == pytest.approx(5 / 6)
    # Acc3: preds 1 0 1 2 0 2, labels 2 0 1 2 0 2 -> 5/6
    assert r["acc3"] == pytest.approx(5 / 6)
    # Acc5: preds 2 1 2 3 0 4, labels 3 1 2 4 0 3 -> 3/6
    assert r["acc5"] == pytest.approx(0.5)
    # weighted F1 of the Acc2 classes: class 0 (support 2) P 2/3 R 1 -> 0.8; class 1 (support 4)
    # P 1 R 3/4 -> 6/7
    assert r["f1"] == pytest.approx((2 * 0.8 + 4 * 6 / 7) / 6)
    assert r["mae"] == pytest.approx((0.1 + 0.1 + 0.05 + 0.1 + 0.1 + 0.7) / 6, abs=1e-6)
    assert r["corr"] == pytest.approx(np.corrcoef(preds.astype(float), labels.astype(float))[0, 1], abs=1e-6)
    assert r["n"] == 6


def test_sims_metrics_clip_to_the_label_range():
    # a prediction of 2.5 is clipped to 1 before the MAE, as MMSA does
    r = sims_regression_metrics(np.array([2.5, -3.0]), np.array([1.0, -1.0]))
    assert r["mae"] == 0.0 and r["acc5"] == 1.0
    with pytest.raises(ValueError, match="same number"):
        sims_regression_metrics([0.1, 0.2], [0.1])
