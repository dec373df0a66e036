"""Training: a plain loop with validation-only model selection, atomic checkpoints and
resume, seeds and ensembles, and a results cache.

The paper trains with Adam, learning rate 1e-4 and batch 32 and reports "the averaged
predictions of up to 10 models". Selection and early stopping use the **validation**
split only. (The published implementation of this architecture validates IEMOCAP on its
test split; that leaks the test set into model selection, and this companion does not do
it.)

Layout of one run (``data/runs/<model>-<key>/``, ``key`` = hash of the spec and the data,
:meth:`cmnlib.spec.RunSpec.folder_name`)::

    run.json               the spec and the data source
    labels.npz             the labels of the valid and test splits
    seed<N>/checkpoint.pt  after every epoch: weights, optimizer, RNG, history, best so far
    seed<N>/best.pt        the selected weights
    seed<N>/outputs.pt     the selected model's raw outputs on valid and test
    seed<N>/result.json    history, selected epoch, valid/test metrics, provenance
    ensemble-seeds0-4.json per-seed metrics, mean +- std over seeds, the ensemble's metrics
                           (one file per set of seeds averaged: 0-1 and 0-4 live side by side)

What a run folder holds is written and read by :mod:`cmnlib.results`; this module trains.
"""
from __future__ import annotations

import io
import numbers
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from . import config, results
from .atomic import set_aside, write_bytes
from .precision import adam, per_tensor_fp32_adam, per_tensor_fp32_adam_active
from .precision import autocast as precision_context
from .data.loader import make_loader, task_targets
from .data.sources import data_dir
from .data.split import DataBundle, Split
from .model import build_model
from .model import compiled
from .model import heads as H
from .model.attention import trainer2_fp32_attention, trainer2_fp32_attention_active
from .model.baselines import ConstantPredictor
from .model.mult import official_dropout, official_dropout_active
from .results import RunResult, SeedResult, ensemble_outputs
from .spec import LOW_PRECISION_STEP, TRAIN_PROFILES, TRAINER_VERSION, RunSpec, TrainConfig, is_whole

# what other modules and the notebooks import from here
__all__ = ["RunSpec", "TrainConfig", "TRAIN_PROFILES", "TRAINER_VERSION", "LOW_PRECISION_STEP", "train_step",
           "train_one", "train_seeds", "predict_outputs", "ensemble_outputs", "load_model", "load_checkpoint",
           "run_dir", "runs_root", "atomic_save", "trainer_step"]

# ======================================================================================
# Checkpoints
# ======================================================================================

def atomic_save(obj, path: Path) -> None:
    """torch.save, whole or not at all (:func:`cmnlib.atomic.write_bytes`: serialised in
    memory, so that a full disk is an OSError naming the file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Load with ``weights_only=True``: tensors and plain containers only, no code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _set_aside_seed(out_dir: Path, why: str) -> None:
    """Set aside every derived file of one seed (its result, outputs, checkpoint and best
    weights), so that it is trained again from the start: bit for bit what a clean run gives."""
    first = True
    for name in (results.RESULT_FILE, results.OUTPUTS_FILE, "checkpoint.pt", "best.pt"):
        if (out_dir / name).exists():
            set_aside(out_dir / name, why if first else f"set aside with the rest of the seed ({why})")
            first = False


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
    """Metrics of ``outputs`` (raw model outputs or averaged ensemble outputs) on ``split``
    (:func:`cmnlib.results.evaluate`)."""
    return results.evaluate(dataset, head, outputs, split.labels)


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


@contextmanager
def trainer_step(version: int = TRAINER_VERSION):
    """Within the block, float32 training steps as trainer ``version`` did (Adams built and
    steps taken inside it): 4 (today's: fused Adam, dropout masks from 16-bit draws in every
    model, the score product with its scale and mask bias folded in), 3 (the same, but
    MulT's dropout is the official ``F.dropout``) or 2 (also Adam's per-tensor loop,
    ``torch.rand`` masks, scale and bias as separate passes). For timing them side by side
    (``cmn bench``); training a run inside an earlier version is refused, since its folder
    is named after today's version."""
    if version not in (2, 3, TRAINER_VERSION):
        raise ValueError(f"trainer_step: version 2, 3 or {TRAINER_VERSION}, got {version!r}")
    with (per_tensor_fp32_adam(version <= 2), trainer2_fp32_attention(version <= 2),
          official_dropout(version <= 3)):
        yield


def refuse_earlier_step() -> None:
    """Raise when called inside :func:`trainer_step` of an earlier version: a run trained
    there would be saved under today's version."""
    if per_tensor_fp32_adam_active() or trainer2_fp32_attention_active() or official_dropout_active():
        raise RuntimeError(f"runs are trained with trainer version {TRAINER_VERSION}'s step only; "
                           "trainer_step(2) and trainer_step(3) are for timing steps side by side")


