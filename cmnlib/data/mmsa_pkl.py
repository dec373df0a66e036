"""MMSA's processed feature pickles (thuiar/MMSA): ``MOSI/Processed/aligned_50.pkl``,
``unaligned_50.pkl``, the same for MOSEI, and ``SIMS/Processed/unaligned_39.pkl``.

Layout (MMSA's README and ``src/MMSA/data_loader.py``): one dict with ``train``, ``valid``,
``test``; each split a dict of

* ``text`` (N, T_t, D_t): BERT features, ``text_bert`` (N, 3, T_t): token ids, attention
  mask, segment ids; the mask's ones are the tokens ([CLS] and [SEP] included);
* ``audio`` (N, T_a, D_a) and ``vision`` (N, T_v, D_v), with ``audio_lengths`` and
  ``vision_lengths`` (N,): the true number of steps, valid steps first;
* ``regression_labels`` (N,): sentiment in [-3, 3] (MOSI, MOSEI) or [-1, 1] (CH-SIMS), and
  for CH-SIMS the unimodal labels ``regression_labels_T`` / ``_A`` / ``_V``;
* ``id`` (``video_id$_$clip_id``), ``raw_text``, ``annotations``, ``classification_labels``.

How this reader turns that into a canonical :class:`DataBundle`:

* dimensions and lengths are read from the file, never assumed;
* text lengths come from the ``text_bert`` mask (or a ``text_lengths`` key, which
  ``cmn featurize`` writes; or, without either, from the padding);
* audio and vision lengths come from ``*_lengths`` (a stated length above the stored
  steps, which MMSA's feature extraction can record, is read as all of them, with a
  warning). On aligned files (one T for all three)
  without them, the text length serves every modality, as MMSA's aligned models use it;
* each length is checked against the data: the steps it calls padding must be zero on one
  side (MMSA pads at the end; a file padded at the start is moved to the front). Content
  outside a stated length gets one :class:`DataWarning` naming the file and key; the stated
  length is kept (it is what MMSA's models use);
* ``-inf`` (and NaN) values are replaced by 0 and counted, as MMSA sets ``-inf`` audio to 0;
* ``raw_text`` and CH-SIMS's unimodal labels (``labels_T``, ``labels_A``, ``labels_V``)
  are kept as per-sample extras.

Text-only files (no ``audio`` / ``vision``) are accepted: ``cmn featurize`` writes them.
Loading goes through :func:`cmnlib.data.mult_pkl.safe_load_pickle`: no code in the file
runs.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from ..config import DATASETS, MODALITIES, dataset_info, dataset_named_in, mmsa_datasets
from .errors import DataError, DataWarning
from .mult_pkl import padding_spans, safe_load_pickle, shift_left_padded_to_right
from .split import SPLITS, DataBundle, Split, check_dataset_name, replace_nonfinite, validate_bundle



def published_sha256() -> dict[str, str]:
    """'MOSI/Processed/aligned_50.pkl' -> the SHA-256 MMSA's README publishes for it (from
    the registry, :attr:`cmnlib.config.DatasetInfo.mmsa_files`)."""
    return {f"{d.upper()}/Processed/{name}": digest for d in mmsa_datasets()
            for name, digest in DATASETS[d].mmsa_files.items()}


def file_names() -> tuple[str, ...]:
    """MMSA's processed file names, aligned files first (CMN reads word-aligned data)."""
    return tuple(dict.fromkeys(name for d in mmsa_datasets() for name in DATASETS[d].mmsa_files))
LABEL_KEY = "regression_labels"
SIMS_UNIMODAL = {"T": "regression_labels_T", "A": "regression_labels_A", "V": "regression_labels_V"}
# MMSA keys this reader uses, or knows and deliberately leaves out
USED_KEYS = {*MODALITIES, "text_bert", "text_lengths", "audio_lengths", "vision_lengths", LABEL_KEY, "id",
             "raw_text", *SIMS_UNIMODAL.values()}
KNOWN_UNUSED = {"annotations", "classification_labels"}


def is_mmsa_layout(raw) -> bool:
    """True when ``raw`` (an unpickled object) has MMSA's per-split ``regression_labels``."""
    return (isinstance(raw, dict) and isinstance(raw.get("train"), dict)
            and LABEL_KEY in raw["train"])


