"""The independent third-party-layout writers in tests/external_layouts.py, checked against
themselves only (shapes, padding side, masks, -inf, label ranges), so that the fixtures they make
are known to be right before any project reader is tested on them."""
from __future__ import annotations

import csv
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import external_layouts as ext  # noqa: E402

SMALL = (8, 5, 4)
MODALITIES = ("text", "audio", "vision")


def _load(path):
    with open(path, "rb") as fh:
        return pickle.load(fh)


def _assert_padded(x, lengths, sides):
    """Valid steps nonzero in every value (or -inf), padding steps exactly zero, on the given side."""
    n, t, _ = x.shape
    assert len(lengths) == n and len(sides) == n
    for i in range(n):
        length = int(lengths[i])
        assert 1 <= length <= t
        valid = slice(0, length) if sides[i] == "right" else slice(t - length, t)
        pad = slice(length, t) if sides[i] == "right" else slice(0, t - length)
        assert np.all(x[i, valid] != 0), f"sample {i}: a zero inside the valid steps"
        assert np.all(np.isfinite(x[i, valid]) | np.isneginf(x[i, valid]))
        assert np.all(x[i, pad] == 0), f"sample {i}: nonzero padding"


def _assert_short_and_full(lengths, t):
    lengths = np.asarray(lengths)
    assert (lengths == t).any(), "no full-length sample"
    assert (lengths < t).any(), "no shorter sample"


