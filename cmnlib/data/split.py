"""The canonical in-memory form of a data set, whatever file it came from.

Every loader (MulT pickle, CMU-MultimodalSDK .csd, the synthetic generator through those
two) returns a :class:`DataBundle`: three :class:`Split` objects plus metadata. Layout:

* ``features[modality]``: float32 array (N, T, D), **right-padded** (valid steps first),
  with non-finite values already replaced by 0 (and counted in ``meta``);
* ``lengths[modality]``: int64 (N,), the true number of steps, so padding masks come from
  lengths and never from all-zero frames (real GloVe 'sp' tokens are all-zero words);
* ``labels``: MOSEI/MOSI: float32 (N,) sentiment in [-3, 3]; CH-SIMS: in [-1, 1]; IEMOCAP: int64 (N, 4), one
  one-vs-rest 0/1 column per emotion in the order of :data:`IEMOCAP_EMOTIONS`;
* ``ids``: str (N,), the segment ids (``video[index]`` for SDK data);
* ``extras``: optional per-sample arrays (synthetic ground truth, e.g. ``cue_mask``; MMSA's
  ``raw_text``; CH-SIMS's unimodal labels ``labels_T`` / ``labels_A`` / ``labels_V``).

A bundle round-trips through HDF5 (:func:`save_bundle`, :func:`load_bundle`), which is
the on-disk cache under ``data/cache``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .. import config
from ..config import MODALITIES
from ..atomic import atomic_write
from .errors import DataError

SPLITS = ("train", "valid", "test")


def check_dataset_name(dataset: str) -> str:
    """Return ``dataset`` if it is known, else raise a DataError listing the known ones."""
    if dataset not in config.DATASETS:
        raise DataError(None, f"unknown dataset name {dataset!r}",
                        expected=f"one of {', '.join(config.DATASETS)}", found=repr(dataset))
    return dataset


def class_index(labels: np.ndarray, split: str = "") -> np.ndarray:
    """IEMOCAP: the 4-class target of one-vs-rest ``labels`` (N, 4): the argmax per row.

    Rows without exactly one positive emotion have no 4-class target; they raise instead
    of being silently assigned a class."""
    positives = labels.sum(axis=1)
    bad = np.flatnonzero(positives != 1)
    if bad.size:
        raise DataError(None, f"{split + ' split: ' if split else ''}{bad.size} rows do not have exactly one "
                        "positive emotion, so they have no 4-class target; use the "
                        "4 x binary head (head='binary4') for multi-label data",
                        key="labels", expected="one positive per row",
                        found=f"row {bad[0]} has {positives[bad[0]]}")
    return labels.argmax(axis=1).astype(np.int64)


@dataclass
class Split:
    """One split (train, valid or test) in canonical form; see the module docstring."""

    name: str
    features: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    labels: np.ndarray
    ids: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.features)

    @property
    def aligned(self) -> bool:
        """Word-aligned: every modality has the same number of steps, and each sample the
        same length in every modality (what early fusion needs)."""
        first = self.modalities[0]
        return len({a.shape[1] for a in self.features.values()}) == 1 and all(
            np.array_equal(self.lengths[m], self.lengths[first]) for m in self.modalities)

    def class_index(self) -> np.ndarray:
        """IEMOCAP: the 4-class target (:func:`class_index` of the labels), naming this split
        when a row has no single positive emotion."""
        return class_index(self.labels, self.name)

    def subset(self, index: np.ndarray) -> "Split":
        """A new Split with the rows ``index`` (used for quick subsampling and tests)."""
        return Split(self.name, {m: a[index] for m, a in self.features.items()},
                     {m: a[index] for m, a in self.lengths.items()}, self.labels[index],
                     self.ids[index], {k: a[index] for k, a in self.extras.items()})


@dataclass
class DataBundle:
    """Train/valid/test splits of one data set plus what is known about its source."""

    dataset: str
    splits: dict[str, Split]
    meta: dict

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: int(a.shape[2]) for m, a in self.splits["train"].features.items()}

    @property
    def seq_lens(self) -> dict[str, int]:
        return {m: int(a.shape[1]) for m, a in self.splits["train"].features.items()}

    @property
    def aligned(self) -> bool:
        """Every split is word-aligned (:attr:`Split.aligned`)."""
        return all(split.aligned for split in self.splits.values())

    @property
    def source_label(self) -> str:
        """One line that says where the numbers come from; every table carries it."""
        return self.meta.get("source_label", "unknown source")

    @property
    def short_label(self) -> str:
        """Where the data came from in a few words, for figure titles and file names:
        "synthetic MOSEI-like" or "real MOSI" (the full story is :attr:`source_label`)."""
        if self.meta.get("synthetic"):
            return f"synthetic {self.dataset.upper()}-like"
        return f"real {self.dataset.upper()}"


# --------------------------------------------------------------------------------------
# Validation shared by all loaders
# --------------------------------------------------------------------------------------

def validate_bundle(bundle: DataBundle, path: str | Path | None) -> None:
    """Check shapes, N across modalities, lengths, label ranges; raise one DataError."""
    check_dataset_name(bundle.dataset)
    for split_name in SPLITS:
        if split_name not in bundle.splits:
            raise DataError(path, "missing split", key=split_name,
                            expected="train, valid and test", found=", ".join(bundle.splits))
        split = bundle.splits[split_name]
        n = len(split)
        if n == 0:
            raise DataError(path, "empty split", key=split_name, expected="at least 1 sample",
                            found="0")
        dims = None
        for modality, array in split.features.items():
            key = f"{split_name}/{modality}"
            if array.ndim != 3:
                raise DataError(path, "wrong rank", key=key, expected="(N, T, D)",
                                found=f"shape {array.shape}")
            if array.shape[0] != n:
                raise DataError(path, "N differs across modalities and labels", key=key,
                                expected=f"{n} samples (as the labels)", found=f"{array.shape[0]}")
            lengths = split.lengths[modality]
            if lengths.shape != (n,) or lengths.min(initial=1) < 0 or lengths.max(initial=0) > array.shape[1]:
                raise DataError(path, "lengths out of range", key=key,
                                expected=f"(N,) in [0, {array.shape[1]}]",
                                found=f"shape {lengths.shape}, max {lengths.max(initial=0)}")
            dims = dims or {}
            dims[modality] = array.shape[2]
        if split.ids.shape[0] != n:
            raise DataError(path, "N differs between ids and labels", key=f"{split_name}/id",
                            expected=str(n), found=str(split.ids.shape[0]))
        _validate_labels(bundle.dataset, split, path)
    train_dims = bundle.feature_dims
    for split_name in SPLITS:
        for modality, array in bundle.splits[split_name].features.items():
            if array.shape[2] != train_dims.get(modality, array.shape[2]):
                raise DataError(path, "feature dimension differs from the train split",
                                key=f"{split_name}/{modality}", expected=f"D = {train_dims[modality]}",
                                found=f"D = {array.shape[2]}")


def _validate_labels(dataset: str, split: Split, path) -> None:
    key = f"{split.name}/labels"
    labels = split.labels
    info = config.dataset_info(dataset)
    if info.emotions:
        k = len(info.classes)
        if labels.ndim != 2 or labels.shape[1] != k:
            raise DataError(path, f"{dataset.upper()} labels have the wrong shape", key=key,
                            expected=f"(N, {k}) one-vs-rest emotions (or (N, {k}, 2) in MulT files)",
                            found=f"shape {labels.shape}")
        if not np.isin(labels, (0, 1)).all():
            raise DataError(path, f"{dataset.upper()} labels must be 0/1", key=key, expected="values in {0, 1}",
                            found=f"values {np.unique(labels)[:5].tolist()}")
    else:
        if labels.ndim != 1:
            raise DataError(path, "sentiment labels have the wrong shape", key=key,
                            expected="(N,) (or (N, 1, 1) in MulT files)", found=f"shape {labels.shape}")
        low, high = info.label_range
        if not np.isfinite(labels).all():
            raise DataError(path, "sentiment labels contain NaN or inf", key=key,
                            expected=f"finite values in [{low:g}, {high:g}]",
                            found=f"{int((~np.isfinite(labels)).sum())} non-finite")
        if labels.min() < low - 1e-6 or labels.max() > high + 1e-6:
            raise DataError(path, "sentiment labels out of range", key=key,
                            expected=f"values in [{low:g}, {high:g}] for {dataset}",
                            found=f"min {labels.min():.3g}, max {labels.max():.3g}")


def replace_nonfinite(array: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Replace NaN and +-inf by 0 (real COVAREP audio has -inf); return the counts."""
    array = np.asarray(array, dtype=np.float32)
    nan = np.isnan(array)
    posinf = np.isposinf(array)
    neginf = np.isneginf(array)
    counts = {"nan": int(nan.sum()), "posinf": int(posinf.sum()), "neginf": int(neginf.sum())}
    if counts["nan"] or counts["posinf"] or counts["neginf"]:
        array = array.copy()
        array[nan | posinf | neginf] = 0.0
    return array, counts


