"""Cell sources of notebooks 02-04 (the model, unit by unit); see build_notebooks.py.
Kinds: md, params, code, variable ('variable' cells get the nbval-ignore-output tag: their
numbers come from a trained model and vary across CPUs)."""

NB02 = [
    ("md", r"""
# 02 · Self-Attention (SA)

Section 2.1 of the paper (Figure 4) builds CMN's first unit, **Self-Attention (SA)**:
multi-head self-attention over one modality, then a feed-forward network, each sub-layer
with a residual connection and a LayerNorm. cmnlib implements it in the form of MCAN
(Yu et al. 2019), which the paper cites (`cmnlib/model/attention.py`).

This notebook writes eq. (1)-(3) out with plain tensor operations, checks them against
cmnlib's `MultiHeadAttention` and `SA`, shows what the key padding mask does, and draws the
self-attention maps of a CMN for one utterance.
"""),
    ("params", """
dataset = "mosei"      # "mosei" or "iemocap"
source = "synthetic"   # "synthetic" or a path to real files
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic data seed, and the seed of the untrained model's weights
figures_dir = None     # where the batch runner collects figures
"""),
    ("code", """
import torch

from cmnlib import analysis, plots_attention
from cmnlib.data import load_dataset
"""),
    ("md", r"""
## Eq. (1): scaled dot-product attention

For the features $F \in \mathbb{R}^{T \times d}$ of one modality, queries, keys and values
are linear maps of the same features, $Q = F W^Q$, $K = F W^K$, $V = F W^V$, and

$$\mathrm{Att}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V \qquad (1)$$

Row $q$ of the softmax is a probability distribution over the $T$ keys: how much of each
position's value flows into position $q$.

## Eq. (2)-(3): multi-head attention

$$\mathrm{MHA}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W^O \qquad (2)$$
$$\mathrm{head}_j = \mathrm{Att}(Q W_j^Q, K W_j^K, V W_j^V), \quad W_j \in \mathbb{R}^{d \times d_h},\ d_h = d / h \qquad (3)$$

In practice one $d \times d$ projection holds all the $W_j$ side by side: head $j$ uses
columns $j d_h$ to $(j+1) d_h - 1$. Inside a head the scores are divided by
$\sqrt{d_h}$, the width of that head (the paper writes $d_k = d_a$; MCAN and the original
Transformer scale by the head width, and so does cmnlib). MCAN's projections also have
biases, which the equations leave out.

The function below is eq. (1)-(3) for one utterance, with nothing but matrix products,
slicing and a softmax written as exp / sum:
"""),
    ("code", "analysis.show_code(analysis.mha_by_hand)"),
    ("md", """
### A small example

Three queries and four keys of width $d = 4$, two heads of width $d_h = 2$; the weights
are drawn from `torch.manual_seed(seed)`. (Self-attention is the case where queries and keys
are the same features; eq. (2)-(3) hold for any queries and keys, and notebook 03 uses that.)
"""),
    ("code", """
example = analysis.toy_example(seed=seed, n_a=3, n_b=4, hidden=4, heads=2)
print("queries:", tuple(example.a.shape), "| keys and values:", tuple(example.b.shape),
      "| heads:", example.mha.heads)
out, weights = analysis.mha_by_hand(example.mha, example.a, example.b)
analysis.as_table(weights)
"""),
    ("md", "The output: one row per query, width $d$ (the heads concatenated, then $W^O$)."),
    ("code", "analysis.as_table(out, column='dim')"),
    ("md", """
**Check.** cmnlib's `MultiHeadAttention` is called MCAN-style as `mha(v, k, q, mask)` on
batched tensors. With `return_attention=True` it runs the explicit equations and returns the
weights; without, PyTorch's fused `scaled_dot_product_attention` kernel computes the same
function. Both must agree with the hand-written version:
"""),
    ("code", """
lib_out, lib_weights = example.mha(example.b[None], example.b[None], example.a[None], return_attention=True)
fused_out = example.mha(example.b[None], example.b[None], example.a[None])
print("weights by hand == MultiHeadAttention's:     ", torch.allclose(weights, lib_weights[0], atol=1e-6))
print("output by hand  == explicit path:            ", torch.allclose(out, lib_out[0], atol=1e-6))
print("output by hand  == fused kernel:             ", torch.allclose(out, fused_out[0], atol=1e-6))
"""),
    ("md", r"""
## The SA unit (Figure 4)

Each sub-layer is followed by a residual connection and a LayerNorm (post-norm, as MCAN):

$$X \leftarrow \mathrm{LN}(X + \mathrm{MHA}(X, X, X)), \qquad X \leftarrow \mathrm{LN}(X + \mathrm{FFN}(X)),$$
$$\mathrm{FFN}(X) = \max(0, X W_1 + b_1) W_2 + b_2 .$$

MCAN's LayerNorm is $a \odot (x - \mu) / (\sigma + \epsilon) + b$ with the *unbiased*
standard deviation $\sigma$ (it differs slightly from `torch.nn.LayerNorm`); cmnlib keeps it
so that the published weights reproduce their outputs. Dropout (after the attention
weights and inside the FFN) is off in evaluation. Written out (the same function covers the
guided units of notebook 03):
"""),
    ("code", "analysis.show_code(analysis.unit_by_hand, analysis.layer_norm_by_hand, analysis.ffn_by_hand)"),
    ("code", """
sa_out, sa_weights = analysis.unit_by_hand(example.sa, example.a)
lib_out, lib_weights = example.sa(example.a[None], return_attention=True)
print("SA unit by hand == cmnlib's SA:       ", torch.allclose(sa_out, lib_out[0], atol=1e-5))
print("self-attention weights agree:         ", torch.allclose(sa_weights["self"], lib_weights["self"][0], atol=1e-6))
print("fused kernel gives the same SA output:", torch.allclose(sa_out, example.sa(example.a[None])[0], atol=1e-5))
"""),
    ("md", r"""
## The key padding mask

Utterances have different lengths, so a batch is right-padded: real steps first, padding
after, and `lengths` says where the padding starts (masks are built from lengths, never
from all-zero frames, because a real pause word has an all-zero GloVe vector). The mask is
True at padding *keys*; before the softmax their scores are set to $-10^9$ (as in MCAN),
so $e^{-10^9}$ underflows to exactly 0. Below, keys 2 and 3 of the example are padding:
"""),
    ("code", """
mask = torch.tensor([False, False, True, True])  # True = padding key
analysis.masking_table(example.mha, example.a, example.b, mask)
"""),
    ("md", """
Padding keys get weight exactly 0, each row still sums to 1 over the real keys, and
whatever the padding holds cannot leak into the output (checked by filling it with noise).
Queries *at* padding positions still produce outputs; later stages (AttFlat pooling, the
guided attention of other modalities) mask them out in turn. A row whose keys were all
padding would average them uniformly (every score $-10^9$), as MCAN does; cmnlib's
loader never produces an empty utterance.
"""),
    ("code", "analysis.masking_checks(example.mha, example.a, example.b, mask, seed=seed)"),
    ("md", """
## Self-attention inside CMN: one utterance

CMN encodes each modality with an LSTM, then runs the MUA stack (notebook 04). In the
default wiring (`encoder_decoder`) the language stream passes through two **SA units**, and
the audio stream through two **SGA units**, whose first sub-layer is the same
self-attention over the audio frames (their second is the guided attention of notebook
03).

The model here is a CMN at the *quick* setting (hidden 64, 2 layers, 4 heads) that is
**untrained**: its weights come from `torch.manual_seed(seed)`. Its maps show the
mechanics (shapes, masking, one row per query), not learned behaviour; notebook 03 looks at
a trained model. The utterance is a short test utterance with ambiguous words (on the
synthetic MOSEI-like data: words whose polarity only the aligned audio reveals; dotted
lines).
"""),
    ("code", """
bundle = load_dataset(dataset, source, scale=scale, seed=seed)
print(bundle.source_label)
model = analysis.seeded_cmn(bundle, modalities="LA", profile="quick", seed=seed)
test = bundle["test"]
index = analysis.pick_example(test)
cue = analysis.cue_of(test, index)
print(analysis.describe_utterance(test, index))
maps = analysis.utterance_attention(model, test, index)
{key: value.shape for key, value in maps.items()}
"""),
    ("md", """
`text/self` and `audio/self` are (layers, heads, queries, keys); `audio/guided` is the
audio-to-language attention of notebook 03; `*/flat` are the AttFlat pooling weights.

### Language: the SA units (rows: layers, columns: heads)

Row $q$ of each panel is where word $q$ looks; rows sum to 1.
"""),
    ("code", """
plots_attention.layer_head_grid(maps["text/self"], "Language self-attention, untrained CMN (quick)",
                                "sa_text_layers_heads", figures_dir, cue=cue,
                                query_label="query word", key_label="key word")
"""),
    ("md", """
### Audio: the self-attention sub-layer of the SGA units

The data is word-aligned, so audio step $t$ is the average of the audio frames inside word
$t$.
"""),
    ("code", """
plots_attention.layer_head_grid(maps["audio/self"], "Audio self-attention (SGA units), untrained CMN (quick)",
                                "sa_audio_layers_heads", figures_dir, cue=cue,
                                query_label="query step", key_label="key step")
"""),
    ("md", r"""
### How peaked are these maps?

The normalised entropy of a row, $H / \log T$, is 1 for uniform attention and 0 for
attention on a single key; "max weight × T" is 1 for uniform attention. An untrained
model attends almost uniformly (its scores are small: random projections of LayerNorm'd
LSTM states), which is what these numbers show.
"""),
    ("code", "analysis.attention_entropy(maps['text/self'])"),
    ("code", "analysis.attention_entropy(maps['audio/self'])"),
    ("md", """
## Summary

* `analysis.mha_by_hand` (eq. 1-3 with plain tensor operations) and cmnlib's
  `MultiHeadAttention` agree, on the explicit path and the fused kernel; so do the SA unit
  and its written-out form.
* The key padding mask gives padding keys exactly zero weight; their contents cannot
  reach the output.
* An untrained CMN's self-attention is close to uniform. Notebook 03 turns to guided
  attention and to what a trained model attends to.
"""),
]


