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
# # 01 · The data
#
# The paper evaluates CMN on **IEMOCAP** (four emotions) and **CMU-MOSEI** (sentiment in
# [-3, 3]) with the standard word-aligned features: GloVe text (300-d), COVAREP audio (74-d)
# and FACET vision (35-d), 50 steps for MOSEI and 20 for IEMOCAP.
#
# This notebook shows where the data comes from, what it looks like, and (for the built-in
# synthetic stand-in) the best score any model can reach on it. It reads the same for real
# files: set `source` to a MulT pickle or a folder of CMU-MultimodalSDK `.csd` files
# (see `data/README.md`).

# %% tags=["parameters"]
dataset = "mosei"      # "mosei" or "iemocap" ("mosi" for real files)
source = "synthetic"   # "synthetic" or a path to real files
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic only
fmt = None             # synthetic only: "csd" or "pkl" (default: mosei from .csd, iemocap from .pkl)
figures_dir = None     # where the batch runner collects figures

# %%
from cmnlib import plots, summaries
from cmnlib.reporting import show
from cmnlib.data import load_dataset

bundle = load_dataset(dataset, source, scale=scale, seed=seed, fmt=fmt)
print(bundle.source_label)
print("format:", bundle.meta["format"], "| word-aligned:", bundle.meta.get("aligned"))

# %% [markdown]
# ## Where it came from
#
# The synthetic stand-in is **written to disk in the real formats** (MOSEI-like: SDK `.csd`
# files *and* a MulT pickle; IEMOCAP-like: a MulT pickle) and read back through the same
# loaders as real data, so every default run exercises the real-data path. For `.csd`
# sources the loader performs the SDK's word-level alignment: every audio and visual frame
# is averaged inside its word, segments come from the labels sequence, sequences keep their
# last 50 words, and the standard folds decide the split.
#
# ## Splits

# %%
show(summaries.split_sizes(bundle))

# %% [markdown]
# ## Labels
#
# For MOSEI (and the MOSEI-like stand-in) the table gives the share of non-negative labels:
# on the **real** CMU-MOSEI test set it is 71.0%, so a constant "non-negative" predictor
# already scores Acc2 71.0 in that convention (the paper's MOSEI Acc2 of 42.5 lies below
# it); the figure's grey bars are the real test set's label histogram, shipped with cmnlib
# as a summary of the public labels. For IEMOCAP the table and the figure give each
# emotion's share per split.

# %%
show(summaries.label_summary(bundle))

# %%
reference = summaries.real_mosei_reference() if dataset == "mosei" else None
plots.label_distribution(bundle, reference, save_dir=figures_dir)

# %% [markdown]
# ## Sequence lengths
#
# True lengths (padding masks are built from them, never from all-zero frames).

# %%
plots.sequence_lengths(bundle, save_dir=figures_dir)

# %% [markdown]
# ## Features
#
# Statistics over the valid steps of the training split. All-zero *valid* steps are real
# content (pause tokens have zero GloVe vectors), which is why masks come from lengths. A
# modality whose every value is zero, or whose every step is one vector, is marked not
# informative: no model can learn from it, so no claim about fusing it can be tested here.

# %%
show(summaries.feature_statistics(bundle))

# %% [markdown]
# ### Non-finite values
#
# Real COVAREP audio contains `-inf` (and NaN/inf occur in the wild). The loaders replace
# every non-finite value by 0 and count them here rather than hiding them.

# %%
show(summaries.nonfinite_table(bundle))

# %% [markdown]
# ## The ceiling: the best any model can do
#
# The synthetic process is known, so the Bayes-optimal classifier is known too: for every
# utterance the loader's files carry the exact posterior, and the table gives its expected
# score for each modality subset (Monte Carlo over fresh draws, with standard errors) and
# its score on this very test split, which is one sample of the process and differs from
# the expectation by about a point: the later notebooks judge a model against the rule on
# its own test utterances. The Bayes rule maximises accuracy; an F1 rewards a rule that
# favours the rarer classes, so an F1's expected value is the Bayes rule's (a reference,
# not a bound), and its test-split column is the F1-optimal rule's (a threshold or class
# weights on the same posteriors, fitted on the training and validation utterances). In
# the MOSEI-like set words carry sentiment, but some words are ambiguous and only the audio
# frames aligned with them reveal their polarity ("This video is sick"); in the IEMOCAP-like
# set text carries valence and audio arousal, and only together do they separate the four
# emotions. Either way the L+A row is the one to compare with L and A alone: the table says
# how much the pair adds on the data loaded. Later tables put these ceilings beside every
# trained model. For real data this cell prints nothing: real data has no known ceiling.

# %%
ceilings = summaries.ceiling_table(bundle)
show(ceilings) if ceilings is not None else print("real data: no known Bayes ceiling")

# %% [markdown]
# ## An example utterance (test split)

# %%
example = int(bundle["test"].extras["cue_mask"].sum(axis=1).argmax()) if "cue_mask" in bundle["test"].extras else 0
plots.example_utterance(bundle, example, save_dir=figures_dir)

# %% [markdown]
# ## Using real data
#
# Put the files somewhere (see `data/README.md`), check them with
# `python -m cmnlib inspect PATH`, and run any notebook with `source=PATH`, e.g.
# `papermill 01_data.ipynb out.ipynb -p source /data/mosei_senti_data.pkl`. Every table in
# this project carries the data source label printed at the top.
