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
# # 04 · MUA and the whole of CMN
#
# Section 2.3 of the paper: "each MUA combines the two basic units (SA and GA) modularly".
# That is all the text says; Figure 6, which drew it, is missing. How SA and GA are wired per
# modality, how many layers, and what comes after the last layer are choices, and cmnlib
# makes them explicit (`CMNConfig`, `cmnlib/model/cmn.py`). This notebook draws the three
# wirings cmnlib offers, traces the shapes through the whole model, and compares its size
# and cost with MulT's, which the paper contrasts itself with.

# %% tags=["parameters"]
dataset = "mosei"      # "mosei" or "iemocap"
source = "synthetic"   # "synthetic" or a path to real files
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic data seed, and the seed of the untrained models' weights
figures_dir = None     # where the batch runner collects figures

# %%
from cmnlib import analysis, plots_attention
from cmnlib.data import load_dataset
from cmnlib.model import count_parameters
from cmnlib.model.reference import ReferenceCMN, RefMHAtt, RefSGA
from cmnlib.reporting import show

# %% [markdown]
# ## Three wirings of the MUA stack
#
# With $X^{(l)}$ the language stream after layer $l$ ($X^{(0)}$: its LSTM output),
# $Y^{(l)}$ the audio stream, and $L$ layers (`mua=` in `CMNConfig`):
#
# | wiring | language | audio |
# |---|---|---|
# | `encoder_decoder` (default) | $X^{(l)} = \mathrm{SA}(X^{(l-1)})$ | $Y^{(l)} = \mathrm{SGA}(Y^{(l-1)}, X^{(L)})$ |
# | `stacked` | $X^{(l)} = \mathrm{SA}(X^{(l-1)})$ | $Y^{(l)} = \mathrm{SGA}(Y^{(l-1)}, X^{(l)})$ |
# | `symmetric` | $X^{(l)} = \mathrm{SGA}(X^{(l-1)}, Y^{(l-1)})$ | $Y^{(l)} = \mathrm{SGA}(Y^{(l-1)}, X^{(l-1)})$ |
#
# `encoder_decoder` is MCAN's MCA_ED, which the published implementation of this
# architecture (Delbrouck et al. 2020) uses: the language encoder runs to the end, and its
# **final** output guides every audio layer. `stacked` is MCAN's other variant (layer $l$
# guided by layer $l$). `symmetric` is co-attention both ways: each modality is guided by the
# other's previous layer.
#
# The tables and diagrams below are not drawn from this description: `analysis.mua_guidance`
# builds a tiny CMN with each wiring, runs it with forward hooks, and matches each unit's
# inputs, by value, to the outputs of the LSTMs and units that produced them.

# %%
analysis.show_code(analysis.mua_guidance)

# %% [markdown]
# ### `encoder_decoder` (the default)

# %%
show(analysis.mua_guidance('encoder_decoder'))

# %%
plots_attention.mua_wiring(analysis.mua_guidance("encoder_decoder"),
                           "encoder_decoder: the final language output guides every audio layer",
                           "mua_encoder_decoder", figures_dir)

# %% [markdown]
# ### `stacked`

# %%
show(analysis.mua_guidance('stacked'))

# %%
plots_attention.mua_wiring(analysis.mua_guidance("stacked"), "stacked: language layer l guides audio layer l",
                           "mua_stacked", figures_dir)

# %% [markdown]
# ### `symmetric`

# %%
show(analysis.mua_guidance('symmetric'))

# %%
plots_attention.mua_wiring(analysis.mua_guidance("symmetric"),
                           "symmetric: each modality guided by the other's previous layer",
                           "mua_symmetric", figures_dir)

# %% [markdown]
# With vision (L+A+V), `encoder_decoder` and `stacked` add a third column of SGA units guided
# by language, and `symmetric` guides each modality by the other two, concatenated along
# time:

# %%
show(analysis.mua_guidance('symmetric', modalities='LAV'))

# %% [markdown]
# ## A shape trace through CMN
#
# Two test utterances as one right-padded batch (cut to the longer one, as the loader does),
# through an untrained CMN (L+A) with weights from `torch.manual_seed(seed)`: the input,
# (1) one LSTM per modality, (2) the MUA units (an SGA's second input is its guide), (3)
# AttFlat per modality (a weighted sum over time, then a linear map to 2 × hidden), (4)
# fusion: the AttFlat outputs summed, then LayerNorm (and dropout, in training), (5) the
# linear head (one score for MOSEI, four logits for IEMOCAP). Each row is recorded by a
# forward hook while the model runs.

