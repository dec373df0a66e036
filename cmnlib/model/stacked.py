"""K seeds of one CMN as one model: the same modules, each weight stacked along a seed
dimension, so that one forward and one backward run K trainings at once.

Where one seed's step leaves the hardware idle (a GPU running a quick or paper-profile
CMN, whose kernels are small), K seeds in one computation share each kernel launch; on the
2-core CPU measured, where the step is mostly arithmetic, it does not pay
(docs/performance.md). Nothing about the model changes; the batch dimension holds the K
seeds' batches one after another, ``(K * B, ...)``, and only the modules that hold weights
or draw random numbers know about K:

* :class:`StackedLinear`: ``y_k = x_k W_k^T + b_k`` for every seed k, as one ``baddbmm``;
* :class:`StackedLayerNorm`: MCAN's LayerNorm with each seed's gain and bias;
* :class:`StackedLSTM`: each seed's LSTM on its own rows and steps (``aten::lstm`` has no
  batched-weights form), so its outputs are those of the separate model bit for bit;
* :class:`StackedDropout`: each seed's mask drawn from that seed's own generator at the
  shape its own batch has, then padded, so every seed sees the masks of its separate run.

Attention, masking, pooling and the head are the model's own code, unchanged: they have no
weights, and each row only ever looks at itself. The K batches are padded to a common
shape (the most rows and steps among them); padding steps are masked as always, padding
rows have length 0 and no loss. So stacked training computes what K separate trainings
compute, up to float rounding (matrix products of another shape may round differently);
``tests/test_stacked.py`` states the tolerance.

Word-aligned input only (one length per utterance in every modality: the dropout masks'
time dimensions are then one length per seed), and the modules listed; anything else is
trained one seed at a time (:func:`stackable` says why).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .attention import MCANLayerNorm, apply_dropout, dropout_mask, mcan_layer_norm
from .cmn import CMN

__all__ = ["SeedExtents", "StackedLinear", "StackedLayerNorm", "StackedLSTM", "StackedDropout", "stack_batches",
           "stack_models", "seed_state", "stackable", "NotStackable"]


class NotStackable(ValueError):
    """A model (or a configuration) the stacked form does not cover."""


@dataclass
class SeedExtents:
    """What one stacked batch holds: per seed, its real rows and its padded steps (the
    longest utterance of its own batch). Shared by the modules of one stacked model and
    set before each forward."""

    rows: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    @property
    def seeds(self) -> int:
        return len(self.rows)

    @property
    def block(self) -> int:
        """Rows per seed in the stacked batch (the most any seed has)."""
        return max(self.rows)

    def set(self, rows: list[int], steps: list[int]) -> None:
        self.rows, self.steps = list(rows), list(steps)


class StackedLinear(nn.Module):
    """K linear maps, ``(K * B, ..., in) -> (K * B, ..., out)``: rows k*B .. (k+1)*B - 1 go
    through seed k's weights."""

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]))     # (K, out, in)
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears]))         # (K, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seeds, width = self.weight.shape[0], x.shape[-1]
        by_seed = x.reshape(seeds, -1, width)
        out = torch.baddbmm(self.bias[:, None, :], by_seed, self.weight.transpose(1, 2))
        return out.reshape(*x.shape[:-1], self.weight.shape[1])

    def unstacked(self, k: int) -> dict:
        return {"weight": self.weight[k], "bias": self.bias[k]}


