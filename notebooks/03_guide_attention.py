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
# # 03 · Guide-Attention (GA)
#
# Section 2.2 of the paper (Figure 5): the **Guide-Attention** unit lets one modality attend
# to another, "so that the network learns the important and complementary information of the
# other modality". Queries come from modality $a$, keys and values from modality $b$.
#
# This notebook writes eq. (4) out and checks it against cmnlib's `GA` (and `SGA`, the unit
# CMN's audio stream uses), then looks at a **trained** CMN (L+A) on the synthetic
# MOSEI-like data, where we know which words matter: the *ambiguous* words, whose polarity
# only the aligned audio reveals ("This video is sick"). Does the trained model's attention
# go to them?

# %% tags=["parameters"]
dataset = "mosei"      # the cue analysis needs the synthetic MOSEI-like data (it knows the ambiguous words);
source = "synthetic"   # other data sets and real files show the maps, and say that there is nothing to measure
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic data seed, and the seed of the untrained model's weights
seeds = 4              # trained (and untrained) CMNs behind every statement about trained attention
figures_dir = None     # where the batch runner collects figures

# %%
import torch
from IPython.display import Markdown, display

from cmnlib import analysis, findings, plots_attention, runs, summaries
from cmnlib.studies import common, paper
from cmnlib.data import load_dataset
from cmnlib.data.sources import bayes_ceilings
from cmnlib.model import capture_attention
from cmnlib.reporting import show
from cmnlib.train import RunSpec, load_model

# %% [markdown]
# ## Eq. (4)
#
# $$\mathrm{GA}_{b \to a} = \mathrm{softmax}\!\left(\frac{F_a W_Q^{a}\, (F_b W_K^{b})^\top}{\sqrt{d_k}}\right) F_b W_V^{b} \qquad (4)$$
#
# This is eq. (1) with $Q = F_a W_Q^a$ from modality $a$ and $K = F_b W_K^b$,
# $V = F_b W_V^b$ from modality $b$: row $q$ is a distribution over the $T_b$ steps of $b$,
# and the output has one row per step of $a$. With $h$ heads it splits exactly as eq. (2)-(3).
# So the function of notebook 02 already implements it, called with $(F_a, F_b)$:

# %%
analysis.show_code(analysis.mha_by_hand)

# %% [markdown]
# Three steps of modality $a$ attend to four steps of modality $b$ ($d = 4$, two heads):

# %%
example = analysis.toy_example(seed=seed, n_a=3, n_b=4, hidden=4, heads=2)
guided, weights = analysis.mha_by_hand(example.ga.mhatt, example.a, example.b)
show(analysis.as_table(weights, row="step of a", column="step of b"))

# %% [markdown]
# **Check** against the attention sub-layer of cmnlib's `GA` unit (`mhatt(v, k, q)` with
# `v = k = F_b`, `q = F_a`), and the whole units written out (`unit_by_hand`, notebook 02):
# GA is guided attention then FFN; SGA, MCAN's decoder unit, is self-attention, guided
# attention, then FFN, each sub-layer residual + LayerNorm.

# %%
with capture_attention(example.ga):
    lib_guided = example.ga.mhatt(example.b[None], example.b[None], example.a[None])
lib_weights = example.ga.mhatt.weights
print("eq. (4) by hand == GA's attention (output): ", torch.allclose(guided, lib_guided[0], atol=1e-6))
print("eq. (4) by hand == GA's attention (weights):", torch.allclose(weights, lib_weights[0], atol=1e-6))
ga_out, _ = analysis.unit_by_hand(example.ga, example.a, example.b)
print("GA unit by hand  == cmnlib's GA:            ", torch.allclose(ga_out, example.ga(example.a[None], example.b[None])[0], atol=1e-5))
sga_out, _ = analysis.unit_by_hand(example.sga, example.a, example.b)
print("SGA unit by hand == cmnlib's SGA:           ", torch.allclose(sga_out, example.sga(example.a[None], example.b[None])[0], atol=1e-5))

