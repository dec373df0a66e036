"""``cmn inspect PATH``: validate a data file or folder and describe it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .csd import find_sequences, read_csd
from .errors import DataError
from .mult_pkl import dataset_from_filename
from .sources import file_digests, find_mmsa_file, read_pickle, real_source_label
from ..config import DEFAULT_DATASET, dataset_info, mmsa_datasets
from .split import SPLITS, DataBundle, load_bundle
from .csd import build_word_aligned


# how the side a MulT-layout file is padded on reads (``meta['padding']``; other formats: none)
PADDING_TEXT = {"left": ", file padded on the left", "right": ", file padded on the right",
                "none": ", file padding: none", "mixed": ", file padding: mixed"}


def uninformative_modalities(bundle: DataBundle, split: str = "train") -> dict[str, str]:
    """Modalities whose features on ``split`` can carry no information, with why: every
    value within the true lengths zero, or every step of every sample the same vector. A
    model that reads them learns nothing from them, so no fusion claim can rest on them."""
    found = {}
    part = bundle[split]
    for modality, array in part.features.items():
        lengths = np.asarray(part.lengths[modality])
        valid = np.arange(array.shape[1])[None, :] < lengths[:, None]
        steps = array[valid] if valid.any() else array.reshape(-1, array.shape[-1])[:0]
        if steps.size == 0 or not np.any(steps):
            found[modality] = "every value is 0"
        elif np.all(steps == steps[:1]):
            found[modality] = "every step of every sample is the same vector"
    return found


def describe_bundle(bundle: DataBundle) -> list[str]:
    """Human-readable lines: splits, shapes, dtypes, lengths, labels, non-finite counts."""
    lines = [f"dataset: {bundle.dataset}", f"format: {bundle.meta.get('format')}"]
    if bundle.meta.get("file_metadata", {}).get("generator"):
        meta = bundle.meta["file_metadata"]
        lines.append(f"SYNTHETIC stand-in: generator v{meta['generator_version']}, "
                     f"scale={meta['scale']}, seed={meta['seed']}")
    for name in SPLITS:
        split = bundle[name]
        lines.append(f"{name}: {len(split)} samples")
        for modality, array in split.features.items():
            lengths = split.lengths[modality]
            q1, median, q3 = np.percentile(lengths, [25, 50, 75])
            side = bundle.meta.get("padding", {}).get(f"{name}/{modality}")
            lines.append(f"  {modality:<6} {str(array.shape):<18} {array.dtype}  "
                         f"length min/q1/median/q3/max {lengths.min()}/{q1:g}/{median:g}/{q3:g}/{lengths.max()}"
                         f" (mean {lengths.mean():.1f})" + PADDING_TEXT.get(side, ""))
        info = dataset_info(bundle.dataset)
        if info.emotions:
            counts = split.labels.sum(axis=0)
            lines.append("  labels " + ", ".join(f"{e} {int(c)}" for e, c in zip(info.classes, counts)))
        else:
            y = split.labels
            for key in ("labels_T", "labels_A", "labels_V"):
                if key in split.extras:
                    lines.append(f"  {key} mean {split.extras[key].mean():.3f} (CH-SIMS unimodal label)")
            lines.append(f"  labels mean {y.mean():.3f} std {y.std():.3f} min {y.min():.2f} "
                         f"max {y.max():.2f}; non-negative {100 * (y >= 0).mean():.1f}%, "
                         f"zero {100 * (y == 0).mean():.1f}%")
    nonfinite = {k: v for k, v in bundle.meta.get("nonfinite", {}).items() if any(v.values())}
    if nonfinite:
        lines.append("non-finite values replaced by 0:")
        lines += [f"  {k}: " + ", ".join(f"{kind} {n}" for kind, n in v.items() if n)
                  for k, v in sorted(nonfinite.items())]
    else:
        lines.append("non-finite values: none")
    for key, value in bundle.meta.get("counts", {}).items():
        if value:
            lines.append(f"{key.replace('_', ' ')}: {value}")
    lengths_from = bundle.meta.get("lengths_from", {})
    if lengths_from:
        by_source: dict[str, list[str]] = {}
        for key, source in lengths_from.items():
            by_source.setdefault(source, []).append(key.split("/")[1])
        lines.append("lengths from: " + "; ".join(f"{source} ({', '.join(dict.fromkeys(mods))})"
                                                  for source, mods in by_source.items()))
    for warning in bundle.meta.get("warnings", []):
        lines.append(f"WARNING: {warning}")
    for modality, why in uninformative_modalities(bundle).items():
        lines.append(f"WARNING: {modality} carries no information ({why} in the train split): a model learns "
                     f"nothing from it, and no fusion claim can rest on it")
    if bundle.meta.get("ignored_keys"):
        ignored = dict.fromkeys(k.split("/", 1)[-1] for k in bundle.meta["ignored_keys"])
        lines.append("ignored keys: " + ", ".join(ignored))
    return lines


def describe_csd(path: Path) -> list[str]:
    sequence = read_csd(path)
    features = [f for f, _ in sequence.data.values()]
    rows = sum(f.shape[0] for f in features)
    dims = {f.shape[1:] for f in features}
    dtypes = {str(f.dtype) for f in features}
    nonfinite = {"nan": 0, "posinf": 0, "neginf": 0}
    for f in features:
        if f.dtype.kind == "f":
            nonfinite["nan"] += int(np.isnan(f).sum())
            nonfinite["posinf"] += int(np.isposinf(f).sum())
            nonfinite["neginf"] += int(np.isneginf(f).sum())
    return ["format: CMU-MultimodalSDK computational sequence",
            f"root name: {sequence.root_name}", f"videos: {len(sequence.data)}, rows: {rows}",
            f"feature shape(s): {sorted(dims)}, dtype(s): {sorted(dtypes)}",
            "non-finite: " + ", ".join(f"{k} {v}" for k, v in nonfinite.items()),
            f"metadata keys: {len(sequence.metadata)}"]


def inspect_path(path: str | Path, dataset: str | None = None) -> list[str]:
    """Describe ``path``; raises :class:`DataError` if it cannot be used."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file or folder not found")
    if path.is_file() and path.suffix == ".csd":
        return describe_csd(path)
    if path.is_file() and path.suffix in (".h5", ".hdf5"):
        return describe_bundle(load_bundle(path))
    if path.is_file():
        return describe_pickle(path, dataset)
    sequences = find_sequences(path)
    if sequences:
        lines = [f"folder of {len(sequences)} computational sequences: " + ", ".join(sequences)]
        return lines + describe_bundle(build_word_aligned(path, dataset or DEFAULT_DATASET))
    pickles = [p for p in sorted(path.glob("*.pkl")) if dataset is None or dataset_from_filename(p) == dataset]
    if not pickles:
        mmsa = [find_mmsa_file(path, d) for d in ([dataset] if dataset else mmsa_datasets())]
        pickles = sorted({p for p in mmsa if p is not None})
    if not pickles:
        raise DataError(path, "no supported data in the folder",
                        expected=".csd files, MulT .pkl or MMSA Processed/*.pkl", found="none of them")
    lines = []
    for pickle_path in pickles:
        lines += [f"== {pickle_path.name}"] + describe_pickle(pickle_path, dataset)
    return lines


def describe_pickle(path: Path, dataset: str | None) -> list[str]:
    """A MulT or MMSA pickle: its source line (format, SHA-256, and for MMSA's published
    files whether the hash matches), then :func:`describe_bundle`."""
    bundle = read_pickle(path, dataset)
    label = real_source_label(bundle, path, file_digests([path]))
    return [f"source: {label}"] + describe_bundle(bundle)
