"""load_dataset (cache, invalidation) and the torch loader (masks, shuffling, tasks)."""
from __future__ import annotations

import numpy as np
import torch

from cmnlib.data.loader import make_loader
from cmnlib.model.attention import padding_mask
from cmnlib.data.mult_pkl import read_mult_pickle, write_mult_pickle
from cmnlib.data.sources import load_dataset
from test_data_formats import mult_splits


def test_cache_is_used_and_invalidated_when_the_source_changes(tmp_path, data_home):
    path = write_mult_pickle(tmp_path / "mosei_senti_data.pkl", mult_splits())
    first = load_dataset("mosei", path)
    cache_files = list((data_home / "cache").glob("*.h5"))
    assert len(cache_files) == 1 and first.meta["source_label"].startswith("REAL MOSEI")
    again = load_dataset("mosei", path)
    assert again.meta["cache_path"] == str(cache_files[0])
    np.testing.assert_array_equal(again["train"].features["text"], first["train"].features["text"])
    # change one label in the source: a new cache entry, never the stale one
    splits = mult_splits()
    splits["test"]["labels"][0, 0, 0] = -2.0
    write_mult_pickle(path, splits)
    changed = load_dataset("mosei", path)
    assert changed["test"].labels[0] == -2.0 and first["test"].labels[0] == 0.5
    assert len(list((data_home / "cache").glob("*.h5"))) == 2


def test_synthetic_default_reads_back_through_the_real_loaders(data_home, monkeypatch):
    from cmnlib.data import synthetic
    monkeypatch.setitem(synthetic.SPLIT_SIZES["iemocap"], "quick", {"train": 20, "valid": 8, "test": 8})
    monkeypatch.setattr(synthetic, "MONTE_CARLO_SAMPLES", 500)
    bundle = load_dataset("iemocap")
    assert bundle.meta["format"] == "mult_pkl" and bundle.meta["synthetic"] is True
    assert "SYNTHETIC" in bundle.source_label
    assert (data_home / "synthetic" / "iemocap-quick-seed0" / "iemocap_data.pkl").exists()
    assert len(bundle["train"]) == 20


def test_padding_mask_from_lengths():
    mask = padding_mask(torch.tensor([2, 0, 3]), 3)
    assert mask.tolist() == [[False, False, True], [True, True, True], [False, False, False]]


def test_batches_trim_padding_keep_zero_words_and_select_modalities(tiny_mosei_dir):
    split = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")["train"]
    loader = make_loader(split, "LV", batch_size=8)
    batch = next(iter(loader))
    assert set(batch["features"]) == {"text", "vision"}
    lengths = batch["lengths"]["text"]
    assert batch["features"]["text"].shape[1] == int(lengths.max())
    # the batch holds exactly the stored rows (valid steps first)
    np.testing.assert_array_equal(batch["features"]["text"].numpy(),
                                  split.features["text"][:8, :int(lengths.max())])
    # all-zero words inside a sentence (pauses) are not padding: masks come from lengths
    zero_word = ~split.features["text"][:8].any(axis=2)
    inside = zero_word & (np.arange(50)[None, :] < split.lengths["text"][:8, None])
    mask = padding_mask(lengths, batch["features"]["text"].shape[1]).numpy()
    assert not (mask & inside[:, :mask.shape[1]]).any()


def test_seeded_shuffle_is_deterministic(tiny_mosei_dir):
    split = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")["train"]
    order = lambda seed: torch.cat([b["index"] for b in make_loader(split, "L", shuffle=True, seed=seed)])
    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))
    assert sorted(order(1).tolist()) == list(range(len(split)))


def test_targets_per_task(tiny_iemocap_dir, tiny_mosei_dir):
    iemocap = read_mult_pickle(tiny_iemocap_dir / "iemocap_data.pkl")["valid"]
    four = next(iter(make_loader(iemocap, "LA", task="4class", batch_size=100)))["target"]
    assert four.dtype == torch.long and torch.equal(four, torch.from_numpy(iemocap.labels.argmax(1)))
    binary4 = next(iter(make_loader(iemocap, "LA", task="binary4", batch_size=100)))["target"]
    assert binary4.shape == (len(iemocap), 4) and (binary4.sum(1) == 1).all()
    mosei = read_mult_pickle(tiny_mosei_dir / "mosei_senti_data.pkl")["valid"]
    binary = next(iter(make_loader(mosei, "LA", task="binary", batch_size=100)))["target"]
    assert torch.equal(binary, torch.from_numpy((mosei.labels >= 0).astype(np.int64)))
