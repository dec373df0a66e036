"""Loaders for both real formats, on small hand-made fixtures and on the synthetic set."""
from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest

from cmnlib.data.csd import (ComputationalSequence, SDK_METADATA_KEYS, average_within,
                             build_word_aligned, sdk_metadata, write_csd)
from cmnlib.data.errors import DataError
from cmnlib.data.mult_pkl import read_mult_pickle, write_mult_pickle
from cmnlib.data.split import load_bundle, save_bundle


def left_padded(rows: list[np.ndarray], t: int) -> np.ndarray:
    out = np.zeros((len(rows), t, rows[0].shape[1]), np.float32)
    for i, r in enumerate(rows):
        out[i, t - len(r):] = r
    return out


def mult_splits(n=3, t=5, dims=(6, 4, 3), labels=None):
    rng = np.random.default_rng(0)
    splits = {}
    for name in ("train", "valid", "test"):
        lengths = [2, 5, 3][:n] if n <= 3 else list(rng.integers(1, t + 1, n))
        part = {}
        for modality, d in zip(("text", "audio", "vision"), dims):
            part[modality] = left_padded([rng.standard_normal((k, d)).astype(np.float32) + 1 for k in lengths], t)
        part["labels"] = (np.array([0.5, -1.0, 3.0][:n], np.float32).reshape(n, 1, 1)
                          if labels is None else labels)
        part["id"] = np.array([f"{name}{i}" for i in range(n)])
        splits[name] = part
    return splits


# ----------------------------------------------------------------------------- MulT pickle

def test_pickle_round_trip_right_pads_and_recovers_lengths(tmp_path):
    splits = mult_splits()
    # a zero word *inside* the sentence (a GloVe 'sp' pause) must stay a word
    splits["train"]["text"][1, 2] = 0
    path = write_mult_pickle(tmp_path / "mosei_senti_data.pkl", splits)
    bundle = read_mult_pickle(path)
    train = bundle["train"]
    assert bundle.dataset == "mosei"
    np.testing.assert_array_equal(train.lengths["text"], [2, 5, 3])
    # right-padded: valid steps first, exactly the original rows
    np.testing.assert_array_equal(train.features["audio"][0, :2], splits["train"]["audio"][0, 3:])
    assert not train.features["audio"][0, 2:].any()
    np.testing.assert_array_equal(train.features["text"][1], splits["train"]["text"][1])
    np.testing.assert_allclose(train.labels, [0.5, -1.0, 3.0])
    assert list(train.ids) == ["train0", "train1", "train2"]


def test_pickle_nonfinite_replaced_and_counted(tmp_path):
    splits = mult_splits()
    splits["valid"]["audio"][0, -1, 0] = -np.inf
    splits["valid"]["audio"][1, -1, 1] = np.nan
    splits["valid"]["vision"][1, -1, 0] = np.inf
    bundle = read_mult_pickle(write_mult_pickle(tmp_path / "mosei_senti_data.pkl", splits))
    assert bundle.meta["nonfinite"]["valid/audio"] == {"nan": 1, "posinf": 0, "neginf": 1}
    assert bundle.meta["nonfinite"]["valid/vision"] == {"nan": 0, "posinf": 1, "neginf": 0}
    assert np.isfinite(bundle["valid"].features["audio"]).all()
    assert bundle["valid"].features["audio"][0, 1, 0] == 0  # the -inf step, now right-padded


def test_iemocap_pickle_labels(tmp_path):
    labels = np.zeros((3, 4, 2), np.float32)
    labels[:, :, 0] = 1
    for i, emotion in enumerate([0, 3, 2]):
        labels[i, emotion] = [0, 1]
    splits = mult_splits(labels=labels)
    bundle = read_mult_pickle(write_mult_pickle(tmp_path / "iemocap_data.pkl", splits))
    np.testing.assert_array_equal(bundle["train"].class_index(), [0, 3, 2])


