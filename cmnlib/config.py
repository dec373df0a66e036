"""The registry: every decision that more than one place needs, stated once.

* **Data sets**: the feature sizes of the standard files, the default head, the headline
  metric (MMSA's ``KeyEval``), the class names.
* **Precision**: the names ``--precision`` accepts.
* **Profiles**: ``quick`` (small models, minutes on two CPU cores) and ``paper`` (the
  paper's settings): the model sizes, the training settings and the seeds per table row.
* **Models**: the names ``build_model`` accepts and their display labels.
* **Modalities**: the letters L, A, V and the ``--set KEY=VALUE`` syntax for config fields.
* **The machine's share**: the usable cores (the CPU affinity within a container's CPU
  quota), the memory, and what each of several processes or pools that run at once gets.

The command line, the trainer, the tables, the notebooks and the benchmark read these.
Plain data, two small parsers and the share of the machine: this module imports nothing
from cmnlib (nor torch), so every layer may import it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------
# Modalities
# --------------------------------------------------------------------------------------
MODALITIES = ("text", "audio", "vision")
LETTER_TO_MODALITY = {"L": "text", "A": "audio", "V": "vision"}


def parse_modalities(spec: str) -> tuple[str, ...]:
    """'LA' -> ('text', 'audio'); order follows L, A, V whatever the order given."""
    letters = spec.upper()
    bad = [c for c in letters if c not in LETTER_TO_MODALITY]
    if not letters or bad or len(set(letters)) != len(letters):
        raise ValueError(f"modalities must be a non-empty subset of 'LAV' without repeats, got {spec!r}")
    return tuple(LETTER_TO_MODALITY[c] for c in "LAV" if c in letters)


# --------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------
IEMOCAP_EMOTIONS = ("neutral", "happy", "sad", "angry")  # MulT's label order


@dataclass(frozen=True)
class DatasetInfo:
    """What the code needs to know about a data set before reading any file: every fact that
    depends on which data set it is lives here, so that adding a corpus is one entry.

    The feature sizes are those of the standard files (MulT's word-aligned GloVe / COVAREP /
    FACET for MOSEI, MOSI and IEMOCAP; MMSA's BERT / librosa / OpenFace for CH-SIMS). They
    are defaults for models built without data: every loader reads the sizes from the file.
    """

    name: str
    feature_dims: dict            # the standard files' feature sizes
    default_head: str             # "regression" (sentiment) or "4class" (emotions)
    headline: str                 # the metric key of the headline number (MMSA's KeyEval)
    classes: tuple[str, ...] = ()
    label_kind: str = "sentiment"         # "sentiment" (one score) or "emotions" (one-vs-rest)
    label_range: tuple[float, float] = (-3.0, 3.0)
    metrics: str = "sentiment"            # which metric family scores its default head (cmnlib.metrics.FAMILIES)
    language: str = "en"
    # what `cmn train` prints (MOSI/MOSEI: both Acc2 conventions, F1, MAE, Corr, Acc7)
    key_metrics: tuple[str, ...] = ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "mae", "corr", "acc7")
    # where the data set comes from
    mult_file: str | None = None          # MulT's pickle of it (its name also tells the data set)
    mmsa_files: dict = field(default_factory=dict)  # MMSA's <NAME>/Processed/ files: name -> published SHA-256
    sdk_name: str | None = None           # the CMU-MultimodalSDK's name (its standard folds ship with cmnlib)
    unimodal_labels: bool = False         # per-modality labels (CH-SIMS's label_T / label_A / label_V)
    synthetic_formats: tuple[str, ...] = ()  # the formats its synthetic stand-in is written in (first: read)
    paper_table: int | None = None        # the paper's table that reports it (1: IEMOCAP, 2: MOSEI)

    @property
    def emotions(self) -> bool:
        """One-vs-rest emotion labels (N, classes) rather than one sentiment score."""
        return self.label_kind == "emotions"


# MMSA's README publishes the SHA-256 of each processed feature file
DATASETS = {
    "mosei": DatasetInfo("mosei", {"text": 300, "audio": 74, "vision": 35}, "regression", "acc2_has0",
                         mult_file="mosei_senti_data.pkl", sdk_name="cmu_mosei", synthetic_formats=("csd", "pkl"),
                         paper_table=2, mmsa_files={
                             "aligned_50.pkl": "45eccfb748a87c80ecab9bfac29582e7b1466bf6605ff29d3b338a75120bf791",
                             "unaligned_50.pkl": "ad8b23d50557045e7d47959ce6c5b955d8d983f2979c7d9b7b9226f6dd6fec1f"}),
    "mosi": DatasetInfo("mosi", {"text": 300, "audio": 5, "vision": 20}, "regression", "acc2_has0",
                        mult_file="mosi_data.pkl", sdk_name="cmu_mosi", mmsa_files={
                            "aligned_50.pkl": "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9",
                            "unaligned_50.pkl": "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524"}),
    "iemocap": DatasetInfo("iemocap", {"text": 300, "audio": 74, "vision": 35}, "4class", "macro_f1",
                           IEMOCAP_EMOTIONS, label_kind="emotions", label_range=(0.0, 1.0),
                           metrics="emotions", key_metrics=("accuracy", "macro_f1"), mult_file="iemocap_data.pkl",
                           synthetic_formats=("pkl",), paper_table=1),
    # CH-SIMS (Yu et al. 2020): Chinese, sentiment in [-1, 1], MMSA's metrics (Acc2 [-1, 0] vs (0, 1])
    "sims": DatasetInfo("sims", {"text": 768, "audio": 33, "vision": 709}, "regression", "acc2",
                        label_range=(-1.0, 1.0), metrics="sentiment_sims", language="zh",
                        key_metrics=("acc2", "f1", "mae"),
                        unimodal_labels=True, mmsa_files={
                            "unaligned_39.pkl": "c9e20c13ec0454d98bb9c1e520e490c75146bfa2dfeeea78d84de047dbdd442f"}),
}
DEFAULT_DATASET = "mosei"  # what a command or a model built without data assumes


def synthetic_datasets() -> tuple[str, ...]:
    """The data sets with a synthetic stand-in (MOSEI-like, IEMOCAP-like): what the batch
    run and the benchmark use by default."""
    return tuple(name for name, info in DATASETS.items() if info.synthetic_formats)


def mmsa_datasets() -> tuple[str, ...]:
    """The data sets MMSA publishes processed feature files of."""
    return tuple(name for name, info in DATASETS.items() if info.mmsa_files)


def mult_datasets() -> tuple[str, ...]:
    """The data sets MulT publishes pickles of."""
    return tuple(name for name, info in DATASETS.items() if info.mult_file)


def dataset_named_in(text: str, among=None) -> str | None:
    """The data set whose name occurs in ``text`` (a file or folder name, any case), among
    ``among`` (default: every data set); None when none does. Longer names are tried first,
    so that no name is read as a shorter one inside it."""
    text = text.lower()
    for name in sorted(among if among is not None else DATASETS, key=len, reverse=True):
        if name in text:
            return name
    return None


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; a ValueError names the known data sets."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; one of {', '.join(DATASETS)}")
    return DATASETS[name]


def default_head(dataset: str) -> str:
    """'4class' for IEMOCAP, 'regression' for MOSEI, MOSI and CH-SIMS."""
    return dataset_info(dataset).default_head


# --------------------------------------------------------------------------------------
# Precision
# --------------------------------------------------------------------------------------
# fp32; bf16 (mixed precision); auto (bf16 where the hardware has bf16 matrix units):
# cmnlib.precision implements them, the command line offers them
PRECISIONS = ("fp32", "bf16", "auto")


# --------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """One named setting of every model and of training. ``train`` holds the fields of
    :class:`cmnlib.train.TrainConfig`; ``seeds`` is the number of seeds per table row."""

    name: str
    cmn: dict = field(default_factory=dict)
    lstm: dict = field(default_factory=dict)
    mult: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    seeds: int = 1


# The paper's settings, stated once (section 4.1: Adam, lr 1e-4, batch 32; the published
# implementation: hidden 512, 2 layers, 4 heads, FF 1024). The paper profile, the defaults of
# TrainConfig and of CMNConfig all read them.
PAPER_TRAIN = dict(epochs=30, batch_size=32, lr=1e-4)
PAPER_CMN = dict(hidden=512, layers=2, heads=4, ff_size=1024, dropout=0.1, output_dropout=0.5)

PROFILES = {
    # small models, larger steps: minutes on two CPU cores. MulT with 1 crossmodal layer
    # (its memory transformers keep 3). One training thread: a run's bits then do not
    # depend on whether it ran in the notebook's process or in a single-threaded worker.
    "quick": Profile("quick",
                     cmn=dict(hidden=64, layers=2, heads=4, ff_size=128, dropout=0.1, output_dropout=0.3),
                     lstm=dict(hidden=64), mult=dict(layers=1),
                     train=dict(epochs=8, batch_size=64, lr=1e-3, patience=3, threads=1), seeds=2),
    # the paper (section 4.1: Adam, lr 1e-4, batch 32, "averaged predictions of up to 10
    # models") and the published implementation (hidden 512, 2 layers, 4 heads, FF 1024);
    # MulT at its official defaults
    "paper": Profile("paper", cmn=dict(PAPER_CMN), lstm=dict(hidden=128), mult=dict(), train=dict(PAPER_TRAIN),
                     seeds=10),
}


def profile(name: str) -> Profile:
    """The registry entry of profile ``name``; a ValueError names the known profiles."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(repr(p) for p in PROFILES)}, got {name!r}")
    return PROFILES[name]


