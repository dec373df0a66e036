"""What to train: :class:`TrainConfig` (the optimisation settings), :class:`RunSpec` (a
model on a data set, with its head, modalities, profile and training), and each profile's
training settings (:data:`TRAIN_PROFILES`, from the registry).

A spec names its run folder (:meth:`RunSpec.folder_name`: a hash of the spec, the data and
the trainer's version) and its display label (:attr:`RunSpec.label`). Every layer that
trains, reads or describes runs takes a spec; nothing looks a run up by its label.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import os
from dataclasses import asdict, dataclass, field, fields, replace

from . import config, precision
from .config import default_head
from .data.sources import LOADER_VERSION

# bump when a change alters what training computes (every run folder moves, stale caches drop).
# 3: float32 steps use fused Adam, dropout masks from 16-bit draws and attention scores with
#    their scale and mask bias folded into the product (cmn bench: 1.1-1.2x on the quick CMN step)
# 4: MulT's dropout masks from 16-bit draws too (cmn bench: 1.3-1.4x on the quick MulT step)
TRAINER_VERSION = 4
# bump when only the bf16 step changes (2: fused Adam; 3: 16-bit dropout masks, fused
# LayerNorm); fp32 runs keep their folders
LOW_PRECISION_STEP = 3


def is_whole(value, least: int) -> bool:
    """Whether ``value`` is a whole number (a Python or numpy integer, not a bool) of at
    least ``least``: a count of epochs or seeds, or a seed."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