def _on_grid(values, step):
    values = np.asarray(values, dtype=np.float64)
    return np.allclose(np.round(values / step) * step, values, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# MMSA pickle
# ----------------------------------------------------------------------------------------------

MMSA_KEYS = {"raw_text", "audio", "vision", "id", "text", "text_bert", "audio_lengths", "vision_lengths",
             "annotations", "classification_labels", "regression_labels"}


@pytest.mark.parametrize("dataset,aligned", [("mosi", True), ("mosi", False), ("mosei", True),
                                             ("mosei", False), ("sims", False)])
def test_mmsa_pickle_layout(tmp_path, dataset, aligned):
    path, truth = ext.write_mmsa_pickle(tmp_path / "f.pkl", dataset=dataset, aligned=aligned, dims=SMALL)
    assert path == tmp_path / "f.pkl" and path.is_file()
    data = _load(path)
    assert set(data) == set(ext.SPLITS)
    t_t, t_a, t_v = truth["meta"]["seq_lens"]
    assert (t_t, t_a, t_v) == ((8, 8, 8) if aligned else (8, 10, 12))
    extra = {f"{kind}_labels_{m}" for kind in ("regression", "classification") for m in "TAV"}
    for split, n in zip(ext.SPLITS, (6, 4, 4)):
        d, tr = data[split], truth[split]
        assert set(d) == (MMSA_KEYS | extra if dataset == "sims" else MMSA_KEYS)
        assert tr["n"] == n
        assert d["text"].shape == (n, t_t, 8) and d["text"].dtype == np.float32
        assert d["audio"].shape == (n, t_a, 5) and d["audio"].dtype == np.float32
        assert d["vision"].shape == (n, t_v, 4) and d["vision"].dtype == np.float32
        assert d["text_bert"].shape == (n, 3, t_t)
        for key in ("raw_text", "id", "annotations", "classification_labels", "regression_labels"):
            assert len(d[key]) == n

        lengths = tr["lengths"]
        right = ["right"] * n
        _assert_padded(d["text"], lengths["text"], right)
        _assert_padded(d["audio"], lengths["audio"], right)
        _assert_padded(d["vision"], lengths["vision"], right)
        for name, t in zip(MODALITIES, (t_t, t_a, t_v)):
            _assert_short_and_full(lengths[name], t)
        assert np.array_equal(d["audio_lengths"], lengths["audio"])
        assert np.array_equal(d["vision_lengths"], lengths["vision"])
        if aligned:
            assert lengths["text"] == lengths["audio"] == lengths["vision"]

        # text_bert: ids / mask / segments; mask ones first, count = text length incl. [CLS] [SEP]
        ids, mask, seg = d["text_bert"][:, 0], d["text_bert"][:, 1], d["text_bert"][:, 2]
        assert np.array_equal(mask.sum(axis=1), lengths["text"])
        for i, length in enumerate(lengths["text"]):
            assert length >= 2
            assert np.all(mask[i, :length] == 1) and np.all(mask[i, length:] == 0)
            assert ids[i, 0] == 101 and ids[i, length - 1] == 102
            assert np.all(ids[i, 1:length - 1] > 102) and np.all(ids[i, length:] == 0)
        assert np.all(seg == 0)

        assert [str(s) for s in d["id"]] == tr["ids"]
        assert all("$_$" in s and all(s.split("$_$")) for s in tr["ids"])
        assert len(set(tr["ids"])) == n
        assert [str(s) for s in d["raw_text"]] == tr["raw_text"] and all(tr["raw_text"])

        labels = d["regression_labels"]
        assert np.array_equal(labels, np.asarray(tr["labels"]["M"], dtype=np.float32))
        bound = 1.0 if dataset == "sims" else 3.0
        assert np.all(np.abs(labels) <= bound)
        assert _on_grid(labels, 1 / 3 if dataset == "mosei" else 0.2)
        assert (labels < 0).any() and (labels == 0).any() and (labels > 0).any()
        signs = {"Negative": -1, "Neutral": 0, "Positive": 1}
        assert [signs[a] for a in d["annotations"]] == [int(np.sign(v)) for v in labels]
        assert [int(c) for c in d["classification_labels"]] == [signs[a] + 1 for a in d["annotations"]]
        if dataset == "sims":
            for m in "TAV":
                uni = d[f"regression_labels_{m}"]
                assert np.array_equal(uni, np.asarray(tr["labels"][m], dtype=np.float32))
                assert np.all(np.abs(uni) <= 1.0) and _on_grid(uni, 0.2)
        assert tr["neg_inf_count"] == 0 and not np.isneginf(d["audio"]).any()


def test_mmsa_pickle_default_dims_and_sizes(tmp_path):
    for dataset, aligned in (("mosi", False), ("mosei", True), ("sims", False)):
        path, truth = ext.write_mmsa_pickle(tmp_path / f"{dataset}.pkl", dataset=dataset, aligned=aligned,
                                            n=(3, 2, 2), lengths=(4, 5, 6) if not aligned else 4)
        data = _load(path)
        d_t, d_a, d_v = ext.MMSA_FEATURE_DIMS[dataset]
        assert truth["meta"]["dims"] == [d_t, d_a, d_v]
        t_t, t_a, t_v = (4, 5, 6) if not aligned else (4, 4, 4)
        assert data["train"]["text"].shape == (3, t_t, d_t)
        assert data["valid"]["audio"].shape == (2, t_a, d_a)
        assert data["test"]["vision"].shape == (2, t_v, d_v)
    assert ext.MMSA_SEQ_LENS[("sims", False)] == (39, 400, 55)


def test_mmsa_pickle_neg_inf_audio(tmp_path):
    path, truth = ext.write_mmsa_pickle(tmp_path / "f.pkl", aligned=False, dims=SMALL, neg_inf_audio=True)
    data = _load(path)
    assert truth["meta"]["neg_inf_audio"] is True
    for split in ext.SPLITS:
        audio, lengths = data[split]["audio"], truth[split]["lengths"]["audio"]
        count = int(np.isneginf(audio).sum())
        assert count == truth[split]["neg_inf_count"] > 0
        for i, length in enumerate(lengths):
            assert not np.isneginf(audio[i, length:]).any()     # only inside valid steps
        _assert_padded(audio, lengths, ["right"] * len(lengths))
        assert not np.isneginf(data[split]["vision"]).any() and not np.isneginf(data[split]["text"]).any()


def test_mmsa_pickle_length_options(tmp_path):
    path, truth = ext.write_mmsa_pickle(tmp_path / "a.pkl", aligned=False, dims=SMALL, lengths_as_lists=True)
    d = _load(path)["valid"]
    for key, name in (("audio_lengths", "audio"), ("vision_lengths", "vision")):
        assert isinstance(d[key], list) and all(type(v) is int for v in d[key])
        assert d[key] == truth["valid"]["lengths"][name]

    path, truth = ext.write_mmsa_pickle(tmp_path / "b.pkl", aligned=True, dims=SMALL, aligned_length_keys=False)
    d = _load(path)["train"]
    assert "audio_lengths" not in d and "vision_lengths" not in d
    assert truth["meta"]["has_length_keys"] is False
    assert np.array_equal(d["text_bert"][:, 1].sum(axis=1), truth["train"]["lengths"]["audio"])


def test_mmsa_pickle_rejects_impossible_layouts(tmp_path):
    with pytest.raises(ValueError):
        ext.write_mmsa_pickle(tmp_path / "s.pkl", dataset="sims", aligned=True)
    with pytest.raises(ValueError):
        ext.write_mmsa_pickle(tmp_path / "a.pkl", aligned=True, lengths=(8, 10, 12))
    with pytest.raises(ValueError):
        ext.write_mmsa_pickle(tmp_path / "x.pkl", dataset="iemocap")


def test_writers_are_deterministic(tmp_path):
    a, ta = ext.write_mmsa_pickle(tmp_path / "a.pkl", aligned=False, dims=SMALL, seed=5, neg_inf_audio=True)
    b, tb = ext.write_mmsa_pickle(tmp_path / "b.pkl", aligned=False, dims=SMALL, seed=5, neg_inf_audio=True)
    c, _ = ext.write_mmsa_pickle(tmp_path / "c.pkl", aligned=False, dims=SMALL, seed=6, neg_inf_audio=True)
    assert a.read_bytes() == b.read_bytes() and ta == tb
    assert a.read_bytes() != c.read_bytes()
    a, ta = ext.write_mmsa_label_csv(tmp_path / "a.csv", seed=2)
    b, tb = ext.write_mmsa_label_csv(tmp_path / "b.csv", seed=2)
    assert a.read_bytes() == b.read_bytes() and ta == tb


# ----------------------------------------------------------------------------------------------
# MulT pickle
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("aligned", [True, False])
def test_mult_pickle_padding_side(tmp_path, side, aligned):
    t = 10 if aligned else (6, 10, 12)
    path, truth = ext.write_mult_pickle_padded(tmp_path / "m.pkl", side=side, aligned=aligned, t=t, dims=SMALL)
    data = _load(path)
    assert set(data) == set(ext.SPLITS)
    assert truth["meta"]["side"] == side
    seq = truth["meta"]["seq_lens"]
    for split, n in zip(ext.SPLITS, (6, 4, 4)):
        d, tr = data[split], truth[split]
        assert set(d) == {"text", "audio", "vision", "labels", "id"}
        assert tr["sides"] == [side] * n
        for name, dim, t_m in zip(MODALITIES, SMALL, seq):
            assert d[name].shape == (n, t_m, dim) and d[name].dtype == np.float32
            _assert_padded(d[name], tr["lengths"][name], tr["sides"])
            _assert_short_and_full(tr["lengths"][name], t_m)
            # the side really is the stated one: a short sample's first step is zero (left) or not
            short = [i for i, L in enumerate(tr["lengths"][name]) if L < t_m]
            first_zero = [bool(np.all(d[name][i, 0] == 0)) for i in short]
            assert all(first_zero) if side == "left" else not any(first_zero)
        if aligned:
            assert tr["lengths"]["text"] == tr["lengths"]["audio"] == tr["lengths"]["vision"]
        assert d["labels"].shape == (n, 1, 1)
        assert np.array_equal(d["labels"][:, 0, 0], np.asarray(tr["labels"], dtype=np.float32))
        assert np.all(np.abs(d["labels"]) <= 3) and _on_grid(d["labels"], 1 / 3)
        assert d["id"].shape == (n, 3) and d["id"].dtype.kind == "U"
        assert d["id"].tolist() == tr["ids"]


def test_mult_pickle_mixed_sides(tmp_path):
    path, truth = ext.write_mult_pickle_padded(tmp_path / "m.pkl", mixed=True, dims=SMALL, t=10,
                                               n=(6, 5, 3), neg_inf_audio=True)
    data = _load(path)
    assert truth["meta"]["side"] == "mixed"
    for split, n in zip(ext.SPLITS, (6, 5, 3)):
        d, tr = data[split], truth[split]
        sides = tr["sides"]
        assert sides.count("left") == n // 2 and sides.count("right") == n - n // 2
        for name in MODALITIES:
            _assert_padded(d[name], tr["lengths"][name], sides)
        lengths = tr["lengths"]["text"]
        assert any(s == "left" and L < 10 for s, L in zip(sides, lengths))
        assert any(s == "right" and L < 10 for s, L in zip(sides, lengths))
        assert int(np.isneginf(d["audio"]).sum()) == tr["neg_inf_count"] > 0


def test_mult_pickle_mosi_and_iemocap(tmp_path):
    path, truth = ext.write_mult_pickle_padded(tmp_path / "mosi.pkl", dataset="mosi", side="left", t=8)
    d = _load(path)["train"]
    assert d["text"].shape[2] == 300 and d["audio"].shape[2] == 5 and d["vision"].shape[2] == 20
    assert d["id"].shape == (6, 3) and d["id"].dtype.kind == "S"
    assert [[x.decode("utf-8") for x in row] for row in d["id"]] == truth["train"]["ids"]
    assert _on_grid(d["labels"], 0.2) and np.all(np.abs(d["labels"]) <= 3)

    path, truth = ext.write_mult_pickle_padded(tmp_path / "iemocap.pkl", dataset="iemocap", dims=SMALL,
                                               side="right", t=8)
    data = _load(path)
    assert truth["meta"]["has_id"] is False and truth["meta"]["label_shape"] == [4, 2]
    for split in ext.SPLITS:
        d, tr = data[split], truth[split]
        assert set(d) == {"text", "audio", "vision", "labels"}
        n = tr["n"]
        assert d["labels"].shape == (n, 4, 2)
        assert np.all(d["labels"].sum(axis=2) == 1)                   # one-hot pairs
        assert np.all(d["labels"][:, :, 1].sum(axis=1) == 1)           # one emotion per sample
        assert np.argmax(d["labels"][:, :, 1], axis=1).tolist() == tr["emotion"]
        assert d["labels"].tolist() == tr["labels"]
    assert sorted(set(truth["train"]["emotion"])) == [0, 1, 2, 3]


# ----------------------------------------------------------------------------------------------
# MMSA label.csv
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sims", [False, True])
def test_mmsa_label_csv(tmp_path, sims):
    path, truth = ext.write_mmsa_label_csv(tmp_path / "label.csv", sims=sims, n=(6, 4, 4))
    raw = path.read_bytes()
    assert b"\r\n" not in raw
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == list(ext.MMSA_LABEL_CSV_COLUMNS) == truth["meta"]["columns"]
    assert len(body) == truth["meta"]["n_rows"] == 14
    assert all(len(r) == 9 for r in body)
    modes = [r[8] for r in body]
    assert modes == truth["meta"]["row_modes"]
    assert {m: modes.count(m) for m in ext.SPLITS} == {"train": 6, "valid": 4, "test": 4}
    assert any("," in r[2] for r in body)                               # quoting exercised
    assert b'"' in raw

    for split in ext.SPLITS:
        mine = [r for r in body if r[8] == split]
        tr = truth[split]
        assert [r[0] for r in mine] == tr["video_ids"] and [r[1] for r in mine] == tr["clip_ids"]
        assert [f"{r[0]}$_${r[1]}" for r in mine] == tr["ids"] and len(set(tr["ids"])) == len(mine)
        assert [r[2] for r in mine] == tr["texts"] and all(tr["texts"])
        labels = [float(r[3]) for r in mine]
        assert labels == tr["labels"]["M"]
        assert [r[7] for r in mine] == tr["annotations"]
        signs = {"Negative": -1, "Neutral": 0, "Positive": 1}
        assert [signs[a] for a in tr["annotations"]] == [int(np.sign(v)) for v in labels]
        bound = 1.0 if sims else 3.0
        assert all(abs(v) <= bound for v in labels) and _on_grid(labels, 0.2)
        if sims:
            for col, m in ((4, "T"), (5, "A"), (6, "V")):
                uni = [float(r[col]) for r in mine]
                assert uni == tr["labels"][m] and all(abs(v) <= 1 for v in uni) and _on_grid(uni, 0.2)
            assert all(len(r[1]) == 4 and r[1].startswith("0") for r in mine)   # leading zeros kept
            assert all(r[0].startswith("video_") for r in mine)
            assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r[2]) for r in mine)
        else:
            assert all(r[4] == r[5] == r[6] == "" for r in mine)
            assert all(r[2].isascii() for r in mine)
    all_labels = [v for s in ext.SPLITS for v in truth[s]["labels"]["M"]]
    assert min(all_labels) < 0 < max(all_labels) and 0.0 in all_labels


