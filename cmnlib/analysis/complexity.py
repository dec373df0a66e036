"""Model sizes and cost: transformer modules, layers, parameters and FLOPs of CMN
against MulT (notebook 04)."""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ..config import DATASETS, parse_modalities
from ..model import build_model, count_flops, count_parameters, transformer_modules
from ..model.attention import GA, SA, SGA, MultiHeadAttention
from ..model.mult import MultiheadAttention as MulTAttention
from ..model.mult import TransformerEncoderLayer


COMPLEXITY_MODELS = (("CMN (L+A)", "cmn", "LA"), ("CMN (L+A+V)", "cmn", "LAV"),
                     ("MulT (L+A)", "mult", "LA"), ("MulT (L+A+V)", "mult", "LAV"))


def _attention_layers(model: nn.Module) -> int:
    """Transformer layers: SA / SGA units in CMN, encoder layers in MulT."""
    return sum(isinstance(m, (SA, GA, SGA, TransformerEncoderLayer)) for m in model.modules())


def _attention_sublayers(model: nn.Module) -> int:
    """Multi-head attention blocks (an SGA unit has two)."""
    return sum(isinstance(m, (MultiHeadAttention, MulTAttention)) for m in model.modules())


def complexity_table(feature_dims: dict, seq_lens: dict, profiles=("paper", "quick"),
                     head: str = "regression", models=COMPLEXITY_MODELS) -> pd.DataFrame:
    """Size and cost of CMN and MulT per profile: width, trainable parameters, forward
    MFLOPs for ONE utterance of lengths ``seq_lens`` (:func:`cmnlib.model.count_flops`),
    transformer modules (:func:`cmnlib.model.transformer_modules`), transformer layers and
    multi-head attention blocks."""
    rows = []
    for profile in profiles:
        for label, name, modalities in models:
            torch.manual_seed(0)
            model = build_model(name, head, feature_dims, modalities, profile)
            mods = parse_modalities(modalities)
            width = model.config.hidden if name == "cmn" else model.config.d_l
            rows.append({"profile": profile, "model": label, "width": width,
                         "parameters": count_parameters(model),
                         "MFLOPs / utterance": round(count_flops(model, feature_dims,
                                                                 {m: seq_lens[m] for m in mods}, mods) / 1e6, 1),
                         "transformer modules": transformer_modules(model),
                         "transformer layers": _attention_layers(model),
                         "attention blocks": _attention_sublayers(model)})
    return pd.DataFrame(rows).set_index(["profile", "model"])


def complexity_claims(table: pd.DataFrame, profile: str = "paper", cmn: str = "CMN (L+A)",
                      mult: str = "MulT (L+A+V)") -> str:
    """The paper's "2 transformer modules instead of MulT's 6" beside what the modules
    cost, in words, from a :func:`complexity_table` (one profile)."""
    a, b = table.loc[(profile, cmn)].to_dict(), table.loc[(profile, mult)].to_dict()
    for row in (a, b):
        for key in ("width", "parameters", "transformer modules", "transformer layers"):
            row[key] = int(row[key])
    n = mult.count("+") + 1           # MulT: n(n-1) crossmodal + n memory transformers
    return "\n".join([
        f"{profile} profile: {cmn} (width {a['width']}) vs {mult} (width {b['width']})",
        f"  transformer modules: {a['transformer modules']} vs {b['transformer modules']}"
        f" (MulT: {n * (n - 1)} crossmodal + {n} memory transformers)",
        f"  transformer layers: {a['transformer layers']} vs {b['transformer layers']}",
        f"  parameters: {a['parameters']:,} vs {b['parameters']:,} "
        f"({a['parameters'] / b['parameters']:.1f}x)",
        f"  MFLOPs per utterance: {a['MFLOPs / utterance']:,.1f} vs {b['MFLOPs / utterance']:,.1f} "
        f"({a['MFLOPs / utterance'] / b['MFLOPs / utterance']:.1f}x)",
    ])


def module_counts(feature_dims: dict | None = None) -> dict:
    """What the claims audit needs about the paper's two models at their paper settings
    (IEMOCAP head): CMN (L+A)'s transformer stacks and parameters, MulT's six crossmodal
    and three memory transformers and its parameters."""
    dims = feature_dims or DATASETS["iemocap"].feature_dims
    cmn = build_model("cmn", "4class", dims, "LA", "paper")
    mult = build_model("mult", "4class", dims, "LAV", "paper")
    return {"cmn_modules": transformer_modules(cmn), "mult_crossmodal": 6, "mult_memory": 3,
            "cmn_params": count_parameters(cmn), "mult_params": count_parameters(mult)}
