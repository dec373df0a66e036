"""Cell sources of the notebooks (see build_notebooks.py). Kinds: md, params, code, variable."""

NB01 = [
    ("md", """
# 01 · The data

The paper evaluates CMN on **IEMOCAP** (four emotions) and **CMU-MOSEI** (sentiment in
[-3, 3]) with the standard word-aligned features: GloVe text (300-d), COVAREP audio (74-d)
and FACET vision (35-d), 50 steps for MOSEI and 20 for IEMOCAP.

This notebook shows where the data comes from, what it looks like, and (for the built-in
synthetic stand-in) the best score any model can reach on it. It reads the same for real
files: set `source` to a MulT pickle or a folder of CMU-MultimodalSDK `.csd` files
(see `data/README.md`).
"""),
    ("params", """
dataset = "mosei"      # "mosei" or "iemocap" ("mosi" for real files)
source = "synthetic"   # "synthetic" or a path to real files
scale = "quick"        # synthetic only: "quick" or "paper"
seed = 0               # synthetic only
fmt = None             # synthetic only: "csd" or "pkl" (default: mosei from .csd, iemocap from .pkl)
figures_dir = None     # where the batch runner collects figures
"""),
    ("code", """
from cmnlib import plots, summaries
from cmnlib.data import load_dataset

bundle = load_dataset(dataset, source, scale=scale, seed=seed, fmt=fmt)
print(bundle.source_label)
print("format:", bundle.meta["format"], "| word-aligned:", bundle.meta.get("aligned"))
"""),
    ("md", """
## Where it came from

The synthetic stand-in is **written to disk in the real formats** (MOSEI-like: SDK `.csd`
files *and* a MulT pickle; IEMOCAP-like: a MulT pickle) and read back through the same
loaders as real data, so every default run exercises the real-data path. For `.csd`
sources the loader performs the SDK's word-level alignment: every audio and visual frame
is averaged inside its word, segments come from the labels sequence, sequences keep their
last 50 words, and the standard folds decide the split.

## Splits
"""),
    ("code", "summaries.split_sizes(bundle)"),
    ("md", """
## Labels

For MOSEI the table gives the share of non-negative labels: on the **real** CMU-MOSEI test
set it is 71.0%, so a constant "non-negative" predictor already scores Acc2 71.0 in that
convention (the paper's MOSEI Acc2 of 42.5 lies below it). The grey bars are the real test
set's label histogram, shipped with cmnlib as a summary of the public labels.
"""),
    ("code", "summaries.label_summary(bundle)"),
    ("code", """
reference = summaries.real_mosei_reference() if dataset == "mosei" else None
plots.label_distribution(bundle, reference, save_dir=figures_dir)
"""),
    ("md", "## Sequence lengths\n\nTrue lengths (padding masks are built from them, never from all-zero frames)."),
    ("code", "plots.sequence_lengths(bundle, save_dir=figures_dir)"),
    ("md", """
## Features

Statistics over the valid steps of the training split. All-zero *valid* steps are real
content (pause tokens have zero GloVe vectors), which is why masks come from lengths.
"""),
    ("code", "summaries.feature_statistics(bundle)"),
    ("md", """
### Non-finite values

Real COVAREP audio contains `-inf` (and NaN/inf occur in the wild). The loaders replace
every non-finite value by 0 and count them here rather than hiding them.
"""),
    ("code", "summaries.nonfinite_table(bundle)"),
    ("md", """
## The ceiling: the best any model can do

The synthetic process is known, so the Bayes-optimal classifier is known too: for every
utterance the loader's files carry the exact posterior, and the table gives its expected
score for each modality subset (Monte Carlo over fresh draws, with standard errors). Words
carry sentiment, but some words are ambiguous and only the audio frames aligned with them
reveal their polarity ("This video is sick"), so **L+A is far above L or A alone**. Later
tables put these ceilings beside every trained model. For real data this cell prints
nothing: real data has no known ceiling.
"""),
    ("code", """
ceilings = summaries.ceiling_table(bundle)
ceilings if ceilings is not None else print("real data: no known Bayes ceiling")
"""),
    ("md", "## An example utterance (test split)"),
    ("code", """
example = int(bundle["test"].extras["cue_mask"].sum(axis=1).argmax()) if "cue_mask" in bundle["test"].extras else 0
plots.example_utterance(bundle, example, save_dir=figures_dir)
"""),
    ("md", """
## Using real data

Put the files somewhere (see `data/README.md`), check them with
`python -m cmnlib inspect PATH`, and run any notebook with `source=PATH`, e.g.
`papermill 01_data.ipynb out.ipynb -p source /data/mosei_senti_data.pkl`. Every table in
this project carries the data source label printed at the top.
"""),
]