NB03 = [
    ("md", r"""
# 03 · Guide-Attention (GA)

Section 2.2 of the paper (Figure 5): the **Guide-Attention** unit lets one modality attend
to another, "so that the network learns the important and complementary information of the
other modality". Queries come from modality $a$, keys and values from modality $b$.

This notebook writes eq. (4) out and checks it against cmnlib's `GA` (and `SGA`, the unit
CMN's audio stream uses), then looks at a **trained** CMN (L+A) on the synthetic
MOSEI-like data, where we know which words matter: the *ambiguous* words, whose polarity
only the aligned audio reveals ("This video is sick"). Does the trained model's attention
go to them?
"""),
    ("params", """
source = "synthetic"   # the cue analysis needs the synthetic MOSEI-like data (it knows the ambiguous words)
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic data seed, and the seed of the untrained model's weights
seeds = 4              # trained (and untrained) CMNs behind every statement about trained attention
figures_dir = None     # where the batch runner collects figures
"""),
    ("code", """
import torch
from IPython.display import Markdown

from cmnlib import analysis, findings, plots_attention, summaries, tables
from cmnlib.data import load_dataset
from cmnlib.train import RunSpec, load_model
"""),
    ("md", r"""
## Eq. (4)

$$\mathrm{GA}_{b \to a} = \mathrm{softmax}\!\left(\frac{F_a W_Q^{a}\, (F_b W_K^{b})^\top}{\sqrt{d_k}}\right) F_b W_V^{b} \qquad (4)$$

This is eq. (1) with $Q = F_a W_Q^a$ from modality $a$ and $K = F_b W_K^b$,
$V = F_b W_V^b$ from modality $b$: row $q$ is a distribution over the $T_b$ steps of $b$,
and the output has one row per step of $a$. With $h$ heads it splits exactly as eq. (2)-(3).
So the function of notebook 02 already implements it, called with $(F_a, F_b)$:
"""),
    ("code", "analysis.show_code(analysis.mha_by_hand)"),
    ("md", "Three steps of modality $a$ attend to four steps of modality $b$ ($d = 4$, two heads):"),
    ("code", """
example = analysis.toy_example(seed=seed, n_a=3, n_b=4, hidden=4, heads=2)
guided, weights = analysis.mha_by_hand(example.ga.mhatt, example.a, example.b)
analysis.as_table(weights, row="step of a", column="step of b")
"""),
    ("md", """
**Check** against the attention sub-layer of cmnlib's `GA` unit (`mhatt(v, k, q)` with
`v = k = F_b`, `q = F_a`), and the whole units written out (`unit_by_hand`, notebook 02):
GA is guided attention then FFN; SGA, MCAN's decoder unit, is self-attention, guided
attention, then FFN, each sub-layer residual + LayerNorm.
"""),
    ("code", """
lib_guided, lib_weights = example.ga.mhatt(example.b[None], example.b[None], example.a[None], return_attention=True)
print("eq. (4) by hand == GA's attention (output): ", torch.allclose(guided, lib_guided[0], atol=1e-6))
print("eq. (4) by hand == GA's attention (weights):", torch.allclose(weights, lib_weights[0], atol=1e-6))
ga_out, _ = analysis.unit_by_hand(example.ga, example.a, example.b)
print("GA unit by hand  == cmnlib's GA:            ", torch.allclose(ga_out, example.ga(example.a[None], example.b[None])[0], atol=1e-5))
sga_out, _ = analysis.unit_by_hand(example.sga, example.a, example.b)
print("SGA unit by hand == cmnlib's SGA:           ", torch.allclose(sga_out, example.sga(example.a[None], example.b[None])[0], atol=1e-5))
"""),
    ("md", """
## Guided attention in CMN

In the default wiring (`encoder_decoder`: MCAN's MCA_ED, the published implementation of
this architecture) the language stream runs through its SA layers first; then every audio
SGA layer takes its **queries from audio** and its **keys and values from the FINAL
language output** (the last SA layer), not from the language layer of the same depth
(notebook 04 draws the wirings). So the maps below are audio → language: one row per audio
step, one column per word of the fully encoded language stream.

### The data and the trained models

The model is CMN (L+A) at the quick setting, trained with the quick profile, once per seed
(`seeds` of them, in parallel worker processes). Training is chaotic: the same seed on
another CPU, which rounds some sums differently in the last bit, ends with other weights.
So the maps of one model below *illustrate*; every statement about what trained models
do is made over the seeds, with an interval (`cmnlib.findings`). The first run trains the
models (a minute or two on two CPU cores) and caches them under `data/runs/`; the
training notebook reuses seeds 0 and 1.
"""),
    ("code", """
bundle = load_dataset("mosei", source, scale=scale, seed=seed)
print(bundle.source_label)
spec = RunSpec(model="cmn", dataset="mosei", modalities="LA", profile="quick")
summary = tables.train_specs([spec], bundle, seeds, "quick", progress=False)[0]
trained_seeds = [load_model(summary["folder"], s, bundle) for s in summary["seeds"]]
untrained_seeds = [analysis.seeded_cmn(bundle, modalities="LA", profile="quick", seed=s) for s in summary["seeds"]]
trained, untrained = trained_seeds[0], untrained_seeds[0]
print(summary["label"], "| wiring:", trained.config.mua, "| hidden", trained.config.hidden,
      "| layers", trained.config.layers, "| heads", trained.config.heads, "| seeds", len(trained_seeds))
"""),
    ("md", """
Their test scores, one row per seed (these depend on the CPU: see `notebooks/README.md`),
and the best any model can do on this data (the Bayes ceilings of notebook 01): the
ambiguous words make L+A far better than L.
"""),
    ("variable", "analysis.run_metrics(summary)"),
    ("code", "summaries.ceiling_table(bundle)"),
    ("md", """
### One utterance

A short test utterance with ambiguous words (dotted). Rows: audio steps (queries), columns:
words of the final language output (keys). The data is word-aligned, so the diagonal is
"the word this audio step belongs to".
"""),
    ("code", """
test = bundle["test"]
index = analysis.pick_example(test)
cue = analysis.cue_of(test, index)
print(analysis.describe_utterance(test, index))
maps_trained = analysis.utterance_attention(trained, test, index)
maps_untrained = analysis.utterance_attention(untrained, test, index)
plots_attention.layer_head_grid(maps_trained["audio/guided"], "Audio → language guided attention, trained CMN (L+A, quick, seed 0)",
                                "ga_audio_to_text_trained", figures_dir, cue=cue,
                                query_label="audio step", key_label="word (final language)")
"""),
    ("md", "The same utterance through the untrained model (weights from `torch.manual_seed(seed)`):"),
    ("code", """
plots_attention.layer_head_grid(maps_untrained["audio/guided"], "Audio → language guided attention, untrained CMN (quick)",
                                "ga_audio_to_text_untrained", figures_dir, cue=cue,
                                query_label="audio step", key_label="word (final language)")
"""),
    ("md", """
After the MUA stack, each modality is pooled by **AttFlat** (a softmax over its steps, then
a weighted sum); the trained model's pooling weights for this utterance:
"""),
    ("code", """
plots_attention.flat_attention(maps_trained, cue, "AttFlat pooling weights, trained CMN (L+A, quick, seed 0)",
                               "attflat_trained", figures_dir)
"""),
    ("md", r"""
## How much attention falls on the ambiguous words?

For one utterance with $n$ words, of which the set $C$ ($n_C$ words) is ambiguous, and one
attention map (a layer and head) with weights $\alpha_{qk}$ over real queries $q$ and keys
$k$, the **cue share** is the attention mass on $C$, averaged over the queries:

$$s = \frac{1}{n} \sum_{q} \sum_{k \in C} \alpha_{qk}, \qquad s_{\text{uniform}} = \frac{n_C}{n}.$$

Uniform attention would give $n_C / n$; the ratio $s / s_{\text{uniform}}$ says how much
more than uniform the map concentrates on the ambiguous words (1: no preference). For
AttFlat, the "queries" are its single glimpse. Both are averaged over the test utterances
with at least one ambiguous word.
"""),
    ("code", "analysis.show_code(analysis.cue_share, analysis.uniform_share)"),
    ("md", r"""
**Check** on a hand-made map: one head, two queries, four keys, keys 1 and 3 ambiguous.
Query 0 puts $0.2 + 0.4 = 0.6$ on them, query 1 (uniform) $0.5$, so $s = 0.55$, and
$s_{\text{uniform}} = 2/4$:
"""),
    ("code", """
w = torch.tensor([[[[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]]])
key_cue = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
print("cue share:", analysis.cue_share(w, key_cue), "| uniform share:", analysis.uniform_share(key_cue, torch.tensor([4])))
"""),
    ("md", """
### The untrained model

Each map of the untrained model, averaged over the test split: shares close to uniform
(ratio close to 1), as expected of random weights. "above uniform %" is the share of
utterances whose cue share exceeds their uniform share.
"""),
    ("code", """
shares_untrained = analysis.collect_cue_shares(untrained, test)
table_untrained = analysis.summarise_cue_shares(shares_untrained)
table_untrained if table_untrained is not None else print("no cue mask in this data (real data): nothing to measure")
"""),
    ("md", "### One trained model (seed 0)\n\nIts maps, per layer and head, and side by side with the untrained model (ratio = share / uniform share):"),
    ("code", "shares_trained = analysis.collect_cue_shares(trained, test)"),
    ("variable", "analysis.summarise_cue_shares(shares_trained)"),
    ("variable", """
comparison = analysis.compare_cue_shares({"untrained": analysis.summarise_cue_shares(shares_untrained, decimals=None),
                                          "trained": analysis.summarise_cue_shares(shares_trained, decimals=None)})
comparison
"""),
    ("code", """
plots_attention.cue_share_ratios(comparison, "Attention on ambiguous words relative to uniform attention (test split, seed 0)",
                                 "cue_share_ratio", figures_dir)
"""),
    ("md", r"""
### Attention on the aligned word

The data is word-aligned, so a guided attention that resolves ambiguous words could simply
let audio step $t$ look at word $t$ ("is the word I belong to ambiguous?"). The weight on
the aligned word, times the number of words $n$ (1 = uniform), over all audio steps and over
the steps of ambiguous words; first the untrained model, then the trained one (seed 0):
"""),
    ("code", "analysis.aligned_attention(untrained, test)"),
    ("variable", "analysis.aligned_attention(trained, test)"),
    ("md", """
### What trained models do, over seeds

One model's shares change when it is retrained on another CPU; the distribution over seeds
does not. For each kind of attention map, the statistic per seed is the **largest** ratio
share / uniform over its layers and heads (different seeds specialise different heads).
The claim tested is that it exceeds 1.25 (`analysis.CONCENTRATION`): at least a quarter more attention on the
ambiguous words than uniform attention would give. The same statistic for untrained models
with the same seeds shows how far random weights go. Each claim gets a 95% Student-t
interval over the seeds and a verdict: *supported* (the whole interval above the
threshold), *not supported* (the whole interval below it) or *inconclusive* (the interval
contains it); the margin is the distance between interval and threshold (negative: the
overlap). The sentences after the table are generated from it.
"""),
    ("variable", """
groups = {"trained": trained_seeds, "untrained": untrained_seeds}
cue = analysis.cue_findings(groups, test)
aligned = analysis.aligned_findings(groups, test)
scores = analysis.ceiling_findings(summary, bundle)
findings.show(cue["trained"] + aligned["trained"] + scores + cue["untrained"] + aligned["untrained"])
"""),
    ("variable", """
Markdown(findings.bullets(cue["trained"] + aligned["trained"] + scores))
"""),
    ("md", """
How to read this against the data: the synthetic set is built so that language alone
cannot resolve the ambiguous words and language + audio can (notebook 01), which is exactly
what a word-level guided attention could exploit. A CMN that used the audio at those words
would score above the language-only ceiling; a guided attention that found "the frames of
this word" would concentrate on the aligned word at the ambiguous steps. The two kinds of
evidence (scores and attention) should agree, and the table says whether they do on this
run. The mean test score against the ceilings:
"""),
    ("variable", "analysis.compare_to_ceilings(summary, bundle)"),
    ("md", """
### By sentiment (seed 0)

The AttFlat cue shares by the sign of the label, and the mean AttFlat weight of one
ambiguous word against one other word:
"""),
    ("variable", "analysis.cue_shares_by_class(shares_trained)"),
    ("variable", """
by_class = analysis.flat_attention_by_class(trained, test)
by_class
"""),
    ("code", """
plots_attention.attention_by_class(by_class, "trained CMN (L+A, seed 0): AttFlat weight by sentiment class",
                                   "attention_by_class", figures_dir)
"""),
    ("md", """
## Summary

* Eq. (4) is eq. (1)-(3) with queries from one modality and keys/values from the other;
  the hand-written version matches cmnlib's GA and SGA units.
* In CMN's default wiring the audio stream queries the **final** language output.
* On the synthetic MOSEI-like data, where the words that need audio are known, the
  findings table above says, over seeds and with intervals, whether trained quick CMNs
  (L+A) concentrate their guided attention, self-attention or AttFlat pooling on those
  words, and whether they score above the language-only ceiling. Whether the paper-sized
  model, longer training or another MUA wiring (notebook 04) changes this is a question
  for the training notebooks; this one gives the measuring stick
  (`analysis.collect_cue_shares`, `analysis.cue_findings`).
"""),
]