def test_unaligned_pickle_has_per_modality_lengths(tmp_path):
    splits = mult_splits()
    rng = np.random.default_rng(1)
    for part in splits.values():
        part["audio"] = left_padded([rng.standard_normal((k, 4)).astype(np.float32) + 1 for k in (7, 9, 1)], 12)
    bundle = read_mult_pickle(write_mult_pickle(tmp_path / "mosei_senti_data_noalign.pkl", splits))
    assert bundle.meta["aligned"] is False
    np.testing.assert_array_equal(bundle["test"].lengths["audio"], [7, 9, 1])
    np.testing.assert_array_equal(bundle["test"].lengths["text"], [2, 5, 3])


class _CreatesFile:
    """A pickle payload that would create a file when unpickled by a plain pickle.load."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "mosei_senti_data.pkl"
    path.write_bytes(pickle.dumps({"train": {"text": _CreatesFile(target)}}))
    with pytest.raises(DataError) as error:
        read_mult_pickle(path)
    assert not target.exists()
    message = str(error.value)
    assert "refused to load" in message and ".open" in message and str(path) in message
    # the same bytes really would create the file with an unrestricted unpickler
    pickle.loads(path.read_bytes())
    assert target.exists()


# ----------------------------------------------------------------------------- .csd

def write_tiny_csd_folder(folder, words_per_segment=(3, 2)):
    """Two segments per video, frames at 0.1 s, words of 0.2 s; hand-checkable means.

    The same video is stored as vid1, vid2, vid3 for the train, valid and test folds.
    """
    word_iv, text = [], []
    t = 0.0
    segments = []
    for n in words_per_segment:
        start = t
        for w in range(n):
            word_iv.append([t, t + 0.2])
            text.append(np.full(2, len(text) + 1.0))
            t += 0.2
        segments.append([start, t])
        t += 0.4  # a pause
    frames_iv = np.array([[i * 0.1, (i + 1) * 0.1] for i in range(int(round(t / 0.1)))])
    audio = np.arange(len(frames_iv), dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    labels = np.array([[1.0, 0, 0, 0, 0, 0, 0], [-2.0, 0, 0, 0, 0, 0, 0]], np.float32)
    videos = ("vid1", "vid2", "vid3")
    for file, root, features, intervals in (
            ("words.csd", "glove_vectors", np.array(text, np.float32), np.array(word_iv)),
            ("covarep.csd", "COVAREP", audio, frames_iv),
            ("facet.csd", "FACET 4.2", 2 * audio[:, :2], frames_iv),
            ("labels.csd", "All Labels", labels, np.array(segments))):
        write_csd(folder / file, ComputationalSequence(
            root, {v: (features, intervals) for v in videos}, sdk_metadata(root, "test", ["d"], "test")))
    return {"train": {"vid1"}, "valid": {"vid2"}, "test": {"vid3"}}


def test_csd_word_alignment_by_hand(tmp_path):
    folds = write_tiny_csd_folder(tmp_path)
    bundle = build_word_aligned(tmp_path, "mosei", seq_len=4, folds=folds)
    train = bundle["train"]
    assert list(train.ids) == ["vid1[0]", "vid1[1]"]
    np.testing.assert_array_equal(train.lengths["audio"], [3, 2])
    # word 1 spans frames 0 and 1 -> mean 0.5; word 2 frames 2,3 -> 2.5; word 3 -> 4.5
    np.testing.assert_allclose(train.features["audio"][0, :3, 0], [0.5, 2.5, 4.5])
    # segment 2 starts at 1.0 s (after a 0.4 s pause): frames 10,11 and 12,13
    np.testing.assert_allclose(train.features["audio"][1, :2, 0], [10.5, 12.5])
    np.testing.assert_allclose(train.features["vision"][1, :2, 1], [21.0, 25.0])
    np.testing.assert_allclose(train.features["text"][0, :3, 0], [1, 2, 3])
    assert not train.features["text"][1, 2:].any()  # right padding
    np.testing.assert_allclose(train.labels, [1.0, -2.0])


def test_csd_keeps_last_words_like_the_sdk(tmp_path):
    folds = write_tiny_csd_folder(tmp_path, words_per_segment=(5, 1))
    last = build_word_aligned(tmp_path, "mosei", seq_len=2, folds=folds)["train"]
    first = build_word_aligned(tmp_path, "mosei", seq_len=2, folds=folds, keep="first")["train"]
    np.testing.assert_allclose(last.features["text"][0, :, 0], [4, 5])
    np.testing.assert_allclose(first.features["text"][0, :, 0], [1, 2])


def test_average_within_propagates_nonfinite_like_a_plain_mean():
    intervals = np.array([[0, 1], [1, 2], [2, 3], [3, 4]], float)
    frames = np.array([[1.0], [-np.inf], [np.nan], [4.0]], np.float32)
    ref = np.array([[0, 2], [2, 4], [3, 4], [0.5, 0.5 + 1e-7]])
    means, counts = average_within(frames, intervals, ref)
    assert means[0, 0] == -np.inf and np.isnan(means[1, 0]) and means[2, 0] == 4.0
    assert counts.tolist() == [2, 2, 1, 0] and means[3, 0] == 0  # no frame -> zeros, counted


def test_written_csd_passes_the_sdk_integrity_checks(tiny_mosei_dir):
    """The SDK reader takes the first root group, json.loads every metadata entry, and
    checks intervals (T,2) and features (T,...) per video; every template key present."""
    for path in tiny_mosei_dir.glob("*.csd"):
        with h5py.File(path, "r") as h5:
            root = h5[list(h5.keys())[0]]
            metadata = {k: json.loads(v[0]) for k, v in root["metadata"].items()}
            assert set(SDK_METADATA_KEYS) <= set(metadata)
            assert metadata["root name"] == list(h5.keys())[0]
            for video in root["data"].values():
                assert video["intervals"].ndim == 2 and video["intervals"].shape[1] == 2
                assert video["features"].ndim >= 2
                assert video["features"].shape[0] == video["intervals"].shape[0]


def test_synthetic_pickle_and_csd_give_the_same_canonical_splits(tiny_mosei_dir):
    from_pickle = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")
    from_csd = build_word_aligned(tiny_mosei_dir, "mosei")
    for name in ("train", "valid", "test"):
        a, b = from_pickle[name], from_csd[name]
        assert list(a.ids) == list(b.ids)
        for modality in ("text", "audio", "vision"):
            np.testing.assert_array_equal(a.lengths[modality], b.lengths[modality])
            np.testing.assert_allclose(a.features[modality], b.features[modality], atol=1e-5)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.extras["cue_mask"], b.extras["cue_mask"])
        np.testing.assert_allclose(a.extras["bayes_nonneg"], b.extras["bayes_nonneg"])
    assert from_pickle.meta["nonfinite"] == from_csd.meta["nonfinite"]
    assert sum(c["neginf"] for c in from_csd.meta["nonfinite"].values()) > 0


def test_bundle_hdf5_round_trip(tiny_iemocap_dir, tmp_path):
    bundle = read_mult_pickle(tiny_iemocap_dir / "iemocap_data.pkl")
    back = load_bundle(save_bundle(bundle, tmp_path / "c.h5"))
    assert back.meta == bundle.meta and back.dataset == "iemocap"
    for name in ("train", "valid", "test"):
        a, b = bundle[name], back[name]
        for modality in a.features:
            np.testing.assert_array_equal(a.features[modality], b.features[modality])
            np.testing.assert_array_equal(a.lengths[modality], b.lengths[modality])
        np.testing.assert_array_equal(a.labels, b.labels)
        assert list(a.ids) == list(b.ids)
        np.testing.assert_array_equal(a.extras["bayes_posterior"], b.extras["bayes_posterior"])