PARAMS_TRAINING = """
datasets = ["mosei", "iemocap"]
source = "synthetic"   # or a folder with the real files (see data/README.md)
scale = "quick"        # synthetic data size: "quick" or "paper"
profile = "quick"      # "quick" (small models, minutes on a CPU) or "paper" (the paper's settings)
seeds = None           # None: 2 (quick) or 10 (paper, "averaged predictions of up to 10 models")
figures_dir = None
tables_dir = None
"""

NB05 = [
    ("md", """
# 05 · Training

Every model of Tables 1-2 is trained here, with several seeds, on the same data interface:
CMN (L+A, as in the paper; L+A+V as an ablation), MulT, early-fusion LSTM, one LSTM per
modality, and a constant (majority / mean) predictor.

* **Optimiser**: Adam, learning rate 1e-4, batch 32 in the `paper` profile (section 4.1);
  the `quick` profile uses small models, learning rate 1e-3 and batch 64 so that the whole
  sequence runs on two CPU cores in minutes.
* **Model selection and early stopping use the validation split only.** The published
  implementation of this architecture validates IEMOCAP on its *test* split, which lets
  the test set choose the model; this companion never does.
* **Checkpoints** are written atomically after every epoch (weights, optimiser, RNG state,
  history), so a killed run resumes exactly where it stopped; results are cached by a hash
  of (configuration, data), so the next notebook reuses them.
"""),
    ("params", PARAMS_TRAINING),
    ("code", """
from cmnlib import plots, reporting, tables
from cmnlib.data import load_dataset
from cmnlib.train import TRAIN_PROFILES

seeds = seeds or (2 if profile == "quick" else 10)
bundles = {d: load_dataset(d, source, scale=scale) for d in datasets}
for d, b in bundles.items():
    print(f"{d}: {b.source_label}")
print(f"profile {profile}: {TRAIN_PROFILES[profile]}")
print(f"seeds per model: {seeds}")
"""),
    ("md", "## Train (or reuse) every model\n\nThe progress bar counts (model, seed) runs as the worker processes finish them (in one process, as in the paper profile, one bar per run counts its epochs)."),
    ("variable", """
results = {d: tables.train_table_models(bundles[d], profile, seeds) for d in datasets}
"""),
    ("code", """
for d in datasets:
    print(d, "-", reporting.completeness(results[d], seeds))
"""),
    ("md", """
## Test scores per seed

The selected epoch is the one with the lowest validation loss. Numbers from trained
models differ from one CPU to another: a sum rounded differently in the last bit grows
through training into other weights, and a single run's score can move by a few points.
So these cells are excluded from the notebook's output check (`notebooks/README.md`),
statements about trained models are made over seeds with intervals (notebooks 03, 06 and
07), and the tests check training behaviour directly.
"""),
    ("variable", """
for d in datasets:
    display(reporting.run_table(results[d], tables.HEADLINE[d][0]).style.set_caption(f"{d}: {bundles[d].source_label}"))
"""),
    ("md", "## Learning curves of CMN (L+A)\n\nDots mark the selected epoch of each seed."),
    ("code", """
for d in datasets:
    display(plots.training_curves(results[d][0], save_dir=figures_dir))
"""),
    ("md", "## What each run wrote\n\n`checkpoint.pt` (resumable state), `best.pt` (selected weights), `outputs.pt` (valid/test outputs for ensembles), `result.json`, and per model `ensemble.json`."),
    ("variable", """
reporting.checkpoint_listing(results[datasets[0]][:1])
"""),
]