def dataset_from_path(path: str | Path) -> str | None:
    """'.../MOSEI/Processed/aligned_50.pkl' -> 'mosei' (from the folder names MMSA uses, or
    the file name); None when nothing tells."""
    for part in reversed(Path(path).parts):
        dataset = dataset_named_in(part, mmsa_datasets())
        if dataset is not None:
            return dataset
    return None


def published_name(path: str | Path) -> str | None:
    """The key of :func:`published_sha256` that ``path`` names (folder and file, any case),
    or None when it is not one of MMSA's published files."""
    path = Path(path)
    dataset = dataset_from_path(path)
    if dataset is None or path.name not in file_names():
        return None
    key = f"{dataset.upper()}/Processed/{path.name}"
    return key if key in published_sha256() else None


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_published(path: str | Path, sha256: str | None = None) -> dict | None:
    """{'published_as', 'expected', 'found', 'match'} when ``path`` is named like one of
    MMSA's published files; None otherwise. ``sha256``: the file's digest, if known."""
    name = published_name(path)
    if name is None:
        return None
    found, expected = sha256 or file_sha256(path), published_sha256()[name]
    return {"published_as": name, "expected": expected, "found": found, "match": found == expected}


# --------------------------------------------------------------------------------------
# Lengths and padding
# --------------------------------------------------------------------------------------

def _as_lengths(value, n: int, t: int, path, key: str, warn: list | None = None) -> np.ndarray:
    lengths = np.asarray(value)
    if lengths.dtype.kind not in "iuf" or lengths.shape != (n,):
        raise DataError(path, "lengths are not one integer per sample", key=key,
                        expected=f"({n},) integers", found=f"{lengths.dtype} shape {lengths.shape}")
    if lengths.dtype.kind == "f" and not np.all(lengths == np.round(lengths)):
        raise DataError(path, "lengths are not whole numbers", key=key, expected="integers",
                        found=f"e.g. {lengths[lengths != np.round(lengths)][0]}")
    lengths = lengths.astype(np.int64)
    if lengths.min(initial=0) < 0 or (warn is None and lengths.max(initial=0) > t):
        raise DataError(path, "lengths out of range", key=key, expected=f"values in [0, {t}]",
                        found=f"min {lengths.min()}, max {lengths.max()}")
    if lengths.max(initial=0) > t:
        # MMSA's feature extraction records a length before it cuts the sequence to T
        warn.append(f"{key}: {int((lengths > t).sum())} stated lengths exceed the {t} steps stored "
                    f"(max {lengths.max()}); read as {t}")
        lengths = np.minimum(lengths, t)
    return lengths


def mask_lengths(mask: np.ndarray, path, key: str) -> tuple[np.ndarray, str, np.ndarray]:
    """(lengths, side, start) from a 0/1 attention mask (N, T): the number of ones, the side
    the zeros are on ('right', 'left', 'none', or 'mixed' when ones and zeros interleave),
    and where each sample's tokens start."""
    if not np.isin(mask, (0, 1)).all():
        raise DataError(path, "the attention mask is not 0/1", key=key, expected="values in {0, 1}",
                        found=f"values {np.unique(mask)[:5].tolist()}")
    mask = mask.astype(bool)
    n, t = mask.shape
    lengths = mask.sum(axis=1).astype(np.int64)
    steps = np.arange(t)[None, :]
    right = (mask == (steps < lengths[:, None])).all(axis=1)
    left = (mask == (steps >= t - lengths[:, None])).all(axis=1)
    start = np.where(right, 0, t - lengths)
    side = _side(right, left, lengths, t)
    if side == "mixed":  # interleaved ones and zeros: the first one to the last one
        first = np.where(mask.any(1), mask.argmax(1), 0)
        start = np.where(right | left, start, first)
    return lengths, side, start


def _side(right: np.ndarray, left: np.ndarray, lengths: np.ndarray, t: int) -> str:
    """The padding side from per-sample consistency with right and left padding."""
    padded = lengths < t
    if not padded.any():
        return "none"
    if right[padded].all():
        return "right"
    if left[padded].all():
        return "left"
    return "mixed"


