"""Several seeds of one CMN trained as one computation (:mod:`cmnlib.model.stacked`).

Each seed keeps what makes it that seed: its initialisation (its model is built under
``torch.manual_seed(seed)``, exactly as :func:`cmnlib.train.train_one` builds it), its data
order (its own loader, seeded by seed and epoch), its dropout stream, its validation,
selection and early stopping. The dropout stream is a generator holding the state the
global one has once the seed's model is built: what its separate run draws from on a CPU
(on a GPU, a device generator seeded by the seed). A seed that stops early keeps its
selected weights; the stack computes on until the last seed stops. Each seed's result
lands in its own ``seed<N>/`` folder in the same form as a separate run's, so tables,
ensembles and the cache read it alike; its provenance names the seeds it was stacked with.
On a CPU, stacked and separate training agree up to float rounding
(``tests/test_stacked.py``); on a GPU they agree in distribution (other dropout bits).

Where it pays: on a GPU, where one seed leaves the device idle. On a small CPU the step is
arithmetic, not launch overhead, and padding the seeds' batches to a common shape adds
work: ``cmn bench`` measures the ratio (slower than one seed at a time on the 2-core CPU
measured, docs/performance.md), so the default there stays one seed at a time
(:func:`stack_size`).
Covered: CMN with the encoder-decoder or stacked wiring and MCAN's LayerNorm on word-aligned
data, a constant learning rate (no plateau schedule: Adam's learning rate is one per
stack), fp32 or bf16; anything else trains one seed at a time.
"""
from __future__ import annotations

import os
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from . import results
from .atomic import set_aside
from .data.loader import make_loader
from .data.split import DataBundle
from .model import build_model, compiled
from .model import heads as H
from .model.stacked import NotStackable, seed_state, stack_batches, stack_models, stackable
from .precision import adam
from .precision import autocast as precision_context
from .results import SeedResult
from .spec import RunSpec
from .train import (atomic_save, improves, initial_model, predict_outputs, refuse_earlier_step, seed_lock, split_labels,
                    split_metrics, torch_threads, train_one)

__all__ = ["train_group", "train_stacked", "stacked_step", "stack_refusal", "stack_size", "STACK_ENV", "NotStackable"]

STACK_ENV = "CMN_STACK"  # seeds per stacked computation; 1 = one seed at a time


def stack_size(device: str = "cpu") -> int:
    """Seeds trained as one computation: ``$CMN_STACK`` when set, else 1 on a CPU (measured
    slower there, see the module docstring) and 10 on a GPU."""
    value = os.environ.get(STACK_ENV)
    if value:
        try:
            size = int(value)
        except ValueError:
            raise ValueError(f"${STACK_ENV} must be a whole number of seeds, got {value!r}") from None
        if size < 1:
            raise ValueError(f"${STACK_ENV} must be at least 1, got {size}")
        return size
    return 1 if str(device).startswith("cpu") else 10


def stack_refusal(spec: RunSpec, bundle: DataBundle) -> str | None:
    """None when ``spec``'s seeds can be stacked on ``bundle``, else why not (one line)."""
    spec = spec.resolved()
    if spec.model != "cmn":
        return f"{spec.model} has no stacked form (only cmn)"
    if spec.train.lr_schedule is not None:
        return f"lr_schedule={spec.train.lr_schedule!r} changes each seed's learning rate on its own"
    if spec.train.grad_clip:
        return "gradient clipping is per seed (not stacked)"
    if not bundle.aligned:
        return "the data is not word-aligned"
    probe = build_model(spec.model, spec.head, bundle.feature_dims, spec.modalities, spec.profile,
                        **spec.model_overrides)
    return stackable(probe)


def train_group(spec: RunSpec, bundle: DataBundle, seeds: list[int], folder: Path, progress: bool = True,
                stack: int | None = None) -> list[SeedResult]:
    """Train (or read) ``seeds`` of ``spec`` into ``folder``: stacked ``stack`` at a time
    (default :func:`stack_size`) where :func:`stack_refusal` allows, else one at a time."""
    spec = spec.resolved()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results.write_run(folder, spec, bundle.source_label, bundle.meta.get("source_hash"), split_labels(bundle))
    stack = stack or stack_size(spec.train.device)
    fresh = [s for s in seeds if not any((folder / f"seed{s}" / name).exists()
                                         for name in (results.RESULT_FILE, "checkpoint.pt"))]
    if stack > 1 and len(fresh) > 1 and stack_refusal(spec, bundle) is None:
        for start in range(0, len(fresh), stack):
            train_stacked(spec, bundle, fresh[start:start + stack], folder, progress)
    return [train_one(spec, bundle, seed, folder / f"seed{seed}", progress=progress) for seed in seeds]