# --------------------------------------------------------------------------------------
# HDF5 round trip (the cache)
# --------------------------------------------------------------------------------------

CACHE_FORMAT_VERSION = 1


def save_bundle(bundle: DataBundle, path: str | Path) -> Path:
    """Write ``bundle`` to HDF5 atomically (temporary file, then rename)."""
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["cmnlib_cache_format"] = CACHE_FORMAT_VERSION
            h5.attrs["dataset"] = bundle.dataset
            h5.attrs["meta"] = json.dumps(bundle.meta)
            for name, split in bundle.splits.items():
                group = h5.create_group(name)
                for modality, array in split.features.items():
                    group.create_dataset(f"features/{modality}", data=array)
                    group.create_dataset(f"lengths/{modality}", data=split.lengths[modality])
                group.create_dataset("labels", data=split.labels)
                group.create_dataset("ids", data=split.ids.astype(object), dtype=h5py.string_dtype())
                for key, array in split.extras.items():
                    if array.dtype.kind in "UO":  # per-sample text (raw transcripts)
                        group.create_dataset(f"extras/{key}", data=array.astype(object), dtype=h5py.string_dtype())
                    else:
                        group.create_dataset(f"extras/{key}", data=array)
    return atomic_write(path, write)


def _decoded(array: np.ndarray) -> np.ndarray:
    """h5py returns variable-length strings as bytes objects; give them back as str."""
    if array.dtype.kind == "O":
        return np.array([s.decode() if isinstance(s, bytes) else s for s in array])
    return array


def load_bundle(path: str | Path) -> DataBundle:
    """Read a bundle written by :func:`save_bundle`."""
    path = Path(path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise DataError(path, "not a readable HDF5 cache file", expected="HDF5",
                        found=str(error).split("(")[0].strip()) from None
    with h5:
        if h5.attrs.get("cmnlib_cache_format") != CACHE_FORMAT_VERSION:
            raise DataError(path, "cache written by another cmnlib version", key="cmnlib_cache_format",
                            expected=str(CACHE_FORMAT_VERSION), found=str(h5.attrs.get("cmnlib_cache_format")))
        splits = {}
        for name in SPLITS:
            group = h5[name]
            features = {m: group["features"][m][()] for m in MODALITIES if m in group["features"]}
            lengths = {m: group["lengths"][m][()] for m in features}
            extras = {k: _decoded(group["extras"][k][()]) for k in group["extras"]} if "extras" in group else {}
            ids = np.array([s.decode() if isinstance(s, bytes) else s for s in group["ids"][()]])
            splits[name] = Split(name, features, lengths, group["labels"][()], ids, extras)
        return DataBundle(str(h5.attrs["dataset"]), splits, json.loads(h5.attrs["meta"]))
