"""Models: the attention units, MUA and CMN (:mod:`.cmn`), MulT (:mod:`.mult`) and simple
baselines (:mod:`.baselines`), behind one constructor, :func:`build_model`."""
from __future__ import annotations

from dataclasses import replace

from torch import nn

from .baselines import ConstantPredictor, LSTMBaseline, LSTMConfig, MulTModel
from .cmn import CMN, CMNConfig
from .counting import count_flops, count_parameters, transformer_modules
from .mult import MulT, MulTConfig

MODEL_NAMES = ("cmn", "mult", "lstm_l", "lstm_a", "lstm_v", "ef_lstm", "majority")

# Profiles: 'paper' = the paper and the published implementation; 'quick' = small enough
# to train in minutes on two CPU cores.
CMN_PROFILES = {
    "paper": dict(hidden=512, layers=2, heads=4, ff_size=1024, dropout=0.1, output_dropout=0.5),
    "quick": dict(hidden=64, layers=2, heads=4, ff_size=128, dropout=0.1, output_dropout=0.3),
}
LSTM_PROFILES = {"paper": dict(hidden=128), "quick": dict(hidden=64)}
# MulT keeps its official defaults (d 30, 5 layers, 5 heads) in the paper profile; the
# quick profile uses 1 crossmodal layer (its memory transformers keep 3 either way), so
# that the quick tables train in minutes on 2 CPU cores.
MULT_PROFILES = {"paper": dict(), "quick": dict(layers=1)}


def build_model(name: str, head: str, input_dims: dict, modalities: str = "LA",
                profile: str = "quick", **overrides) -> nn.Module:
    """A model by name: cmn, mult, lstm_l / lstm_a / lstm_v, ef_lstm, majority.

    ``modalities`` applies to cmn, mult and ef_lstm; the unimodal LSTMs use their own.
    ``overrides`` replace fields of the model's config (e.g. ``mua='symmetric'``).
    """
    if profile not in CMN_PROFILES:
        raise ValueError(f"profile must be 'quick' or 'paper', got {profile!r}")
    if name == "cmn":
        config = CMNConfig(modalities=modalities, input_dims=dict(input_dims), head=head,
                           **{**CMN_PROFILES[profile], **overrides})
        return CMN(config)
    if name == "mult":
        dims = {"orig_d_l": input_dims.get("text", 300), "orig_d_a": input_dims.get("audio", 74),
                "orig_d_v": input_dims.get("vision", 35)}
        config = MulTConfig(**dims, output_dim=nn_output(head), modalities=modalities,
                            **{**MULT_PROFILES[profile], **overrides})
        return MulTModel(config, head)
    if name in ("lstm_l", "lstm_a", "lstm_v", "ef_lstm"):
        mods = modalities if name == "ef_lstm" else name[-1].upper()
        config = LSTMConfig(modalities=mods, input_dims=dict(input_dims), head=head,
                            **{**LSTM_PROFILES[profile], **overrides})
        return LSTMBaseline(config)
    if name == "majority":
        return ConstantPredictor(head)
    raise ValueError(f"unknown model {name!r}; one of {MODEL_NAMES}")


def nn_output(head: str) -> int:
    from .heads import output_size
    return output_size(head)


__all__ = ["CMN", "CMNConfig", "MulT", "MulTConfig", "MulTModel", "LSTMBaseline", "LSTMConfig",
           "ConstantPredictor", "build_model", "count_parameters", "count_flops",
           "transformer_modules", "MODEL_NAMES", "CMN_PROFILES", "replace"]
