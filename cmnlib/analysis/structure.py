"""The MUA wiring read off the code (forward hooks on a tiny CMN), a shape trace through
the whole model, and the whole model checked against the plain reference CMN (notebook 04)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import parse_modalities
from ..data.split import Split
from ..model import count_parameters
from ..model.attention import SA, SGA, capture_attention
from ..model.cmn import CMN, CMNConfig, MUA_WIRINGS
from ..model.reference import reference_from
from .maps import seeded_cmn


# ======================================================================================
# The MUA wiring, read off the code
# ======================================================================================

_PROBE_DIMS = {"text": 6, "audio": 5, "vision": 4}
_PROBE_LENGTHS = {"text": 5, "audio": 6, "vision": 7}


@torch.no_grad()
def mua_guidance(mua: str = "encoder_decoder", layers: int = 2, modalities: str = "LA") -> pd.DataFrame:
    """Which stream feeds which MUA unit, read off the code rather than the docs.

    Builds a tiny CMN with the given wiring, runs it once on random inputs (each modality a
    different length) with forward hooks, and matches each unit's inputs, by value, to the
    outputs of the LSTMs and of the other units. Returns one row per unit, in call order:
    unit, modality, layer (1-based), kind (SA or SGA), 'queries from' and 'guided by'
    (keys/values of the guided attention; several sources joined by ' + ' when
    concatenated; '' for SA).
    """
    names = parse_modalities(modalities)
    torch.manual_seed(0)
    config = CMNConfig(modalities=modalities, input_dims=dict(_PROBE_DIMS), hidden=8, layers=layers,
                       heads=2, ff_size=16, dropout=0.0, output_dropout=0.0, mua=mua)
    model = CMN(config).eval()
    produced: list[tuple[str, torch.Tensor]] = []
    calls: list[tuple[str, nn.Module, tuple]] = []
    hooks = []

    def lstm_hook(name):
        return lambda module, args, output: produced.append((name, output[0]))

    def unit_hook(name):
        def hook(module, args, output):
            calls.append((name, module, args))
            produced.append((name, output))
        return hook

    for m in names:
        hooks.append(model.lstm[m].register_forward_hook(lstm_hook(f"{m} LSTM")))
    units = []
    if model.backbone.encoder is not None:
        units += [(f"{model.backbone.guide} SA {i + 1}", u) for i, u in enumerate(model.backbone.encoder)]
    for m, blocks in model.backbone.blocks.items():
        units += [(f"{m} SGA {i + 1}", u) for i, u in enumerate(blocks)]
    hooks += [u.register_forward_hook(unit_hook(name)) for name, u in units]
    g = torch.Generator().manual_seed(1)
    features = {m: torch.randn(1, _PROBE_LENGTHS[m], _PROBE_DIMS[m], generator=g) for m in names}
    lengths = {m: torch.tensor([_PROBE_LENGTHS[m]]) for m in names}
    try:
        model(features, lengths)
    finally:
        for hook in hooks:
            hook.remove()

    def identify(tensor: torch.Tensor) -> str:
        parts, offset = [], 0
        while offset < tensor.shape[1]:
            for name, out in produced:
                n = out.shape[1]
                if offset + n <= tensor.shape[1] and torch.equal(tensor[:, offset:offset + n], out):
                    parts.append(name)
                    offset += n
                    break
            else:
                return "?"
        return " + ".join(parts)

    rows = []
    for name, module, args in calls:
        modality, kind, layer = name.split()
        rows.append({"unit": name, "modality": modality, "layer": int(layer), "kind": kind,
                     "queries from": identify(args[0]),
                     "guided by": identify(args[1]) if isinstance(module, SGA) else None})
    return pd.DataFrame(rows)


# ======================================================================================
# Shapes, parameters, FLOPs
# ======================================================================================

def example_batch(split: Split, indices=(0, 1), modalities: str = "LA"):
    """Rows ``indices`` of ``split`` as one right-padded batch cut to its longest row:
    (features, lengths), as the loader gives them."""
    index = np.asarray(indices)
    features, lengths = {}, {}
    for m in parse_modalities(modalities):
        n = split.lengths[m][index]
        features[m] = torch.from_numpy(split.features[m][index, :max(int(n.max()), 1)].copy())
        lengths[m] = torch.from_numpy(n.astype(np.int64))
    return features, lengths


def _shape(x) -> str:
    return " × ".join(str(s) for s in x.shape)


@torch.no_grad()
def shape_trace(model: CMN, features: dict, lengths: dict) -> pd.DataFrame:
    """Run ``model`` once (eval mode) and list, in call order, every stage with its
    module, the shapes of its tensor inputs and of its output, and its parameters.

    Stages: input, 1 LSTM, 2 MUA (SA / SGA units; an SGA's second input is its guide),
    3 AttFlat, 4 fusion (the AttFlat outputs summed, then LayerNorm: the row shows the
    norm, whose input is the sum), 5 head (linear, then the head's output shape).
    """
    stages = {"lstm": "1 LSTM", "backbone": "2 MUA", "attflat": "3 AttFlat",
              "proj_norm": "4 fusion (sum, norm)", "proj": "5 head"}
    rows = [{"stage": "input", "module": f"features[{m!r}]", "input": None, "output": _shape(x),
             "parameters": 0} for m, x in features.items()]
    hooks = []

    def hook(name, stage):
        def record(module, args, output):
            tensors = [a for a in args if torch.is_tensor(a) and a.is_floating_point()]
            out = output[0] if isinstance(output, tuple) else output
            rows.append({"stage": stage, "module": f"{name} ({type(module).__name__})",
                         "input": ", ".join(_shape(t) for t in tensors), "output": _shape(out),
                         "parameters": count_parameters(module)})
        return record

    for name, module in model.named_modules():
        top = name.split(".")[0]
        stage = stages.get(top)
        if stage is None:
            continue
        depth = name.count(".")
        wanted = ((top in ("lstm", "attflat") and depth == 1) or top in ("proj_norm", "proj")
                  or (top == "backbone" and isinstance(module, (SA, SGA))))
        if wanted:
            hooks.append(module.register_forward_hook(hook(name, stage)))
    was_training = model.training
    model.eval()
    try:
        output = model(features, lengths)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    rows.append({"stage": "5 head", "module": f"output ({model.config.head})", "input": None,
                 "output": _shape(output), "parameters": 0})
    return pd.DataFrame(rows)


# ======================================================================================
# The whole model against the plain reference
# ======================================================================================

REFERENCE_TOLERANCE = 1e-5


@torch.no_grad()
def reference_check(bundle, features: dict, lengths: dict, modalities: str = "LA", profile: str = "quick",
                    seed: int = 0) -> pd.DataFrame:
    """cmnlib's CMN against :class:`cmnlib.model.reference.ReferenceCMN` (the plain MCAN-style
    CMN the benchmark also measures against), one row per MUA wiring: an untrained CMN for
    ``bundle`` with weights from ``torch.manual_seed(seed)``, the reference loaded with the
    same weights (by name, strict), both run in eval mode on ``features``/``lengths``.

    Columns: the wiring, the largest absolute difference of the outputs, and whether it is
    below :data:`REFERENCE_TOLERANCE` (float32 rounding: the fused kernels sum in another
    order than the explicit matrix products).
    """
    rows = []
    for mua in MUA_WIRINGS:
        model = seeded_cmn(bundle, modalities, profile, seed, mua=mua)
        reference = reference_from(model).eval()
        diff = float((model(features, lengths) - reference(features, lengths)).abs().max())
        rows.append({"wiring": mua, "max |CMN - reference|": diff, f"below {REFERENCE_TOLERANCE:g}":
                     diff < REFERENCE_TOLERANCE})
    return pd.DataFrame(rows)


@torch.no_grad()
def diagonal_prior_check(strength: float = 0.3, steps: int = 6, seed: int = 0) -> dict:
    """The diagonal prior alone: a small CMN with ``alignment='diagonal_prior'`` whose query
    projections are zero (every content score equal), run on one random word-aligned
    utterance of ``steps`` words; its first guided map (layer 1, head 1) against the formula
    ``exp(-a|i-j|) / sum_j' exp(-a|i-j'|)`` written out. Returns {'model', 'by_hand'
    (tensors, (steps, steps)), 'agree' (within 1e-6)}."""
    torch.manual_seed(seed)
    config = CMNConfig(modalities="LA", input_dims={"text": 6, "audio": 5}, hidden=8, layers=1, heads=2,
                       ff_size=8, dropout=0.0, output_dropout=0.0, alignment="diagonal_prior",
                       alignment_strength=strength)
    model = CMN(config).eval()
    for module in model.modules():
        if hasattr(module, "linear_q"):
            module.linear_q.weight.zero_()
            module.linear_q.bias.zero_()
    features = {m: torch.randn(1, steps, d) for m, d in config.input_dims.items()}
    lengths = {m: torch.tensor([steps]) for m in features}
    with capture_attention(model):
        model(features, lengths)
    weights = model.attention_maps()["audio/guided"][0][0, 0]
    offset = (torch.arange(steps)[:, None] - torch.arange(steps)[None, :]).abs().double()
    scores = torch.exp(-strength * offset)
    by_hand = scores / scores.sum(dim=1, keepdim=True)
    return {"model": weights, "by_hand": by_hand.float(),
            "agree": bool(torch.allclose(weights.double(), by_hand, atol=1e-6))}