NB06 = [
    ("md", """
# 06 · Tables 1 and 2

The paper's reported rows beside rows reproduced **on the data actually used** (stated
under each table). On the synthetic stand-in, the Bayes ceilings show the best any model
can do; these numbers are not a reproduction of the paper on the real benchmarks.

Table 1 reports IEMOCAP precision, recall and *unweighted* (macro) F1 over the four
emotions; Table 2 reports MOSEI binary accuracy and F1, whose convention the paper does not
state: both are shown (non-negative vs negative over all samples, and positive vs
negative excluding zero labels, MulT's convention), with weighted F1.
"""),
    ("params", PARAMS_TRAINING),
    ("code", """
from IPython.display import Markdown

from cmnlib import findings, tables
from cmnlib.data import load_dataset
from cmnlib.data.sources import bayes_ceilings
from cmnlib.model import build_model, count_parameters, transformer_modules

seeds = seeds or (2 if profile == "quick" else 10)
bundles = {d: load_dataset(d, source, scale=scale) for d in datasets}
"""),
    ("variable", """
results = {d: tables.train_table_models(bundles[d], profile, seeds, progress=False) for d in datasets}
frames = {d: tables.results_frame(d, results[d], bayes_ceilings(bundles[d])) for d in datasets}
shown = {d: tables.display_table(frames[d], bundles[d].source_label) for d in datasets}
names = {"iemocap": "table1_iemocap", "mosei": "table2_mosei"}
for d in datasets:
    tables.save_table(shown[d], names[d], tables_dir, numeric=frames[d])
"""),
    ("md", "## Table 1 · IEMOCAP (four emotions)"),
    ("variable", """
if "iemocap" in shown:
    print("data:", shown["iemocap"].attrs["data"])
    display(shown["iemocap"])
"""),
    ("md", """
## Table 2 · CMU-MOSEI (binary sentiment)

On the **real** MOSEI test set 71.0% of the labels are non-negative: a constant predictor
scores Acc2 71.0, and the paper's CMN row (42.5) lies 28.5 points below it.
"""),
    ("variable", """
if "mosei" in shown:
    print("data:", shown["mosei"].attrs["data"])
    display(shown["mosei"])
"""),
    ("md", """
## The synthetic benchmark: how close does CMN get to the ceiling?

Targets: CMN (L+A) within 3 points of the L+A Bayes ceiling (MOSEI-like Acc2, IEMOCAP-like
macro-F1), and above the best unimodal baseline. Each is judged over the seeds, not on
one run: the mean of the per-seed test scores with a 95% Student-t interval (Welch's
interval for a difference of two models), and a verdict: *supported* (the whole interval
on the claimed side of the threshold), *not supported* (the whole interval on the other
side) or *inconclusive* (the interval contains the threshold). With the quick profile's 2
seeds an interval is wide (t = 12.7 for one degree of freedom), so only large effects are
decided; the paper profile's 10 seeds decide more. The sentences after the table are
generated from it.
"""),
    ("variable", """
quality = {d: tables.quality_findings(results[d], d, bayes_ceilings(bundles[d])) for d in datasets}
findings.show(quality)
"""),
    ("variable", """
Markdown(findings.bullets(quality))
"""),
    ("md", """
Why a target can be missed on the MOSEI-like set: its audio cue lives in the pairing of
each ambiguous word with the audio frames aligned to it, which CMN's content-based guided
attention has no positions to find. Notebook 03 measures, over seeds, whether the guided
attention concentrates on those words; notebook 07 whether each fusion model scores above
the text-only ceiling at all. The data were not changed to flatter any model.
"""),
    ("md", """
## Claims audit

Each claim of the paper's results section, with a verdict and the evidence for it.
"""),
    ("code", """
paper_cmn = build_model("cmn", "4class", {"text": 300, "audio": 74, "vision": 35}, "LA", "paper")
paper_mult = build_model("mult", "4class", {"text": 300, "audio": 74, "vision": 35}, "LAV", "paper")
counts = {"cmn_modules": transformer_modules(paper_cmn), "mult_crossmodal": 6, "mult_memory": 3,
          "cmn_params": count_parameters(paper_cmn), "mult_params": count_parameters(paper_mult)}
"""),
    ("variable", """
audit = tables.claims_audit({d: b.source_label for d, b in bundles.items()}, counts,
                            {d: tables.unimodal_finding(results[d], d) for d in datasets})
tables.save_table(audit, "claims_audit", tables_dir, data="; ".join(b.source_label for b in bundles.values()))
audit.style.set_properties(**{"text-align": "left"})
"""),
]

