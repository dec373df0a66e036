"""MulT pickles (``{mosei_senti,iemocap,mosi}_data[_noalign].pkl``), read safely.

Format (yaohungt/Multimodal-Transformer, ``src/dataset.py``): a dict
``{'train'|'valid'|'test': {'text': (N,T,300), 'audio': (N,T,74), 'vision': (N,T,35),
'labels': ..., 'id': ...}}``. Sequences are **left**-padded with zero rows. Sentiment
labels are (N,1,1) in [-3, 3]; IEMOCAP labels are (N,4,2): per emotion (neutral, happy,
sad, angry) a one-hot [absent, present].

Security: a pickle can name any Python callable and have it called while loading.
:class:`RestrictedUnpickler` admits only the few numpy reconstruction functions that
arrays need; anything else (``os.system``, ``builtins.eval``, ...) is refused before it
is imported, so loading never runs code from the file.
"""
from __future__ import annotations

import importlib
import json
import pickle
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .errors import REAL_DATA_HINT, DataError, DataWarning
from ..config import MODALITIES, dataset_info, dataset_named_in, mult_datasets
from .split import SPLITS, DataBundle, Split, check_dataset_name, replace_nonfinite, validate_bundle

# (module, name) pairs that numpy arrays and scalars need to be rebuilt, and nothing more.
# numpy 2 moved numpy.core to numpy._core; files written by numpy 1 name the old path.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles store raw bytes; returns bytes only
    ("collections", "OrderedDict"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the numpy allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy array/scalar reconstruction globals."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(f"{module}.{name}")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core", 1)
        return getattr(importlib.import_module(module), name)


def safe_load_pickle(path: str | Path):
    """Unpickle ``path`` admitting only numpy arrays and plain containers."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found", hint=REAL_DATA_HINT)
    try:
        # latin1 lets Python-2 pickles of numpy arrays load (their raw bytes are str there).
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="latin1").load()
    except UnsafePickleError as error:
        raise DataError(path, "refused to load: the pickle references a Python callable that is "
                        "not part of a numpy array, so loading it could run code",
                        key=str(error), expected="only numpy arrays and plain containers",
                        found=f"global {error}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, MemoryError) as error:
        raise DataError(path, "truncated or not a pickle", expected="a MulT data pickle",
                        found=f"{type(error).__name__}: {error}"[:200]) from None


def dataset_from_filename(path: str | Path) -> str | None:
    """'mosei_senti_data_noalign.pkl' -> 'mosei'; None when the name does not tell."""
    return dataset_named_in(Path(path).name, mult_datasets())


def leading_padding(array: np.ndarray) -> np.ndarray:
    """Number of all-zero steps before the first non-zero step, per sample: (N, T, D) -> (N,)."""
    nonzero_step = np.any(array != 0, axis=2)  # (N, T)
    has_any = nonzero_step.any(axis=1)
    first = nonzero_step.argmax(axis=1)
    return np.where(has_any, first, array.shape[1])


def padding_spans(array: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """Which side ``array`` (N, T, D) is padded on, and each sample's padding before and its
    true length after that: ``(side, pad, length)``.

    A sample's all-zero steps at the start are "leading", at the end "trailing". Side
    'left' (MulT's convention): some samples have leading zeros, none has trailing ones;
    'right': the reverse; 'none': every sample is full length; 'mixed': anything else (some
    samples on each side, or zeros at both ends of one sample). Trailing zeros are never
    read as content: under 'right' and 'mixed' a sample's true length ends before them.
    Under 'left' and 'none' the length is everything after the leading zeros, as MulT's
    loader has it. An all-zero sample has length 0.
    """
    t = array.shape[1]
    lead = leading_padding(array)
    trail = leading_padding(array[:, ::-1])
    empty = lead >= t
    left, right = (lead > 0) & (trail == 0) & ~empty, (trail > 0) & (lead == 0)
    both = (lead > 0) & (trail > 0) & ~empty
    if both.any() or (left.any() and right.any()):
        side = "mixed"
    elif right.any():
        side = "right"
    else:
        side = "left" if left.any() else "none"
    cut = trail if side in ("right", "mixed") else np.zeros_like(trail)
    length = np.where(empty, 0, t - lead - cut)
    return side, np.where(empty, t, lead), length.astype(np.int64)


def shift_left_padded_to_right(array: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Move each sample's valid steps to the front: row i becomes array[i, pad[i]:] + zeros."""
    n, t = array.shape[:2]
    source = np.arange(t)[None, :] + pad[:, None]  # where step j of the output comes from
    valid = source < t
    out = np.take_along_axis(array, np.minimum(source, t - 1).reshape(n, t, *([1] * (array.ndim - 2))),
                             axis=1)
    out[~valid] = 0
    return out


def _ids_to_strings(raw, n: int, split: str) -> np.ndarray:
    if raw is None:
        return np.array([f"{split}_{i}" for i in range(n)])
    raw = np.asarray(raw)

    def text(x):
        return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)

    if raw.ndim == 1:
        return np.array([text(x) for x in raw])
    return np.array(["|".join(text(x) for x in row) for row in raw.reshape(raw.shape[0], -1)])