def stacked_step(stacked, extents, optimizer, head: str, batches: list[dict], device="cpu",
                 precision: str = "fp32") -> list[torch.Tensor]:
    """One optimizer step of every seed of a stacked model, seed k on ``batches[k]``: the
    stacked forward, each seed's own mean loss (their sum's gradient is each seed's own
    gradient: the seeds share no weight), backward, Adam. Returns the detached losses."""
    features, lengths = stack_batches(batches, extents)
    features = {m: x.to(device) for m, x in features.items()}
    lengths = {m: x.to(device) for m, x in lengths.items()}
    with precision_context(precision, str(device)):
        output = stacked(features, lengths)
    block, losses = extents.block, []
    for k, batch in enumerate(batches):
        rows = extents.rows[k]
        losses.append(H.loss(head, output[k * block:k * block + rows].float(), batch["target"].to(device)))
    optimizer.zero_grad(set_to_none=True)
    torch.stack(losses).sum().backward()
    optimizer.step()
    return [loss.detach() for loss in losses]


def _stack_file(folder: Path, seeds: list[int]) -> Path:
    return folder / f"stacked-seeds{'_'.join(map(str, seeds))}.pt"


def train_stacked(spec: RunSpec, bundle: DataBundle, seeds: list[int], folder: Path,
                  progress: bool = True) -> list[SeedResult]:
    """Train ``seeds`` of ``spec`` as one stacked computation into ``folder/seed<N>/``.
    Resumes from the stack's checkpoint after a kill; a seed already finished is read."""
    spec = spec.resolved()
    why = stack_refusal(spec, bundle)
    if why:
        raise NotStackable(why)
    folder = Path(folder)
    with torch_threads(spec.train.threads), ExitStack() as locks:
        for seed in seeds:
            locks.enter_context(seed_lock(folder / f"seed{seed}"))
        trained = _train_stacked(spec, bundle, list(seeds), folder, progress)
    if trained is None:  # fewer than two seeds left to train: one at a time (each takes its own lock)
        return [train_one(spec, bundle, seed, folder / f"seed{seed}", progress=progress) for seed in seeds]
    return trained


