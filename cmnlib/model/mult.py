"""Multimodal Transformer (MulT), Tsai et al., ACL 2019.

A from-scratch, readable re-implementation of the official code
(github.com/yaohungt/Multimodal-Transformer: src/models.py, modules/transformer.py,
modules/multihead_attention.py, modules/position_embedding.py). The function computed,
the parameter initialisation (including the order in which the RNG is consumed) and the
state_dict names are the official ones, so an official checkpoint loads with
``load_state_dict(strict=True)``.

Architecture, for the default "all modalities" model (one branch per target modality m):

    x_m (B, T_m, orig_d_m) --Conv1d k=1--> P_m (T_m, B, d)
    for each source s != m:  CM_{m<-s} = TransformerEncoder(query=P_m, key=value=P_s)
    H_m = MemoryTransformer(concat_s CM_{m<-s})          # self-attention, width 2d
    h   = concat_m H_m[-1]                               # LAST time step (inputs are left-padded)
    out = out_layer(proj2(dropout(relu(proj1(h)))) + h)

Like the official (fairseq-derived) code, every transformer works on time-first tensors
(T, B, d); only ``MulT.forward`` takes batch-first inputs.

Dropout on CPU draws its masks as CMN's does (:func:`cmnlib.model.attention.dropout_p`:
16-bit keep-masks, the same distribution up to p rounded to a multiple of 2^-16, about a
third of ``bernoulli_``'s time; a quick MulT step 1.3-1.4x faster). Inside
:func:`official_dropout` it is the official ``F.dropout``, whose masks are the official
code's for the same seed and operation order (trainer versions 2 and 3 trained MulT so).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import dropout_p

__all__ = [
    "MulTConfig",
    "SinusoidalPositionalEmbedding",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerEncoder",
    "future_mask",
    "MulT",
    "official_dropout",
]

MODALITY_ORDER = "lav"  # the official code always walks the modalities in this order


# -----------------------------------------------------------------------------
# Configuration


@dataclass
class MulTConfig:
    """Hyper-parameters. Defaults are those of the official ``main.py`` (unaligned MOSEI).

    Official defaults cited: ``--attn_dropout 0.1``, ``--attn_dropout_a 0.0``,
    ``--attn_dropout_v 0.0``, ``--relu_dropout 0.1``, ``--res_dropout 0.1``,
    ``--out_dropout 0.0``, ``--embed_dropout 0.25``, ``--nlevels 5`` (= ``layers``),
    ``--num_heads 5``; ``--attn_mask`` is ``store_false`` so the causal mask is ON unless
    the flag is passed. ``d_l = d_a = d_v = 30`` are hard-coded in ``src/models.py``.
    ``orig_d_*`` are the feature sizes of the MOSEI/IEMOCAP pickles (300/74/35; MOSI is
    300/5/20). ``output_dim`` is 1 for MOSI/MOSEI and 8 (4 emotions x 2 logits) for IEMOCAP.

    Which branches are built is chosen by two fields:

    * ``partial_mode`` in {None, 'l', 'a', 'v'} reproduces the official ``--lonly``,
      ``--aonly``, ``--vonly`` flags: ONE target modality, still attending to BOTH other
      modalities (so all three inputs are needed). As in the official code, all three
      memory transformers are still constructed; the two that are not used receive no
      gradient. This is not a unimodal model. It requires ``modalities == "LAV"``.
    * ``modalities`` (a non-empty subset of "LAV", any order) restricts the INPUT
      modalities; this is an extension, the official code always uses all three.
      Every present modality is a target, and attends only to the OTHER present
      modalities: "LA" builds trans_l_with_a and trans_a_with_l, memory transformers
      of width d (one source each) and a combined width of 2d. With a single modality
      ("L") there is no crossmodal transformer: its memory transformer (width d) runs
      self-attention directly on the projected input, giving a unimodal transformer.
      Absent modalities get no projection and their forward inputs may be None.
    """

    orig_d_l: int = 300
    orig_d_a: int = 74
    orig_d_v: int = 35
    d_l: int = 30
    d_a: int = 30
    d_v: int = 30
    num_heads: int = 5
    layers: int = 5
    attn_dropout: float = 0.1
    attn_dropout_a: float = 0.0
    attn_dropout_v: float = 0.0
    relu_dropout: float = 0.1
    res_dropout: float = 0.1
    out_dropout: float = 0.0
    embed_dropout: float = 0.25
    attn_mask: bool = True
    output_dim: int = 1
    modalities: str = "LAV"
    partial_mode: str | None = None

    def __post_init__(self):
        mods = self.modalities.lower()
        if not mods or set(mods) - set(MODALITY_ORDER) or len(set(mods)) != len(mods):
            raise ValueError(f"modalities must be a non-empty subset of 'LAV', got {self.modalities!r}")
        if self.partial_mode is not None:
            self.partial_mode = self.partial_mode.lower()
            if self.partial_mode not in MODALITY_ORDER:
                raise ValueError(f"partial_mode must be None, 'l', 'a' or 'v', got {self.partial_mode!r}")
            if set(mods) != set(MODALITY_ORDER):
                raise ValueError("partial_mode (official lonly/aonly/vonly) needs modalities='LAV'")
        # The official model only runs when the three widths agree (the L<-A crossmodal
        # transformer has width d_a but is queried with the d_l-wide text features).
        if not (self.d_l == self.d_a == self.d_v):
            raise ValueError("d_l, d_a and d_v must be equal, as in the official model")
        if self.d_l % self.num_heads:
            raise ValueError("d_l must be divisible by num_heads")

    # Derived structure ------------------------------------------------------

    @property
    def present(self) -> tuple[str, ...]:
        """Input modalities, lower-case, in the official L, A, V order."""
        return tuple(m for m in MODALITY_ORDER if m in self.modalities.lower())

    @property
    def targets(self) -> tuple[str, ...]:
        """Modalities whose branch (crossmodal + memory transformer) feeds the head."""
        return (self.partial_mode,) if self.partial_mode else self.present

    def sources(self, target: str) -> tuple[str, ...]:
        """Modalities the target attends to: every other present one, in L, A, V order."""
        return tuple(m for m in self.present if m != target)

    def d(self, m: str) -> int:
        return {"l": self.d_l, "a": self.d_a, "v": self.d_v}[m]

    def orig_d(self, m: str) -> int:
        return {"l": self.orig_d_l, "a": self.orig_d_a, "v": self.orig_d_v}[m]

    def crossmodal_attn_dropout(self, source: str) -> float:
        # Official get_network: the attention dropout follows the SOURCE modality
        # ('la' -> attn_dropout_a, 'lv' -> attn_dropout_v, 'al' -> attn_dropout, ...).
        return {"l": self.attn_dropout, "a": self.attn_dropout_a, "v": self.attn_dropout_v}[source]

    def mem_dim(self, m: str) -> int:
        # Concatenation of the crossmodal outputs (2*d_m in the official model);
        # the projected input itself when there is no other modality.
        return self.d(m) * max(len(self.sources(m)), 1)

    @property
    def combined_dim(self) -> int:
        return sum(self.mem_dim(m) for m in self.targets)


# -----------------------------------------------------------------------------
# Dropout

_OFFICIAL_DROPOUT = False


@contextmanager
def official_dropout(enabled: bool = True):
    """Within the block, MulT's dropout is the official ``F.dropout`` (``bernoulli_`` masks,
    the official code's for the same seed) instead of 16-bit keep-masks: to compare with the
    official code step by step, and for :func:`cmnlib.train.trainer_step` of versions 2 and 3.
    Runs are never trained under it (their folders are named after today's trainer)."""
    global _OFFICIAL_DROPOUT
    before, _OFFICIAL_DROPOUT = _OFFICIAL_DROPOUT, enabled
    try:
        yield
    finally:
        _OFFICIAL_DROPOUT = before


def official_dropout_active() -> bool:
    """Whether MulT's dropout is the official ``F.dropout`` (inside :func:`official_dropout`)."""
    return _OFFICIAL_DROPOUT


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Every dropout of MulT: 16-bit keep-masks, or the official ``F.dropout`` inside
    :func:`official_dropout`."""
    if _OFFICIAL_DROPOUT:
        return F.dropout(x, p=p, training=training)
    return dropout_p(x, p, training)


# -----------------------------------------------------------------------------
# Building blocks


class SinusoidalPositionalEmbedding(nn.Module):
    """fairseq/tensor2tensor sinusoidal positions, as in the official position_embedding.py.

    Input: (B, T) "tokens", which MulT takes to be the first feature channel. Entries equal
    to ``padding_idx`` (exactly 0.0) are padding and get an all-zero embedding. Every other
    entry at absolute index t gets position padding_idx + 1 + t: the official code uses
    ``left_pad=0``, so positions are NOT shifted to skip left padding.
    Row p of the table is [sin(p*w_0..p*w_{h-1}), cos(p*w_0..p*w_{h-1})] (sin block then
    cos block, not interleaved) with h = dim // 2 and w_k = exp(-k * ln(10000) / (h - 1));
    an odd dim gets a trailing zero column. No parameters.
    """

    def __init__(self, embedding_dim: int, padding_idx: int = 0):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        # Carries no information; it exists (as officially) so that official checkpoints
        # load with strict=True, and it gives the module's dtype/device for the table.
        self.register_buffer("_float_tensor", torch.zeros(1))
        # tables already built, by (positions, dtype, device): the official module keeps its
        # table too; keyed by the exact size so that each is the table built for that size
        self._tables: dict[tuple, torch.Tensor] = {}

    @staticmethod
    def table(num_positions: int, dim: int, padding_idx: int | None = None) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
        angles = torch.arange(num_positions, dtype=torch.float)[:, None] * freqs[None, :]
        emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
        if dim % 2 == 1:
            emb = torch.cat([emb, torch.zeros(num_positions, 1)], dim=1)
        if padding_idx is not None:
            emb[padding_idx] = 0
        return emb

    def positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, T) long: padding_idx for padding, padding_idx+1+t otherwise."""
        T = tokens.size(1)
        steps = torch.arange(self.padding_idx + 1, self.padding_idx + 1 + T, device=tokens.device)
        return torch.where(tokens != self.padding_idx, steps, self.padding_idx)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        B, T = tokens.shape
        key = (self.padding_idx + 1 + T, self._float_tensor.dtype, self._float_tensor.device)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self.table(key[0], self.embedding_dim, self.padding_idx).to(
                self._float_tensor)
        return table[self.positions(tokens).to(table.device)].detach()  # (B, T, dim)


def future_mask(t_q: int, t_k: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Additive causal mask of the official ``buffered_future_mask``, shape (t_q, t_k).

    Query i may attend to key j iff j <= i + |t_k - t_q| (0 there, -inf elsewhere), whichever
    sequence is longer. For t_q == t_k this is the usual causal mask; the last query always
    sees every key, so no row is fully masked.
    """
    i = torch.arange(t_q, device=device)[:, None]
    j = torch.arange(t_k, device=device)[None, :]
    blocked = j > i + abs(t_k - t_q)
    return torch.zeros(t_q, t_k, device=device, dtype=dtype).masked_fill(blocked, float("-inf"))


class MultiheadAttention(nn.Module):
    """Multi-head attention with fairseq's parameter layout (official multihead_attention.py).

    One packed ``in_proj_weight`` (3d, d) / ``in_proj_bias`` (3d) holds the q, k, v projections
    (rows [0:d], [d:2d], [2d:3d]); ``out_proj`` is a Linear with bias. q is scaled by
    head_dim**-0.5 after its bias is added, the softmax runs in float32, and the attention
    weights get dropout. The official add_bias_kv / add_zero_attn options are never used by
    MulT and are left out (they add no parameters when off). Tensors are (T, B, d).
    """

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float = 0.0):
        super().__init__()
        assert embed_dim % num_heads == 0, "embed_dim must be divisible by num_heads"
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.attn_dropout = attn_dropout

        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        # Official init: xavier on the whole packed matrix, zero biases.
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        T_q, B, d = query.shape
        H, hd = self.num_heads, self.head_dim
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = F.linear(query, w_q, b_q) * self.scaling
        k = F.linear(key, w_k, b_k)
        v = F.linear(value, w_v, b_v)

        # (T, B, d) -> (B, H, T, hd); batch-major heads, the same memory order as fairseq's (B*H, T, hd)
        def heads(x):
            return x.reshape(x.size(0), B, H, hd).permute(1, 2, 0, 3)

        q, k, v = heads(q), heads(k), heads(v)
        att = q @ k.transpose(-2, -1)  # (B, H, T_q, T_k)
        if attn_mask is not None:
            att = att + attn_mask.to(att.dtype)
        att = F.softmax(att.float(), dim=-1).type_as(att)
        att = _dropout(att, self.attn_dropout, self.training)
        y = att @ v  # (B, H, T_q, hd)
        y = y.permute(2, 0, 1, 3).reshape(T_q, B, d)  # concatenate heads
        return self.out_proj(y)


def _xavier_linear(d_in: int, d_out: int) -> nn.Linear:
    # Official transformer.py Linear(): xavier-uniform weight, zero bias.
    m = nn.Linear(d_in, d_out)
    nn.init.xavier_uniform_(m.weight)
    nn.init.zeros_(m.bias)
    return m


class TransformerEncoderLayer(nn.Module):
    """Pre-norm layer: x + Attn(LN0(x)), then x + FFN(LN1(x)).

    For crossmodal attention the key and value sources are normalised with the SAME LN0 as
    the query (official behaviour). The FFN is d -> 4d -> d with ReLU; ``relu_dropout``
    follows the ReLU and ``res_dropout`` is applied to each branch before the residual add.
    """

    def __init__(self, embed_dim, num_heads, attn_dropout=0.1, relu_dropout=0.1, res_dropout=0.1, attn_mask=False):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim, num_heads, attn_dropout)
        self.fc1 = _xavier_linear(embed_dim, 4 * embed_dim)
        self.fc2 = _xavier_linear(4 * embed_dim, embed_dim)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(2)])
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.attn_mask = attn_mask

    def forward(self, x, x_k=None, x_v=None, mask: torch.Tensor | None = None):
        """``mask``: the layer's :func:`future_mask` when the caller has built it (the
        encoder builds it once for all its layers); built here when None and needed."""
        if not self.attn_mask:
            mask = None
        elif mask is None:
            t_k = x.size(0) if x_k is None else x_k.size(0)
            mask = future_mask(x.size(0), t_k, device=x.device, dtype=x.dtype)

        # attention block
        residual = x
        x = self.layer_norms[0](x)
        if x_k is None:  # self-attention
            k = v = x
        else:  # crossmodal: query from the target, key/value from the source
            k, v = self.layer_norms[0](x_k), self.layer_norms[0](x_v)
        x = self.self_attn(x, k, v, attn_mask=mask)
        x = residual + _dropout(x, self.res_dropout, self.training)

        # position-wise feed-forward block
        residual = x
        x = self.layer_norms[1](x)
        x = _dropout(F.relu(self.fc1(x)), self.relu_dropout, self.training)
        x = self.fc2(x)
        x = residual + _dropout(x, self.res_dropout, self.training)
        return x


class TransformerEncoder(nn.Module):
    """Stack of pre-norm layers with a final LayerNorm (official ``normalize=True``).

    Inputs are scaled by sqrt(d) and get sinusoidal positions computed from the UNscaled
    input's first channel, then embedding dropout. Called as ``enc(x)`` it is a
    self-attention encoder; as ``enc(x, x_k, x_v)`` it is a crossmodal one, where key and
    value are embedded (and dropped out, with independent masks) separately, and the same
    low-level source embeddings feed every layer: only the query stream is updated.
    """

    def __init__(self, embed_dim, num_heads, layers, attn_dropout=0.0, relu_dropout=0.0, res_dropout=0.0,
                 embed_dropout=0.0, attn_mask=False):
        super().__init__()
        self.embed_dim = embed_dim
        self.embed_scale = math.sqrt(embed_dim)
        self.embed_dropout = embed_dropout
        self.embed_positions = SinusoidalPositionalEmbedding(embed_dim)
        self.attn_mask = attn_mask
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(embed_dim, num_heads, attn_dropout, relu_dropout, res_dropout, attn_mask)
            for _ in range(layers)
        )
        # fairseq's checkpoint-format tag; only kept so official state_dicts load strictly.
        self.register_buffer("version", torch.tensor([2.0]))
        self.layer_norm = nn.LayerNorm(embed_dim)

    def embed(self, x_in):
        pos = self.embed_positions(x_in[:, :, 0].transpose(0, 1)).transpose(0, 1)  # (T, B, d)
        x = self.embed_scale * x_in + pos
        return _dropout(x, self.embed_dropout, self.training)

    def forward(self, x_in, x_in_k=None, x_in_v=None):
        x = self.embed(x_in)
        crossmodal = x_in_k is not None and x_in_v is not None
        # every layer masks the same (T_q, T_k) scores: one mask for all of them
        mask = (future_mask(x.size(0), (x_in_k if crossmodal else x_in).size(0), device=x.device, dtype=x.dtype)
                if self.attn_mask else None)
        if crossmodal:
            x_k, x_v = self.embed(x_in_k), self.embed(x_in_v)
            for layer in self.layers:
                x = layer(x, x_k, x_v, mask=mask)
        else:
            for layer in self.layers:
                x = layer(x, mask=mask)
        return self.layer_norm(x)


# -----------------------------------------------------------------------------
# The model


class MulT(nn.Module):
    """MulT (official ``MULTModel``), with the official submodule names.

    ``forward(x_l, x_a, x_v)`` takes batch-first (B, T_m, orig_d_m) tensors, which may have
    different lengths (unaligned data). Sequences are expected LEFT-padded with zeros, as in
    the MulT pickles, because the prediction uses the last time step of each branch.
    Returns ``(output (B, output_dim), last_hidden (B, combined_dim))``.
    """

    def __init__(self, config: MulTConfig | None = None):
        super().__init__()
        self.config = cfg = config or MulTConfig()

        # 1. Per-modality temporal projections (kernel 1, no bias: zero padding stays zero).
        for m in cfg.present:
            self.add_module(f"proj_{m}", nn.Conv1d(cfg.orig_d(m), cfg.d(m), kernel_size=1, padding=0, bias=False))

        # 2. Crossmodal transformers: trans_{target}_with_{source}.
        for t in cfg.targets:
            for s in cfg.sources(t):
                self.add_module(f"trans_{t}_with_{s}",
                                self._encoder(cfg.d(t), cfg.crossmodal_attn_dropout(s), cfg.layers))

        # 3. Memory (self-attention) transformers, one per input modality even if its branch
        #    is unused (official partial modes build all three). The official code asks for
        #    layers=3, which get_network turns into max(layers, 3).
        for m in cfg.present:
            self.add_module(f"trans_{m}_mem", self._encoder(cfg.mem_dim(m), cfg.attn_dropout, max(cfg.layers, 3)))

        # 4. Residual output head (PyTorch default init, as officially).
        cd = cfg.combined_dim
        self.proj1 = nn.Linear(cd, cd)
        self.proj2 = nn.Linear(cd, cd)
        self.out_layer = nn.Linear(cd, cfg.output_dim)

    def _encoder(self, dim, attn_dropout, layers):
        cfg = self.config
        return TransformerEncoder(dim, cfg.num_heads, layers, attn_dropout=attn_dropout,
                                  relu_dropout=cfg.relu_dropout, res_dropout=cfg.res_dropout,
                                  embed_dropout=cfg.embed_dropout, attn_mask=cfg.attn_mask)

    def forward(self, x_l=None, x_a=None, x_v=None):
        cfg = self.config
        inputs = {"l": x_l, "a": x_a, "v": x_v}

        proj = {}  # modality -> (T, B, d)
        for m in cfg.present:
            if inputs[m] is None:
                raise ValueError(f"input x_{m} is required for modalities={cfg.modalities!r}")
            x = inputs[m].transpose(1, 2)  # (B, orig_d, T) for Conv1d
            if m == "l":  # official: embedding dropout on the raw text features only
                x = _dropout(x, cfg.embed_dropout, self.training)
            if cfg.orig_d(m) != cfg.d(m):  # official: skip the projection when sizes already match
                x = getattr(self, f"proj_{m}")(x)
            proj[m] = x.permute(2, 0, 1)

        last = []
        for t in cfg.targets:
            srcs = cfg.sources(t)
            if srcs:
                h = torch.cat([getattr(self, f"trans_{t}_with_{s}")(proj[t], proj[s], proj[s]) for s in srcs], dim=-1)
            else:  # single-modality model: self-attention on the projected input
                h = proj[t]
            h = getattr(self, f"trans_{t}_mem")(h)
            last.append(h[-1])  # last time step, not pooling
        last_hs = torch.cat(last, dim=-1)

        h = self.proj2(_dropout(F.relu(self.proj1(last_hs)), cfg.out_dropout, self.training))
        output = self.out_layer(h + last_hs)
        return output, last_hs