def improves(select_on: str, new: float, best: float | None) -> bool:
    """Whether a validation value ``new`` beats the best so far (lower loss or MAE, else higher)."""
    if best is None:
        return True
    return new < best if select_on in ("loss", "mae") else new > best


# ======================================================================================
# One seed
# ======================================================================================

@contextmanager
def torch_threads(threads: int | None):
    """Run with ``threads`` torch threads (None: unchanged), then restore the caller's."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def nudge_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Move every floating-point parameter of ``model`` one unit in the last place up (to
    the next float towards +inf), in place: the smallest change a weight can take, as a
    last-bit difference of another CPU's kernels would make. Training grows it into other
    trained weights, which is what the portability guard of ``make test`` needs
    (:mod:`cmnlib.numerics`)."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.is_floating_point():
                parameter.copy_(torch.nextafter(parameter, torch.full_like(parameter, float("inf"))))
    return model


def initial_model(spec: RunSpec, bundle: DataBundle, seed: int, device: str = "cpu") -> torch.nn.Module:
    """The seed's model before training: ``torch.manual_seed(seed)``, then the spec's model
    on ``device``, its weights nudged where ``$CMN_NUDGE_INITIAL_WEIGHTS`` asks
    (:func:`cmnlib.config.weights_nudged`). Every trainer starts here, so a seed starts from
    the same weights whichever trains it."""
    torch.manual_seed(seed)
    model = build_model(spec.model, spec.head, bundle.feature_dims, spec.modalities, spec.profile,
                        **spec.model_overrides).to(device)
    return nudge_weights(model) if config.weights_nudged() else model


def train_one(spec: RunSpec, bundle: DataBundle, seed: int, out_dir: Path, resume: bool = True,
              progress: bool = True) -> SeedResult:
    """Train one seed into ``out_dir`` (or resume it from its last checkpoint, or read it
    when it has finished) and return its result. A killed run resumes exactly where its
    last checkpoint stopped: the data order depends only on (seed, epoch) and the RNG state
    is checkpointed."""
    spec = spec.resolved()
    if resume:
        # a finished seed is read without the lock: result.json is written last, atomically,
        # so two readers (two notebooks reading one cached run) never wait on each other
        try:
            finished = results.read_seed(Path(out_dir))
        except results.UnreadableSeed:
            finished = None  # set aside and trained again under the lock, below
        if finished is not None:
            return finished
    with torch_threads(spec.train.threads), seed_lock(Path(out_dir)):
        return _train_one(spec, bundle, seed, Path(out_dir), resume, progress)


LOCK_FILE = "train.lock"
LOCK_WAIT_S = 6 * 3600  # a paper-profile seed on a slow CPU takes hours


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@contextmanager
def seed_lock(out_dir: Path, wait_s: float = LOCK_WAIT_S, poll_s: float = 2.0):
    """One writer per seed folder: a lock file holding the owner's pid, created exclusively.
    A second process asked for the same seed waits (saying so once) until the owner is done
    and then reads its result instead of training it again; a lock left by a process that
    no longer exists is taken over with a warning; after ``wait_s`` seconds a TimeoutError
    says which process holds the lock and what to do."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / LOCK_FILE
    start, said = time.time(), False
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                owner = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                owner = None  # being written this instant, or empty: look again
            if owner is not None and owner != os.getpid() and not _alive(owner):
                import warnings
                warnings.warn(f"{lock}: left by process {owner}, which no longer runs; taken over", stacklevel=3)
                lock.unlink(missing_ok=True)
                continue
            if owner == os.getpid():
                raise RuntimeError(f"{lock}: this process already trains this seed") from None
            if not said:
                print(f"waiting for process {owner} to finish training {out_dir} ...", flush=True)
                said = True
            if time.time() - start > wait_s:
                raise TimeoutError(f"{lock}: process {owner} has held this seed for {wait_s / 3600:.1f} h; if it "
                                   f"is not training any more, delete the lock file and run again") from None
            time.sleep(poll_s)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def split_labels(bundle: DataBundle) -> dict:
    """Each split's labels (what a run folder's labels.npz holds)."""
    return {split: bundle[split].labels for split in results.SPLITS}


