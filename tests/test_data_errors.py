"""Every bad input gets one DataError naming the file, the key, expected vs found."""
from __future__ import annotations

import numpy as np
import pytest

from cmnlib.data.csd import build_word_aligned, read_csd
from cmnlib.data.errors import DataError
from cmnlib.data.mult_pkl import read_mult_pickle, write_mult_pickle
from cmnlib.data.sources import load_dataset
from cmnlib.data.split import check_dataset_name
from test_data_formats import mult_splits, write_tiny_csd_folder


def write(tmp_path, splits, name="mosei_senti_data.pkl"):
    return write_mult_pickle(tmp_path / name, splits)


def error_of(fn, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return info.value


def test_missing_file_points_to_real_data_and_synthetic(tmp_path):
    error = error_of(read_mult_pickle, tmp_path / "mosei_senti_data.pkl")
    assert "not found" in str(error) and "synthetic" in str(error) and "data/README.md" in str(error)
    error = error_of(load_dataset, "mosei", tmp_path / "nowhere")
    assert "not found" in str(error) and "synthetic" in str(error)


def test_truncated_pickle(tmp_path):
    path = write(tmp_path, mult_splits())
    path.write_bytes(path.read_bytes()[:200])
    error = error_of(read_mult_pickle, path)
    assert "truncated or not a pickle" in str(error) and str(path) in str(error)


def test_truncated_and_non_hdf5_csd(tmp_path):
    write_tiny_csd_folder(tmp_path)
    path = tmp_path / "covarep.csd"
    path.write_bytes(path.read_bytes()[:500])
    error = error_of(read_csd, path)
    assert "not a readable HDF5" in str(error) and "covarep.csd" in str(error)
    other = tmp_path / "text.csd"
    other.write_text("not hdf5")
    assert "not a readable HDF5" in str(error_of(build_word_aligned, tmp_path, "mosei"))


def test_missing_split(tmp_path):
    splits = mult_splits()
    del splits["valid"]
    error = error_of(read_mult_pickle, write(tmp_path, splits))
    assert error.key == "valid" and "missing split" in str(error)


def test_missing_modality(tmp_path):
    splits = mult_splits()
    del splits["test"]["vision"]
    error = error_of(read_mult_pickle, write(tmp_path, splits))
    assert error.key == "test/vision" and "text, audio, vision and labels" in str(error)


def test_missing_csd_sequence(tmp_path):
    write_tiny_csd_folder(tmp_path)
    (tmp_path / "facet.csd").unlink()
    error = error_of(build_word_aligned, tmp_path, "mosei")
    assert "FACET 4.2" in str(error) and "missing computational sequence" in str(error)


def test_wrong_rank(tmp_path):
    splits = mult_splits()
    splits["train"]["audio"] = splits["train"]["audio"][:, :, 0]
    error = error_of(read_mult_pickle, write(tmp_path, splits))
    assert error.key == "train/audio" and error.expected == "(N, T, D)" and "(3, 5)" in error.found


def test_wrong_dimension_across_splits(tmp_path):
    splits = mult_splits()
    splits["test"]["vision"] = np.concatenate([splits["test"]["vision"]] * 2, axis=2)
    error = error_of(read_mult_pickle, write(tmp_path, splits))
    assert error.key == "test/vision" and "D = 3" in error.expected and "D = 6" in error.found


def test_n_differs_across_modalities(tmp_path):
    splits = mult_splits()
    splits["train"]["text"] = splits["train"]["text"][:2]
    error = error_of(read_mult_pickle, write(tmp_path, splits))
    assert error.key == "train/text" and "3" in error.expected and error.found == "2"


def test_empty_split(tmp_path):
    splits = mult_splits()
    for key in ("text", "audio", "vision", "labels", "id"):
        splits["valid"][key] = splits["valid"][key][:0]
    error = error_of(read_mult_pickle, write(tmp_path, splits))
    assert error.key == "valid" and "empty split" in str(error)


def test_labels_out_of_range(tmp_path):
    splits = mult_splits(labels=np.array([0.5, -3.5, 1.0], np.float32).reshape(3, 1, 1))
    error = error_of(read_mult_pickle, write(tmp_path, splits))
    assert error.key == "train/labels" and "-3.5" in error.found


def test_iemocap_labels_not_one_hot(tmp_path):
    labels = np.ones((3, 4, 2), np.float32)
    error = error_of(read_mult_pickle, write(tmp_path, mult_splits(labels=labels), "iemocap_data.pkl"))
    assert error.key == "train/labels" and "one-hot" in str(error)


def test_unknown_dataset_name(tmp_path):
    error = error_of(check_dataset_name, "mosee")
    assert "mosee" in str(error) and "mosei" in error.expected
    assert "unknown dataset" in str(error_of(load_dataset, "cmu-mosee"))
    path = write(tmp_path, mult_splits(), name="features.pkl")
    assert "cannot tell the data set" in str(error_of(read_mult_pickle, path))
