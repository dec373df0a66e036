"""Padding conventions of MulT-layout pickles written by other tools: left (MulT's own),
right, none, mixed, and unaligned files. The fixtures are written here with plain
``pickle.dump`` of numpy arrays, independently of cmnlib's writer."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from cmnlib.data.errors import DataWarning
from cmnlib.data.inspect import inspect_path
from cmnlib.data.mult_pkl import padding_spans, read_mult_pickle

DIMS = {"text": 5, "audio": 3, "vision": 2}


def content(rng, n_steps: int, dim: int) -> np.ndarray:
    """Random steps none of which is all-zero (as real aligned features are)."""
    return (rng.random((n_steps, dim)) + 0.5).astype(np.float32) * rng.choice([-1, 1], (n_steps, dim))


def write_pickle(path, lengths: dict, sides: dict, t: dict | None = None) -> dict:
    """A {train, valid, test} dict of (N, T, D) arrays, each sample padded on the side that
    ``sides[split][i]`` names ('left' or 'right'); T per modality from ``t`` (aligned when
    equal). Returns the content written, per split, modality and sample."""
    rng = np.random.default_rng(7)
    t = t or {m: 8 for m in DIMS}
    raw, written = {}, {}
    for split, split_lengths in lengths.items():
        part, written[split] = {}, {}
        for m, d in DIMS.items():
            array = np.zeros((len(split_lengths), t[m], d), np.float32)
            rows = []
            for i, length in enumerate(split_lengths):
                k = min(length, t[m])
                row = content(rng, k, d)
                if sides[split][i] == "left":
                    array[i, t[m] - k:] = row
                else:
                    array[i, :k] = row
                rows.append(row)
            part[m], written[split][m] = array, rows
        part["labels"] = rng.uniform(-3, 3, (len(split_lengths), 1, 1)).astype(np.float32)
        raw[split] = part
    with open(path, "wb") as f:
        pickle.dump(raw, f)
    return written


LENGTHS = {"train": [3, 8, 5, 1], "valid": [2, 6], "test": [4, 7, 8]}


@pytest.mark.parametrize("side", ["left", "right"])
def test_one_sided_padding_is_detected_and_lengths_come_out_true(tmp_path, side):
    path = tmp_path / "mosi_data.pkl"
    written = write_pickle(path, LENGTHS, {s: [side] * len(v) for s, v in LENGTHS.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # one-sided padding is not worth a warning
        bundle = read_mult_pickle(path)
    for split, lengths in LENGTHS.items():
        for m in DIMS:
            assert bundle.meta["padding"][f"{split}/{m}"] == side
            np.testing.assert_array_equal(bundle[split].lengths[m], lengths)
            for i, row in enumerate(written[split][m]):  # valid steps first, exactly the content
                np.testing.assert_array_equal(bundle[split].features[m][i, :lengths[i]], row)
                assert not bundle[split].features[m][i, lengths[i]:].any()


def test_right_padding_is_never_read_as_content_and_inspect_says_so(tmp_path):
    path = tmp_path / "mosi_data.pkl"
    write_pickle(path, LENGTHS, {s: ["right"] * len(v) for s, v in LENGTHS.items()})
    lines = "\n".join(inspect_path(path))
    # train lengths 3, 8, 5, 1: min 1, q1 2.5, median 4, q3 5.75, max 8
    assert "length min/q1/median/q3/max 1/2.5/4/5.75/8 (mean 4.2), file padded on the right" in lines


def test_mixed_padding_warns_once_naming_the_file_and_keys_and_keeps_each_sample_true(tmp_path):
    path = tmp_path / "mosi_data.pkl"
    sides = {"train": ["left", "right", "right", "left"], "valid": ["left", "left"], "test": ["left"] * 3}
    written = write_pickle(path, LENGTHS, sides)
    with pytest.warns(DataWarning) as caught:
        bundle = read_mult_pickle(path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "train/text" in message and "valid/text" not in message
    assert bundle.meta["padding"]["train/audio"] == "mixed" and bundle.meta["padding"]["valid/audio"] == "left"
    np.testing.assert_array_equal(bundle["train"].lengths["text"], LENGTHS["train"])
    for i, row in enumerate(written["train"]["audio"]):
        np.testing.assert_array_equal(bundle["train"].features["audio"][i, :len(row)], row)


def test_unaligned_files_are_judged_per_modality(tmp_path):
    path = tmp_path / "mosi_data.pkl"
    t = {"text": 8, "audio": 12, "vision": 10}
    lengths = {"train": [3, 8], "valid": [2, 5], "test": [4, 6]}
    write_pickle(path, lengths, {s: ["right", "right"] for s in lengths}, t=t)
    bundle = read_mult_pickle(path)
    assert bundle.meta["aligned"] is False
    for m in DIMS:
        assert bundle.meta["padding"][f"train/{m}"] == "right"
        np.testing.assert_array_equal(bundle["train"].lengths[m], [3, 8])


def test_padding_spans_by_hand():
    x = np.zeros((4, 5, 1), np.float32)
    x[0, 2:] = 1          # left: 2 leading zeros, length 3
    x[1, :] = 1           # full length
    x[2, 1:4] = 1         # zeros at both ends: mixed, length 3
    # x[3] all zero: length 0
    side, pad, length = padding_spans(x)
    assert side == "mixed" and pad.tolist() == [2, 0, 1, 5] and length.tolist() == [3, 5, 3, 0]
    side, pad, length = padding_spans(x[:2])
    assert side == "left" and length.tolist() == [3, 5]
    y = x[:2, ::-1]       # the same rows, right-padded
    side, pad, length = padding_spans(y)
    assert side == "right" and pad.tolist() == [0, 0] and length.tolist() == [3, 5]
    assert padding_spans(x[1:2])[0] == "none"
    # one sample with zeros at both ends makes a left-padded split mixed: its trailing
    # zeros are read as padding, not as content
    z = np.zeros((2, 5, 1), np.float32)
    z[0, 1:4] = 1
    z[1, 2:] = 1
    side, pad, length = padding_spans(z)
    assert side == "mixed" and length.tolist() == [3, 3]
