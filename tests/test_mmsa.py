"""The MMSA reader (and the MulT reader's padding) on files written by the independent
writers of tests/external_layouts.py, which share no code with cmnlib's writers."""
from __future__ import annotations

import pickle
import warnings
from dataclasses import replace

import numpy as np
import pytest

from cmnlib import cli, config
from cmnlib.data import DataError, load_dataset
from cmnlib.data import mmsa_pkl
from cmnlib.data.errors import DataWarning
from cmnlib.data.inspect import inspect_path
from cmnlib.data.split import SPLITS

from external_layouts import write_mmsa_pickle, write_mult_pickle_padded

SMALL = (8, 5, 4)


def mmsa_file(tmp_path, dataset="mosi", name="aligned_50.pkl", **kw):
    path = tmp_path / dataset.upper() / "Processed" / name
    path.parent.mkdir(parents=True)
    kw.setdefault("dims", SMALL)
    return write_mmsa_pickle(path, dataset=dataset, **kw)


def load(path, dataset):
    return load_dataset(dataset, path, cache=False)


def check_against_truth(bundle, truth, modalities=("text", "audio", "vision")):
    for name in SPLITS:
        split, expected = bundle[name], truth[name]
        assert split.ids.tolist() == expected["ids"]
        np.testing.assert_array_equal(split.labels, np.float32(expected["labels"]["M"]))
        for m in modalities:
            lengths = np.asarray(expected["lengths"][m])
            np.testing.assert_array_equal(split.lengths[m], lengths)
            x = split.features[m]
            steps = np.arange(x.shape[1])[None, :]
            nonzero = np.any(x != 0, axis=2)
            # valid steps first and every one of them non-zero (the writer's values have |x| >= 0.1,
            # and -inf became exactly 0 only where it was written)
            assert not (nonzero & (steps >= lengths[:, None])).any(), f"{name}/{m}: content after the length"
            assert np.isfinite(x).all()


@pytest.mark.parametrize("dataset,dims", [("mosi", (8, 5, 4)), ("mosei", (6, 7, 3))])
def test_aligned_mmsa_file(tmp_path, dataset, dims):
    path, truth = mmsa_file(tmp_path, dataset, dims=dims, seed=1)
    bundle = load(path, dataset)
    check_against_truth(bundle, truth)
    assert bundle.feature_dims == dict(zip(("text", "audio", "vision"), dims))  # read, not assumed
    assert bundle.aligned and bundle.meta["format"] == "mmsa_pkl"
    assert set(bundle.meta["padding"].values()) == {"right"}
    assert bundle["test"].extras["raw_text"].tolist() == truth["test"]["raw_text"]
    assert bundle.meta["lengths_from"]["train/text"] == "text_bert mask"
    assert bundle.source_label.startswith(f"REAL {dataset.upper()} from aligned_50.pkl (MMSA pickle, sha256 ")


def test_aligned_file_without_length_keys_uses_the_text_length(tmp_path):
    path, truth = mmsa_file(tmp_path, aligned_length_keys=False, seed=2)
    bundle = load(path, "mosi")
    check_against_truth(bundle, truth)
    assert bundle.meta["lengths_from"]["valid/audio"] == "the text length (aligned file)"


def test_unaligned_mosei_with_inf_audio_and_list_lengths(tmp_path):
    path, truth = mmsa_file(tmp_path, "mosei", "unaligned_50.pkl", aligned=False, lengths=(8, 12, 10),
                            neg_inf_audio=True, lengths_as_lists=True, seed=3)
    bundle = load(path, "mosei")
    check_against_truth(bundle, truth)
    assert not bundle.aligned
    assert bundle.seq_lens == {"text": 8, "audio": 12, "vision": 10}
    for name in SPLITS:
        assert bundle.meta["nonfinite"][f"{name}/audio"]["neginf"] == truth[name]["neg_inf_count"]
    assert sum(truth[name]["neg_inf_count"] for name in SPLITS) > 0