class StackedLayerNorm(nn.Module):
    """K of MCAN's LayerNorms (:class:`cmnlib.model.attention.MCANLayerNorm`)."""

    def __init__(self, norms: list[MCANLayerNorm]):
        super().__init__()
        self.eps = norms[0].eps
        self.a_2 = nn.Parameter(torch.stack([m.a_2.detach() for m in norms]))  # (K, D)
        self.b_2 = nn.Parameter(torch.stack([m.b_2.detach() for m in norms]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seeds, width = self.a_2.shape
        out = mcan_layer_norm(x.reshape(seeds, -1, width), self.a_2[:, None, :], self.b_2[:, None, :], self.eps)
        return out.reshape(x.shape)

    def unstacked(self, k: int) -> dict:
        return {"a_2": self.a_2[k], "b_2": self.b_2[k]}


class StackedLSTM(nn.Module):
    """K LSTMs, each run on its own seed's real rows and steps (zeros elsewhere)."""

    def __init__(self, lstms: list[nn.LSTM], extents: SeedExtents):
        super().__init__()
        self.lstms = nn.ModuleList(lstms)
        self.extents = extents

    def forward(self, x: torch.Tensor):
        extents, block = self.extents, self.extents.block
        out = x.new_zeros(x.shape[0], x.shape[1], self.lstms[0].hidden_size)
        for k, lstm in enumerate(self.lstms):
            rows, steps = extents.rows[k], extents.steps[k]
            out[k * block:k * block + rows, :steps] = lstm(x[k * block:k * block + rows, :steps].contiguous())[0]
        return out, None

    def unstacked(self, k: int) -> dict:
        return dict(self.lstms[k].named_parameters())


class StackedDropout(nn.Module):
    """Dropout with one generator per seed: seed k's mask is drawn at the shape of its own
    batch (its rows, its steps) from its own stream, as its separate run draws it, and
    padded into the stacked batch. Time dimensions: dim 1 of (B, T, D), dims 2 and 3 of
    attention weights (B, H, T, T); a (B, D) input has none."""

    TIME_DIMS = {2: (), 3: (1,), 4: (2, 3)}

    def __init__(self, p: float, generators: list[torch.Generator], extents: SeedExtents):
        super().__init__()
        self.p, self.generators, self.extents = p, generators, extents

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        extents, block = self.extents, self.extents.block
        time_dims = self.TIME_DIMS.get(x.dim())
        longest = max(extents.steps)
        if time_dims is None or x.shape[0] != block * extents.seeds or any(x.shape[d] != longest for d in time_dims):
            raise NotStackable(f"stacked dropout: unexpected input shape {tuple(x.shape)} for {extents.seeds} seeds "
                               f"of {block} rows and {longest} steps")
        mask, scale = torch.zeros(x.shape, dtype=x.dtype, device=x.device), None
        for k, generator in enumerate(self.generators):
            rows, steps = extents.rows[k], extents.steps[k]
            shape = [rows] + [steps if d in time_dims else x.shape[d] for d in range(1, x.dim())]
            own, scale = dropout_mask(shape, self.p, x.dtype, generator, x.device)
            mask[(slice(k * block, k * block + rows),) + tuple(slice(0, n) for n in shape[1:])] = own
        return apply_dropout(x, mask, scale)


_STACKED = (StackedLinear, StackedLayerNorm, StackedLSTM)


def stackable(model: nn.Module) -> str | None:
    """None when ``model`` has a stacked form here, else why not (one line)."""
    if not isinstance(model, CMN):
        return f"{type(model).__name__} has no stacked form (only CMN)"
    config = model.config
    if config.mua == "symmetric":
        return "the symmetric MUA wiring concatenates the other modalities' steps (not stacked)"
    if config.pack_lstm:
        return "packed LSTMs are not stacked"
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm):
            return f"{name}: torch's LayerNorm is not stacked (layer_norm='mcan' is)"
        own = [p for p, _ in module.named_parameters(recurse=False)]
        if own and not isinstance(module, (nn.Linear, MCANLayerNorm, nn.LSTM)):
            return f"{name or 'the model'} holds its own weights ({', '.join(own)})"
    return None


def stack_models(models: list[nn.Module], generators: list[torch.Generator]) -> tuple[nn.Module, SeedExtents]:
    """One model computing ``models`` (K of one configuration, each with its own weights)
    side by side, and the extents to set before each forward. Seed k's dropout draws from
    ``generators[k]``. The models are left untouched; their weights are copied."""
    why = stackable(models[0])
    if why:
        raise NotStackable(why)
    extents = SeedExtents()
    stacked = copy.deepcopy(models[0])
    for name, module in list(stacked.named_modules()):
        if not name:
            continue
        parts = [m.get_submodule(name) for m in models]
        if isinstance(module, nn.Linear):
            new = StackedLinear(parts)
        elif isinstance(module, MCANLayerNorm):
            new = StackedLayerNorm(parts)
        elif isinstance(module, nn.LSTM):
            new = StackedLSTM([copy.deepcopy(p) for p in parts], extents)
        elif isinstance(module, nn.Dropout):
            new = StackedDropout(module.p, generators, extents)
        else:
            continue
        parent, _, child = name.rpartition(".")
        setattr(stacked.get_submodule(parent) if parent else stacked, child, new)
    stacked.train(models[0].training)
    return stacked, extents


def seed_state(stacked: nn.Module, k: int) -> dict:
    """Seed k's weights as its own model's state dict (the names of the unstacked model)."""
    state = {}
    for name, module in stacked.named_modules():
        if isinstance(module, _STACKED):
            for key, value in module.unstacked(k).items():
                state[f"{name}.{key}"] = value.detach().clone()
    return state


def stack_batches(batches: list[dict], extents: SeedExtents) -> tuple[dict, dict]:
    """One stacked batch from K loader batches (one per seed, in seed order): features
    ``(K * B, T, D)`` and lengths ``(K * B,)`` per modality, B and T the most rows and
    steps among them, seed k's rows at k*B, zeros (length 0) elsewhere. Sets ``extents``.
    Every batch must be word-aligned (one step count in every modality)."""
    names = list(batches[0]["features"])
    rows, steps = [], []
    for k, batch in enumerate(batches):
        counts = {m: batch["features"][m].shape[1] for m in names}
        if len(set(counts.values())) != 1:
            raise NotStackable(f"stacking needs word-aligned batches; seed {k}'s batch has steps {counts}")
        rows.append(int(batch["target"].shape[0]))
        steps.append(next(iter(counts.values())))
    extents.set(rows, steps)
    block, longest = extents.block, max(steps)
    features, lengths = {}, {}
    for m in names:
        first = batches[0]["features"][m]
        features[m] = first.new_zeros(len(batches) * block, longest, first.shape[2])
        lengths[m] = torch.zeros(len(batches) * block, dtype=torch.long)
        for k, batch in enumerate(batches):
            features[m][k * block:k * block + rows[k], :steps[k]] = batch["features"][m]
            lengths[m][k * block:k * block + rows[k]] = batch["lengths"][m]
    return features, lengths