def place_with_lengths(array: np.ndarray, lengths: np.ndarray, path, key: str,
                       warn: list) -> tuple[np.ndarray, str]:
    """Check the stated ``lengths`` against ``array`` (N, T, D): the padding must be zero on
    one side. Returns the array with valid steps first, and the side found. A sample with
    content on both sides of its stated length is reported in ``warn`` and read as MMSA
    reads it (the first ``length`` steps)."""
    n, t = array.shape[:2]
    nonzero = np.any(array != 0, axis=2)
    steps = np.arange(t)[None, :]
    right = ~(nonzero & (steps >= lengths[:, None])).any(axis=1)
    left = ~(nonzero & (steps < t - lengths[:, None])).any(axis=1)
    side = _side(right, left, lengths, t)
    neither = ~right & ~left
    if neither.any():
        first = int(np.flatnonzero(neither)[0])
        warn.append(f"{key}: {int(neither.sum())} samples have non-zero steps outside their stated length "
                    f"(e.g. row {first}, length {lengths[first]} of {t}); the first `length` steps were kept")
    move = left & ~right  # padded at the start: bring the valid steps to the front
    if move.any():
        array = shift_left_padded_to_right(array, np.where(move, t - lengths, 0))
    return array, side


def detect_lengths(array: np.ndarray) -> tuple[np.ndarray, str, np.ndarray]:
    """Lengths from the zeros at either end (files without lengths): (lengths, side, start)."""
    side, pad, lengths = padding_spans(array)
    return lengths, side, np.where(lengths > 0, pad, 0)  # content starts after the leading zeros


# --------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------

def _features(part: dict, modality: str, path, split_name: str) -> np.ndarray:
    key = f"{split_name}/{modality}"
    array = part[modality]
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise DataError(path, "features are not a numeric array", key=key, expected="float ndarray (N, T, D)",
                        found=getattr(array, "dtype", type(array).__name__))
    if array.ndim != 3:
        raise DataError(path, "wrong rank", key=key, expected="(N, T, D)", found=f"shape {array.shape}")
    return array


def _labels(part: dict, key: str, n: int, path, split_name: str) -> np.ndarray:
    labels = np.asarray(part[key])
    if labels.dtype.kind not in "fiu" or labels.reshape(labels.shape[0], -1).shape != (labels.shape[0], 1):
        raise DataError(path, "labels are not one number per sample", key=f"{split_name}/{key}",
                        expected="(N,) floats", found=f"{labels.dtype} shape {labels.shape}")
    if labels.shape[0] != n:
        raise DataError(path, "N differs between features and labels", key=f"{split_name}/{key}",
                        expected=f"{n}", found=f"{labels.shape[0]}")
    return labels.reshape(n).astype(np.float32)


def _strings(values, n: int, split_name: str, key: str, path) -> np.ndarray:
    if values is None:
        return np.array([f"{split_name}_{i}" for i in range(n)])
    values = np.asarray(values, dtype=object).reshape(-1)
    if values.shape[0] != n:
        raise DataError(path, f"N differs between {key} and the labels", key=f"{split_name}/{key}",
                        expected=str(n), found=str(values.shape[0]))
    return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values])