def test_sims_labels_metrics_and_unimodal_labels(tmp_path):
    from cmnlib.train import split_metrics
    import torch
    path, truth = mmsa_file(tmp_path, "sims", "unaligned_39.pkl", aligned=False, lengths=(6, 9, 7), seed=4)
    bundle = load(path, "sims")
    check_against_truth(bundle, truth)
    test = bundle["test"]
    assert test.labels.min() >= -1 and test.labels.max() <= 1
    for letter in "TAV":
        np.testing.assert_array_equal(test.extras[f"labels_{letter}"], np.float32(truth["test"]["labels"][letter]))
    # a regression head on CH-SIMS is scored with MMSA's SIMS metrics: predicting the labels is perfect
    result = split_metrics("sims", "regression", torch.tensor(test.labels), test)
    assert result["acc2"] == result["acc3"] == result["acc5"] == 1.0 and result["mae"] == 0.0


def test_left_padded_mmsa_file_is_moved_to_the_front(tmp_path):
    path, truth = mmsa_file(tmp_path, seed=5)
    raw = pickle.load(open(path, "rb"))
    for part in raw.values():  # move each sample's content to the end of its rows, mask too
        for i in range(len(part["regression_labels"])):
            for m, key in (("text", None), ("audio", "audio_lengths"), ("vision", "vision_lengths")):
                n = int(part["text_bert"][i, 1].sum()) if key is None else int(part[key][i])
                part[m][i] = np.roll(part[m][i], part[m].shape[1] - n, axis=0)
            part["text_bert"][i] = np.roll(part["text_bert"][i], part["text_bert"].shape[2] - n, axis=1)
    pickle.dump(raw, open(path, "wb"))
    bundle = load(path, "mosi")
    check_against_truth(bundle, truth)
    assert set(bundle.meta["padding"].values()) == {"left"}


def test_stated_lengths_are_checked_against_the_data(tmp_path):
    path, truth = mmsa_file(tmp_path, "mosi", "unaligned_50.pkl", aligned=False, lengths=(8, 12, 10), seed=6)
    raw = pickle.load(open(path, "rb"))
    short = int(np.argmin(raw["train"]["audio_lengths"]))
    raw["train"]["audio_lengths"] = np.array(raw["train"]["audio_lengths"])
    raw["train"]["audio_lengths"][short] -= 1  # one step of content now lies outside the length
    raw["valid"]["vision_lengths"] = np.array(raw["valid"]["vision_lengths"]) + 20  # beyond T, as MMSA can write
    pickle.dump(raw, open(path, "wb"))
    with pytest.warns(DataWarning) as caught:
        bundle = load(path, "mosi")
    message = str(caught[0].message)
    assert str(path) in message and "train/audio" in message and "valid/vision_lengths" in message
    assert bundle["valid"].lengths["vision"].max() == 10  # read as the stored steps


@pytest.mark.parametrize("mutate,key", [
    (lambda part: part.pop("regression_labels"), "train/regression_labels"),
    (lambda part: part.__setitem__("text_bert", part["text_bert"][:, :2]), "train/text_bert"),
    (lambda part: part.__setitem__("audio_lengths", np.full(len(part["audio_lengths"]), -1)), "train/audio_lengths"),
    (lambda part: part.__setitem__("regression_labels", part["regression_labels"][:-1]), "train/regression_labels"),
])
def test_bad_mmsa_files_name_the_file_and_key(tmp_path, mutate, key):
    path, _ = mmsa_file(tmp_path, "mosi", "unaligned_50.pkl", aligned=False, lengths=(8, 12, 10), seed=7)
    raw = pickle.load(open(path, "rb"))
    mutate(raw["train"])
    pickle.dump(raw, open(path, "wb"))
    with pytest.raises(DataError) as error:
        mmsa_pkl.read_mmsa_pickle(path)
    assert error.value.key == key and str(path) in str(error.value)


def test_published_hash_is_checked(tmp_path, monkeypatch):
    path, _ = mmsa_file(tmp_path, seed=8)
    bundle = load(path, "mosi")
    assert bundle.meta["published"]["published_as"] == "MOSI/Processed/aligned_50.pkl"
    assert not bundle.meta["published"]["match"] and "NOT the published" in bundle.source_label
    mosi = config.DATASETS["mosi"]  # the published hash lives in the registry entry
    published = {**mosi.mmsa_files, "aligned_50.pkl": mmsa_pkl.file_sha256(path)}
    monkeypatch.setitem(config.DATASETS, "mosi", replace(mosi, mmsa_files=published))
    assert "MMSA's published file" in load(path, "mosi").source_label
    elsewhere = tmp_path / "mine.pkl"
    elsewhere.write_bytes(path.read_bytes())
    assert mmsa_pkl.check_published(elsewhere) is None  # not named like a published file


