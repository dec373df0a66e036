"""CMU-MultimodalSDK computational sequences (``.csd``) and the SDK's word alignment.

On disk (SDK ``computational_sequence/file_ops.py``) a ``.csd`` is an HDF5 file with one
top-level group named after the sequence (its ``root name``)::

    <root>/data/<video_id>/features    (T, D)   one row per frame, word or segment
    <root>/data/<video_id>/intervals   (T, 2)   [start, end] in seconds
    <root>/metadata/<key>              (1,)     a JSON text (h5py variable-length string)

:func:`build_word_aligned` turns a folder of such files into fixed-length tensors the way
the SDK's documented word-level pipeline does: every frame stream is averaged inside each
word interval (``align('glove_vectors', collapse_functions=[mean])``), words are then
grouped by the labelled segments (``align('All Labels')``, keys ``vid[i]``), words without
any frame get zeros (``impute``), sequences are cut to ``seq_len`` keeping the **last**
words (``get_tensors(direction=False)``), and segments are split by the standard folds.
Overlap follows the SDK: a frame belongs to an interval when their intersection is longer
than ``EPSILON``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import h5py
import numpy as np

from ..atomic import atomic_write
from ..config import DATASETS, dataset_info
from .errors import REAL_DATA_HINT, DataError
from .split import (SPLITS, DataBundle, Split, check_dataset_name, replace_nonfinite,
                    validate_bundle)

EPSILON = 1e-5  # the SDK's ``epsilon = 10e-6`` in dataset.py

# The SDK's metadata template (configurations/metadataconfigs.py). A missing comma there
# fuses two names into one key; files carry it too so the SDK finds every key it checks.
SDK_METADATA_KEYS = (
    "root name", "computational sequence description", "dimension names",
    "computational sequence version", "dimension namescomputational sequence version",
    "alignment compatible", "dataset name", "dataset version", "creator", "contact",
    "featureset bib citation", "dataset bib citation",
)

# Root names of the standard CMU-MOSEI sequences (SDK standard_datasets/CMU_MOSEI).
MOSEI_RECIPE = {"text": "glove_vectors", "audio": "COVAREP", "vision": "FACET 4.2",
                "labels": "All Labels"}
# Optional sequences that the synthetic stand-in adds (never present in real data).
SYNTHETIC_CUES = "Synthetic Cues"      # per word: 1 where audio disambiguates the word
SYNTHETIC_TRUTH = "Synthetic Truth"    # per segment: Bayes posteriors, one column each


@dataclass
class ComputationalSequence:
    """One ``.csd`` in memory: ``data[video_id] = (features, intervals)``."""

    root_name: str
    data: dict[str, tuple[np.ndarray, np.ndarray]]
    metadata: dict = field(default_factory=dict)
    path: Path | None = None


def write_csd(path: str | Path, sequence: ComputationalSequence) -> Path:
    """Write ``sequence`` in the SDK layout, atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"root name": sequence.root_name, **sequence.metadata}
    missing = [k for k in SDK_METADATA_KEYS if k not in metadata]
    if missing:
        raise ValueError(f"metadata lacks SDK keys {missing}")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as h5:
            root = h5.create_group(sequence.root_name)
            data = root.create_group("data")
            for video_id, (features, intervals) in sequence.data.items():
                group = data.create_group(video_id)
                group.create_dataset("features", data=features)
                group.create_dataset("intervals", data=intervals)
            meta_group = root.create_group("metadata")
            for key, value in metadata.items():
                meta_group.create_dataset(key, (1,), dtype=h5py.string_dtype(), data=[json.dumps(value)])
    return atomic_write(path, write)