@dataclass
class TrainConfig:
    """Optimisation settings. Defaults: the paper's (:data:`cmnlib.config.PAPER_TRAIN`:
    Adam, lr 1e-4, batch 32, 30 epochs); the fields below them are the companion's choices."""

    epochs: int = config.PAPER_TRAIN["epochs"]
    batch_size: int = config.PAPER_TRAIN["batch_size"]
    lr: float = config.PAPER_TRAIN["lr"]
    weight_decay: float = 0.0
    grad_clip: float | None = None        # max gradient norm; None = no clipping (paper)
    lr_schedule: str | None = None        # None or "plateau" (x0.5 after 2 epochs without gain)
    patience: int | None = 8              # early stopping on the validation criterion
    select_on: str = "loss"               # "loss" or a validation metric name (higher is better)
    bucket: bool = True                   # batches of similar lengths (less padding, same loss)
    device: str = "cpu"
    threads: int | None = None            # torch CPU threads; None = torch's default
    precision: str = "fp32"               # "fp32", "bf16" (mixed) or "auto" (cmnlib.precision)

    def __post_init__(self):
        # one clear line here, where a zero would otherwise fail deep inside training
        for name, optional in (("epochs", False), ("batch_size", False), ("patience", True), ("threads", True)):
            value = getattr(self, name)
            if not (optional and value is None) and not is_whole(value, 1):
                raise ValueError(f"TrainConfig.{name} must be a whole number of 1 or more, got {value!r}")
        if isinstance(self.lr, bool) or not (isinstance(self.lr, numbers.Real) and 0 < self.lr < float("inf")):
            raise ValueError(f"TrainConfig.lr must be a number above 0, got {self.lr!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# how a run is computed, not what it learns: left out of labels
_HOW = ("device", "threads", "precision")

# the training settings of each profile of the registry (cmnlib.config.PROFILES); the
# precision comes from $CMN_PRECISION when set (`cmn reproduce --precision` sets it for the
# notebooks' kernels), else fp32
PRECISION_ENV = "CMN_PRECISION"
TRAIN_PROFILES = {name: TrainConfig(**p.train, precision=os.environ.get(PRECISION_ENV, "fp32"))
                  for name, p in config.PROFILES.items()}


def training_label(changes: dict) -> str:
    """What a label adds for training settings that differ from the profile's:
    ``{"epochs": 30}`` -> ', 30 epochs'; other fields as ', name=value', by name."""
    changes = dict(changes)
    epochs = changes.pop("epochs", None)
    return (f", {epochs} epochs" if epochs is not None else "") + "".join(
        f", {k}={v}" for k, v in sorted(changes.items()))


@dataclass
class RunSpec:
    """What to train: a model on a data set, with its head, modalities and profile.
    ``train`` None means the profile's training settings (:data:`TRAIN_PROFILES`)."""

    model: str = "cmn"
    dataset: str = config.DEFAULT_DATASET
    head: str | None = None               # None -> the dataset's default task
    modalities: str = "LA"
    profile: str = "quick"
    model_overrides: dict = field(default_factory=dict)
    train: TrainConfig | None = None      # None -> the profile's TrainConfig

    def resolved(self) -> "RunSpec":
        head = self.head or default_head(self.dataset)
        train = self.train or TRAIN_PROFILES[self.profile]
        # a unimodal LSTM reads its own modality, whatever --modalities says (a text-only set
        # has no audio to load)
        modalities = config.UNIMODAL_MODELS.get(self.model, self.modalities)
        # 'auto' becomes what this machine uses, so the run's hash and summary say which
        train = replace(train, precision=precision.resolve(train.precision, train.device))
        return RunSpec(self.model, self.dataset, head, modalities, self.profile, dict(self.model_overrides), train)

    def with_training(self, **changes) -> "RunSpec":
        """This spec with training settings changed from its own (e.g. ``epochs=30``)."""
        return replace(self, train=replace(self.train or TRAIN_PROFILES[self.profile], **changes))

    def to_dict(self) -> dict:
        """The resolved spec as plain data (what run folders and records store)."""
        spec = self.resolved()
        return {"model": spec.model, "dataset": spec.dataset, "head": spec.head, "modalities": spec.modalities,
                "profile": spec.profile, "model_overrides": spec.model_overrides, "train": spec.train.to_dict()}

    @classmethod
    def from_dict(cls, spec: dict) -> "RunSpec":
        """The inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in spec.items() if k != "train"},
                   train=None if spec.get("train") is None else TrainConfig(**spec["train"]))

    def key(self, data_hash: str, trainer: int = TRAINER_VERSION, nudged: bool | None = None) -> str:
        """The run's hash: the resolved spec, the data's hash, the loader's and the trainer's
        version (``trainer``: today's, or the version a record was trained with), and whether
        the initial weights are nudged (``nudged``; None: as this process's environment says,
        :func:`cmnlib.config.weights_nudged`)."""
        spec = self.resolved()
        train = spec.train.to_dict()
        if train["precision"] == "fp32":  # float32 runs keep the hash they had before the field existed
            del train["precision"]
        payload = {"model": spec.model, "dataset": spec.dataset, "head": spec.head,
                   "modalities": spec.modalities, "profile": spec.profile,
                   "model_overrides": spec.model_overrides, "train": train,
                   "data": data_hash, "loader": LOADER_VERSION, "trainer": trainer}
        if "precision" in train:  # the low-precision step changed (fused Adam) without touching fp32
            payload["low_precision_step"] = LOW_PRECISION_STEP
        if nudged is None:
            nudged = config.weights_nudged()
        if nudged:  # the portability guard's runs (cmnlib.numerics): folders of their own
            payload["initial_weights"] = config.NUDGED
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def folder_name(self, data_hash: str, trainer: int = TRAINER_VERSION, nudged: bool | None = None) -> str:
        """The run folder's name for data of ``data_hash``: ``<model>-<key>``."""
        return f"{self.resolved().model}-{self.key(data_hash, trainer, nudged)}"

    def training_changes(self) -> dict:
        """The training settings that differ from the profile's, leaving out how the run is
        computed (device, threads, precision): what its label names."""
        base, train = TRAIN_PROFILES[self.profile], self.train or TRAIN_PROFILES[self.profile]
        return {f.name: getattr(train, f.name) for f in fields(TrainConfig)
                if f.name not in _HOW and getattr(train, f.name) != getattr(base, f.name)}

    @property
    def option(self) -> dict:
        """The model options that set it apart (``model_overrides``), e.g. {'alignment': ...}."""
        return dict(self.model_overrides)

    @property
    def label(self) -> str:
        """'CMN (L+A)', 'CMN (L+A), mua=symmetric, 30 epochs': the model, its modalities
        (fusion models), its overrides and its training changes."""
        spec = self.resolved()
        mods = f" ({'+'.join(spec.modalities)})" if spec.model in config.FUSION_MODELS else ""
        extra = "".join(f", {k}={v}" for k, v in sorted(spec.model_overrides.items()))
        return f"{config.MODEL_LABELS.get(spec.model, spec.model)}{mods}{extra}" \
               f"{training_label(self.training_changes())}"
