"""Training: a plain loop with validation-only model selection, atomic checkpoints and
resume, seeds and ensembles, and a results cache.

The paper trains with Adam, learning rate 1e-4 and batch 32 and reports "the averaged
predictions of up to 10 models". Selection and early stopping use the **validation**
split only. (The published implementation of this architecture validates IEMOCAP on its
test split; that leaks the test set into model selection, and this companion does not do
it.)

Layout of one run (``data/runs/<model>-<key>/``, ``key`` = hash of config and data)::

    run.json               the full configuration and the data source
    seed<N>/checkpoint.pt  after every epoch: weights, optimizer, RNG, history, best so far
    seed<N>/best.pt        the selected weights
    seed<N>/result.json    history, selected epoch, valid/test metrics
    seed<N>/test_outputs.pt  the selected model's test outputs (for ensembles)
    ensemble.json          per-seed metrics, mean +- std over seeds, the ensemble's metrics
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import metrics as M
from . import config, precision
from .precision import adam
from .precision import autocast as precision_context
from .config import dataset_info, default_head
from .data.loader import make_loader, task_targets
from .data.sources import LOADER_VERSION, data_dir
from .data.split import DataBundle, Split
from .model import build_model
from .model import compiled
from .model import heads as H
from .model.baselines import ConstantPredictor

TRAINER_VERSION = 2  # bump when a change alters what training computes (drops stale caches)
# bump when only the bf16 step changes (2: fused Adam; 3: 16-bit dropout masks, fused LayerNorm);
# fp32 caches stay valid
LOW_PRECISION_STEP = 3


@dataclass
class TrainConfig:
    """Optimisation settings. Defaults: the paper (Adam, lr 1e-4, batch 32)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float | None = None        # max gradient norm; None = no clipping (paper)
    lr_schedule: str | None = None        # None or "plateau" (x0.5 after 2 epochs without gain)
    patience: int | None = 8              # early stopping on the validation criterion
    select_on: str = "loss"               # "loss" or a validation metric name (higher is better)
    bucket: bool = True                   # batches of similar lengths (less padding, same loss)
    device: str = "cpu"
    threads: int | None = None            # torch CPU threads; None = torch's default
    precision: str = "fp32"               # "fp32", "bf16" (mixed) or "auto" (cmnlib.precision)

    def to_dict(self) -> dict:
        return asdict(self)


# the training settings of each profile of the registry (cmnlib.config.PROFILES); the
# precision comes from $CMN_PRECISION when set (`cmn reproduce --precision` sets it for the
# notebooks' kernels), else fp32
PRECISION_ENV = "CMN_PRECISION"
TRAIN_PROFILES = {name: TrainConfig(**p.train, precision=os.environ.get(PRECISION_ENV, "fp32"))
                  for name, p in config.PROFILES.items()}


@dataclass
class RunSpec:
    """What to train: a model on a data set, with its head, modalities and profile."""

    model: str = "cmn"
    dataset: str = "mosei"
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
        modalities = self.model[-1].upper() if self.model in ("lstm_l", "lstm_a", "lstm_v") else self.modalities
        # 'auto' becomes what this machine uses, so the run's hash and summary say which
        train = replace(train, precision=precision.resolve(train.precision, train.device))
        return RunSpec(self.model, self.dataset, head, modalities, self.profile, dict(self.model_overrides), train)

    def key(self, data_hash: str) -> str:
        spec = self.resolved()
        train = spec.train.to_dict()
        if train["precision"] == "fp32":  # float32 runs keep the hash they had before the field existed
            del train["precision"]
        payload = {"model": spec.model, "dataset": spec.dataset, "head": spec.head,
                   "modalities": spec.modalities, "profile": spec.profile,
                   "model_overrides": spec.model_overrides, "train": train,
                   "data": data_hash, "loader": LOADER_VERSION, "trainer": TRAINER_VERSION}
        if "precision" in train:  # the low-precision step changed (fused Adam) without touching fp32
            payload["low_precision_step"] = LOW_PRECISION_STEP
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def folder_name(self, data_hash: str) -> str:
        """The run folder's name for data of ``data_hash``: ``<model>-<key>``."""
        return f"{self.resolved().model}-{self.key(data_hash)}"

    @property
    def label(self) -> str:
        spec = self.resolved()
        mods = f" ({'+'.join(spec.modalities)})" if spec.model in config.FUSION_MODELS else ""
        extra = "".join(f", {k}={v}" for k, v in sorted(spec.model_overrides.items()))
        return f"{config.MODEL_LABELS.get(spec.model, spec.model)}{mods}{extra}"