# %%
bundle = load_dataset(dataset, source, scale=scale, seed=seed)
print(bundle.source_label)
test = bundle["test"]
features, lengths = analysis.example_batch(test, (0, 1))
print("true lengths:", {m: l.tolist() for m, l in lengths.items()})

# %% [markdown]
# ### Quick setting (hidden 64, 2 layers, 4 heads, FFN 128)

# %%
quick = analysis.seeded_cmn(bundle, modalities="LA", profile="quick", seed=seed)
trace = analysis.shape_trace(quick, features, lengths)
print("the rows hold all the parameters:", int(trace["parameters"].sum()) == count_parameters(quick))
show(trace)

# %% [markdown]
# ### Paper setting (hidden 512, 2 layers, 4 heads, FFN 1024; section 4.1 and the published implementation)

# %%
paper = analysis.seeded_cmn(bundle, modalities="LA", profile="paper", seed=seed)
trace = analysis.shape_trace(paper, features, lengths)
print("the rows hold all the parameters:", int(trace["parameters"].sum()) == count_parameters(paper))
show(trace)

# %% [markdown]
# ## The whole model, checked against a plain reference
#
# Notebooks 02 and 03 check each unit against its equations. The whole model is checked the
# same way: `cmnlib.model.reference.ReferenceCMN` is CMN written plainly, in MCAN's style
# (explicit `softmax(QK^T / sqrt(d)) V` per head, the LayerNorm formula written out, no
# fused kernels), with the same parameter names, so a CMN's weights load into it by name.
# It is the same reference that `cmn bench` measures speed against. Its forward pass:

# %%
analysis.show_code(ReferenceCMN.forward, RefSGA.forward, RefMHAtt.forward)

# %% [markdown]
# Each wiring, untrained (weights from `torch.manual_seed(seed)`), on the two test
# utterances traced above: the fast CMN and the reference with the same weights give the
# same outputs up to float32 rounding (the fused attention kernel sums in another order).

# %%
check = analysis.reference_check(bundle, features, lengths, modalities="LA", seed=seed)
print(f"every wiring within {analysis.REFERENCE_TOLERANCE:g} of the reference:",
      bool(check[f"below {analysis.REFERENCE_TOLERANCE:g}"].all()))

# %% tags=["nbval-ignore-output"]
# the differences themselves are float32 rounding and differ in the last bits between CPUs
show(check.assign(**{"max |CMN - reference|": check["max |CMN - reference|"].map("{:.1e}".format)}))

# %% [markdown]
# ## Size and cost: CMN against MulT
#
# The paper says CMN needs "only two transformer modules", against MulT's six crossmodal
# transformers. `cmnlib.model.transformer_modules` counts stacks of layers: CMN has one per
# modality (language SA stack, audio SGA stack); MulT (L+A+V) has six crossmodal
# transformers **plus three** self-attention memory transformers, nine stacks. The table
# also counts the layers inside those stacks, trainable parameters, and forward FLOPs for
# one utterance at the data set's full length (`cmnlib.model.count_flops`: matrix products,
# attention and the LSTM's products; element-wise operations are not counted). Both models
# use their own settings: CMN's paper profile is hidden 512; MulT's is its official d = 30,
# 5 crossmodal layers, 5 heads.

# %%
print("sequence lengths:", bundle.seq_lens, "| feature sizes:", bundle.feature_dims)
complexity = analysis.complexity_table(bundle.feature_dims, bundle.seq_lens)
show(complexity)

# %%
print(analysis.complexity_claims(complexity, "paper"))
print(analysis.complexity_claims(complexity, "quick"))

# %% [markdown]
# **The claim, checked.** Counted as the paper counts, CMN (L+A) has 2 transformer modules
# and MulT (L+A+V) 9 (the paper's "6" leaves out MulT's three memory transformers), and
# CMN's stacks are also much shallower (4 layers against 45 at the paper settings). But
# fewer modules is not a smaller or cheaper model. The two printed lines above give the
# ratios of parameters and of FLOPs per utterance (at this data set's sequence lengths) at
# the paper's setting and at the quick one: at the paper's hidden size of 512 CMN (L+A) is
# the larger model by a wide margin, because MulT works at width 30 and CMN at 512 and the
# cost of every projection grows with the square of the width; at the quick setting
# (hidden 64) the widths are closer and the printed ratios say which model is larger. The
# paper reports neither parameters nor FLOPs, so "2 instead of 6" describes the
# architecture's layout, not its cost.