def read_csd(path: str | Path) -> ComputationalSequence:
    """Read and validate a ``.csd`` (the SDK's integrity checks, with clear errors)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found", hint=REAL_DATA_HINT)
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise DataError(path, "not a readable HDF5 file (truncated or another format)",
                        expected="a CMU-MultimodalSDK .csd (HDF5)",
                        found=str(error).split("(")[0].strip()) from None
    with h5:
        roots = list(h5.keys())
        if len(roots) != 1:
            raise DataError(path, "a computational sequence has one top-level group",
                            expected="1 group (the root name)", found=f"{len(roots)}: {roots[:5]}")
        root_name = roots[0]
        root = h5[root_name]
        for required in ("data", "metadata"):
            if required not in root:
                raise DataError(path, "missing group", key=f"{root_name}/{required}",
                                expected="data and metadata groups", found=", ".join(root))
        metadata = {}
        for key, dataset in root["metadata"].items():
            raw = dataset[0]
            raw = raw.decode() if isinstance(raw, bytes) else raw
            try:
                metadata[key] = json.loads(raw)
            except (TypeError, ValueError):
                metadata[key] = str(raw)  # the SDK falls back to the plain string too
        data = {}
        for video_id, group in root["data"].items():
            key = f"{root_name}/data/{video_id}"
            if "features" not in group or "intervals" not in group:
                raise DataError(path, "missing features or intervals", key=key,
                                expected="features and intervals", found=", ".join(group))
            features, intervals = group["features"][()], group["intervals"][()]
            if intervals.ndim != 2 or intervals.shape[1] != 2:
                raise DataError(path, "intervals have the wrong shape", key=f"{key}/intervals",
                                expected="(T, 2)", found=f"shape {intervals.shape}")
            if features.ndim < 2 or features.shape[0] != intervals.shape[0]:
                raise DataError(path, "features do not match intervals", key=f"{key}/features",
                                expected=f"({intervals.shape[0]}, D)", found=f"shape {features.shape}")
            data[video_id] = (features, intervals)
    return ComputationalSequence(root_name, data, metadata, path)


def sdk_metadata(root_name: str, description: str, dimension_names: list[str], dataset: str,
                 **extra) -> dict:
    """A complete SDK metadata dict for a sequence this project writes."""
    return {
        "root name": root_name,
        "computational sequence description": description,
        "dimension names": dimension_names,
        "computational sequence version": "1.0",
        "dimension namescomputational sequence version": "1.0",
        "alignment compatible": True,
        "dataset name": dataset,
        "dataset version": "1.0",
        "creator": "cmnlib",
        "contact": "see README",
        "featureset bib citation": "synthetic stand-in written by cmnlib (not real features)",
        "dataset bib citation": "Zadeh et al. 2018, CMU-MOSEI (format only)",
        **extra,
    }


# --------------------------------------------------------------------------------------
# Word-level alignment (the SDK pipeline, vectorised per video)
# --------------------------------------------------------------------------------------

def _sorted_rows(features: np.ndarray, intervals: np.ndarray):
    """Drop intervals not longer than EPSILON and sort by start, as the SDK does."""
    keep = (intervals[:, 1] - intervals[:, 0]) > EPSILON
    features, intervals = features[keep], intervals[keep]
    order = np.argsort(intervals[:, 0], kind="stable")
    return features[order], intervals[order]


def _overlap_ranges(starts: np.ndarray, ends: np.ndarray, ref: np.ndarray):
    """For each reference interval, the contiguous [lo, hi) range of rows overlapping it.

    Valid when rows are sorted by start and their ends are non-decreasing (frame streams
    and word sequences); overlap means an intersection longer than EPSILON.
    """
    hi = np.searchsorted(starts, ref[:, 1] - EPSILON, side="left")
    lo = np.searchsorted(ends, ref[:, 0] + EPSILON, side="right")
    # an intersection is never longer than the reference itself
    hi = np.where(ref[:, 1] - ref[:, 0] > EPSILON, np.maximum(hi, lo), lo)
    return lo, hi


def _overlap_mask(starts, ends, ref):
    """(R, T) bool: the intersection of row t with reference r is longer than EPSILON."""
    clipped = np.minimum(ends[None, :], ref[:, 1:2]) - np.maximum(starts[None, :], ref[:, 0:1])
    return clipped > EPSILON


def average_within(features: np.ndarray, intervals: np.ndarray, ref: np.ndarray):
    """Mean of the rows overlapping each reference interval; zeros (and a count) where none.

    Returns (means (R, D) float32, number of rows averaged (R,)).
    """
    features, intervals = _sorted_rows(features, intervals)
    flat = features.reshape(features.shape[0], -1).astype(np.float64)
    finite = np.isfinite(flat)
    all_finite = bool(finite.all())
    # Sums of non-finite values are kept as counts, so a window's mean can still be NaN or
    # +-inf exactly as a plain mean over its frames would be.
    kinds = {} if all_finite else {"nan": np.isnan(flat), "posinf": np.isposinf(flat),
                                   "neginf": np.isneginf(flat)}
    values = flat if all_finite else np.where(finite, flat, 0.0)
    if np.all(np.diff(intervals[:, 1]) >= 0):
        lo, hi = _overlap_ranges(intervals[:, 0], intervals[:, 1], ref)
        counts = hi - lo

        def window_sum(array):
            cumulative = np.zeros((array.shape[0] + 1, array.shape[1]))
            np.cumsum(array, axis=0, out=cumulative[1:])
            return cumulative[hi] - cumulative[lo]
    else:  # overlapping rows (e.g. nested intervals): the general, slower path
        mask = _overlap_mask(intervals[:, 0], intervals[:, 1], ref).astype(np.float64)
        counts = mask.sum(axis=1).astype(np.int64)

        def window_sum(array):
            return mask @ array
    sums = window_sum(values)
    if kinds:
        n_nan, n_pos, n_neg = (window_sum(k.astype(np.float64)) for k in kinds.values())
        sums[n_neg > 0] = -np.inf
        sums[n_pos > 0] = np.inf
        sums[(n_nan > 0) | ((n_pos > 0) & (n_neg > 0))] = np.nan
    with np.errstate(invalid="ignore"):
        means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.0)
    return means.astype(np.float32), counts


def _segment_words(word_intervals: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Indices (sorted by time) of the words overlapping one segment."""
    mask = _overlap_mask(word_intervals[:, 0], word_intervals[:, 1], segment[None, :])[0]
    return np.flatnonzero(mask)


