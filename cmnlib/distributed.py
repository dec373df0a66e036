"""Scale-out: data-parallel training with PyTorch's DistributedDataParallel.

Data parallel (one model, N processes, each computing the gradient of its shard of every
global batch; DDP averages the gradients, so every process takes the same Adam step)::

    torchrun --nproc_per_node 2 -m cmnlib.distributed --dataset mosei --model cmn \\
        --modalities LA --profile quick --epochs 2 --global-batch 64 --seed 0 --out runs/ddp

gloo on CPU, nccl on GPU (one GPU per process, ``LOCAL_RANK``). On one machine,
``torchrun --standalone`` starts the processes and finds a free port (the tests use it).

How a global batch is split: the epoch's order is a seeded permutation (or the trainer's
length buckets, ``--bucket``) computed identically in every process; it is cut into global
batches of exactly ``global_batch`` rows (the last incomplete one is dropped), and process
``r`` takes rows ``[r * B/N, (r + 1) * B/N)`` of each. Every shard has the same size and
each process uses the MEAN loss over its shard, so DDP's average of the N gradients is the
gradient of the mean loss over the global batch: the same step a single process takes on
the whole global batch (up to float rounding; exactly the same function when dropout is 0,
since the dropout masks differ). Each process trims its shard to its own longest row,
which changes no output (padding invariance). This trainer runs a fixed number of epochs
and reports the final model's valid/test metrics; it does no early stopping or model
selection (use :func:`cmnlib.train.train_one` for that).

Independent runs (the seeds of an ensemble, the rows of a table) need no communication;
they are spread over processes by :mod:`cmnlib.runs`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from . import config, options
from .data import load_dataset
from .data.loader import MultimodalDataset, bucketed_batches
from .data.split import DataBundle
from .train import TRAIN_PROFILES, RunSpec, adam, initial_model, predict_outputs, split_metrics, train_step


# ======================================================================================
# Data parallel
# ======================================================================================

def global_batches(lengths: np.ndarray, global_batch: int, seed: int, bucket: bool = False) -> list[list[int]]:
    """The epoch's global batches: full batches of ``global_batch`` row indices, the same in
    every process (numpy, seeded; no torch RNG). ``bucket``: the trainer's length buckets
    (:func:`cmnlib.data.loader.bucketed_batches`) instead of a plain permutation."""
    if bucket:
        batches = bucketed_batches(lengths, global_batch, seed)
    else:
        order = np.random.default_rng(seed).permutation(len(lengths))
        batches = [order[i:i + global_batch].tolist() for i in range(0, len(order), global_batch)]
    return [b for b in batches if len(b) == global_batch]


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA (this process's ``LOCAL_RANK`` GPU) when there is one
    and the group, if any, is nccl; else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available() and (not dist.is_initialized() or dist.get_backend() == "nccl"):
        index = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def train_data_parallel(spec: RunSpec, bundle: DataBundle, seed: int = 0, *, epochs: int | None = None,
                        global_batch: int | None = None, bucket: bool = False, max_steps: int | None = None,
                        evaluate: bool = True, device: str | None = None) -> tuple[dict, torch.nn.Module]:
    """Train ``spec`` on ``bundle`` in every process of the current process group (or alone,
    as a world of one, when none is initialised); returns ``(result, model)``.

    ``global_batch`` (default: the profile's batch size) must be divisible by the world
    size. Adam, lr, weight decay and gradient clipping come from the spec's TrainConfig.
    ``max_steps`` stops after that many optimizer steps in all. Rank 0 evaluates the final
    model on valid and test (``evaluate``); the others return their training history only.
    ``device``: default CUDA under nccl (or with no group) when there is a GPU, else CPU.
    """
    spec = spec.resolved()
    settings = spec.train
    epochs = settings.epochs if epochs is None else epochs
    global_batch = global_batch or settings.batch_size
    rank, world = _rank_world()
    if global_batch % world:
        raise ValueError(f"the global batch {global_batch} is not divisible by the {world} processes")
    local = global_batch // world
    device = _device(device)
    model = initial_model(spec, bundle, seed, str(device))  # the same everywhere (DDP also broadcasts rank 0's)
    net = model
    if dist.is_available() and dist.is_initialized():
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    torch.manual_seed(seed * 1009 + rank)  # dropout masks: a stream per process
    # the trainer's Adam for this precision (fused for bf16): DDP runs hash like single-process ones
    optimizer = adam(model.parameters(), settings.precision, settings.lr, settings.weight_decay, str(device))
    train = bundle["train"]
    dataset = MultimodalDataset(train, spec.modalities, spec.head)
    longest = np.max(np.stack([train.lengths[m] for m in dataset.modalities]), axis=0)
    history, steps = [], 0
    for epoch in range(1, epochs + 1):
        net.train()
        total = torch.zeros(2, dtype=torch.float64, device=device)  # nccl reduces device tensors only
        for indices in global_batches(longest, global_batch, seed * 100_003 + epoch, bucket):
            batch = dataset.__getitems__(indices[rank * local:(rank + 1) * local])
            # the mean loss over this shard; DDP averages the gradients over the processes
            loss = train_step(net, optimizer, spec.head, batch, device, settings.grad_clip, settings.precision)
            total[0] += loss.double() * local
            total[1] += local
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        if net is not model:
            dist.all_reduce(total)
        history.append({"epoch": epoch, "train_loss": float(total[0] / total[1]) if total[1] else None,
                        "steps": steps})
        if max_steps is not None and steps >= max_steps:
            break
    result = {"seed": seed, "rank": rank, "world_size": world, "global_batch": global_batch,
              "local_batch": local, "steps": steps, "history": history, "spec": spec.label,
              "backend": dist.get_backend() if net is not model else None, "device": str(device)}
    if rank == 0 and evaluate:
        for name in ("valid", "test"):
            outputs = predict_outputs(model, bundle[name], spec.modalities, spec.head, device=str(device),
                                      precision=settings.precision)
            result[name] = split_metrics(spec.dataset, spec.head, outputs, bundle[name])
    return result, model


def train_to_folder(spec: RunSpec, bundle: DataBundle, seed: int, out: str | Path, **kwargs) -> dict:
    """:func:`train_data_parallel`, then rank 0 writes ``result.json``, ``model.pt`` (the
    state dict) and ``outputs.pt`` (valid/test outputs) under ``out``."""
    result, model = train_data_parallel(spec, bundle, seed, **kwargs)
    rank, world = _rank_world()
    if rank == 0:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        spec = spec.resolved()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / "model.pt")
        torch.save({name: predict_outputs(model, bundle[name], spec.modalities, spec.head,
                                          device=str(next(model.parameters()).device),
                                          precision=spec.train.precision)
                    for name in ("valid", "test")}, out / "outputs.pt")
        (out / "result.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    return result


# ======================================================================================
# Command line (torchrun)
# ======================================================================================

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torchrun --nproc_per_node N -m cmnlib.distributed",
                                     description="data-parallel training (DistributedDataParallel)")
    options.add_data_options(parser, dataset_default=config.DEFAULT_DATASET)
    options.add_model_options(parser)
    parser.add_argument("--global-batch", type=options.positive_int, default=None,
                        help="default: the profile's batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bucket", action="store_true", help="global batches from the trainer's length buckets")
    parser.add_argument("--max-steps", type=options.positive_int, default=None)
    parser.add_argument("--backend", default=None, help="gloo or nccl (default: nccl with CUDA, else gloo)")
    parser.add_argument("--threads", type=options.positive_int, default=None, help="torch threads per process")
    parser.add_argument("--out", default="data/runs/ddp", help="output folder (rank 0 writes there)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = config.parse_overrides(args.set)
    except ValueError as error:
        parser.error(str(error))
    if args.threads:
        torch.set_num_threads(args.threads)
    backend = args.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if "WORLD_SIZE" in os.environ:  # started by torchrun
        dist.init_process_group(backend)
    try:
        bundle = load_dataset(args.dataset, args.data, scale=args.scale)
        train = TRAIN_PROFILES[args.profile]
        if args.lr is not None:
            train = replace(train, lr=args.lr)
        spec = RunSpec(model=args.model, dataset=args.dataset, head=args.head, modalities=args.modalities,
                       profile=args.profile, model_overrides=overrides, train=train)
        result = train_to_folder(spec, bundle, args.seed, args.out, epochs=args.epochs,
                                 global_batch=args.global_batch, bucket=args.bucket, max_steps=args.max_steps)
        if result["rank"] == 0:
            print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=1, default=float))
            print(f"written to {args.out}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