def _train_stacked(spec: RunSpec, bundle: DataBundle, seeds: list[int], folder: Path,
                   progress: bool) -> list[SeedResult] | None:
    settings, device = spec.train, spec.train.device
    refuse_earlier_step()
    finished = {}
    for seed in seeds:
        try:
            done = results.read_seed(folder / f"seed{seed}")
        except results.UnreadableSeed:
            done = None  # train_one sets it aside and trains it alone
        if done is not None:
            finished[seed] = done
    pending = [s for s in seeds if s not in finished]
    if len(pending) < 2:
        return None

    models, generators, dropout_streams = [], [], []
    for seed in pending:  # as train_one builds each seed: the same weights, the same dropout stream
        models.append(initial_model(spec, bundle, seed, device))
        generator = torch.Generator()  # the global (CPU) stream as the seed's separate run continues it
        generator.set_state(torch.get_rng_state())
        generators.append(generator)
        # on a GPU, torch's own dropout draws from the device's generator, whose masks a stack
        # cannot redraw at another shape: each seed gets a device generator of its own instead
        # (its own stream, the same distribution, not the separate run's bits)
        dropout_streams.append(generator if torch.device(device).type == "cpu"
                               else torch.Generator(device=device).manual_seed(seed))
    stacked, extents = stack_models(models, dropout_streams)
    plain = models[0]  # evaluates one seed's weights at a time
    optimizer = adam(stacked.parameters(), settings.precision, settings.lr, settings.weight_decay, device)
    states = {s: {"epoch": 0, "history": [], "best": None, "best_epoch": 0, "stale": 0, "stopped": False}
              for s in pending}
    best_states: dict = {}
    epoch, seconds = 0, 0.0
    checkpoint_path = _stack_file(folder, pending)
    if checkpoint_path.exists():
        try:
            checkpoint = results.load_tensors(checkpoint_path)
            stacked.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            for generator, state in zip(generators + dropout_streams, checkpoint["generators"]):
                generator.set_state(state)
            states, epoch, seconds = checkpoint["states"], checkpoint["epoch"], checkpoint["seconds"]
            best_states = {s: results.load_tensors(folder / f"seed{s}" / "best.pt")
                           for s in pending if states[s]["best"] is not None}
        except (results.UnreadableSeed, KeyError, RuntimeError, ValueError, TypeError) as error:
            set_aside(checkpoint_path, f"cannot resume from it ({error})")
            return _train_stacked(spec, bundle, seeds, folder, progress)

    train_split, valid_split = bundle["train"], bundle["valid"]
    label = f"{spec.label} seeds {pending[0]}-{pending[-1]} stacked"
    bar = tqdm(total=settings.epochs, initial=epoch, desc=label, disable=not progress, leave=False, unit="epoch")
    try:
        while epoch < settings.epochs and not all(states[s]["stopped"] for s in pending):
            start = time.time()
            epoch += 1
            stacked.train()
            loaders = [make_loader(train_split, spec.modalities, spec.head, settings.batch_size, shuffle=True,
                                   seed=seed * 100_003 + epoch, bucket=settings.bucket) for seed in pending]
            totals = [0.0] * len(pending)  # each seed's loss summed over its rows, as train_one sums it
            iterators = []
            for generator, loader in zip(generators, loaders):
                with _global_stream(generator):  # a DataLoader draws its base seed from the global stream
                    iterators.append(iter(loader))
            for batches in zip(*iterators, strict=True):
                losses = stacked_step(stacked, extents, optimizer, spec.head, batches, device, settings.precision)
                for k, loss in enumerate(losses):
                    totals[k] += float(loss) * extents.rows[k]
            for k, seed in enumerate(pending):
                _after_epoch(spec, seed, k, epoch, stacked, plain, valid_split, states[seed], best_states,
                             totals[k] / len(train_split), optimizer.param_groups[0]["lr"], folder, generators[k])
            seconds += time.time() - start
            atomic_save({"model": stacked.state_dict(), "optimizer": optimizer.state_dict(),
                         "generators": [g.get_state() for g in generators + dropout_streams], "states": states,
                         "epoch": epoch, "seconds": seconds, "seeds": pending, "spec": spec.to_dict(),
                         "data_hash": bundle.meta.get("source_hash")}, checkpoint_path)
            bar.update(epoch - bar.n)
    finally:
        bar.close()

    stacked_with = {"seeds": pending, "stack": len(pending)}
    for seed in pending:
        state = states[seed]
        plain.load_state_dict(best_states[seed])
        outputs = {split: predict_outputs(plain, bundle[split], spec.modalities, spec.head, device=device,
                                          precision=settings.precision).numpy() for split in results.SPLITS}
        provenance = {**results.provenance_here(), "stacked_with": stacked_with}
        finished[seed] = SeedResult(seed=seed, best_epoch=state["best_epoch"], epochs_run=len(state["history"]),
                                    history=state["history"], train_seconds=seconds / len(pending),
                                    outputs=outputs, provenance=provenance,
                                    fused_kernels=compiled.summary() if settings.precision != "fp32" else None)
        results.write_seed(folder / f"seed{seed}", finished[seed], spec.dataset, spec.head, split_labels(bundle))
    checkpoint_path.unlink(missing_ok=True)
    return [results.read_seed(folder / f"seed{s}") for s in seeds]


@contextmanager
def _global_stream(generator: torch.Generator):
    """Within the block, torch's global generator continues ``generator``'s stream, which
    then continues from where the block left it; the global stream itself is restored. So
    that a seed's stream sees every draw its separate run makes from the global generator
    (the loaders' base seeds), not only its dropout masks."""
    before = torch.get_rng_state()
    torch.set_rng_state(generator.get_state())
    try:
        yield
    finally:
        generator.set_state(torch.get_rng_state())
        torch.set_rng_state(before)


def _after_epoch(spec: RunSpec, seed: int, k: int, epoch: int, stacked, plain, valid_split, state: dict,
                 best_states: dict, train_loss: float, lr: float, folder: Path, generator: torch.Generator) -> None:
    """One seed's end of epoch, as :func:`cmnlib.train.train_one` does it: validation on
    its own weights, the record, selection, early stopping."""
    if state["stopped"]:
        return
    settings = spec.train
    weights = seed_state(stacked, k)
    plain.load_state_dict(weights)
    with _global_stream(generator):  # whatever validation draws, the seed's separate run draws too
        outputs = predict_outputs(plain, valid_split, spec.modalities, spec.head, device=settings.device,
                                  precision=settings.precision)
    valid = split_metrics(spec.dataset, spec.head, outputs, valid_split)
    criterion = valid[settings.select_on]
    state["history"].append({"epoch": epoch, "train_loss": train_loss, "lr": lr,
                             **{f"valid_{key}": v for key, v in valid.items() if isinstance(v, float)}})
    if improves(settings.select_on, criterion, state["best"]):
        state.update(best=criterion, best_epoch=epoch, stale=0)
        best_states[seed] = weights
        atomic_save(weights, folder / f"seed{seed}" / "best.pt")
    else:
        state["stale"] += 1
    state["epoch"] = epoch
    if settings.patience is not None and state["stale"] >= settings.patience:
        state["stopped"] = True
