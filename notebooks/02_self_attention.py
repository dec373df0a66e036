# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Self-Attention (SA)
#
# Section 2.1 of the paper (Figure 4) builds CMN's first unit, **Self-Attention (SA)**:
# multi-head self-attention over one modality, then a feed-forward network, each sub-layer
# with a residual connection and a LayerNorm. cmnlib implements it in the form of MCAN
# (Yu et al. 2019), which the paper cites (`cmnlib/model/attention.py`).
#
# This notebook writes eq. (1)-(3) out with plain tensor operations, checks them against
# cmnlib's `MultiHeadAttention` and `SA`, shows what the key padding mask does, and draws the
# self-attention maps of a CMN for one utterance.

# %% tags=["parameters"]
dataset = "mosei"      # "mosei" or "iemocap"
source = "synthetic"   # "synthetic" or a path to real files
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic data seed, and the seed of the untrained model's weights
figures_dir = None     # where the batch runner collects figures

# %%
import pandas as pd
import torch

from cmnlib import analysis, plots_attention, runs
from cmnlib.data import load_dataset
from cmnlib.model import capture_attention
from cmnlib.reporting import show
from cmnlib.train import RunSpec, load_model

# %% [markdown]
# ## Eq. (1): scaled dot-product attention
#
# For the features $F \in \mathbb{R}^{T \times d}$ of one modality, queries, keys and values
# are linear maps of the same features, $Q = F W^Q$, $K = F W^K$, $V = F W^V$, and
#
# $$\mathrm{Att}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V \qquad (1)$$
#
# Row $q$ of the softmax is a probability distribution over the $T$ keys: how much of each
# position's value flows into position $q$.
#
# ## Eq. (2)-(3): multi-head attention
#
# $$\mathrm{MHA}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W^O \qquad (2)$$
# $$\mathrm{head}_j = \mathrm{Att}(Q W_j^Q, K W_j^K, V W_j^V), \quad W_j \in \mathbb{R}^{d \times d_h},\ d_h = d / h \qquad (3)$$
#
# In practice one $d \times d$ projection holds all the $W_j$ side by side: head $j$ uses
# columns $j d_h$ to $(j+1) d_h - 1$. Inside a head the scores are divided by
# $\sqrt{d_h}$, the width of that head (the paper writes $d_k = d_a$; MCAN and the original
# Transformer scale by the head width, and so does cmnlib). MCAN's projections also have
# biases, which the equations leave out.
#
# The function below is eq. (1)-(3) for one utterance, with nothing but matrix products,
# slicing and a softmax written as exp / sum:

# %%
analysis.show_code(analysis.mha_by_hand)

# %% [markdown]
# ### A small example
#
# Three queries and four keys of width $d = 4$, two heads of width $d_h = 2$; the weights
# are drawn from `torch.manual_seed(seed)`. (Self-attention is the case where queries and keys
# are the same features; eq. (2)-(3) hold for any queries and keys, and notebook 03 uses that.)

# %%
example = analysis.toy_example(seed=seed, n_a=3, n_b=4, hidden=4, heads=2)
print("queries:", tuple(example.a.shape), "| keys and values:", tuple(example.b.shape),
      "| heads:", example.mha.heads)
out, weights = analysis.mha_by_hand(example.mha, example.a, example.b)
show(analysis.as_table(weights))

# %% [markdown]
# The output: one row per query, width $d$ (the heads concatenated, then $W^O$).

# %%
show(analysis.as_table(out, column='dim'))

# %% [markdown]
# **Check.** cmnlib's `MultiHeadAttention` is called MCAN-style as `mha(v, k, q, mask)` on
# batched tensors. Inside `with capture_attention(mha):` it runs the explicit equations and
# keeps the weights in `mha.weights` (as the Annotated Transformer keeps `self.attn`);
# otherwise PyTorch's fused `scaled_dot_product_attention` kernel computes the same function.
# Both must agree with the hand-written version:

# %%
with capture_attention(example.mha):
    lib_out = example.mha(example.b[None], example.b[None], example.a[None])
lib_weights = example.mha.weights
fused_out = example.mha(example.b[None], example.b[None], example.a[None])
print("weights by hand == MultiHeadAttention's:     ", torch.allclose(weights, lib_weights[0], atol=1e-6))
print("output by hand  == explicit path:            ", torch.allclose(out, lib_out[0], atol=1e-6))
print("output by hand  == fused kernel:             ", torch.allclose(out, fused_out[0], atol=1e-6))