NB04 = [
    ("md", r"""
# 04 · MUA and the whole of CMN

Section 2.3 of the paper: "each MUA combines the two basic units (SA and GA) modularly".
That is all the text says; Figure 6, which drew it, is missing. How SA and GA are wired per
modality, how many layers, and what comes after the last layer are choices, and cmnlib
makes them explicit (`CMNConfig`, `cmnlib/model/cmn.py`). This notebook draws the three
wirings cmnlib offers, traces the shapes through the whole model, and compares its size
and cost with MulT's, which the paper contrasts itself with.
"""),
    ("params", """
dataset = "mosei"      # "mosei" or "iemocap"
source = "synthetic"   # "synthetic" or a path to real files
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic data seed, and the seed of the untrained models' weights
figures_dir = None     # where the batch runner collects figures
"""),
    ("code", """
from cmnlib import analysis, plots_attention
from cmnlib.data import load_dataset
from cmnlib.model import count_parameters
"""),
    ("md", r"""
## Three wirings of the MUA stack

With $X^{(l)}$ the language stream after layer $l$ ($X^{(0)}$: its LSTM output),
$Y^{(l)}$ the audio stream, and $L$ layers (`mua=` in `CMNConfig`):

| wiring | language | audio |
|---|---|---|
| `encoder_decoder` (default) | $X^{(l)} = \mathrm{SA}(X^{(l-1)})$ | $Y^{(l)} = \mathrm{SGA}(Y^{(l-1)}, X^{(L)})$ |
| `stacked` | $X^{(l)} = \mathrm{SA}(X^{(l-1)})$ | $Y^{(l)} = \mathrm{SGA}(Y^{(l-1)}, X^{(l)})$ |
| `symmetric` | $X^{(l)} = \mathrm{SGA}(X^{(l-1)}, Y^{(l-1)})$ | $Y^{(l)} = \mathrm{SGA}(Y^{(l-1)}, X^{(l-1)})$ |

`encoder_decoder` is MCAN's MCA_ED, which the published implementation of this
architecture (Delbrouck et al. 2020) uses: the language encoder runs to the end, and its
**final** output guides every audio layer. `stacked` is MCAN's other variant (layer $l$
guided by layer $l$). `symmetric` is co-attention both ways: each modality is guided by the
other's previous layer.

The tables and diagrams below are not drawn from this description: `analysis.mua_guidance`
builds a tiny CMN with each wiring, runs it with forward hooks, and matches each unit's
inputs, by value, to the outputs of the LSTMs and units that produced them.
"""),
    ("code", "analysis.show_code(analysis.mua_guidance)"),
    ("md", "### `encoder_decoder` (the default)"),
    ("code", "analysis.mua_guidance('encoder_decoder')"),
    ("code", """
plots_attention.mua_wiring(analysis.mua_guidance("encoder_decoder"),
                           "encoder_decoder: the final language output guides every audio layer",
                           "mua_encoder_decoder", figures_dir)
"""),
    ("md", "### `stacked`"),
    ("code", "analysis.mua_guidance('stacked')"),
    ("code", """
plots_attention.mua_wiring(analysis.mua_guidance("stacked"), "stacked: language layer l guides audio layer l",
                           "mua_stacked", figures_dir)
"""),
    ("md", "### `symmetric`"),
    ("code", "analysis.mua_guidance('symmetric')"),
    ("code", """
plots_attention.mua_wiring(analysis.mua_guidance("symmetric"),
                           "symmetric: each modality guided by the other's previous layer",
                           "mua_symmetric", figures_dir)
"""),
    ("md", """
With vision (L+A+V), `encoder_decoder` and `stacked` add a third column of SGA units guided
by language, and `symmetric` guides each modality by the other two, concatenated along
time:
"""),
    ("code", "analysis.mua_guidance('symmetric', modalities='LAV')"),
    ("md", """
## A shape trace through CMN

Two test utterances as one right-padded batch (cut to the longer one, as the loader does),
through an untrained CMN (L+A) with weights from `torch.manual_seed(seed)`: the input,
(1) one LSTM per modality, (2) the MUA units (an SGA's second input is its guide), (3)
AttFlat per modality (a weighted sum over time, then a linear map to 2 × hidden), (4)
fusion: the AttFlat outputs summed, then LayerNorm (and dropout, in training), (5) the
linear head (one score for MOSEI, four logits for IEMOCAP). Each row is recorded by a
forward hook while the model runs.
"""),
    ("code", """
bundle = load_dataset(dataset, source, scale=scale, seed=seed)
print(bundle.source_label)
test = bundle["test"]
features, lengths = analysis.example_batch(test, (0, 1))
print("true lengths:", {m: l.tolist() for m, l in lengths.items()})
"""),
    ("md", "### Quick setting (hidden 64, 2 layers, 4 heads, FFN 128)"),
    ("code", """
quick = analysis.seeded_cmn(bundle, modalities="LA", profile="quick", seed=seed)
trace = analysis.shape_trace(quick, features, lengths)
print("the rows hold all the parameters:", int(trace["parameters"].sum()) == count_parameters(quick))
trace
"""),
    ("md", "### Paper setting (hidden 512, 2 layers, 4 heads, FFN 1024; section 4.1 and the published implementation)"),
    ("code", """
paper = analysis.seeded_cmn(bundle, modalities="LA", profile="paper", seed=seed)
trace = analysis.shape_trace(paper, features, lengths)
print("the rows hold all the parameters:", int(trace["parameters"].sum()) == count_parameters(paper))
trace
"""),
    ("md", """
## Size and cost: CMN against MulT

The paper says CMN needs "only two transformer modules", against MulT's six crossmodal
transformers. `cmnlib.model.transformer_modules` counts stacks of layers: CMN has one per
modality (language SA stack, audio SGA stack); MulT (L+A+V) has six crossmodal
transformers **plus three** self-attention memory transformers, nine stacks. The table
also counts the layers inside those stacks, trainable parameters, and forward FLOPs for
one utterance at the data set's full length (`cmnlib.model.count_flops`: matrix products,
attention and the LSTM's products; element-wise operations are not counted). Both models
use their own settings: CMN's paper profile is hidden 512; MulT's is its official d = 30,
5 crossmodal layers, 5 heads.
"""),
    ("code", """
print("sequence lengths:", bundle.seq_lens, "| feature sizes:", bundle.feature_dims)
complexity = analysis.complexity_table(bundle.feature_dims, bundle.seq_lens)
complexity
"""),
    ("code", """
print(analysis.complexity_claims(complexity, "paper"))
print(analysis.complexity_claims(complexity, "quick"))
"""),
    ("md", """
**The claim, checked.** Counted as the paper counts, CMN (L+A) has 2 transformer modules
and MulT (L+A+V) 9 (the paper's "6" leaves out MulT's three memory transformers), and
CMN's stacks are also much shallower (4 layers against 45 at the paper settings). But
fewer modules is not a smaller or cheaper model. At the paper's hidden size of 512, CMN
(L+A) has about fourteen times MulT's parameters and, at MOSEI's 50 steps, about twelve
times its FLOPs per utterance (printed above), because MulT works at width 30 and CMN at
512, and the cost of every projection grows with the square of the width. At the quick
setting (hidden 64) CMN (L+A) is the smaller of the two, about half of MulT (L+A+V) in
both parameters and FLOPs. The paper reports neither parameters nor FLOPs, so "2 instead
of 6" describes the architecture's layout, not its cost.
"""),
]