def _train_one(spec: RunSpec, bundle: DataBundle, seed: int, out_dir: Path, resume: bool,
               progress: bool, share: bool = True) -> SeedResult:
    settings = spec.train
    refuse_earlier_step()
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        try:
            finished = results.read_seed(out_dir)
        except results.UnreadableSeed as error:  # a derived file: set aside, trained again below
            _set_aside_seed(out_dir, str(error))
            finished = None
        if finished is not None:
            return finished
    device = settings.device
    continued = None  # (seconds, where from) when the first epochs come from a shorter run
    model = initial_model(spec, bundle, seed, device)
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
        if share and resume and not checkpoint_path.exists() and (done := shorter_seed(spec, bundle, seed, out_dir)):
            continued = _continue_shorter(spec, done, out_dir)  # the shorter run's epochs are this one's first
        if resume and checkpoint_path.exists():
            try:
                checkpoint = results.load_tensors(checkpoint_path)
            except results.UnreadableSeed as error:  # a derived file: set aside, trained from the start
                _set_aside_seed(out_dir, str(error))
                return _train_one(spec, bundle, seed, out_dir, resume, progress, share=False)
            try:
                model.load_state_dict(checkpoint["model"])
                optimizer.load_state_dict(checkpoint["optimizer"])
                if scheduler is not None:
                    scheduler.load_state_dict(checkpoint["scheduler"])
                torch.set_rng_state(checkpoint["rng"])
                state = checkpoint["state"]
            except (KeyError, RuntimeError, ValueError, TypeError) as error:  # another model's checkpoint
                _set_aside_seed(out_dir, f"checkpoint.pt does not fit this run ({type(error).__name__})")
                return _train_one(spec, bundle, seed, out_dir, resume, progress, share=False)  # from the start
        best_state = None
        if state["best"] is not None:
            try:
                best_state = results.load_tensors(out_dir / "best.pt")
            except results.UnreadableSeed as error:
                _set_aside_seed(out_dir, str(error))
                return _train_one(spec, bundle, seed, out_dir, resume, progress, share=False)
        bar = tqdm(total=settings.epochs, initial=state["epoch"], desc=f"{spec.label} seed {seed}",
                   disable=not progress, leave=False, unit="epoch")
        try:  # the bar is closed (its line cleared) however the loop ends, so an error line stands alone
            while state["epoch"] < settings.epochs:
                epoch = state["epoch"] + 1
                model.train()
                # the shuffle depends only on (seed, epoch), so a resumed run sees the same order
                loader = make_loader(train_split, spec.modalities, spec.head, settings.batch_size,
                                     shuffle=True, seed=seed * 100_003 + epoch, bucket=settings.bucket)
                total, count = 0.0, 0
                for batch in loader:
                    loss = train_step(model, optimizer, spec.head, batch, device, settings.grad_clip,
                                      settings.precision)
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
                if improves(settings.select_on, criterion, state["best"]):
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
                             "spec": spec.to_dict(), "data_hash": bundle.meta.get("source_hash")},
                            checkpoint_path)
                bar.update(state["epoch"] - bar.n)
                bar.set_postfix(valid=f"{criterion:.3f}")
        finally:
            bar.close()
        history, best_epoch = state["history"], state["best_epoch"]
        model.load_state_dict(best_state)
    seconds = time.time() - t_start
    provenance = results.provenance_here()
    if continued is not None:  # the seconds of the shared epochs count, where they were trained
        seconds += continued[0]
        provenance["continued_from"] = continued[1]
    outputs = {split: predict_outputs(model, bundle[split], spec.modalities, spec.head, device=device,
                                      precision=settings.precision).numpy() for split in results.SPLITS}
    seed_result = SeedResult(seed=seed, best_epoch=best_epoch, epochs_run=len(history), history=history,
                             train_seconds=seconds, outputs=outputs, provenance=provenance,
                             # (resolved by train_one) how a bf16 run's fused kernels ran: compiled or eager
                             fused_kernels=compiled.summary() if settings.precision != "fp32" else None)
    results.write_seed(out_dir, seed_result, spec.dataset, spec.head, split_labels(bundle))
    return results.read_seed(out_dir)


# ======================================================================================
# Seeds and ensembles
# ======================================================================================

def runs_root() -> Path:
    """Where trained runs are cached: ``$CMN_RUNS_DIR`` or ``<data folder>/runs``. (``make
    test`` trains its second numeric environment into a folder of its own.)"""
    return Path(os.environ["CMN_RUNS_DIR"]) if os.environ.get("CMN_RUNS_DIR") else data_dir() / "runs"


def run_dir(spec: RunSpec, bundle: DataBundle, root: Path | None = None) -> Path:
    root = root or runs_root()
    return root / spec.folder_name(bundle.meta.get("source_hash", "unknown"))