NB07 = [
    ("md", """
# 07 · Beyond the paper

Three questions the paper does not ask, answered on the data actually used (the source is
printed with every table; on the synthetic stand-in none of this is a statement about the
real benchmarks):

1. **How far is each model from the best possible?** Synthetic data has a known Bayes
   ceiling for every modality subset, so each model can be judged against the ceiling of
   *its own* inputs, not only against other models.
2. **Which "Acc2" is the paper's 42.5?** The literature uses two binary conventions; what
   does a constant predictor score on the real MOSEI test set under each?
3. **Does the MUA wiring matter?** The paper says MUA "combines the two units modularly"
   without saying how; the published implementation uses MCAN's encoder-decoder. Here
   the three wirings of `cmnlib` are trained side by side.
"""),
    ("params", PARAMS_TRAINING + 'wiring_dataset = "iemocap"   # the data set for the wiring comparison\n'),
    ("code", """
from IPython.display import Markdown

from cmnlib import findings, plots, tables
from cmnlib.data import load_dataset
from cmnlib.data.sources import bayes_ceilings

seeds = seeds or (2 if profile == "quick" else 10)
bundles = {d: load_dataset(d, source, scale=scale) for d in sorted(set(datasets) | {wiring_dataset})}
for d, b in bundles.items():
    print(f"{d}: {b.source_label}")
"""),
    ("md", """
## 1 · Distance to the ceiling of each model's own modalities

`captured %` is the share of the possible gain over the constant predictor that a model
realises: 0% = no better than a constant, 100% = Bayes-optimal for its inputs. The table
models are reused from notebook 05's cache (trained here if absent).
"""),
    ("code", """
results = {d: tables.train_table_models(bundles[d], profile, seeds, progress=False) for d in datasets}
frames = {d: tables.results_frame(d, results[d], bayes_ceilings(bundles[d])) for d in datasets}
gaps = {d: tables.ceiling_gaps(frames[d], d) for d in datasets}
"""),
    ("variable", """
for d in datasets:
    if gaps[d].empty:
        print(f"{d}: real data, no known ceiling")
        continue
    print(f"{d} ({gaps[d].attrs['metric']}, ensembles): {bundles[d].source_label}")
    display(gaps[d])
    tables.save_table(gaps[d], f"ceiling_gaps_{d}", tables_dir, data=bundles[d].source_label)
    display(plots.ceiling_gaps(gaps[d], f"{d}: each model vs the ceiling of its modalities",
                               f"ceiling_gaps_{d}", save_dir=figures_dir))
"""),
    ("md", """
Does each fusion model use more than the text? Over the seeds (mean and 95% interval, as in
notebook 06), is its test score above the language-only Bayes ceiling? The sentences after
the table are generated from it.
"""),
    ("variable", """
beyond_text = {d: tables.text_ceiling_findings(results[d], d, bayes_ceilings(bundles[d])) for d in datasets}
findings.show(beyond_text)
"""),
    ("variable", """
Markdown(findings.bullets(beyond_text))
"""),
    ("md", """
How to read it:

* **IEMOCAP-like**: the emotion is an utterance-level combination of valence (text) and
  arousal (audio), which attention pooling over each modality can capture directly.
* **MOSEI-like**: the audio helps only for the ambiguous words, and only through the frames
  aligned with each of them: a model must pair word *i* with audio frame *i*. CMN's guide
  attention is content-based and has no positions to match on (notebook 03 measures, over
  seeds, where it attends); an early-fusion LSTM sees the pairs step by step. A fusion
  model that stays at or below the text-only ceiling has not learned the pairing within
  the profile's epochs. Whether more epochs change that can be tried with
  `python -m cmnlib train --dataset mosei --model ef_lstm --modalities LA --epochs 30 --seeds 2`
  (and `--model cmn`); the README records what one machine measured.
* A macro-F1 can exceed its "ceiling": the Bayes rule maximises accuracy, not macro-F1,
  so a rule that favours rare classes can score a higher macro-F1; the accuracy ceilings
  are never exceeded.
"""),
    ("md", """
## 2 · Which Acc2? Constant predictors on the real CMU-MOSEI test set

Computed from the real label rates shipped with `cmnlib` (SDK standard folds, 4,662 test
segments): Acc2 over all samples (non-negative vs negative) and Acc2 over non-zero samples
(positive vs negative, MulT's convention).
"""),
    ("code", """
constants = tables.constant_predictors_real_mosei()
tables.save_table(constants.reset_index(), "mosei_constant_predictors", tables_dir,
                  data="real CMU-MOSEI test label rates (shipped with cmnlib)")
constants
"""),
    ("md", """
Under either convention, always answering the majority class scores above the paper's
42.5 (71.0 and 62.9). A binary classifier scoring 42.5 is worse than a constant, i.e. its
predictions are anti-correlated with the labels or its threshold is misplaced. No choice
of convention explains the number; the paper does not analyse it.
"""),
    ("md", """
## 3 · The MUA wiring

* `encoder_decoder` (default, MCAN and the published implementation): language through all
  SA layers first; every audio layer is guided by the *final* language output.
* `stacked`: audio layer *i* is guided by language layer *i*.
* `symmetric`: both modalities guide each other in every layer.

Same data, profile and seeds for each; test scores of the selected (validation) epochs.
"""),
    ("variable", """
wiring = tables.wiring_comparison(bundles[wiring_dataset], profile, seeds, progress=False)
tables.save_table(wiring, f"mua_wiring_{wiring_dataset}", tables_dir, data=bundles[wiring_dataset].source_label)
print(bundles[wiring_dataset].source_label)
wiring.style.hide(axis="index")
"""),
    ("md", """
Does another wiring score above the default? Over the seeds, with Welch's interval for the
difference of means; with the quick profile's 2 seeds only large differences are decided,
and the paper profile with 10 seeds (`profile="paper"`) is the setting for a firmer
comparison. The sentences are generated from the table.
"""),
    ("variable", """
display(findings.show(wiring.attrs["findings"]))
Markdown(findings.bullets(wiring.attrs["findings"]))
"""),
]

NOTEBOOKS = {
    "01_data": NB01,
    "05_training": NB05,
    "06_tables": NB06,
    "07_beyond_the_paper": NB07,
}
try:  # notebooks 02-04 (model walkthroughs) live in their own source file
    from notebook_sources_model import NB02, NB03, NB04
    NOTEBOOKS.update({"02_self_attention": NB02, "03_guide_attention": NB03, "04_mua_and_cmn": NB04})
    NOTEBOOKS = dict(sorted(NOTEBOOKS.items()))
except ImportError:
    pass
