"""Beyond the paper (notebook 07): each model against the Bayes ceiling of its own
modalities, fusion models trained longer, the constant predictors of the real MOSEI test
set under both Acc2 conventions, and the MUA wirings side by side."""
from __future__ import annotations

import pandas as pd

from ..data.split import DataBundle
from ..findings import Question
from ..metrics import headline
from ..model.cmn import CMNConfig, MUA_WIRINGS
from ..results import RunResult
from ..runs import feasible, train_specs
from ..spec import RunSpec
from ..summaries import real_mosei_reference
from ..tables import PAPER_TABLE2
from ..data import bayes
from .common import compare, score_columns

# (model, modalities) allowed more epochs: does either get past the text-only ceiling?
LONGER_MODELS = (("ef_lstm", "LA"), ("cmn", "LA"))
WIRING_ABOVE_DEFAULT = Question("wiring_above_default", "{wiring} scores above {default}")


CEILING = "ceiling"                        # the reference column: the expected Bayes ceiling
SAME_SPLIT = "best rule, this test split"  # or the best rule on the runs' own test utterances


def ceiling_gaps(results: list[RunResult], dataset: str, ceilings: dict | None,
                 bundle: DataBundle | None = None) -> pd.DataFrame:
    """Each model's ensemble (headline metric) beside the best any model can do from **its
    own** modality subset.

    The reference: with ``bundle`` (the data the runs were scored on) whose test split
    carries the posteriors, the best rule of that subset on the same test utterances
    (column ``best rule, this test split``: the Bayes rule for an accuracy, its F1-optimal
    form for an F1, :func:`cmnlib.data.bayes.bayes_rule`); else the expected Bayes
    ceiling (column ``ceiling``; an F1's is the accuracy-optimal rule's, which a rule
    weighted for the F1 beats, so no bound). ``captured`` is the share of the possible gain
    over the constant predictor that the model realises: (score - constant) / (reference -
    constant); 100% = as good as the rule. Needs ceilings (synthetic data); returns an
    empty frame otherwise. ``attrs``: the metric, the constant, the language-only
    reference (``text_ceiling``) and the reference column's name (``reference``).
    """
    if ceilings is None:
        return pd.DataFrame()
    metric = headline(dataset)
    constant = [r for r in results if r.model == "majority"]
    base = 100 * constant[0].mean(metric.key) if constant else float("nan")
    subsets = {r.spec.modalities for r in results} | {"L"}
    same_split = bayes.judged_on_split(bundle, metric.key) and subsets <= set(bayes.SUBSETS)
    if same_split:
        reference = {s: bayes.bayes_rule(bundle, s, metric=metric.key).score(metric.key) for s in sorted(subsets)}
    else:
        reference = {s: 100 * ceilings[s][metric.key] for s in subsets if s in ceilings}
    column = SAME_SPLIT if same_split else CEILING
    rows = []
    for result in results:
        if result.model == "majority":
            continue
        subset = result.spec.modalities
        score, ceiling = 100 * result.ensemble()[metric.key], reference[subset]
        rows.append({"model": result.label, "modalities": "+".join(subset), f"{metric.label} %": round(score, 1),
                     column: round(ceiling, 1), "gap": round(ceiling - score, 1),
                     "captured %": round(100 * (score - base) / (ceiling - base), 0)})
    out = pd.DataFrame(rows)
    out.attrs.update(metric=metric.label, constant=base, text_ceiling=reference["L"], reference=column)
    return out