def default_seeds(profile_name: str) -> int:
    """Seeds per model when none are given: 2 (quick) or 10 (paper)."""
    return profile(profile_name).seeds


CGROUP_ROOT = "/sys/fs/cgroup"


def cpu_quota(root: str = CGROUP_ROOT) -> int | None:
    """Whole CPUs this process's control group may use, rounded up, or None without a
    limit: a container started with ``--cpus 2`` on a large machine sees every core in its
    affinity but gets two cores' time. Read from cgroup v2's ``cpu.max`` (``quota period``
    or ``max period``), else cgroup v1's ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``
    (quota -1: none)."""
    def read(name: str) -> str | None:
        try:
            with open(os.path.join(root, name)) as handle:
                return handle.read().strip()
        except OSError:
            return None
    v2 = read("cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        pair = (quota, period) if quota != "max" else None
    else:
        quota, period = read("cpu/cpu.cfs_quota_us"), read("cpu/cpu.cfs_period_us")
        pair = (quota, period) if quota not in (None, "-1") and period is not None else None
    try:
        return max(1, -(-int(pair[0]) // int(pair[1]))) if pair else None
    except (ValueError, ZeroDivisionError):
        return None  # an unreadable limit: as if none were set


def usable_cores() -> int:
    """The cores this process may compute on: those of its CPU affinity (``taskset``, a
    container's cpuset), where the platform reports it, else ``os.cpu_count()``; no more
    than its control group's CPU quota (:func:`cpu_quota`)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(cores, quota) if quota else cores)


def physical_memory_gib() -> float | None:
    """The machine's physical memory in GiB, where the platform reports it (None elsewhere)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2 ** 30
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


# A quick-profile pool worker holds torch, every data set of the pool and one small model:
# about 1 GiB of its own (proportional set size) training the synthetic sets' runs; 1.5 GiB
# each leaves room for the process that runs the pool and the rest of the machine.
WORKER_MEMORY_GIB = 1.5
POOL_WORKERS_ENV = "CMN_POOL_WORKERS"  # the workers of a pool that has the machine to itself


def pool_share(pools: int = 1) -> int:
    """One-thread worker processes for each of ``pools`` pools that train at once: its
    share of the usable cores (:func:`usable_cores`) and of the memory at
    :data:`WORKER_MEMORY_GIB` a worker, and at least 2 (on two cores, two one-thread
    processes beat one with two threads). Torch-free, so that tests/conftest.py can set
    ``$CMN_POOL_WORKERS`` from it for its parallel workers."""
    cores = usable_cores() // pools
    memory = physical_memory_gib()
    fits = int(memory // (WORKER_MEMORY_GIB * pools)) if memory else cores
    return max(2, min(cores, fits))


def cores_share(processes: int) -> int:
    """Threads for each of ``processes`` processes that compute at once: its share of the
    usable cores (:func:`usable_cores`), at least one. With one OpenMP thread per core in
    each, the waiting threads of one spin on the cores the others need
    (docs/performance.md). Torch-free, so that a process can set ``OMP_NUM_THREADS`` from
    it before torch loads (tests/conftest.py)."""
    return max(1, usable_cores() // processes)


# The portability guard of `make test` (cmnlib.numerics) trains every run from initial
# weights one unit in the last place above the seed's: the trained weights then differ as
# another CPU's would, while training keeps this CPU's fastest kernels.
NUDGE_ENV = "CMN_NUDGE_INITIAL_WEIGHTS"
NUDGED = "nudged one ulp up"  # what a run's hash, run.json and a seed's provenance say of them


def weights_nudged() -> bool:
    """Whether runs start from nudged initial weights (``$CMN_NUDGE_INITIAL_WEIGHTS`` is 1;
    unset, empty or 0: not). Torch-free: the run's hash reads it."""
    value = os.environ.get(NUDGE_ENV, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"${NUDGE_ENV} is {value!r}: expected 1 (nudge the initial weights) or 0")
    return value == "1"


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
MODEL_LABELS = {"cmn": "CMN", "mult": "MulT", "lstm_l": "LSTM (L)", "lstm_a": "LSTM (A)", "lstm_v": "LSTM (V)",
                "ef_lstm": "EF-LSTM", "majority": "Majority / mean"}
MODEL_NAMES = tuple(MODEL_LABELS)
FUSION_MODELS = ("cmn", "mult", "ef_lstm")  # the models whose label names their modalities
UNIMODAL_MODELS = {"lstm_l": "L", "lstm_a": "A", "lstm_v": "V"}  # the LSTMs that read one modality

def parse_overrides(pairs: list[str]) -> dict:
    """``["mua=symmetric", "hidden=256"]`` -> ``{"mua": "symmetric", "hidden": 256}``: each
    value read as JSON when it is JSON, else kept as a string. A ValueError names a pair
    without '='."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key or not sep:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value  # a plain string such as symmetric
    return out