# %% [markdown]
# ## Guided attention in CMN
#
# In the default wiring (`encoder_decoder`: MCAN's MCA_ED, the published implementation of
# this architecture) the language stream runs through its SA layers first; then every audio
# SGA layer takes its **queries from audio** and its **keys and values from the FINAL
# language output** (the last SA layer), not from the language layer of the same depth
# (notebook 04 draws the wirings). So the maps below are audio → language: one row per audio
# step, one column per word of the fully encoded language stream.
#
# ### The data and the trained models
#
# The model is CMN (L+A) at the quick setting, trained with the quick profile, once per seed
# (`seeds` of them, in parallel worker processes). Training is chaotic: the same seed on
# another CPU, which rounds some sums differently in the last bit, ends with other weights.
# So the maps of one model below *illustrate*; every statement about what trained models
# do is made over the seeds, with an interval (`cmnlib.findings`). The first run trains the
# models (a minute or two on two CPU cores) and caches them under `data/runs/`; the
# training notebook reuses seeds 0 and 1.

# %%
bundle = load_dataset(dataset, source, scale=scale, seed=seed)
print(bundle.source_label)
spec = RunSpec(model="cmn", dataset=dataset, modalities="LA", profile="quick")
run = runs.train_specs([spec], bundle, seeds, "quick", progress=False)[0]
trained_seeds = [load_model(run.folder, s, bundle) for s in run.seeds]
untrained_seeds = [analysis.seeded_cmn(bundle, modalities="LA", profile="quick", seed=s) for s in run.seeds]
trained, untrained = trained_seeds[0], untrained_seeds[0]
print(run.label, "| wiring:", trained.config.mua, "| hidden", trained.config.hidden,
      "| layers", trained.config.layers, "| heads", trained.config.heads, "| seeds", len(trained_seeds))

# %% [markdown]
# Their test scores, one row per seed (these depend on the CPU: see `notebooks/README.md`),
# and the best any model can do on this data (the Bayes ceilings of notebook 01): the
# ambiguous words make L+A far better than L.

# %% tags=["nbval-ignore-output"]
show(analysis.run_metrics(run))

# %%
show(summaries.ceiling_table(bundle))

# %% [markdown]
# ### One utterance
#
# A short test utterance with ambiguous words (dotted). Rows: audio steps (queries), columns:
# words of the final language output (keys). The data is word-aligned, so the diagonal is
# "the word this audio step belongs to".

# %%
test = bundle["test"]
index = analysis.pick_example(test)
cue = analysis.cue_of(test, index)
print(analysis.describe_utterance(test, index))
maps_trained = analysis.utterance_attention(trained, test, index)
maps_untrained = analysis.utterance_attention(untrained, test, index)
guided_scale = plots_attention.shared_scale(maps_trained["audio/guided"], maps_untrained["audio/guided"])
plots_attention.layer_head_grid(maps_trained["audio/guided"],
                                "audio → language guided attention, trained CMN (L+A, quick, seed 0)",
                                "ga_audio_to_text_trained", figures_dir, cue=cue, data=bundle.short_label,
                                scale_max=guided_scale,
                                query_label="audio step", key_label="word (final language)",
                                caption="What to look for: red on the diagonal at the ambiguous words (*) would be "
                                        "'this audio step looks at its own word'; a red column is one word that "
                                        "every audio step reads.")

# %% [markdown]
# The same utterance through the untrained model (weights from `torch.manual_seed(seed)`):

# %%
plots_attention.layer_head_grid(maps_untrained["audio/guided"],
                                "audio → language guided attention, untrained CMN (quick)",
                                "ga_audio_to_text_untrained", figures_dir, cue=cue, data=bundle.short_label,
                                scale_max=guided_scale,
                                query_label="audio step", key_label="word (final language)",
                                caption="Untrained: near uniform, on the same scale as the trained maps above.")

# %% [markdown]
# After the MUA stack, each modality is pooled by **AttFlat** (a softmax over its steps, then
# a weighted sum); the trained model's pooling weights for this utterance:

# %%
plots_attention.flat_attention(maps_trained, cue, "AttFlat pooling weights, trained CMN (L+A, quick, seed 0)",
                               "attflat_trained", figures_dir, data=bundle.short_label)