# ======================================================================================
# Checkpoints
# ======================================================================================

def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict:
    """Load with ``weights_only=True``: tensors and plain containers only, no code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _write_json(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, default=float)
        f.write("\n")
    os.replace(tmp, path)


# ======================================================================================
# Evaluation
# ======================================================================================

@torch.no_grad()
def predict_outputs(model, split: Split, modalities: str, head: str, batch_size: int = 256,
                    device: str = "cpu", precision: str = "fp32") -> torch.Tensor:
    """The model's raw outputs on every row of ``split``, in order (eval mode), as float32."""
    model.eval()
    outputs = None
    for batch in make_loader(split, modalities, head, batch_size=batch_size, bucket=True):
        features = {m: x.to(device) for m, x in batch["features"].items()}
        lengths = {m: x.to(device) for m, x in batch["lengths"].items()}
        with precision_context(precision, device):
            out = model(features, lengths)
        out = out.float().cpu()
        if outputs is None:
            outputs = torch.empty((len(split), *out.shape[1:]))
        outputs[batch["index"]] = out  # batches are sorted by length; put rows back in order
    return outputs


def split_metrics(dataset: str, head: str, outputs: torch.Tensor, split: Split) -> dict:
    """Metrics of ``outputs`` (raw model outputs or averaged ensemble outputs)."""
    targets = task_targets(split, head)
    result = {"loss": float(H.loss(head, outputs, targets))}
    prediction = H.predict(head, outputs).numpy()
    if head == "regression" and dataset_info(dataset).metrics == "sims":
        result.update(M.sims_regression_metrics(prediction, split.labels))
    elif head == "regression":
        result.update(M.mosei_regression_metrics(prediction, split.labels))
    elif head == "binary":
        result.update(M.mosei_binary_metrics(prediction, split.labels))
    elif head == "4class":
        result.update(M.iemocap_metrics(prediction, split.class_index()))
    else:
        result.update(M.iemocap_binary4_metrics(prediction, split.labels))
    return result