def find_sequences(folder: str | Path) -> dict[str, Path]:
    """Map root name -> file for every ``.csd`` in ``folder`` (the SDK keys folders so)."""
    folder = Path(folder)
    found = {}
    for file in sorted(folder.glob("*.csd")):
        try:
            with h5py.File(file, "r") as h5:
                roots = list(h5.keys())
        except OSError as error:
            raise DataError(file, "not a readable HDF5 file (truncated or another format)",
                            expected="a CMU-MultimodalSDK .csd (HDF5)",
                            found=str(error).split("(")[0].strip()) from None
        if len(roots) != 1:
            raise DataError(file, "a computational sequence has one top-level group",
                            expected="1 group", found=str(roots[:5]))
        found[roots[0]] = file
    return found


def load_folds(dataset: str) -> dict[str, set[str]]:
    """The SDK's standard folds (video ids) shipped in cmnlib/resources."""
    key = dataset_info(check_dataset_name(dataset)).sdk_name
    if key is None:
        raise DataError(None, "no standard folds for this data set", key=dataset,
                        expected=" or ".join(d for d, i in DATASETS.items() if i.sdk_name), found=dataset)
    folds = json.loads(files("cmnlib.resources").joinpath("standard_folds.json").read_text())[key]
    return {split: set(ids) for split, ids in folds.items()}


