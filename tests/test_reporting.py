"""The sentences notebook 05 generates from its runs, against hand-made histories."""
from __future__ import annotations

from cmnlib import reporting
from fake_runs import fake_run


def _run(model, modalities, seeds, train=None):
    """``seeds``: (valid Acc2 per epoch, test Acc2, selected epoch) per seed."""
    histories = [[{"epoch": e + 1, "valid_loss": 1.0, "valid_acc2_has0": a} for e, a in enumerate(valid)]
                 for valid, _, _ in seeds]
    return fake_run(model, modalities, [{"acc2_has0": test} for _, test, _ in seeds], histories=histories,
                    best_epochs=[best for _, _, best in seeds], train=train)


RUNS = [
    # seed 0 keeps epoch 3 (valid 0.75) though epoch 2 had 0.855: 10.5 points; seed 1 keeps its best
    _run("cmn", "LA", [([0.70, 0.855, 0.75], 0.80, 3), ([0.70, 0.72, 0.74], 0.65, 3)]),
    # the audio model scores the constant predictor (71.0) in both seeds
    _run("lstm_a", "A", [([0.71, 0.71, 0.71], 0.710, 1), ([0.71, 0.71, 0.71], 0.7104, 2)]),
    fake_run("majority", "L", [{"acc2_has0": 0.71}]),
]


def test_training_notes_are_generated_from_the_histories():
    selection, cap, stopped, collapsed, spread = reporting.training_notes(RUNS, "acc2_has0", max_epochs=3,
                                                                          constant=71.0)
    assert stopped == "Early stopping: none of the 4 seeds stopped before the cap."
    assert selection.startswith("Selection by validation loss: 1 of 4 seeds kept an epoch with a lower")
    assert "CMN (L+A), seed 0: epoch 3 (75.0) instead of epoch 2 (85.5), 10.5 points" in selection
    # CMN's two seeds picked epoch 3 of 3; LSTM (A) seed 1 picked epoch 2
    assert cap.startswith("The epoch cap: 2 of 4 seeds selected their last epoch (3)")
    assert collapsed.startswith("Collapsed models: LSTM (A) scores the constant predictor's 71.0 in every seed")
    assert spread.startswith("The spread between seeds: CMN (L+A) differs most, 15.0 points (test Acc2 80.0, 65.0)")


def test_training_notes_when_nothing_happened():
    clean = [_run("cmn", "LA", [([0.7, 0.8], 0.8, 2), ([0.7, 0.8], 0.8, 2)])]
    selection, cap, stopped, collapsed, spread = reporting.training_notes(clean, "acc2_has0", max_epochs=8,
                                                                          constant=71.0)
    # both seeds ran 2 of 8 epochs and only rose (0.7 -> 0.8): no drop to report
    assert stopped == ("Early stopping: 2 of 2 seeds stopped before the cap after 3 epochs without a lower "
                       "validation loss (at epochs 2-2).")  # the quick profile's patience
    noisy = [_run("cmn", "LA", [([0.6, 0.9, 0.75, 0.8], 0.8, 2),     # drop 15 points
                                ([0.6, 0.7, 0.65, 0.7], 0.7, 2)],    # drop 5 points
                  train={"patience": 2})]
    assert reporting.training_notes(noisy, "acc2_has0", max_epochs=8, constant=71.0)[2] == (
        "Early stopping: 2 of 2 seeds stopped before the cap after 2 epochs without a lower validation loss (at "
        "epochs 4-4). Validation Acc2 falls by up to 15.0 points from one epoch to the next "
        "(CMN (L+A), patience=2, seed 0), "
        "so such a stop, and the epoch kept, can come from that noise rather than from the end of learning; a "
        "decaying learning rate (TrainConfig.lr_schedule) or more patience lets the runs settle.")
    assert selection == ("Selection by validation loss: in all 2 seeds the epoch with the lowest validation "
                         "loss also has the best validation Acc2.")
    assert cap.endswith("none was cut short by the cap.") and collapsed.startswith("Collapsed models: none")
    assert "0.0 points" in spread
    assert reporting.training_notes(RUNS[2:], "acc2_has0", 3) == []  # only a constant: nothing to say
    # without `constant`, the majority run among the results gives it
    assert reporting.training_notes(RUNS, "acc2_has0", 3)[3] == reporting.training_notes(RUNS, "acc2_has0", 3, 71.0)[3]


def test_a_shown_column_keeps_one_number_of_decimals_and_thousands_separators():
    import re

    import pandas as pd

    from cmnlib.reporting import show
    frame = pd.DataFrame({"model": ["a", "b"], "Acc2": [79.0, 79.5], "dim": [300.0, None],
                          "parameters": [15_492_099, 3], "MAE": [0.61234, 0.7]})
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", show(frame).to_html())
    assert cells == ["a", "79.0", "300", "15,492,099", "0.61234", "b", "79.5", "–", "3", "0.70000"]
    negative_zero = show(pd.DataFrame({"margin": [-0.04, 1.25]})).to_html()
    assert re.findall(r"<td[^>]*>([^<]*)</td>", negative_zero) == ["-0.04", "1.25"]  # two decimals: not zero
    assert ">0.0<" in show(pd.DataFrame({"margin": [-0.0, 1.2]})).to_html()  # a negative zero: no minus sign
    assert show(None) is None  # a table that does not apply to the data (no ceilings on real data): nothing


def test_feature_statistics_mark_a_modality_that_carries_nothing(tiny_mosei_dir):
    import numpy as np

    from cmnlib import summaries
    from cmnlib.data import load_dataset
    bundle = load_dataset("mosei", tiny_mosei_dir, cache=False)
    assert set(summaries.feature_statistics(bundle)["informative"]) == {"yes"}
    bundle["train"].features["audio"][:] = 0.0           # a file whose audio was never filled in
    bundle["train"].features["vision"][:] = np.arange(bundle["train"].features["vision"].shape[-1])  # one vector
    table = summaries.feature_statistics(bundle)
    assert table.loc["audio", "informative"] == "no: every value is 0"
    assert table.loc["vision", "informative"] == "no: every step of every sample is the same vector"
    assert table.loc["text", "informative"] == "yes"


def test_a_shown_table_of_rates_says_they_are_percent():
    import re

    import pandas as pd

    from cmnlib.reporting import percent_caption, show
    mixed = pd.DataFrame({"model": ["a"], "Acc2": [79.0], "F1 (non-zero)": [80.1], "MAE": [0.6], "Corr": [0.5]})
    assert percent_caption(mixed, "synthetic MOSEI-like") == "synthetic MOSEI-like; all but MAE, Corr in %"
    rates = pd.DataFrame({"wiring": ["x"], "F1 (unweighted): mean": [60.0], "seeds": [2]})
    assert percent_caption(rates, None) == "scores in %"
    assert re.search(r"<caption>data; scores in %</caption>", show(rates, "data").to_html())
    # already said, or no rate shown: the caption stays as it is
    assert percent_caption(mixed.rename(columns={"Acc2": "Acc2 %"}), "c") == "c"
    assert percent_caption(rates, "F1 in percent (%)") == "F1 in percent (%)"
    assert percent_caption(pd.DataFrame({"MAE": [0.6], "model": ["a"]}), "c") == "c"
    assert percent_caption(pd.DataFrame({"Accuracy of something": [1.0]}), None) is None  # not a metric's name