# %% [markdown]
# ## The SA unit (Figure 4)
#
# Each sub-layer is followed by a residual connection and a LayerNorm (post-norm, as MCAN):
#
# $$X \leftarrow \mathrm{LN}(X + \mathrm{MHA}(X, X, X)), \qquad X \leftarrow \mathrm{LN}(X + \mathrm{FFN}(X)),$$
# $$\mathrm{FFN}(X) = \max(0, X W_1 + b_1) W_2 + b_2 .$$
#
# MCAN's LayerNorm is $a \odot (x - \mu) / (\sigma + \epsilon) + b$ with the *unbiased*
# standard deviation $\sigma$ (it differs slightly from `torch.nn.LayerNorm`); cmnlib keeps it
# so that the published weights reproduce their outputs. Dropout (after the attention
# weights and inside the FFN) is off in evaluation. Written out (the same function covers the
# guided units of notebook 03):

# %%
analysis.show_code(analysis.unit_by_hand, analysis.layer_norm_by_hand, analysis.ffn_by_hand)

# %%
sa_out, sa_weights = analysis.unit_by_hand(example.sa, example.a)
with capture_attention(example.sa):
    lib_out = example.sa(example.a[None])
print("SA unit by hand == cmnlib's SA:       ", torch.allclose(sa_out, lib_out[0], atol=1e-5))
print("self-attention weights agree:         ", torch.allclose(sa_weights["self"], example.sa.mhatt.weights[0], atol=1e-6))
print("fused kernel gives the same SA output:", torch.allclose(sa_out, example.sa(example.a[None])[0], atol=1e-5))

# %% [markdown]
# ## The key padding mask
#
# Utterances have different lengths, so a batch is right-padded: real steps first, padding
# after, and `lengths` says where the padding starts (masks are built from lengths, never
# from all-zero frames, because a real pause word has an all-zero GloVe vector). The mask is
# True at padding *keys*; before the softmax cmnlib sets their scores to $-10^9$ (as MCAN
# does) and the hand-written version above to $-\infty$: $e^{-10^9}$ underflows to exactly 0
# in float32, as $e^{-\infty}$ is 0, so both give padding keys weight exactly 0 (they differ
# only for a row whose keys are all padding, below). Keys 2 and 3 of the example are padding:

# %%
mask = torch.tensor([False, False, True, True])  # True = padding key
show(analysis.masking_table(example.mha, example.a, example.b, mask))

# %% [markdown]
# Padding keys get weight exactly 0, each row still sums to 1 over the real keys, and
# whatever the padding holds cannot leak into the output (checked by filling it with noise).
# Queries *at* padding positions still produce outputs; later stages (AttFlat pooling, the
# guided attention of other modalities) mask them out in turn. A row whose keys were all
# padding would average them uniformly in cmnlib (every score $-10^9$), as MCAN does, where
# the hand-written $-\infty$ would give NaN; cmnlib's loader never produces an empty
# utterance.

# %%
checks = analysis.masking_checks(example.mha, example.a, example.b, mask, seed=seed)
show(pd.DataFrame({"check": list(checks), "holds": ["yes" if ok else "NO" for ok in checks.values()]}))

# %% [markdown]
# ## Self-attention inside CMN: one utterance
#
# CMN encodes each modality with an LSTM, then runs the MUA stack (notebook 04). In the
# default wiring (`encoder_decoder`) the language stream passes through two **SA units**, and
# the audio stream through two **SGA units**, whose first sub-layer is the same
# self-attention over the audio frames (their second is the guided attention of notebook
# 03).
#
# Two CMNs at the *quick* setting (hidden 64, 2 layers, 4 heads): one **untrained**, its
# weights from `torch.manual_seed(seed)`, whose maps show the mechanics (shapes, masking, one
# row per query) and not learned behaviour; and the same model **trained** (seed 0 of the
# runs notebooks 03 and 05 use, trained here if absent). The utterance is a short test
# utterance with ambiguous words (on the synthetic MOSEI-like data: words whose polarity only
# the aligned audio reveals; dotted lines and a * on the ticks).
#
# Every map is drawn relative to uniform attention (weight × T: 1, white, is the uniform
# level 1/T; red is more, blue less), on one fixed scale, so a pale map is a near-uniform
# one and the trained and untrained maps can be compared panel by panel.