def train_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, head: str, batch: dict,
               device: str | torch.device = "cpu", grad_clip: float | None = None,
               precision: str = "fp32") -> torch.Tensor:
    """One optimizer step on one batch: forward, the head's mean loss, backward, optional
    gradient clipping, Adam. ``net`` may be a DistributedDataParallel wrapper, which
    averages the gradients over the processes during ``backward``. Returns the detached
    loss. The single-process trainer and the data-parallel one both step through here.
    ``precision='bf16'``: the forward runs under autocast; the weights, their gradients,
    Adam's state and the loss stay float32 (:mod:`cmnlib.precision`)."""
    features = {m: x.to(device) for m, x in batch["features"].items()}
    lengths = {m: x.to(device) for m, x in batch["lengths"].items()}
    with precision_context(precision, str(device)):
        output = net(features, lengths)
    loss = H.loss(head, output.float(), batch["target"].to(device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()


def _better(select_on: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new < best if select_on in ("loss", "mae") else new > best


# ======================================================================================
# One seed
# ======================================================================================

@contextmanager
def _torch_threads(threads: int | None):
    """Run with ``threads`` torch threads (None: unchanged), then restore the caller's."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_one(spec: RunSpec, bundle: DataBundle, seed: int, out_dir: Path, resume: bool = True,
              progress: bool = True, stop_after_epoch: int | None = None) -> dict:
    """Train one seed (or resume it) and return its result dict.

    ``stop_after_epoch`` interrupts the run after that epoch's checkpoint, as a killed
    process would (used by the resume test).
    """
    spec = spec.resolved()
    with _torch_threads(spec.train.threads):
        return _train_one(spec, bundle, seed, out_dir, resume, progress, stop_after_epoch)


def _train_one(spec: RunSpec, bundle: DataBundle, seed: int, out_dir: Path, resume: bool,
               progress: bool, stop_after_epoch: int | None) -> dict:
    settings = spec.train
    out_dir.mkdir(parents=True, exist_ok=True)
    result_path = out_dir / "result.json"
    if resume and result_path.exists():
        return json.loads(result_path.read_text())
    device = settings.device
    torch.manual_seed(seed)
    model = build_model(spec.model, spec.head, bundle.feature_dims, spec.modalities, spec.profile,
                        **spec.model_overrides).to(device)
    train_split, valid_split = bundle["train"], bundle["valid"]
    t_start = time.time()
    if isinstance(model, ConstantPredictor):
        model.fit(task_targets(train_split, spec.head))
        history, best_epoch = [], 0
        best_state = model.state_dict()
        atomic_save(best_state, out_dir / "best.pt")
    else:
        optimizer = adam(model.parameters(), settings.precision, settings.lr, settings.weight_decay, device)
        scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
                     if settings.lr_schedule == "plateau" else None)
        state = {"epoch": 0, "history": [], "best": None, "best_epoch": 0, "stale": 0}
        checkpoint_path = out_dir / "checkpoint.pt"
        if resume and checkpoint_path.exists():
            checkpoint = load_checkpoint(checkpoint_path)
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(checkpoint["scheduler"])
            torch.set_rng_state(checkpoint["rng"])
            state = checkpoint["state"]
        best_state = load_checkpoint(out_dir / "best.pt") if state["best"] is not None else None
        bar = tqdm(total=settings.epochs, initial=state["epoch"], desc=f"{spec.label} seed {seed}",
                   disable=not progress, leave=False, unit="epoch")
        while state["epoch"] < settings.epochs:
            epoch = state["epoch"] + 1
            model.train()
            # the shuffle depends only on (seed, epoch), so a resumed run sees the same order
            loader = make_loader(train_split, spec.modalities, spec.head, settings.batch_size,
                                 shuffle=True, seed=seed * 100_003 + epoch, bucket=settings.bucket)
            total, count = 0.0, 0
            for batch in loader:
                loss = train_step(model, optimizer, spec.head, batch, device, settings.grad_clip, settings.precision)
                total += float(loss) * batch["target"].shape[0]
                count += batch["target"].shape[0]
            valid = split_metrics(spec.dataset, spec.head,
                                  predict_outputs(model, valid_split, spec.modalities, spec.head, device=device,
                                                  precision=settings.precision),
                                  valid_split)
            criterion = valid[settings.select_on]
            if scheduler is not None:
                scheduler.step(valid["loss"])
            record = {"epoch": epoch, "train_loss": total / count, "lr": optimizer.param_groups[0]["lr"],
                      **{f"valid_{k}": v for k, v in valid.items() if isinstance(v, float)}}
            state["history"].append(record)
            if _better(settings.select_on, criterion, state["best"]):
                state.update(best=criterion, best_epoch=epoch, stale=0)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                atomic_save(best_state, out_dir / "best.pt")
            else:
                state["stale"] += 1
            state["epoch"] = epoch
            if settings.patience is not None and state["stale"] >= settings.patience:
                state["epoch"] = settings.epochs  # early stop: nothing left to resume
            atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict() if scheduler is not None else None,
                         "rng": torch.get_rng_state(), "state": state, "seed": seed,
                         "spec": _spec_dict(spec), "data_hash": bundle.meta.get("source_hash")},
                        checkpoint_path)
            bar.update(state["epoch"] - bar.n)
            bar.set_postfix(valid=f"{criterion:.3f}")
            if stop_after_epoch is not None and epoch >= stop_after_epoch and state["epoch"] < settings.epochs:
                bar.close()
                raise KeyboardInterrupt(f"stopped after epoch {epoch} (as requested)")
        bar.close()
        history, best_epoch = state["history"], state["best_epoch"]
        model.load_state_dict(best_state)
    seconds = time.time() - t_start
    valid_out = predict_outputs(model, valid_split, spec.modalities, spec.head, device=device,
                                precision=settings.precision)
    test_out = predict_outputs(model, bundle["test"], spec.modalities, spec.head, device=device,
                               precision=settings.precision)
    torch.save({"valid": valid_out, "test": test_out}, out_dir / "outputs.pt")
    result = {"seed": seed, "best_epoch": best_epoch, "epochs_run": len(history), "history": history,
              "valid": split_metrics(spec.dataset, spec.head, valid_out, valid_split),
              "test": split_metrics(spec.dataset, spec.head, test_out, bundle["test"]),
              "train_seconds": seconds}
    if settings.precision != "fp32":  # (resolved by train_one) how its fused kernels ran: compiled or eager
        result["fused_kernels"] = compiled.summary()
    _write_json(result, result_path)
    return result


def _spec_dict(spec: RunSpec) -> dict:
    spec = spec.resolved()
    return {"model": spec.model, "dataset": spec.dataset, "head": spec.head, "modalities": spec.modalities,
            "profile": spec.profile, "model_overrides": spec.model_overrides, "train": spec.train.to_dict()}


# ======================================================================================
# Seeds and ensembles
# ======================================================================================

def ensemble_outputs(head: str, outputs: list[torch.Tensor]) -> torch.Tensor:
    """Average the members' predictions: scores for regression, class probabilities
    (as log-probabilities, so ``predict``/``loss`` apply unchanged) for classification."""
    stacked = torch.stack(outputs)
    if head == "regression":
        return stacked.mean(0)
    return stacked.softmax(-1).mean(0).log()


def runs_root() -> Path:
    """Where trained runs are cached: ``$CMN_RUNS_DIR`` or ``<data folder>/runs``. (``make
    test`` trains its second numeric environment into a folder of its own.)"""
    return Path(os.environ["CMN_RUNS_DIR"]) if os.environ.get("CMN_RUNS_DIR") else data_dir() / "runs"


def run_dir(spec: RunSpec, bundle: DataBundle, root: Path | None = None) -> Path:
    root = root or runs_root()
    return root / spec.folder_name(bundle.meta.get("source_hash", "unknown"))


def train_seeds(spec: RunSpec, bundle: DataBundle, seeds: int | list[int] = 1, root: Path | None = None,
                progress: bool = True) -> dict:
    """Train (or reuse) one model per seed and their ensemble; return the summary.

    Results are cached under ``run_dir(spec, bundle)``: a second call with the same
    configuration and data reads them instead of retraining; any change of either gives
    a new folder.
    """
    spec = spec.resolved()
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    folder = run_dir(spec, bundle, root)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json({"spec": _spec_dict(spec), "data": bundle.source_label,
                 "data_hash": bundle.meta.get("source_hash")}, folder / "run.json")
    members = [train_one(spec, bundle, seed, folder / f"seed{seed}", progress=progress) for seed in seed_list]
    outputs = [torch.load(folder / f"seed{s}" / "outputs.pt", weights_only=True) for s in seed_list]
    ensemble = {name: split_metrics(spec.dataset, spec.head, ensemble_outputs(spec.head, [o[name] for o in outputs]),
                                    bundle[name]) for name in ("valid", "test")}
    keys = [k for k, v in members[0]["test"].items() if isinstance(v, float)]
    summary = {"label": spec.label, "spec": _spec_dict(spec), "data": bundle.source_label,
               "seeds": seed_list, "members": members,
               "mean": {k: float(np.mean([m["test"][k] for m in members])) for k in keys},
               "std": {k: float(np.std([m["test"][k] for m in members], ddof=1)) if len(members) > 1 else 0.0
                       for k in keys},
               "ensemble": ensemble, "folder": str(folder)}
    _write_json(summary, folder / "ensemble.json")
    return summary


def load_model(folder: Path, seed: int = 0, bundle: DataBundle | None = None):
    """Rebuild a trained model from its run folder (weights loaded with weights_only=True)."""
    spec_dict = json.loads((Path(folder) / "run.json").read_text())["spec"]
    dims = bundle.feature_dims if bundle is not None else None
    if dims is None:
        raise ValueError("pass the bundle the model was trained on (for its feature sizes)")
    model = build_model(spec_dict["model"], spec_dict["head"], dims, spec_dict["modalities"],
                        spec_dict["profile"], **spec_dict["model_overrides"])
    model.load_state_dict(load_checkpoint(Path(folder) / f"seed{seed}" / "best.pt"))
    return model.eval()