def test_folder_detection_inspect_and_train(tmp_path, capsys):
    path, truth = mmsa_file(tmp_path, n=(24, 8, 8), seed=9)
    bundle = load(tmp_path, "mosi")  # the folder above MOSI/Processed/
    assert bundle.meta["path"] == str(path)
    text = "\n".join(inspect_path(tmp_path / "MOSI"))
    assert "format: mmsa_pkl" in text and "padded on the right" in text and "text_bert mask" in text
    # without --seeds: the profile's default number (a shadowed name once broke exactly this)
    assert cli.main(["train", "--dataset", "mosi", "--data", str(path), "--model", "lstm_l", "--epochs", "1",
                     "--out", str(tmp_path / "runs")]) == 0
    assert "REAL MOSI from aligned_50.pkl" in capsys.readouterr().out


def test_text_only_file(tmp_path):
    path, truth = mmsa_file(tmp_path, seed=10)
    raw = pickle.load(open(path, "rb"))
    for part in raw.values():
        for key in ("audio", "vision", "audio_lengths", "vision_lengths", "text_bert"):
            part.pop(key)
        part["text_lengths"] = np.asarray([int(x) for x in truth["train"]["lengths"]["text"]]) if part is raw["train"] \
            else np.asarray(truth["valid" if part is raw["valid"] else "test"]["lengths"]["text"])
    pickle.dump(raw, open(path, "wb"))
    bundle = load(path, "mosi")
    check_against_truth(bundle, truth, modalities=("text",))
    assert bundle["train"].modalities == ("text",)


# --------------------------------------------------------------------------- MulT layout, padding

@pytest.mark.parametrize("side", ["left", "right"])
def test_mult_file_padded_on_either_side(tmp_path, side):
    path, truth = write_mult_pickle_padded(tmp_path / "mosei_senti_data.pkl", side=side, dims=(6, 5, 4), seed=11)
    bundle = load(path, "mosei")
    check_against_truth_mult(bundle, truth)
    assert set(bundle.meta["padding"].values()) == {side}


def test_mixed_mult_padding_warns_and_keeps_the_lengths(tmp_path):
    path, truth = write_mult_pickle_padded(tmp_path / "mosei_senti_data.pkl", mixed=True, dims=(6, 5, 4), seed=12)
    with pytest.warns(DataWarning, match="mixed padding"):
        bundle = load(path, "mosei")
    check_against_truth_mult(bundle, truth)


def check_against_truth_mult(bundle, truth):
    for name in SPLITS:
        for m in ("text", "audio", "vision"):
            np.testing.assert_array_equal(bundle[name].lengths[m], truth[name]["lengths"][m])


def test_no_warning_on_clean_files(tmp_path):
    path, _ = mmsa_file(tmp_path, seed=13)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load(path, "mosi")


def test_inspect_names_a_modality_that_carries_no_information(tmp_path):
    """All-zero audio and constant vision (what a broken feature extraction leaves) are
    detected when the data are read, by the lengths the file gives."""
    from cmnlib.data.inspect import describe_bundle, uninformative_modalities
    path, _ = mmsa_file(tmp_path, n=(12, 4, 4), seed=11)
    raw = pickle.load(open(path, "rb"))
    for part in raw.values():
        part["audio"] = np.zeros_like(part["audio"])
        part["vision"] = np.broadcast_to(np.arange(part["vision"].shape[-1], dtype=np.float32) + 1,
                                         part["vision"].shape).copy()
    with open(path, "wb") as f:
        pickle.dump(raw, f)
    bundle = load(path, "mosi")
    found = uninformative_modalities(bundle)
    assert found == {"audio": "every value is 0", "vision": "every step of every sample is the same vector"}
    text = "\n".join(describe_bundle(bundle))
    assert "WARNING: audio carries no information (every value is 0 in the train split)" in text
    assert "text carries no information" not in text
    healthy, _ = mmsa_file(tmp_path / "other", n=(12, 4, 4), seed=12)
    assert uninformative_modalities(load(healthy, "mosi")) == {}