def read_mmsa_pickle(path: str | Path, dataset: str | None = None, raw=None) -> DataBundle:
    """Load an MMSA processed feature pickle into a canonical :class:`DataBundle`.

    ``dataset`` ('mosi', 'mosei', 'sims') is inferred from the folder names when not given
    (MMSA's files are called ``aligned_50.pkl`` etc. inside ``MOSI/Processed/``). ``raw``:
    the already unpickled object (so a caller that sniffed the layout does not read a
    multi-GB file twice).
    """
    path = Path(path)
    dataset = dataset or dataset_from_path(path)
    if dataset is None:
        raise DataError(path, "cannot tell the data set from the path; pass dataset=",
                        expected="MOSI, MOSEI or SIMS in a folder or file name", found=str(path))
    check_dataset_name(dataset)
    if not dataset_info(dataset).mmsa_files:
        raise DataError(path, "MMSA publishes no processed files of this data set", key="dataset",
                        expected=" or ".join(mmsa_datasets()), found=dataset)
    raw = safe_load_pickle(path) if raw is None else raw
    if not is_mmsa_layout(raw):
        raise DataError(path, "not an MMSA feature pickle", key="train/regression_labels",
                        expected="{'train','valid','test'} splits with regression_labels",
                        found=", ".join(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__)
    meta: dict = {"format": "mmsa_pkl", "path": str(path), "nonfinite": {}, "ignored_keys": [], "padding": {},
                  "lengths_from": {}}
    if "metadata" in raw:  # what `cmn featurize` records (MMSA's own files have none)
        try:
            meta["file_metadata"] = json.loads(raw["metadata"])
        except (TypeError, ValueError):
            raise DataError(path, "metadata is not a JSON string", key="metadata") from None
    warn: list[str] = []
    splits = {}
    for split_name in SPLITS:
        part = raw.get(split_name)
        if not isinstance(part, dict):
            raise DataError(path, "missing split" if part is None else "split is not a dict", key=split_name,
                            expected="train, valid and test dicts", found=", ".join(map(str, raw)))
        if "text" not in part:
            raise DataError(path, "missing text features", key=f"{split_name}/text",
                            expected="text (N, T, D) and regression_labels", found=", ".join(map(str, part)))
        arrays = {m: _features(part, m, path, split_name) for m in MODALITIES if m in part}
        n = arrays["text"].shape[0]
        labels = _labels(part, LABEL_KEY, n, path, split_name)
        features, lengths = {}, {}
        for m, array in arrays.items():
            key = f"{split_name}/{m}"
            if array.shape[0] != n:
                raise DataError(path, "N differs across modalities and labels", key=key,
                                expected=f"{n} (as the labels)", found=str(array.shape[0]))
            array, meta["nonfinite"][key] = replace_nonfinite(array)
            features[m] = array
        t_text = features["text"].shape[1]
        if "text_bert" in part:
            bert = np.asarray(part["text_bert"])
            if bert.ndim != 3 or bert.shape[0] != n or bert.shape[1] != 3 or bert.shape[2] != t_text:
                raise DataError(path, "text_bert has the wrong shape", key=f"{split_name}/text_bert",
                                expected=f"({n}, 3, {t_text}): token ids, mask, segment ids",
                                found=f"shape {bert.shape}")
            length, side, start = mask_lengths(bert[:, 1, :], path, f"{split_name}/text_bert")
            source = "text_bert mask"
        elif "text_lengths" in part:
            length = _as_lengths(part["text_lengths"], n, t_text, path, f"{split_name}/text_lengths", warn)
            features["text"], side = place_with_lengths(features["text"], length, path, f"{split_name}/text", warn)
            start, source = np.zeros(n, np.int64), "text_lengths"
        else:
            length, side, start = detect_lengths(features["text"])
            source = "padding"
        features["text"] = shift_left_padded_to_right(features["text"], start)
        lengths["text"], meta["padding"][f"{split_name}/text"] = length, side
        meta["lengths_from"][f"{split_name}/text"] = source
        aligned = len({a.shape[1] for a in features.values()}) == 1
        for m in features:
            if m == "text":
                continue
            key, t = f"{split_name}/{m}", features[m].shape[1]
            if f"{m}_lengths" in part:
                stated = _as_lengths(part[f"{m}_lengths"], n, t, path, f"{split_name}/{m}_lengths", warn)
                features[m], side = place_with_lengths(features[m], stated, path, key, warn)
                lengths[m], source = stated, f"{m}_lengths"
            elif aligned:  # MMSA's aligned models use the text length for every modality
                features[m], side = place_with_lengths(features[m], lengths["text"], path, key, warn)
                lengths[m], source = lengths["text"].copy(), "the text length (aligned file)"
            else:
                lengths[m], side, start = detect_lengths(features[m])
                features[m], source = shift_left_padded_to_right(features[m], start), "padding"
            meta["padding"][key], meta["lengths_from"][key] = side, source
        extras = {}
        if "raw_text" in part:
            extras["raw_text"] = _strings(part["raw_text"], n, split_name, "raw_text", path)
        for letter, key in SIMS_UNIMODAL.items():
            if key in part:
                extras[f"labels_{letter}"] = _labels(part, key, n, path, split_name)
        meta["ignored_keys"] += [f"{split_name}/{k}" for k in part if k not in USED_KEYS]
        ids = _strings(part.get("id"), n, split_name, "id", path)
        splits[split_name] = Split(split_name, features, lengths, labels, ids, extras)
        meta.setdefault("aligned", aligned)
    mixed = sorted(k for k, side in meta["padding"].items() if side == "mixed")
    if mixed:
        warn.append(f"mixed padding in {', '.join(mixed)} (some samples padded at the start, some at the end)")
    if warn:
        warnings.warn(DataWarning(f"{path}: " + "; ".join(warn)), stacklevel=2)
    meta["warnings"] = warn
    bundle = DataBundle(dataset, splits, meta)
    validate_bundle(bundle, path)
    return bundle
