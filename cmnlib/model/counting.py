"""Parameter, FLOP and transformer-module counts per model (per utterance)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .baselines import MulTModel
from .cmn import CMN


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_dims: dict, seq_lens: dict, modalities=None) -> int:
    """Forward FLOPs for ONE utterance of the given lengths (PyTorch's FLOP counter:
    matrix products, attention and the LSTM's inner products; element-wise ops are not
    counted, as is usual)."""
    modalities = modalities or list(seq_lens)
    features = {m: torch.randn(1, seq_lens[m], input_dims[m]) for m in modalities}
    lengths = {m: torch.tensor([seq_lens[m]]) for m in modalities}
    lstm_flops = []

    def count_lstm(module, args, _output):
        # the fused CPU LSTM kernel is invisible to the counter: 4 gates, each a product
        # with the input and with the state, per step
        x = args[0]
        steps = x.shape[1] if module.batch_first else x.shape[0]
        lstm_flops.append(2 * steps * 4 * module.hidden_size * (module.input_size + module.hidden_size))

    hooks = [m.register_forward_hook(count_lstm) for m in model.modules() if isinstance(m, nn.LSTM)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(features, lengths)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return int(counter.get_total_flops()) + sum(lstm_flops)


def transformer_modules(model: nn.Module) -> int:
    """Number of transformer *modules* (stacks of layers), the unit of the paper's "2
    modules instead of MulT's 6": per modality one stack in CMN; MulT has six crossmodal
    transformers plus three self-attention memory transformers."""
    if isinstance(model, CMN):
        return len(model.config.modality_names)
    if isinstance(model, MulTModel):
        return sum(1 for name, _ in model.mult.named_children() if name.startswith("trans_"))
    return 0
