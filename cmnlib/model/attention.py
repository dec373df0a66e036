"""Attention units of CMN, in the form of MCAN (Yu et al. 2019), which the paper cites.

Paper, section 2: Self-Attention (SA, eq. 1-3) and Guide-Attention (GA, eq. 4)::

    (1)  Att(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
    (2)  MHA(Q, K, V) = Concat(head_1, ..., head_h) W^O
    (3)  head_j = Att(Q W_j^Q, K W_j^K, V W_j^V),     d_h = d / h
    (4)  GA_{b->a} = softmax(F_a W_Q (F_b W_K)^T / sqrt(d_k)) F_b W_V

Each unit is a post-LayerNorm residual block (``x = norm(x + dropout(sublayer(x)))``) as in
MCAN's ``core/model/mca.py``; parameter names follow MCAN (``linear_q``, ``mhatt1``,
``norm2`` ...) so that its weights load by name. The forwards read like the equations;
the attention weights (batch, head, query, key) are kept on the attention modules when
asked for, as the Annotated Transformer keeps ``self.attn``: inside
``with capture_attention(model):`` the explicit equations run and each module keeps its
last weights in ``.weights``; otherwise the fused ``scaled_dot_product_attention`` kernel
computes the same function faster and keeps nothing.

Speed on CPU (the default path, no capture; same function, fp32, outputs
equal to the explicit equations within float rounding; measured by ``python -m cmnlib
bench``):

* :class:`MCANLayerNorm` runs as one autograd function with a hand-written backward and a
  two-pass mean/variance (``torch.std`` is a slow Welford loop on CPU);
* dropout on CPU draws its mask from 16-bit slices of 64-bit random integers
  (:func:`keep_mask_16bit`), four mask elements per draw from the same generator: the
  same distribution as ``bernoulli_`` up to p rounded to a multiple of 2^-16, and kept
  values scaled by the inverse of the exact keep probability (unbiased). For the largest
  mask of a quick step (64 x 4 x 42 x 42, one thread, Intel Xeon Emerald Rapids) it takes
  1.1 ms, against 1.8 ms for ``torch.rand`` uniforms (trainer version 2,
  :func:`trainer2_fp32_attention`) and 3.4 ms for ``bernoulli_``. With dropout in training the
  attention runs the explicit product (which the fused kernel falls back to anyway) so
  that its weights' dropout uses the same mask.

In the bf16 step (low-precision activations; its bits are those of ``LOW_PRECISION_STEP``):

* the 16-bit keep-mask is converted to the activations' dtype and kept values are scaled
  after the product, in float32 arithmetic, so the output is unbiased (a bf16 mask holding
  a rounded 1 / (1 - p) was 0.16% low);
* MCAN's LayerNorm normalises in float32 by the same equations, fused by ``torch.compile``
  into one kernel forward and one backward where a compiler is present
  (:mod:`cmnlib.model.compiled`; eager otherwise).

The key padding mask may also be given as the additive bias of :func:`attention_bias`.
Projecting Q, K and V with one matrix product (the three weights concatenated at call
time) was measured too and did not pay on CPU (no gain in training beyond noise, +10%
latency at batch 1 from the concatenation), so the three MCAN projections stay separate.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .compiled import fused

MASK_FILL = -1e9  # MCAN fills masked scores with -1e9 before the softmax
LOW_PRECISION = (torch.bfloat16, torch.float16)


def softmax(scores: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax, computed in float32 when ``scores`` are in a low precision (mixed precision
    keeps the normalisation exact); unchanged for float32."""
    if scores.dtype in LOW_PRECISION:
        return scores.float().softmax(dim=dim).to(scores.dtype)
    return scores.softmax(dim=dim)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """True at padding positions: (B,) lengths -> (B, max_len) bool. Masks always come from
    the true lengths, never from all-zero frames (a real pause word is an all-zero vector)."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def word_aligned(features: dict, lengths: dict, names) -> bool:
    """Word-aligned input: modalities ``names`` have the same number of steps and, per
    utterance, the same length (what early fusion and CMN's alignment variants need)."""
    first = names[0]
    return (len({features[m].shape[1] for m in names}) == 1
            and all(torch.equal(lengths[m], lengths[first]) for m in names))


class MCANLayerNorm(nn.Module):
    """MCAN's LayerNorm: ``a * (x - mean) / (std + eps) + b`` with the *unbiased* std.

    It differs from ``torch.nn.LayerNorm`` (biased variance, eps inside the square root)
    by a factor sqrt(d / (d - 1)) and the place of eps; kept to match the published
    implementation exactly.
    """

    def __init__(self, size: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.a_2 = nn.Parameter(torch.ones(size))
        self.b_2 = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mcan_layer_norm(x, self.a_2, self.b_2, self.eps)


class _MCANLayerNormFunction(torch.autograd.Function):
    """``a * (x - mean) / (std + eps) + b`` (unbiased std over the last dim) with its
    gradient written out: fewer passes over memory than autograd through mean/std/sub/div.
    A low-precision ``x`` (the bf16 step) is normalised in float32 by the same equations,
    fused into one kernel each way where ``torch.compile`` is available."""

    @staticmethod
    def forward(ctx, x, a, b, eps):
        kernels = _layer_norm_kernels(x)
        out, xhat, inv, std = kernels[0](x, a, b, eps)
        ctx.save_for_backward(xhat, a, inv, std)
        ctx.kernels = kernels
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        xhat, a, inv, std = ctx.saved_tensors
        grad_x, grad_a, grad_b = ctx.kernels[1](grad, xhat, a, inv, std)
        needs = ctx.needs_input_grad
        return grad_x if needs[0] else None, grad_a if needs[1] else None, grad_b if needs[2] else None, None


def _layer_norm_forward(x, a, b, eps: float):
    """The output (in ``x``'s dtype) and what the backward needs, statistics in float32:
    xhat = (x - mean) / (std + eps) with the unbiased std (two passes), 1 / (std + eps), std."""
    n = x.shape[-1]
    x32 = x.to(torch.promote_types(x.dtype, torch.float32))  # a no-op for float32 and float64
    centred = x32 - x32.mean(-1, keepdim=True)
    std = (centred * centred).sum(-1, keepdim=True).div(n - 1).sqrt()
    inv = (std + eps).reciprocal()
    xhat = centred * inv
    return torch.addcmul(b, xhat, a).to(x.dtype), xhat, inv, std


def _layer_norm_backward(grad, xhat, a, inv, std):
    """Gradients of ``a * xhat + b`` with respect to x (in ``grad``'s dtype), a and b.

    y = a * xhat + b, xhat = (x - mean) * inv, inv = 1 / (std + eps):
    dx = inv * (g - mean(g)) - xhat * sum(g * xhat) / ((n - 1) * std), g = grad * a;
    std is clamped away from 0 so that a constant row (xhat = 0) gets a finite gradient."""
    n = xhat.shape[-1]
    grad32 = grad.to(torch.promote_types(grad.dtype, torch.float32))  # a no-op for float32 and float64
    grad_a = (grad32 * xhat).sum_to_size(a.shape)
    grad_b = grad32.sum_to_size(a.shape)
    g = grad32 * a
    coef = (g * xhat).sum(-1, keepdim=True).div(std.clamp_min(torch.finfo(std.dtype).tiny) * (n - 1))
    grad_x = (g - g.mean(-1, keepdim=True)).mul(inv).sub(xhat * coef)
    return grad_x.to(grad.dtype), grad_a, grad_b


_FP32_KERNELS = (_layer_norm_forward, _layer_norm_backward)
_LOW_PRECISION_KERNELS = (fused(_layer_norm_forward), fused(_layer_norm_backward))


def _layer_norm_kernels(x: torch.Tensor) -> tuple:
    """(forward, backward) for ``x``: compiled where available for a low-precision ``x``,
    eager for float32 (its bits stay those of earlier runs)."""
    return _LOW_PRECISION_KERNELS if x.dtype in LOW_PRECISION else _FP32_KERNELS


def mcan_layer_norm(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MCAN's LayerNorm as a function: ``a * (x - mean) / (std + eps) + b``, unbiased std.
    In mixed precision (a bfloat16 or float16 ``x``) the statistics are computed in float32
    and the output has ``x``'s dtype."""
    if torch.is_grad_enabled() and (x.requires_grad or a.requires_grad or b.requires_grad):
        return _MCANLayerNormFunction.apply(x, a, b, eps)
    return _layer_norm_kernels(x)[0](x, a, b, eps)[0]  # no graph to record: skip the Function


def dropout(x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """``module(x)`` for an ``nn.Dropout`` (its ``p`` and ``training``), faster on CPU.

    ``F.dropout`` on CPU spends most of its time in ``bernoulli_``; a keep-mask cut from
    16-bit slices of random integers gives the same distribution (p rounded to a multiple
    of 2^-16, kept values scaled by the inverse of the keep probability) from the same
    generator at about a third of the cost (:func:`dropout_p`, which leaves CUDA and p = 1
    to ``F.dropout``). In-place dropout and other modules (e.g. a stacked model's dropout)
    are left to ``module`` itself.
    """
    if not isinstance(module, nn.Dropout) or module.inplace:
        return module(x)
    return dropout_p(x, module.p, module.training)


def dropout_p(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout(x, p, training)``, from a 16-bit keep-mask on CPU (:func:`dropout_mask`);
    ``F.dropout`` itself on other devices and for p = 1."""
    if not training or p == 0:
        return x
    if x.device.type != "cpu" or p >= 1:
        return F.dropout(x, p=p, training=True)
    return apply_dropout(x, *dropout_mask(x.shape, p, x.dtype))


def dropout_mask(shape, p: float, dtype: torch.dtype, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> tuple[torch.Tensor, float | None]:
    """The multiplier of dropout for an input of ``shape`` and ``dtype``, and the scale to
    apply after the product (None when the multiplier holds it), drawn from ``generator``
    (None: torch's global one). The mask depends only on the shape, the dtype and the
    generator's state: the stacked trainer (:mod:`cmnlib.model.stacked`) draws each seed's
    mask at the shape of that seed's own batch and gets its separate run's mask.

    A keep-mask from 16-bit draws (:func:`keep_mask_16bit`); float32: the mask holds the
    scale (a float32 scale is exact to 2^-24, as the product's own rounding is); low
    precision (the bf16 step): the scale is applied after the product. Inside
    :func:`trainer2_fp32_attention` (trainer version 2) float32 masks are ``torch.rand``
    uniforms >= p, times 1 / (1 - p)."""
    if dtype in LOW_PRECISION:
        return keep_mask_16bit(shape, p, generator, device, dtype)
    if not _TRAINER2_FP32:
        keep, scale = keep_mask_16bit(shape, p, generator, device, dtype)
        return keep.mul_(scale), None
    # without a generator, no generator argument: torch.compile traces rand(..., generator=None)
    # with symbolic sizes as an error
    uniforms = (torch.rand(tuple(shape), device=device) if generator is None
                else torch.rand(tuple(shape), generator=generator, device=device))
    return uniforms.ge_(p).mul_(1.0 / (1.0 - p)), None


# trainer version 2's float32 dropout and attention scores, for the benchmark's side-by-side
_TRAINER2_FP32 = False


@contextmanager
def trainer2_fp32_attention(enabled: bool = True):
    """Within the block, float32 training computes dropout masks and attention scores as
    trainer version 2 did: ``torch.rand`` uniforms, one per element, and the score product
    followed by its scale and the mask bias. Only :func:`cmnlib.train.trainer_step` uses
    it, to time the two versions side by side; runs are never trained under it."""
    global _TRAINER2_FP32
    before, _TRAINER2_FP32 = _TRAINER2_FP32, enabled
    try:
        yield
    finally:
        _TRAINER2_FP32 = before


def trainer2_fp32_attention_active() -> bool:
    """Whether float32 training is trainer version 2's (inside :func:`trainer2_fp32_attention`)."""
    return _TRAINER2_FP32


def apply_dropout(x: torch.Tensor, mask: torch.Tensor, scale: float | None) -> torch.Tensor:
    """``x`` times a :func:`dropout_mask`; a low-precision product is scaled in place after
    it (exact in expectation: a bf16 mask holding a rounded 1 / (1 - p) would be biased)."""
    return x * mask if scale is None else (x * mask).mul_(scale)


def keep_mask_16bit(shape, p: float, generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.bool) -> tuple[torch.Tensor, float]:
    """A dropout keep-mask of ``shape`` and the scale of kept values, from 16-bit draws.

    Each 64-bit integer the generator draws is cut into four 16-bit uniforms ``u`` in
    [-2^15, 2^15), and an element is dropped when ``u < round(p * 2^16) - 2^15``: four mask
    elements per draw instead of one uniform float each, about 3.5x cheaper on CPU, where the
    generator is sequential. The drop probability is ``p`` rounded to a multiple of 2^-16
    (0.1 -> 0.1000061), and kept values are scaled by the inverse of the exact keep
    probability, so the expectation of the output is ``x`` exactly. The mask has ``dtype``
    (True/False, or 1/0 written straight into a float tensor by the comparison: a third of
    the time of comparing, then converting).
    """
    shape = tuple(shape)
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-2 ** 63, None, generator=generator)
    uniforms = words.view(torch.int16)[:n].view(shape)
    dropped_below = round(p * 65536)
    keep = torch.empty(shape, dtype=dtype, device=device)
    return torch.ge(uniforms, dropped_below - 32768, out=keep), 65536 / (65536 - dropped_below)


def attention_bias(key_padding_mask: torch.Tensor | None, dtype=torch.float32) -> torch.Tensor | None:
    """(B, T) bool, True at padding -> (B, 1, 1, T) additive bias: 0 at real keys, -1e9 at
    padding (MCAN's fill value, added instead of filled). A float tensor passes unchanged."""
    if key_padding_mask is None or key_padding_mask.is_floating_point():
        return key_padding_mask
    bias = torch.zeros(key_padding_mask.shape, dtype=dtype, device=key_padding_mask.device)
    return bias.masked_fill_(key_padding_mask, MASK_FILL)[:, None, None, :]


def make_norm(kind: str, size: int) -> nn.Module:
    """'mcan' (the reference's formula) or 'torch' (``nn.LayerNorm``, fused, slightly different)."""
    if kind == "mcan":
        return MCANLayerNorm(size)
    if kind == "torch":
        return nn.LayerNorm(size, eps=1e-6)
    raise ValueError(f"layer_norm must be 'mcan' or 'torch', got {kind!r}")


def scaled_dot_product(q, k, v, key_padding_mask=None, dropout: nn.Dropout | None = None, bias=None):
    """Eq. (1), written out: returns (output, weights). Shapes (B, H, T, d). ``bias``: an
    additive score bias broadcast to (B, H, T_q, T_k) (a position prior; None in the paper)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    if key_padding_mask is not None:  # (B, T_k) True at padding -> (B, 1, 1, T_k)
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], MASK_FILL)
    weights = softmax(scores, dim=-1)
    attended = dropout(weights) if dropout is not None else weights
    return attended @ v, weights


def biased_scores(q: torch.Tensor, k: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``q k^T / sqrt(d) + bias`` for (B, H, T, d) heads, as ONE batched matrix product
    (``torch.baddbmm``: the scale is its alpha, the bias its input), instead of a product
    followed by two element-wise passes over the (B, H, T_q, T_k) scores, forward and
    backward. ``bias``: broadcast to the scores, or None."""
    b, h, t_q, d = q.shape
    t_k = k.shape[2]
    queries, keys = q.reshape(b * h, t_q, d), k.reshape(b * h, t_k, d).transpose(1, 2)
    if bias is None:
        bias, beta = q.new_zeros(1, 1, 1), 0.0  # beta 0: the input is ignored
    else:
        shape = torch.broadcast_shapes(bias.shape, (b, h, 1, t_k))
        bias, beta = bias.expand(shape).reshape(b * h, shape[2], t_k), 1.0
    return torch.baddbmm(bias, queries, keys, beta=beta, alpha=1.0 / math.sqrt(d)).view(b, h, t_q, t_k)


class MultiHeadAttention(nn.Module):
    """Eq. (2)-(3): h heads of width d/h, MCAN's ``MHAtt`` (separate Q/K/V projections)."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.linear_v = nn.Linear(hidden, hidden)
        self.linear_k = nn.Linear(hidden, hidden)
        self.linear_q = nn.Linear(hidden, hidden)
        self.linear_merge = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        # Set by capture_attention: run eq. (1) explicitly and keep its weights here (as the
        # Annotated Transformer keeps self.attn); otherwise the fused kernel, no weights.
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, v, k, q, key_padding_mask=None, position_bias=None):
        """Queries ``q`` attend to keys ``k`` / values ``v``.

        ``key_padding_mask``: (B, T_k) bool, True = padding key, or the additive bias of
        :func:`attention_bias` (B, 1, 1, T_k), 0 at real keys and -1e9 at padding.
        ``position_bias``: an additive score bias broadcast to (B, H, T_q, T_k), e.g. a prior
        for aligned positions (``CMNConfig.alignment``); None in the paper's model.
        """
        qh, kh, vh = self._split(self.linear_q(q)), self._split(self.linear_k(k)), self._split(self.linear_v(v))
        if self.keep_weights:
            if key_padding_mask is not None and key_padding_mask.is_floating_point():
                key_padding_mask = key_padding_mask[:, 0, 0, :] < 0
            out, self.weights = scaled_dot_product(qh, kh, vh, key_padding_mask, self.dropout, position_bias)
        else:
            # The same function as eq. (1) with MCAN's masking, as an additive -1e9 bias: a
            # row whose keys are all padding still averages them, as MCAN does.
            bias = attention_bias(key_padding_mask, qh.dtype)
            if position_bias is not None:
                bias = position_bias.to(qh.dtype) if bias is None else bias + position_bias.to(qh.dtype)
            p = self.dropout.p if self.training else 0.0
            if p > 0 and qh.device.type == "cpu":
                # training on CPU: the explicit product (what the kernel itself falls back to
                # when there is dropout) with the faster dropout mask
                if qh.dtype == torch.float32 and not _TRAINER2_FP32:
                    scores = biased_scores(qh, kh, bias)
                else:  # the bf16 step keeps its bits (cmnlib.spec.LOW_PRECISION_STEP), as trainer 2's did
                    scores = qh @ kh.transpose(-2, -1) * (1.0 / math.sqrt(qh.shape[-1]))
                    if bias is not None:
                        scores = scores + bias
                out = dropout(softmax(scores, dim=-1), self.dropout) @ vh
            else:
                out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=bias, dropout_p=p)
        b, h, t, dh = out.shape
        return self.linear_merge(out.transpose(1, 2).reshape(b, t, h * dh))


class FeedForward(nn.Module):
    """MCAN's FFN: Linear(d, ff) -> ReLU -> Dropout -> Linear(ff, d) (names mlp.fc.linear, mlp.linear)."""

    def __init__(self, hidden: int, ff_size: int, dropout: float):
        super().__init__()
        self.mlp = MLP(hidden, ff_size, hidden, dropout)

    def forward(self, x):
        return self.mlp(x)


class FC(nn.Module):
    """Linear -> ReLU -> Dropout (MCAN's ``FC``)."""

    def __init__(self, in_size: int, out_size: int, dropout: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(in_size, out_size)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return dropout(torch.relu(self.linear(x)), self.dropout)


class MLP(nn.Module):
    """FC then a plain Linear (MCAN's ``MLP``)."""

    def __init__(self, in_size: int, mid_size: int, out_size: int, dropout: float = 0.0):
        super().__init__()
        self.fc = FC(in_size, mid_size, dropout)
        self.linear = nn.Linear(mid_size, out_size)

    def forward(self, x):
        return self.linear(self.fc(x))


class SA(nn.Module):
    """Self-Attention unit (paper Fig. 4; MCAN ``SA``): MHA over one modality, then FFN."""

    def __init__(self, hidden: int, heads: int, ff_size: int, dropout: float, norm: str = "mcan"):
        super().__init__()
        self.mhatt = MultiHeadAttention(hidden, heads, dropout)
        self.ffn = FeedForward(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), make_norm(norm, hidden)

    def forward(self, x, x_mask=None):
        x = self.norm1(x + dropout(self.mhatt(x, x, x, x_mask), self.dropout1))
        return self.norm2(x + dropout(self.ffn(x), self.dropout2))


class GA(nn.Module):
    """Guide-Attention unit (paper Fig. 5, eq. 4): queries from ``x``, keys/values from ``y``, then FFN."""

    def __init__(self, hidden: int, heads: int, ff_size: int, dropout: float, norm: str = "mcan"):
        super().__init__()
        self.mhatt = MultiHeadAttention(hidden, heads, dropout)
        self.ffn = FeedForward(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), make_norm(norm, hidden)

    def forward(self, x, y, y_mask=None):
        x = self.norm1(x + dropout(self.mhatt(y, y, x, y_mask), self.dropout1))
        return self.norm2(x + dropout(self.ffn(x), self.dropout2))


class SGA(nn.Module):
    """SA followed by GA with one shared FFN (MCAN's ``SGA``, the decoder unit of MCA_ED)."""

    def __init__(self, hidden: int, heads: int, ff_size: int, dropout: float, norm: str = "mcan"):
        super().__init__()
        self.mhatt1 = MultiHeadAttention(hidden, heads, dropout)
        self.mhatt2 = MultiHeadAttention(hidden, heads, dropout)
        self.ffn = FeedForward(hidden, ff_size, dropout)
        self.dropout1, self.norm1 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout2, self.norm2 = nn.Dropout(dropout), make_norm(norm, hidden)
        self.dropout3, self.norm3 = nn.Dropout(dropout), make_norm(norm, hidden)

    def forward(self, x, y, x_mask=None, y_mask=None, guided_bias=None):
        x = self.norm1(x + dropout(self.mhatt1(x, x, x, x_mask), self.dropout1))
        x = self.norm2(x + dropout(self.mhatt2(y, y, x, y_mask, guided_bias), self.dropout2))
        return self.norm3(x + dropout(self.ffn(x), self.dropout3))


class AttFlat(nn.Module):
    """Attentional reduction (MCAN ``AttFlat``): MLP scores per step, masked softmax over
    time, weighted sum per glimpse, then a linear layer."""

    def __init__(self, hidden: int, mid_size: int, out_size: int, glimpses: int = 1, dropout: float = 0.1):
        super().__init__()
        self.glimpses = glimpses
        self.mlp = MLP(hidden, mid_size, glimpses, dropout)
        self.linear_merge = nn.Linear(hidden * glimpses, out_size)
        self.keep_weights = False  # set by capture_attention: keep the pooling weights in .weights
        self.weights: torch.Tensor | None = None

    def forward(self, x, x_mask=None):
        scores = self.mlp(x)  # (B, T, G)
        if x_mask is not None:
            scores = scores.masked_fill(x_mask[:, :, None], MASK_FILL)
        weights = softmax(scores, dim=1)
        if self.keep_weights:
            self.weights = weights
        return self.linear_merge(torch.einsum("btg,btd->bgd", weights, x).flatten(1))


@contextmanager
def capture_attention(model: nn.Module):
    """Within the ``with`` block, every :class:`MultiHeadAttention` and :class:`AttFlat` in
    ``model`` computes its weights explicitly (eq. 1, the same function as the fused kernel)
    and keeps the last ones in ``.weights``; afterwards they go back to the fused kernel.
    ``model`` may be one unit or a whole CMN (:meth:`cmnlib.model.cmn.CMN.attention_maps`
    collects a CMN's weights by modality, kind and layer)."""
    modules = [m for m in model.modules() if isinstance(m, (MultiHeadAttention, AttFlat))]
    for module in modules:
        module.keep_weights, module.weights = True, None
    try:
        yield model
    finally:
        for module in modules:
            module.keep_weights = False