def build_word_aligned(folder: str | Path, dataset: str = "mosei", *, seq_len: int = 50,
                       recipe: dict[str, str] | None = None, keep: str = "last",
                       folds: dict[str, set[str]] | None = None) -> DataBundle:
    """Word-aligned, fixed-length canonical splits from a folder of ``.csd`` files.

    ``recipe`` maps the roles text/audio/vision/labels to root names (default: the SDK's
    CMU-MOSEI names). ``keep='last'`` keeps the last ``seq_len`` words like the SDK's
    ``get_tensors``; ``'first'`` keeps the first ones. Segments whose video is in no fold,
    or that contain no word, are dropped and counted in ``meta``.
    """
    check_dataset_name(dataset)
    if keep not in ("last", "first"):
        raise ValueError("keep must be 'last' or 'first'")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "folder not found", hint=REAL_DATA_HINT)
    recipe = dict(recipe or MOSEI_RECIPE)
    available = find_sequences(folder)
    for role, root in recipe.items():
        if root not in available:
            raise DataError(folder, "missing computational sequence", key=f"{role} ({root!r})",
                            expected=f"a .csd whose root group is {root!r}",
                            found=", ".join(available) or "no .csd files", hint=REAL_DATA_HINT)
    modalities = [m for m in ("text", "audio", "vision") if m in recipe]
    sequences = {role: read_csd(available[root]) for role, root in recipe.items()}
    cues = read_csd(available[SYNTHETIC_CUES]) if SYNTHETIC_CUES in available else None
    truth = read_csd(available[SYNTHETIC_TRUTH]) if SYNTHETIC_TRUTH in available else None
    folds = folds if folds is not None else load_folds(dataset)
    labels_seq = sequences["labels"]
    dims = {m: next(iter(sequences[m].data.values()))[0].shape[1] for m in modalities}
    rows = {s: {"features": {m: [] for m in modalities}, "lengths": [], "labels": [], "ids": [],
                "emotions": [], "cue_mask": [], "truth": []} for s in SPLITS}
    counts = {"segments_not_in_folds": 0, "segments_without_words": 0,
              "videos_missing_a_modality": 0, "words_without_frames": {m: 0 for m in modalities}}
    nonfinite: dict[str, dict[str, int]] = {}
    fold_of = {vid: split for split, vids in folds.items() for vid in vids}
    for video_id, (label_rows, label_intervals) in labels_seq.data.items():
        split = fold_of.get(video_id)
        if split is None:
            counts["segments_not_in_folds"] += label_rows.shape[0]
            continue
        if any(video_id not in sequences[m].data for m in modalities):
            counts["videos_missing_a_modality"] += 1  # the SDK's unify() drops such videos
            continue
        word_features, word_intervals = _sorted_rows(*sequences["text"].data[video_id])
        per_word = {"text": word_features}
        for modality in modalities:
            if modality == "text":
                continue
            frames, frame_intervals = sequences[modality].data[video_id]
            # Averaging raw frames lets a -inf frame make its word -inf, as in the SDK
            # tensors that MulT's pickles hold; the canonical split zeroes it and counts it.
            per_word[modality], n_frames = average_within(frames, frame_intervals, word_intervals)
            counts["words_without_frames"][modality] += int((n_frames == 0).sum())
        if cues is not None and video_id in cues.data:
            per_word_cue, _ = average_within(*cues.data[video_id], word_intervals)
        else:
            per_word_cue = None
        truth_rows = truth.data[video_id][0] if truth is not None and video_id in truth.data else None
        for index, segment in enumerate(label_intervals):
            if abs(segment[1] - segment[0]) < EPSILON:
                continue
            words = _segment_words(word_intervals, segment)
            if words.size == 0:
                counts["segments_without_words"] += 1
                continue
            words = words[-seq_len:] if keep == "last" else words[:seq_len]
            bucket = rows[split]
            for modality in modalities:
                bucket["features"][modality].append(per_word[modality][words])
            bucket["lengths"].append(words.size)
            bucket["labels"].append(label_rows[index])
            bucket["ids"].append(f"{video_id}[{index}]")
            if per_word_cue is not None:
                bucket["cue_mask"].append(per_word_cue[words, 0])
            if truth_rows is not None:
                bucket["truth"].append(truth_rows[index])
    splits = {}
    truth_names = truth.metadata.get("dimension names", []) if truth is not None else []
    for split_name, bucket in rows.items():
        n = len(bucket["lengths"])
        lengths = np.asarray(bucket["lengths"], dtype=np.int64)
        features = {}
        for modality in modalities:
            array = np.zeros((n, seq_len, dims[modality]), dtype=np.float32)
            for i, sequence in enumerate(bucket["features"][modality]):
                array[i, :len(sequence)] = sequence
            features[modality], counts_nf = replace_nonfinite(array)
            nonfinite[f"{split_name}/{modality}"] = counts_nf
        label_dim = next(iter(labels_seq.data.values()))[0].shape[1]
        labels = np.asarray(bucket["labels"], dtype=np.float32).reshape(n, label_dim)
        extras = {}
        if labels.shape[1] > 1:
            extras["emotions"] = labels[:, 1:]
        if bucket["cue_mask"]:
            cue = np.zeros((n, seq_len), dtype=np.uint8)
            for i, sequence in enumerate(bucket["cue_mask"]):
                cue[i, :len(sequence)] = np.rint(sequence)
            extras["cue_mask"] = cue
        if bucket["truth"]:
            extras.update(_truth_columns(np.asarray(bucket["truth"], dtype=np.float32), truth_names))
        splits[split_name] = Split(split_name, features, {m: lengths.copy() for m in modalities},
                                   labels[:, 0] if n else np.zeros(0, np.float32),
                                   np.asarray(bucket["ids"], dtype=str), extras)
    meta = {"format": "csd", "path": str(folder), "aligned": True, "recipe": recipe,
            "files": {role: str(available[root]) for role, root in recipe.items()},
            "alignment": {"collapse": "mean of frames inside each word", "seq_len": seq_len,
                          "keep": keep, "epsilon": EPSILON},
            "counts": counts,
            "nonfinite": nonfinite}
    if truth is not None and "synthetic" in truth.metadata:
        meta["file_metadata"] = truth.metadata["synthetic"]
    bundle = DataBundle(dataset, splits, meta)
    validate_bundle(bundle, folder)
    return bundle


def _truth_columns(values: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Split the per-segment truth rows into named extras; 'bayes_X_k' columns regroup."""
    grouped: dict[str, list[int]] = {}
    for column, name in enumerate(names):
        base = name.rsplit("#", 1)[0]
        grouped.setdefault(base, []).append(column)
    return {base: values[:, cols[0]] if len(cols) == 1 else values[:, cols]
            for base, cols in grouped.items()}