# %%
bundle = load_dataset(dataset, source, scale=scale, seed=seed)
print(bundle.source_label)
model = analysis.seeded_cmn(bundle, modalities="LA", profile="quick", seed=seed)
run = runs.train_specs([RunSpec(model="cmn", dataset=dataset, modalities="LA", profile="quick")], bundle, 1,
                       "quick", progress=False)[0]
trained = load_model(run.folder, 0, bundle)
test = bundle["test"]
index = analysis.pick_example(test)
cue = analysis.cue_of(test, index)
print(analysis.describe_utterance(test, index))
maps = analysis.utterance_attention(model, test, index)
maps_trained = analysis.utterance_attention(trained, test, index)
show(pd.DataFrame({"map": list(maps), "shape": [str(value.shape) for value in maps.values()]}))

# %% [markdown]
# `text/self` and `audio/self` are (layers, heads, queries, keys); `audio/guided` is the
# audio-to-language attention of notebook 03; `*/flat` are the AttFlat pooling weights.
#
# ### Language: the SA units (rows: layers, columns: heads)
#
# Row $q$ of each panel is where word $q$ looks; rows sum to 1. What to look for: the
# untrained maps are pale (near uniform) with faint vertical stripes (keys that every query
# scores a little higher: random projections favour some LSTM states); in the trained maps,
# whether any head's red lands on the ambiguous words (*) rather than elsewhere.

# %%
text_scale = plots_attention.shared_scale(maps["text/self"], maps_trained["text/self"])  # one scale for both
plots_attention.layer_head_grid(maps["text/self"], "language self-attention, untrained CMN (quick)",
                                "sa_text_untrained", figures_dir, cue=cue, data=bundle.short_label, scale_max=text_scale,
                                query_label="query word", key_label="key word",
                                caption="Untrained: near-uniform rows; the structure shown is the mechanics only.")

# %% tags=["nbval-ignore-output"]
plots_attention.layer_head_grid(maps_trained["text/self"],
                                "language self-attention, trained CMN (L+A, quick, seed 0)",
                                "sa_text_trained", figures_dir, cue=cue, data=bundle.short_label, scale_max=text_scale,
                                query_label="query word", key_label="key word",
                                caption="Trained: compare each panel with the untrained one above (same scale).")

# %% [markdown]
# ### Audio: the self-attention sub-layer of the SGA units
#
# On word-aligned data audio step $t$ is the average of the audio frames inside word $t$.

# %%
audio_scale = plots_attention.shared_scale(maps["audio/self"], maps_trained["audio/self"])
plots_attention.layer_head_grid(maps["audio/self"], "audio self-attention (SGA units), untrained CMN (quick)",
                                "sa_audio_untrained", figures_dir, cue=cue, data=bundle.short_label, scale_max=audio_scale,
                                query_label="query step", key_label="key step",
                                caption="Untrained: near-uniform rows.")

# %% tags=["nbval-ignore-output"]
plots_attention.layer_head_grid(maps_trained["audio/self"],
                                "audio self-attention (SGA units), trained CMN (L+A, quick, seed 0)",
                                "sa_audio_trained", figures_dir, cue=cue, data=bundle.short_label, scale_max=audio_scale,
                                query_label="query step", key_label="key step",
                                caption="Trained: compare with the untrained maps above (same scale).")

# %% [markdown]
# ### How peaked are these maps?
#
# The normalised entropy of a row, $H / \log T$, is 1 for uniform attention and 0 for
# attention on a single key; "max weight × T" is 1 for uniform attention. An untrained
# model attends almost uniformly (its scores are small: random projections of LayerNorm'd
# LSTM states), which is what these numbers show; the trained model's follow (their values
# depend on the CPU the model was trained on).

# %%
show(analysis.attention_entropy(maps['text/self']))

# %%
show(analysis.attention_entropy(maps['audio/self']))

# %% tags=["nbval-ignore-output"]
show(analysis.attention_entropy(maps_trained['text/self']))

# %% tags=["nbval-ignore-output"]
show(analysis.attention_entropy(maps_trained['audio/self']))

# %% [markdown]
# ## Summary
#
# * `analysis.mha_by_hand` (eq. 1-3 with plain tensor operations) and cmnlib's
#   `MultiHeadAttention` agree, on the explicit path and the fused kernel; so do the SA unit
#   and its written-out form.
# * The key padding mask gives padding keys exactly zero weight; their contents cannot
#   reach the output.
# * An untrained CMN's self-attention is close to uniform. Notebook 03 turns to guided
#   attention and to what a trained model attends to.