def _labels_from_mult(dataset: str, labels, path, key: str) -> np.ndarray:
    if not isinstance(labels, np.ndarray):
        raise DataError(path, "labels are not a numpy array", key=key, expected="ndarray",
                        found=type(labels).__name__)
    info = dataset_info(dataset)
    if info.emotions:
        if labels.ndim != 3 or labels.shape[1:] != (len(info.classes), 2):
            raise DataError(path, f"{dataset.upper()} labels have the wrong shape", key=key,
                            expected=f"(N, {len(info.classes)}, 2)", found=f"shape {labels.shape}")
        if not (np.isin(labels, (0, 1)).all() and (labels.sum(axis=2) == 1).all()):
            raise DataError(path, f"{dataset.upper()} labels must be one-hot [absent, present] per emotion",
                            key=key, expected="each (emotion) row one of [1,0] or [0,1]",
                            found="other values")
        return labels[:, :, 1].astype(np.int64)
    if labels.ndim > 1 and any(s != 1 for s in labels.shape[1:]):
        raise DataError(path, "sentiment labels have the wrong shape", key=key,
                        expected="(N, 1, 1) or (N,)", found=f"shape {labels.shape}")
    return labels.reshape(labels.shape[0]).astype(np.float32)


def read_mult_pickle(path: str | Path, dataset: str | None = None, raw=None) -> DataBundle:
    """Load a MulT data pickle into a canonical :class:`DataBundle`.

    ``dataset`` is inferred from the file name when not given. Lengths are recovered from
    the padding: a step is padding when *every* modality is zero there (for aligned files)
    or, for unaligned files where modalities have different T, when that modality is zero
    there; only runs at the ends count, so an all-zero word inside a sentence (a GloVe 'sp'
    pause) stays a word. The side is detected per split and modality
    (:func:`padding_spans`, recorded in ``meta['padding']``): MulT's own files are
    left-padded, files written by other tools are often right-padded, and trailing padding
    is never read as content. Mixed padding gets one :class:`DataWarning` naming the file
    and the keys. ``raw``: the already unpickled object, if the caller has it.
    """
    path = Path(path)
    dataset = dataset or dataset_from_filename(path)
    if dataset is None:
        raise DataError(path, "cannot tell the data set from the file name; pass dataset=",
                        expected="mosei, mosi or iemocap in the name", found=path.name)
    check_dataset_name(dataset)
    raw = safe_load_pickle(path) if raw is None else raw
    if not isinstance(raw, dict):
        raise DataError(path, "top level is not a dict", expected="{'train','valid','test'} dict",
                        found=type(raw).__name__)
    meta: dict = {"format": "mult_pkl", "path": str(path), "nonfinite": {}, "ignored_keys": [], "padding": {}}
    if "metadata" in raw:
        try:
            meta["file_metadata"] = json.loads(raw["metadata"])
        except (TypeError, ValueError):
            raise DataError(path, "metadata is not a JSON string", key="metadata") from None
    splits = {}
    for split_name in SPLITS:
        if split_name not in raw:
            raise DataError(path, "missing split", key=split_name, expected="train, valid and test",
                            found=", ".join(map(str, raw)) or "nothing")
        part = raw[split_name]
        if not isinstance(part, dict):
            raise DataError(path, "split is not a dict", key=split_name, expected="dict",
                            found=type(part).__name__)
        for required in (*MODALITIES, "labels"):
            if required not in part:
                raise DataError(path, "missing modality or labels", key=f"{split_name}/{required}",
                                expected="text, audio, vision and labels",
                                found=", ".join(map(str, part)))
        features = {}
        for modality in MODALITIES:
            key = f"{split_name}/{modality}"
            array = part[modality]
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
                raise DataError(path, "features are not a numeric array", key=key,
                                expected="float ndarray (N, T, D)",
                                found=getattr(array, "dtype", type(array).__name__))
            if array.ndim != 3:
                raise DataError(path, "wrong rank", key=key, expected="(N, T, D)",
                                found=f"shape {array.shape}")
            features[modality], counts = replace_nonfinite(array)
            meta["nonfinite"][key] = counts
        labels = _labels_from_mult(dataset, part["labels"], path, f"{split_name}/labels")
        n = labels.shape[0]
        for modality, array in features.items():
            if array.shape[0] != n:
                raise DataError(path, "N differs across modalities and labels",
                                key=f"{split_name}/{modality}", expected=f"{n} (as the labels)",
                                found=str(array.shape[0]))
        aligned = len({a.shape[1] for a in features.values()}) == 1
        if aligned:  # a step is padding when every modality is zero there
            joint = padding_spans(np.concatenate([features[m] for m in MODALITIES], axis=2))
            spans = {m: joint for m in MODALITIES}
        else:
            spans = {m: padding_spans(features[m]) for m in MODALITIES}
        pads = {m: spans[m][1] for m in MODALITIES}
        lengths = {m: spans[m][2] for m in MODALITIES}
        meta["padding"].update({f"{split_name}/{m}": spans[m][0] for m in MODALITIES})
        # valid steps first; what follows a sample's length is its trailing zeros, if any
        features = {m: shift_left_padded_to_right(features[m], pads[m]) for m in MODALITIES}
        extras = {}
        for key, value in part.items():
            if key in (*MODALITIES, "labels", "id"):
                continue
            if key == "cue_mask" and isinstance(value, np.ndarray) and value.shape == features["text"].shape[:2]:
                extras[key] = shift_left_padded_to_right(value, pads["text"])
            elif key.startswith(("bayes_", "true_")) and isinstance(value, np.ndarray) and value.shape[0] == n:
                extras[key] = value
            else:
                meta["ignored_keys"].append(f"{split_name}/{key}")
        ids = _ids_to_strings(part.get("id"), n, split_name)
        splits[split_name] = Split(split_name, features, lengths, labels, ids, extras)
        meta.setdefault("aligned", aligned)
    mixed = sorted(k for k, side in meta["padding"].items() if side == "mixed")
    if mixed:
        warnings.warn(DataWarning(
            f"{path}: mixed padding in {', '.join(mixed)} (some samples padded at the start, some at the "
            "end, or both); each sample's all-zero steps at either end were read as padding"), stacklevel=2)
    bundle = DataBundle(dataset, splits, meta)
    validate_bundle(bundle, path)
    return bundle


def write_mult_pickle(path: str | Path, splits: dict[str, dict[str, np.ndarray]],
                      metadata: dict | None = None) -> Path:
    """Write MulT-format splits (already left-padded numpy arrays) to ``path``.

    ``metadata`` goes to a top-level 'metadata' JSON string, which MulT's own loader never
    reads (it indexes only the split names), so the file stays a valid MulT pickle.
    """
    path = Path(path)
    payload: dict = {name: dict(part) for name, part in splits.items()}
    if metadata is not None:
        payload["metadata"] = json.dumps(metadata)
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            pickle.dump(payload, f, protocol=4)
    return atomic_write(path, write)
