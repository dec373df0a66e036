"""Models: the attention units, MUA and CMN (:mod:`.cmn`), MulT (:mod:`.mult`) and simple
baselines (:mod:`.baselines`), behind one constructor, :func:`build_model`."""
from __future__ import annotations

from dataclasses import replace

from torch import nn

from .. import config
from ..config import MODEL_NAMES
from .baselines import ConstantPredictor, LSTMBaseline, LSTMConfig, MulTModel
from .attention import capture_attention
from .cmn import CMN, CMNConfig
from .counting import count_flops, count_parameters, transformer_modules
from .heads import output_size
from .mult import MulT, MulTConfig

# The models' sizes per profile ('paper', 'quick') are in the registry, cmnlib.config.


def build_model(name: str, head: str, input_dims: dict, modalities: str = "LA",
                profile: str = "quick", **overrides) -> nn.Module:
    """A model by name: cmn, mult, lstm_l / lstm_a / lstm_v, ef_lstm, majority.

    ``modalities`` applies to cmn, mult and ef_lstm; the unimodal LSTMs use their own.
    ``overrides`` replace fields of the model's config (e.g. ``mua='symmetric'``).
    """
    sizes = config.profile(profile)
    if name == "cmn":
        cmn = CMNConfig(modalities=modalities, input_dims=dict(input_dims), head=head, **{**sizes.cmn, **overrides})
        return CMN(cmn)
    if name == "mult":
        # MulT's constructor takes the feature sizes of all three modalities; those the
        # model does not use default to the standard MOSEI/IEMOCAP files' sizes
        dims = {**config.DATASETS[config.DEFAULT_DATASET].feature_dims, **input_dims}
        mult = MulTConfig(orig_d_l=dims["text"], orig_d_a=dims["audio"], orig_d_v=dims["vision"],
                          output_dim=output_size(head), modalities=modalities, **{**sizes.mult, **overrides})
        return MulTModel(mult, head)
    if name in ("lstm_l", "lstm_a", "lstm_v", "ef_lstm"):
        mods = modalities if name == "ef_lstm" else name[-1].upper()
        lstm = LSTMConfig(modalities=mods, input_dims=dict(input_dims), head=head, **{**sizes.lstm, **overrides})
        return LSTMBaseline(lstm)
    if name == "majority":
        return ConstantPredictor(head)
    raise ValueError(f"unknown model {name!r}; one of {MODEL_NAMES}")


__all__ = ["CMN", "CMNConfig", "MulT", "MulTConfig", "MulTModel", "LSTMBaseline", "LSTMConfig",
           "ConstantPredictor", "build_model", "capture_attention", "count_parameters", "count_flops",
           "transformer_modules", "MODEL_NAMES", "replace"]
