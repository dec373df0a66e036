"""One entry point for every data source: :func:`load_dataset`.

``source='synthetic'`` (the default) generates the stand-in on first use under
``data/synthetic/`` and reads it back through the real-format loaders; any other value is
a path to real files: a MulT pickle, an MMSA processed pickle (told apart by their keys),
or a folder of SDK ``.csd`` files or of either pickle. The
canonical result is cached as HDF5 under ``data/cache/``, keyed by a SHA-256 of the source
files' bytes, the loader version and the loader options, so a changed source never serves
a stale cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..atomic import set_aside
from .csd import build_word_aligned
from .errors import REAL_DATA_HINT, DataError
from .mmsa_pkl import check_published, file_names, is_mmsa_layout, read_mmsa_pickle
from .mult_pkl import dataset_from_filename, read_mult_pickle, safe_load_pickle
from .split import DataBundle, check_dataset_name, load_bundle, save_bundle
from ..config import dataset_info, synthetic_datasets
from . import synthetic

# 2: padding side detected (right-padded MulT-layout files). MMSA pickles needed no bump: no
# cache of one could exist before
LOADER_VERSION = 2


def checkout() -> Path | None:
    """The source checkout this package runs from (an editable install), else None."""
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "pyproject.toml").exists() and (candidate / "cmnlib").is_dir():
        return candidate
    return None


def project_root() -> Path:
    """The folder everything is written under by default: ``$CMN_HOME`` when set, else the
    checkout this package runs from (editable install), else the current folder (a plain
    ``pip install``). Under it: ``data/`` (sets, caches; runs in ``data/runs``) and
    ``reports/``."""
    if os.environ.get("CMN_HOME"):
        return Path(os.environ["CMN_HOME"]).expanduser().absolute()
    return checkout() or Path.cwd()


def data_dir() -> Path:
    """Where generated and cached data go: ``$CMN_DATA_DIR``, else ``<project root>/data``
    (:func:`project_root`)."""
    if os.environ.get("CMN_DATA_DIR"):
        return Path(os.environ["CMN_DATA_DIR"]).expanduser().absolute()
    return project_root() / "data"


def reports_dir() -> Path:
    """Where ``reproduce`` and ``bench`` write by default: ``<project root>/reports``."""
    return project_root() / "reports"


def synthetic_dir(dataset: str, scale: str, seed: int) -> Path:
    return data_dir() / "synthetic" / f"{dataset}-{scale}-seed{seed}"


def ensure_synthetic(dataset: str, scale: str = "quick", seed: int = 0, progress: bool = False) -> Path:
    """Generate the synthetic set unless an identical one (same generator version) exists.

    Generation writes into a temporary folder that replaces the target only when complete,
    so an interrupted run never leaves a half-written data set behind.
    """
    target = synthetic_dir(dataset, scale, seed)
    stamp = target / "SYNTHETIC.json"
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()).get("generator_version") == synthetic.GENERATOR_VERSION:
                return target
        except ValueError:
            pass
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        synthetic.generate(dataset, tmp, scale=scale, seed=seed, progress=progress)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def file_digests(paths: list[Path]) -> dict[str, str]:
    """{file name: SHA-256 of its bytes}, in name order."""
    digests = {}
    for path in sorted(paths, key=lambda p: p.name):
        with open(path, "rb") as f:
            digests[path.name] = hashlib.file_digest(f, "sha256").hexdigest()
    return digests


def hash_files(paths: list[Path], digests: dict[str, str] | None = None) -> str:
    """SHA-256 over the names and bytes of ``paths`` (sorted by name)."""
    digests = digests or file_digests(paths)
    digest = hashlib.sha256()
    for name in sorted(digests):
        digest.update(name.encode())
        digest.update(bytes.fromhex(digests[name]))
    return digest.hexdigest()


def read_pickle(path: str | Path, dataset: str | None = None):
    """A MulT or an MMSA pickle, told apart by its keys (MMSA's splits hold
    ``regression_labels``), read by the matching reader; the file is unpickled once."""
    raw = safe_load_pickle(path)
    if is_mmsa_layout(raw):
        return read_mmsa_pickle(path, dataset, raw=raw)
    return read_mult_pickle(path, dataset, raw=raw)


def find_mmsa_file(folder: Path, dataset: str) -> Path | None:
    """MMSA's file for ``dataset`` in ``folder``, ``folder/Processed`` or
    ``folder/<DATASET>/Processed`` (aligned_50 first: CMN reads word-aligned data)."""
    for base in (folder, folder / "Processed", folder / dataset.upper() / "Processed"):
        for name in file_names():
            if (base / name).is_file():
                return base / name
    return None


def detect_format(path: Path, dataset: str) -> tuple[str, Path]:
    """('pkl', file) or ('csd', folder) for a user-given path."""
    if not path.exists():
        raise DataError(path, "file or folder not found", hint=REAL_DATA_HINT)
    if path.is_file():
        if path.suffix == ".pkl":
            return "pkl", path
        if path.suffix == ".csd":
            return "csd", path.parent
        raise DataError(path, "unsupported file type", expected=".pkl (MulT or MMSA) or a folder of .csd",
                        found=path.suffix or "no suffix")
    # A file named for the data set comes first: .csd files do not say which data set they
    # hold, so one folder can serve CMU-MOSEI from its SDK files, IEMOCAP from its MulT
    # pickle and MOSI from MMSA's MOSI/Processed/ beside them.
    pickles = [p for p in sorted(path.glob("*.pkl")) if dataset_from_filename(p) == dataset]
    if pickles:
        aligned = [p for p in pickles if "noalign" not in p.name]
        return "pkl", (aligned or pickles)[0]
    mmsa = find_mmsa_file(path, dataset)
    if mmsa is not None:
        return "pkl", mmsa
    if any(path.glob("*.csd")):
        return "csd", path
    raise DataError(path, f"no {dataset} data found in the folder",
                    expected=f".csd files, a {dataset} MulT pickle or an MMSA Processed/*.pkl", found="none",
                    hint=REAL_DATA_HINT)


def load_dataset(dataset: str, source: str | Path = "synthetic", *, scale: str = "quick",
                 seed: int = 0, fmt: str | None = None, seq_len: int = 50, keep: str = "last",
                 cache: bool = True) -> DataBundle:
    """Load ``dataset`` (a name of the registry, :data:`cmnlib.config.DATASETS`: 'mosei',
    'mosi', 'iemocap', 'sims') from ``source`` as a canonical bundle.

    Parameters
    ----------
    source: 'synthetic' (the stand-in, for the data sets that have one) or a path to real
        files: a MulT pickle, an MMSA processed pickle (``aligned_50.pkl``,
        ``unaligned_50.pkl``, ``unaligned_39.pkl``, or a ``cmn featurize`` output), a folder
        of SDK ``.csd`` files, or a folder holding one of those pickles (MMSA's
        ``<NAME>/Processed/`` layout included).
    scale, seed: which synthetic set ('quick' or 'paper'); ignored for real files.
    fmt: the synthetic copy to read, one of the data set's
        :attr:`~cmnlib.config.DatasetInfo.synthetic_formats` (default: the first: MOSEI from
        ``.csd``, IEMOCAP from its MulT pickle, so the default runs use both loaders); for
        real files the format is detected.
    seq_len, keep: word-aligned length and which words to keep when building from ``.csd``.
    cache: read/write the HDF5 cache under ``data/cache``.
    """
    info = dataset_info(check_dataset_name(dataset))
    if str(source) == "synthetic":
        if not info.synthetic_formats:
            raise DataError(None, "no synthetic stand-in for this data set", key=dataset,
                            expected=" or ".join(synthetic_datasets()), found=dataset)
        fmt = fmt or info.synthetic_formats[0]
        if fmt not in info.synthetic_formats:
            raise DataError(None, f"the synthetic {dataset.upper()} set is not written as {fmt}", key=dataset,
                            expected=" or ".join(f"fmt={f!r}" for f in info.synthetic_formats), found=f"fmt={fmt!r}")
        folder = ensure_synthetic(dataset, scale, seed)
        path = folder if fmt == "csd" else folder / info.mult_file
        label = f"SYNTHETIC {dataset.upper()}-like stand-in (scale={scale}, seed={seed}, read from {fmt})"
    else:
        fmt, path = detect_format(Path(source), dataset)
        label = None
    files = sorted(path.glob("*.csd")) if fmt == "csd" else [path]
    digests = file_digests(files)
    source_hash = hash_files(files, digests)
    options = {"fmt": fmt, "seq_len": seq_len, "keep": keep, "loader": LOADER_VERSION}
    key = hashlib.sha256((source_hash + json.dumps(options, sort_keys=True)).encode()).hexdigest()[:16]
    cache_path = data_dir() / "cache" / f"{dataset}-{fmt}-{key}.h5"
    if cache and cache_path.exists():
        try:
            bundle = load_bundle(cache_path)
        except (DataError, OSError, KeyError, ValueError) as error:  # derived: set aside and rebuilt below
            set_aside(cache_path, f"unreadable data cache ({str(error).splitlines()[0][:200]})")
        else:
            bundle.meta["cache_path"] = str(cache_path)
            return bundle
    if fmt == "csd":
        bundle = build_word_aligned(path, dataset, seq_len=seq_len, keep=keep)
    else:
        bundle = read_pickle(path, dataset)
    bundle.meta["source_hash"] = source_hash
    bundle.meta["synthetic"] = label is not None
    if label is None:
        label = real_source_label(bundle, path, digests)
    bundle.meta["source_label"] = label
    if cache:
        save_bundle(bundle, cache_path)
        bundle.meta["cache_path"] = str(cache_path)
    return bundle


FORMAT_NAMES = {"mult_pkl": "MulT pickle", "mmsa_pkl": "MMSA pickle", "csd": "SDK .csd"}


def real_source_label(bundle: DataBundle, path: Path, digests: dict[str, str]) -> str:
    """'REAL MOSI from aligned_50.pkl (MMSA pickle, sha256 d3994fd25681, MMSA's published
    file)': the data set, the file, its format and hash, and for a file named like one of
    MMSA's published files whether its SHA-256 matches (also kept in ``meta['published']``)."""
    fmt = FORMAT_NAMES.get(bundle.meta.get("format"), bundle.meta.get("format", "?"))
    if len(digests) == 1:
        (digest,) = digests.values()
        bundle.meta["sha256"] = digest
        where = f"{path.name} ({fmt}, sha256 {digest[:12]}"
        published = check_published(path, digest)
        if published is not None:
            bundle.meta["published"] = published
            where += (", MMSA's published file" if published["match"]
                      else f", NOT the published {published['published_as']}: its SHA-256 differs")
        where += ")"
    else:
        where = f"{path.name}/ ({len(digests)} {fmt} files, sha256 {hash_files([], digests)[:12]})"
    written = bundle.meta.get("file_metadata", {})
    if written.get("written_by") == "cmn featurize":
        where += f", text only: {written['encoder']} word features by cmn featurize"
    return f"REAL {bundle.dataset.upper()} from {where}"


def bayes_ceilings(bundle: DataBundle) -> dict | None:
    """The synthetic set's Bayes ceilings (None for real data)."""
    return bundle.meta.get("file_metadata", {}).get("bayes_ceilings")