def constant_predictors_real_mosei(stats: dict | None = None) -> pd.DataFrame:
    """What predicting one class always scores on the **real** CMU-MOSEI test set under the
    two Acc2 conventions, from the real label rates shipped with cmnlib; beside the paper's
    CMN row. The non-zero convention drops the test samples labelled exactly 0."""
    if stats is None:
        stats = real_mosei_reference()
    nonneg, zero = stats["non_negative_rate"]["test"], stats["zero_rate"]["test"]
    positive_among_nonzero = (nonneg - zero) / (1 - zero)
    rows = [
        {"predictor": "always non-negative / positive", "Acc2 (non-negative vs negative, all)": 100 * nonneg,
         "Acc2 (positive vs negative, non-zero)": 100 * positive_among_nonzero},
        {"predictor": "always negative", "Acc2 (non-negative vs negative, all)": 100 * (1 - nonneg),
         "Acc2 (positive vs negative, non-zero)": 100 * (1 - positive_among_nonzero)},
        {"predictor": "paper: CMN (L+A), Table 2", "Acc2 (non-negative vs negative, all)": PAPER_TABLE2[0]["acc2"],
         "Acc2 (positive vs negative, non-zero)": PAPER_TABLE2[0]["acc2"]},
    ]
    return pd.DataFrame(rows).set_index("predictor").round(1)


def longer_specs(bundle: DataBundle, profile: str = "quick", epochs: int = 30, models=LONGER_MODELS) -> list[RunSpec]:
    """The runs of :func:`train_longer`: the profile's runs of ``models`` allowed ``epochs``
    epochs, less the rows ``bundle`` cannot feed."""
    return [RunSpec(model=m, dataset=bundle.dataset, modalities=mods, profile=profile).with_training(epochs=epochs)
            for m, mods in feasible(bundle, models)]


def train_longer(bundle: DataBundle, profile: str = "quick", seeds: int = 2, epochs: int = 30,
                 models=LONGER_MODELS, processes: int | None = None, progress: bool = True) -> list[RunResult]:
    """The profile's runs of ``models`` allowed ``epochs`` epochs (early stopping and
    patience unchanged): does a model that stays at the text-only ceiling within the
    profile's epochs get past it with more? Rows whose modalities the data lacks, and early
    fusion on unaligned data, are left out as in the tables. A seed whose profile run has
    finished continues from it (:func:`cmnlib.train.shorter_seed`: its first epochs are that
    run's, bit for bit) instead of training them again."""
    return train_specs(longer_specs(bundle, profile, epochs, models), bundle, seeds, profile, processes, progress)


def wiring_specs(bundle: DataBundle, profile: str = "quick", wirings=MUA_WIRINGS,
                 modalities: str = "LA") -> dict[str, RunSpec]:
    """The runs of :func:`train_wirings`: wiring -> RunSpec; empty when the data lacks one
    of ``modalities``."""
    if not feasible(bundle, (("cmn", modalities),)):
        return {}
    return {w: RunSpec(model="cmn", dataset=bundle.dataset, modalities=modalities, profile=profile,
                       model_overrides={} if w == CMNConfig.mua else {"mua": w}) for w in wirings}


def train_wirings(bundle: DataBundle, profile: str = "quick", seeds: int = 2, wirings=MUA_WIRINGS,
                  modalities: str = "LA", processes: int | None = None, progress: bool = True) -> dict[str, RunResult]:
    """CMN with each MUA wiring on the same data, profile and seeds: wiring -> result. The
    default wiring is the tables' CMN run (read from the cache). Empty when the data lacks
    one of ``modalities`` (a text-only set)."""
    specs = wiring_specs(bundle, profile, wirings, modalities)
    return dict(zip(specs, train_specs(list(specs.values()), bundle, seeds, profile, processes, progress)))


def wiring_table(dataset: str, results: dict[str, RunResult], default: str = CMNConfig.mua) -> pd.DataFrame:
    """CMN with each MUA wiring (``results``: wiring -> its result, same data, profile and
    seeds): test mean ± std over seeds and the ensemble, one row per wiring;
    ``attrs['findings']`` compares each other wiring with ``default``, paired seed by seed."""
    metric = headline(dataset)
    table = pd.DataFrame([{"wiring": w, **score_columns(r, metric.key, metric.label)} for w, r in results.items()])
    base = results.get(default)
    table.attrs["findings"] = [] if base is None else [
        compare(WIRING_ABOVE_DEFAULT, r, base, metric.key, f"{metric.label}: {w} minus {default}, points",
                wiring=w, default=default)
        for w, r in results.items() if w != default]
    return table