def shorter_runs(spec: RunSpec, bundle: DataBundle, root: Path | None = None) -> list[Path]:
    """The run folders of ``spec`` with fewer epochs (everything else equal: the model, the
    data, the other settings, the trainer's version, the initial weights), longest first.
    Their epochs are the first epochs of ``spec``'s: the data order depends only on (seed,
    epoch) and a checkpoint holds everything else, so a longer run continues from one of
    their finished seeds (:func:`shorter_seed`) and ends bit for bit where it would from the
    start."""
    spec = spec.resolved()
    return [run_dir(replace(spec, train=replace(spec.train, epochs=epochs)), bundle, root)
            for epochs in range(spec.train.epochs - 1, 0, -1)]


def shorter_seed(spec: RunSpec, bundle: DataBundle, seed: int, out_dir: Path) -> Path | None:
    """A finished seed of a shorter run of ``spec`` (:func:`shorter_runs`) whose last
    checkpoint this seed can continue from; None where there is none, or where ``out_dir``
    is not the seed's folder in a runs root (a folder of the caller's own)."""
    out_dir = Path(out_dir)
    root = out_dir.parent.parent
    if out_dir.name != f"seed{seed}" or out_dir.parent != run_dir(spec, bundle, root):
        return None
    for folder in shorter_runs(spec, bundle, root):
        done = folder / f"seed{seed}"
        if (done / results.RESULT_FILE).exists() and (done / "checkpoint.pt").exists() and (done / "best.pt").exists():
            return done
    return None


def _continue_shorter(spec: RunSpec, done: Path, out_dir: Path) -> tuple[float, str] | None:
    """Start ``out_dir`` (a seed of ``spec``) from the finished seed ``done`` of a shorter
    run: its last checkpoint and selected weights are written into ``out_dir``, and a seed
    that stopped early is marked as stopped (the longer run stops at the same epoch). Returns
    the seconds that seed trained and a line for the provenance; None (nothing written)
    where its files cannot be read."""
    try:
        checkpoint = results.load_tensors(done / "checkpoint.pt")
        best = results.load_tensors(done / "best.pt")
        trained = results.read_seed(done)
        state = dict(checkpoint["state"])
    except (results.UnreadableSeed, KeyError, TypeError):
        return None
    if trained is None:
        return None
    epochs = len(state["history"])
    patience = spec.train.patience
    if patience is not None and state["stale"] >= patience:
        state["epoch"] = spec.train.epochs  # stopped early: nothing left to train
    atomic_save(best, out_dir / "best.pt")
    atomic_save({**checkpoint, "state": state, "spec": spec.to_dict()}, out_dir / "checkpoint.pt")
    return trained.train_seconds, f"{done.parent.name}/{done.name}, after epoch {epochs}"


def seed_list(seeds: int | list[int]) -> list[int]:
    """``seeds`` as a list: an int n (1 or more) means seeds 0..n-1; a list must hold
    distinct whole numbers of 0 or more (a seed also seeds the data order). A ValueError
    says what was given otherwise."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):  # a count
        if seeds < 1:
            raise ValueError(f"seeds must be a whole number of 1 or more, or a list of seeds; got {seeds}")
        return list(range(int(seeds)))
    out = list(seeds)
    if not out or not all(is_whole(s, 0) for s in out) or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct whole numbers of 0 or more, at least one; got {out}")
    return [int(s) for s in out]


def train_seeds(spec: RunSpec, bundle: DataBundle, seeds: int | list[int] = 1, root: Path | None = None,
                progress: bool = True) -> RunResult:
    """Train (or read from the cache) one model per seed; return them as one
    :class:`cmnlib.results.RunResult` (metrics, mean over seeds and the ensemble come from it).

    Results are cached under ``run_dir(spec, bundle)``: a second call with the same
    configuration and data reads them instead of retraining; any change of either gives
    a new folder.
    """
    spec = spec.resolved()
    seeds = seed_list(seeds)
    folder = run_dir(spec, bundle, root)
    folder.mkdir(parents=True, exist_ok=True)
    results.write_run(folder, spec, bundle.source_label, bundle.meta.get("source_hash"), split_labels(bundle))
    for seed in seeds:
        train_one(spec, bundle, seed, folder / f"seed{seed}", progress=progress)
    result = results.read_run(folder, seeds, split_labels(bundle))
    results.write_summary(folder, result)
    return result


def load_model(folder: Path, seed: int = 0, bundle: DataBundle | None = None):
    """Rebuild a trained model from its run folder (weights loaded with weights_only=True)."""
    if bundle is None:
        raise ValueError("pass the bundle the model was trained on (for its feature sizes)")
    spec = results.read_spec(folder)
    model = build_model(spec.model, spec.head, bundle.feature_dims, spec.modalities, spec.profile,
                        **spec.model_overrides)
    model.load_state_dict(load_checkpoint(Path(folder) / f"seed{seed}" / "best.pt"))
    return model.eval()