# ----------------------------------------------------------------------------------------------
# SDK computational sequences
# ----------------------------------------------------------------------------------------------

def test_sdk_csd_folder_layout(tmp_path):
    import json

    import h5py
    folder, truth = ext.write_sdk_csd_folder(tmp_path, videos=["vidA", "vidB"], dims=(4, 3, 2), seed=0,
                                             neg_inf_audio=True)
    for role, (file, root) in ext.SDK_MOSEI_FILES.items():
        with h5py.File(folder / file, "r") as h5:
            assert list(h5) == [root]
            metadata = {k: json.loads(v[0]) for k, v in h5[root]["metadata"].items()}
            assert metadata["root name"] == root and len(metadata) == 12
            for video in ("vidA", "vidB"):
                features, intervals = h5[root]["data"][video]["features"], h5[root]["data"][video]["intervals"]
                assert features.compression == "gzip" and intervals.shape == (features.shape[0], 2)
                assert np.all(intervals[:, 1] > intervals[:, 0])
    with h5py.File(folder / ext.SDK_MOSEI_FILES["text"][0], "r") as h5, \
            h5py.File(folder / ext.SDK_MOSEI_FILES["labels"][0], "r") as labels:
        for video in ("vidA", "vidB"):
            words = h5["glove_vectors"]["data"][video]["intervals"][:]
            segments = labels["All Labels"]["data"][video]["intervals"][:]
            inside = (words[:, None, 0] >= segments[None, :, 0]) & (words[:, None, 1] <= segments[None, :, 1])
            assert inside.sum(1).max() == 1  # a word lies in one segment or none
            for i, count in enumerate(inside.sum(0)):
                assert count == truth["segments"][f"{video}[{i}]"]["words"]
            vectors = h5["glove_vectors"]["data"][video]["features"][:]
            assert np.all(vectors[~inside.any(1)] == 0)  # the pauses between segments are "sp" words
    segments = truth["segments"].values()
    assert {s["video"] for s in segments} == {"vidA", "vidB"}
    assert all(-3 <= s["label"] <= 3 and len(s["text"]) == s["words"] for s in segments)
