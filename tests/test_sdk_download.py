"""The SDK reader on a CMU-MOSEI download written by the independent writer
(tests/external_layouts.py): word alignment, folds, pause words, -inf audio, labels."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cmnlib.data.csd import load_folds
from cmnlib.data.sources import load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from external_layouts import write_sdk_csd_folder  # noqa: E402


def sdk_videos(train: int, valid: int, test: int) -> list[str]:
    """Real CMU-MOSEI video ids from the standard folds (the reader splits by them), plus one
    video in no fold."""
    folds = load_folds("mosei")
    return ([*sorted(folds["train"])[:train], *sorted(folds["valid"])[:valid], *sorted(folds["test"])[:test]]
            + ["not-a-fold-video"])


def test_an_sdk_download_reads_as_the_sdk_aligns_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CMN_DATA_DIR", str(tmp_path / "data"))
    folder, truth = write_sdk_csd_folder(tmp_path / "CMU_MOSEI", videos=sdk_videos(5, 2, 2), dims=(6, 4, 3),
                                         neg_inf_audio=True, seed=3)
    bundle = load_dataset("mosei", folder)
    folds = load_folds("mosei")
    seen, neg_inf = set(), 0
    for split in ("train", "valid", "test"):
        part = bundle[split]
        for i, segment_id in enumerate(part.ids):
            expected = truth["segments"][segment_id]
            assert expected["video"] in folds[split]
            length = expected["words"]
            for modality in ("text", "audio", "vision"):
                assert part.lengths[modality][i] == length  # an all-zero "sp" word inside counts
                assert not part.features[modality][i, length:].any()  # right-padded
            np.testing.assert_allclose(part.features["text"][i, :length], expected["text"], rtol=1e-6)
            audio = np.asarray(expected["audio_first_word"])
            neg_inf += int(np.isneginf(audio).sum())
            np.testing.assert_allclose(part.features["audio"][i, 0], np.where(np.isneginf(audio), 0, audio),
                                       rtol=1e-5)
            assert part.labels[i] == np.float32(expected["label"])
            np.testing.assert_array_equal(part.extras["emotions"][i], expected["emotions"])
            seen.add(segment_id)
    in_folds = {k for k, s in truth["segments"].items() if s["video"] != "not-a-fold-video"}
    assert seen == in_folds
    assert any(truth["segments"][k]["zero_words"] for k in seen)
    assert bundle.meta["counts"]["segments_not_in_folds"] == len(truth["segments"]) - len(in_folds)
    assert neg_inf > 0 and sum(c["neginf"] for c in bundle.meta["nonfinite"].values()) == neg_inf
    assert not bundle.meta["synthetic"] and "SDK .csd" in bundle.source_label


def test_one_folder_serves_each_data_set_from_its_own_files(tmp_path):
    """SDK files, a MulT IEMOCAP pickle and MMSA's MOSI/Processed/ side by side: a file named
    for the data set comes first, the .csd files (which name none) serve the rest."""
    from cmnlib.data.sources import detect_format
    from external_layouts import write_mmsa_pickle, write_mult_pickle_padded
    write_sdk_csd_folder(tmp_path, videos=sdk_videos(1, 1, 1), dims=(3, 2, 2))
    write_mult_pickle_padded(tmp_path / "iemocap_data.pkl", dataset="iemocap", dims=(3, 2, 2))
    mosi = tmp_path / "MOSI" / "Processed" / "aligned_50.pkl"
    write_mmsa_pickle(mosi, dataset="mosi", dims=(3, 2, 2))
    assert detect_format(tmp_path, "mosei") == ("csd", tmp_path)
    assert detect_format(tmp_path, "iemocap") == ("pkl", tmp_path / "iemocap_data.pkl")
    assert detect_format(tmp_path, "mosi") == ("pkl", mosi)
    write_mult_pickle_padded(tmp_path / "mosei_senti_data.pkl", dataset="mosei", dims=(3, 2, 2))
    assert detect_format(tmp_path, "mosei") == ("pkl", tmp_path / "mosei_senti_data.pkl")