# %% [markdown]
# ## How much attention falls on the ambiguous words?
#
# For one utterance with $n$ words, of which the set $C$ ($n_C$ words) is ambiguous, and one
# attention map (a layer and head) with weights $\alpha_{qk}$ over real queries $q$ and keys
# $k$, the **cue share** is the attention mass on $C$, averaged over the queries:
#
# $$s = \frac{1}{n} \sum_{q} \sum_{k \in C} \alpha_{qk}, \qquad s_{\text{uniform}} = \frac{n_C}{n}.$$
#
# Uniform attention would give $n_C / n$; the ratio $s / s_{\text{uniform}}$ says how much
# more than uniform the map concentrates on the ambiguous words (1: no preference). For
# AttFlat, the "queries" are its single glimpse. Both are averaged over the test utterances
# with at least one ambiguous word.

# %%
analysis.show_code(analysis.cue_share, analysis.uniform_share)

# %% [markdown]
# **Check** on a hand-made map: one head, two queries, four keys, keys 1 and 3 ambiguous.
# Query 0 puts $0.2 + 0.4 = 0.6$ on them, query 1 (uniform) $0.5$, so $s = 0.55$, and
# $s_{\text{uniform}} = 2/4$:

# %%
w = torch.tensor([[[[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]]])
key_cue = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
print(f"cue share s = {float(analysis.cue_share(w, key_cue)):.2f} | uniform share = "
      f"{float(analysis.uniform_share(key_cue, torch.tensor([4]))):.2f}")

# %% [markdown]
# ### The untrained model
#
# Each map of the untrained model, averaged over the test split: shares close to uniform
# (ratio close to 1), as expected of random weights. "above uniform %" is the share of
# utterances whose cue share exceeds their uniform share.

# %%
shares_untrained = analysis.collect_cue_shares(untrained, test)
table_untrained = analysis.summarise_cue_shares(shares_untrained)
show(table_untrained) if table_untrained is not None else print("no cue mask in this data (real data): nothing to measure")

# %% [markdown]
# ### One trained model (seed 0)
#
# Its maps, per layer and head, and side by side with the untrained model (ratio = share / uniform share):

# %%
shares_trained = analysis.collect_cue_shares(trained, test)

# %% tags=["nbval-ignore-output"]
show(analysis.summarise_cue_shares(shares_trained))

# %% tags=["nbval-ignore-output"]
comparison = analysis.compare_cue_shares({"untrained": analysis.summarise_cue_shares(shares_untrained, decimals=None),
                                          "trained": analysis.summarise_cue_shares(shares_trained, decimals=None)})
show(comparison)

# %% [markdown]
# The same ratios as bars, one pair per attention map (L = layer, h = head): the untrained
# and the trained model's share on the ambiguous words divided by the uniform share. The
# dashed line at 1 is attention without preference for those words.

# %%
plots_attention.cue_share_ratios(comparison,
                                 "attention on ambiguous words relative to uniform attention (test split, seed 0)",
                                 "cue_share_ratio", figures_dir, data=bundle.short_label)

# %% [markdown]
# ### Attention on the aligned word
#
# The data is word-aligned, so a guided attention that resolves ambiguous words could simply
# let audio step $t$ look at word $t$ ("is the word I belong to ambiguous?"). The weight on
# the aligned word, times the number of words $n$ (1 = uniform), over all audio steps and over
# the steps of ambiguous words; first the untrained model, then the trained one (seed 0):

# %%
show(analysis.aligned_attention(untrained, test))

# %% tags=["nbval-ignore-output"]
show(analysis.aligned_attention(trained, test))

# %% [markdown]
# ### The stripes: which words guided attention reads
#
# The trained map of the utterance above has vertical stripes: a word that *every* audio
# step attends to, whatever the step. On the synthetic MOSEI-like set every word has a type
# (neutral, positive, negative, ambiguous; notebook 01), which `analysis.word_types`
# recovers exactly from the features (each is a vocabulary vector of the generator). The
# strongest columns of the trained and the untrained map of this utterance, with the type of
# the word each one reads ("x uniform": the column's mean weight times the number of words):

# %% tags=["nbval-ignore-output"]
types = analysis.word_types(bundle)
types_row = None if types is None else types[index]
show(analysis.strongest_columns(maps_trained["audio/guided"], types_row), "trained (seed 0)")

# %%
show(analysis.strongest_columns(maps_untrained["audio/guided"], types_row), "untrained")

# %% [markdown]
# Over the whole test split: per head of the trained model (seed 0), the mean weight per
# word of each type, times the number of words (1 = uniform). A head far above 1 on the
# positive or the negative words reads the sentiment words for every audio step: in one
# utterance that is a stripe on each such word. Such a summary of the polar words is what
# the label mostly depends on (the count of positive minus negative words), but it is not
# the word-by-word pairing that the ambiguous words need: their column says whether any
# head looks at them more than uniformly.

# %% tags=["nbval-ignore-output"]
if types is not None:
    display(show(analysis.guided_by_word_type(trained, test, types)))

# %% [markdown]
# ### What trained models do, over seeds
#
# One model's shares change when it is retrained on another CPU; the distribution over seeds
# does not. For each kind of attention map, the statistic per seed is the **largest** ratio
# share / uniform over its layers and heads (different seeds specialise different heads).
# The claim tested is that it exceeds 1.25 (`analysis.CONCENTRATION`): at least a quarter more attention on the
# ambiguous words than uniform attention would give. The same statistic for untrained models
# with the same seeds shows how far random weights go. Each claim gets a 95% Student-t
# interval over the seeds and a verdict: *supported* (the whole interval above the
# threshold), *not supported* (the whole interval below it) or *inconclusive* (the interval
# contains it); the margin is the distance between interval and threshold (negative: the
# overlap). The sentences after the table are generated from it.

# %% tags=["nbval-ignore-output"]
groups = {"trained": trained_seeds, "untrained": untrained_seeds}
found = analysis.attention_findings(groups, test, types)  # each model runs over the test split once
cue, aligned, by_type = found["cue"], found["aligned"], found["by_type"]
ceilings = bayes_ceilings(bundle)
scores = (common.text_ceiling_findings([run], ceilings, bundle=bundle)
          + paper.quality_findings([run], dataset, ceilings, bundle=bundle))
show(findings.findings_table(cue["trained"] + aligned["trained"] + by_type["trained"] + scores
                             + cue["untrained"] + aligned["untrained"] + by_type["untrained"]))

# %% tags=["nbval-ignore-output"]
Markdown(findings.bullets(cue["trained"] + aligned["trained"] + by_type["trained"] + scores))

# %% [markdown]
# How to read this against the data: the synthetic set is built so that language alone
# cannot resolve the ambiguous words and language + audio can (notebook 01), which is exactly
# what a word-level guided attention could exploit. A CMN that used the audio at those words
# would score above the language-only ceiling; a guided attention that found "the frames of
# this word" would concentrate on the aligned word at the ambiguous steps. The two kinds of
# evidence (scores and attention) should agree, and the table says whether they do on this
# run. The mean test score against the ceilings:

# %% tags=["nbval-ignore-output"]
show(analysis.compare_to_ceilings(run, bundle))

# %% [markdown]
# ### By sentiment (seed 0)
#
# The AttFlat cue shares by the sign of the label, and the mean AttFlat weight of one
# ambiguous word against one other word:

# %% tags=["nbval-ignore-output"]
show(analysis.cue_shares_by_class(shares_trained))

# %% tags=["nbval-ignore-output"]
by_class = analysis.flat_attention_by_class(trained, test)
show(by_class)

# %%
plots_attention.attention_by_class(by_class, "trained CMN (L+A, seed 0): AttFlat weight by sentiment class",
                                   "attention_by_class", figures_dir, data=bundle.short_label)

# %% [markdown]
# ## Summary
#
# * Eq. (4) is eq. (1)-(3) with queries from one modality and keys/values from the other;
#   the hand-written version matches cmnlib's GA and SGA units.
# * In CMN's default wiring the audio stream queries the **final** language output.
# * On the synthetic MOSEI-like data, where the words that need audio are known, the
#   findings table above says, over seeds and with intervals, whether trained quick CMNs
#   (L+A) concentrate their guided attention, self-attention or AttFlat pooling on those
#   words, and whether they score above the language-only ceiling. Whether the paper-sized
#   model, longer training or another MUA wiring (notebook 04) changes this is a question
#   for the training notebooks; this one gives the measuring stick
#   (`analysis.collect_cue_shares`, `analysis.cue_findings`).
