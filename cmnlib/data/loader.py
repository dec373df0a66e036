"""Batches for training: a torch Dataset over a canonical :class:`Split`.

A batch is a dict::

    {"features": {modality: (B, T_b, D) float32}, "lengths": {modality: (B,) int64},
     "target": task-dependent tensor, "index": (B,) int64 rows of the split}

Sequences stay right-padded; each batch is cut to its longest sequence (``trim``), which
drops only padding. Masks come from ``lengths`` (see :func:`cmnlib.model.attention.padding_mask`), never from
all-zero frames. Whole batches are gathered at once (``__getitems__``) instead of
collating sample by sample, so the loader costs little next to the model.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import parse_modalities
from .split import Split, class_index

TASKS = {
    "regression": "MOSEI/MOSI sentiment score in [-3, 3] (float)",
    "binary": "MOSEI/MOSI non-negative (1) vs negative (0)",
    "4class": "IEMOCAP: one of neutral, happy, sad, angry",
    "binary4": "IEMOCAP: MulT's form, each emotion present or absent (B, 4)",
}


def targets_from_labels(labels: np.ndarray, task: str) -> torch.Tensor:
    """The training target of every row for ``task``, from a split's ``labels`` (see
    :class:`cmnlib.data.split.Split`): the training loop and the metrics of stored outputs
    (:mod:`cmnlib.results`) both take their targets from here."""
    if task == "regression":
        return torch.from_numpy(np.asarray(labels).astype(np.float32))
    if task == "binary":
        return torch.from_numpy((np.asarray(labels) >= 0).astype(np.int64))
    if task == "4class":
        return torch.from_numpy(class_index(np.asarray(labels)))
    if task == "binary4":
        return torch.from_numpy(np.asarray(labels).astype(np.int64))
    raise ValueError(f"unknown task {task!r}; one of {list(TASKS)}")


def task_targets(split: Split, task: str) -> torch.Tensor:
    """The training target of every row of ``split`` for ``task``."""
    return targets_from_labels(split.labels, task) if task != "4class" else torch.from_numpy(split.class_index())


class MultimodalDataset(Dataset):
    """The rows of one split, restricted to some modalities, with targets for one task."""

    def __init__(self, split: Split, modalities: str | tuple[str, ...] = "LA", task: str = "regression",
                 trim: bool = True):
        self.modalities = parse_modalities(modalities) if isinstance(modalities, str) else tuple(modalities)
        missing = [m for m in self.modalities if m not in split.features]
        if missing:
            raise ValueError(f"split {split.name!r} has no {missing}; it has {split.modalities}")
        self.split = split
        self.task = task
        self.trim = trim
        # torch views of the numpy arrays: no copy
        self.features = {m: torch.from_numpy(split.features[m]) for m in self.modalities}
        self.lengths = {m: torch.from_numpy(split.lengths[m]) for m in self.modalities}
        self.targets = task_targets(split, task)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])

    def __getitems__(self, indices) -> dict:
        index = torch.as_tensor(indices, dtype=torch.long)
        lengths = {m: self.lengths[m][index] for m in self.modalities}
        features = {}
        for m in self.modalities:
            t = int(lengths[m].max()) if self.trim and index.numel() else self.features[m].shape[1]
            features[m] = self.features[m][index, :max(t, 1)]
        return {"features": features, "lengths": lengths, "target": self.targets[index], "index": index}


def _identity(batch):
    return batch


def bucketed_batches(lengths: np.ndarray, batch_size: int, seed: int | None,
                     bucket_batches: int = 20) -> list[list[int]]:
    """Batches of rows with similar lengths, so trimming removes most padding.

    With a seed: shuffle, sort by length inside windows of ``bucket_batches`` batches, cut
    into batches and shuffle their order (random but deterministic). Without: rows sorted
    by length (for evaluation, where order does not matter).
    """
    n = lengths.shape[0]
    if seed is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    window = batch_size * bucket_batches
    batches = []
    for start in range(0, n, window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size].tolist() for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def make_loader(split: Split, modalities="LA", task: str = "regression", batch_size: int = 32,
                shuffle: bool = False, seed: int = 0, trim: bool = True, drop_last: bool = False,
                sampler=None, bucket: bool = False) -> DataLoader:
    """A DataLoader of whole-batch dicts.

    ``shuffle`` is seeded and deterministic. ``bucket`` groups rows of similar length
    (see :func:`bucketed_batches`; shuffled when ``shuffle``, sorted otherwise).
    ``sampler`` (e.g. a DistributedSampler) replaces the shuffling.
    """
    dataset = MultimodalDataset(split, modalities, task, trim)
    if bucket and sampler is None:
        longest = np.max(np.stack([split.lengths[m] for m in dataset.modalities]), axis=0)
        batches = bucketed_batches(longest, batch_size, seed if shuffle else None)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=_identity, num_workers=0)
    generator = torch.Generator().manual_seed(seed) if shuffle and sampler is None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, generator=generator, collate_fn=_identity,
                      drop_last=drop_last, num_workers=0)
