"""The runs the notebook sequence trains, listed before it runs, so that the batch runner
(:mod:`cmnlib.reproduce`) can train them all first in one pool, longest first, and the
notebooks then read them from the cache, as a second run of the sequence does.

Executed one after another, the notebooks leave a core idle whenever one trains fewer
runs than there are workers (notebook 02 trains one seed of CMN; notebook 03 three more of
the same model, two and then one), at the end of every pool, and while a notebook draws
its figures. Trained up front, the same runs keep both cores busy, and they are the same
runs: each is a function of its spec, data and seed only (:class:`cmnlib.train.TrainConfig`),
whichever process or pool trains it.

The list mirrors what each notebook asks of the studies, through the same spec functions
and the notebook's own parameter defaults. A notebook that asks for a run the list lacks
trains it itself, as it always could: a stale list costs time, never a result. The walk of
the whole sequence in the tests checks that the notebooks train nothing beyond it.
"""
from __future__ import annotations

from .config import default_seeds
from .data.split import DataBundle
from .runs import feasible
from .spec import RunSpec
from .studies import alignment, beyond, paper
from .train import run_dir, seed_list

# The walkthroughs (02 one seed, 03 the `seeds` of its parameters) train CMN (L+A) at the
# quick setting, whatever the profile of the rest of the sequence.
WALKTHROUGH_MODALITIES = "LA"


def _walkthrough(dataset: str) -> RunSpec:
    return RunSpec(model="cmn", dataset=dataset, modalities=WALKTHROUGH_MODALITIES, profile="quick")


def notebook_runs(stem: str, parameters: dict, bundles: dict[str, DataBundle],
                  profile: str) -> list[tuple[RunSpec, DataBundle, list[int]]]:
    """The runs one notebook (``stem``, e.g. ``05_training``) trains with ``parameters``
    (its declared defaults updated with what the runner passes), as (spec, data set, seeds);
    ``bundles``: the data sets as the runner loaded them (data set -> bundle). A notebook
    whose data the runner did not load, or that loads it otherwise (another synthetic
    seed), is left to train its own runs."""
    if parameters.get("seed", 0) != 0:  # the walkthroughs' data seed: the runner loads seed 0
        return []
    if stem in ("02_self_attention", "03_guide_attention"):
        bundle = bundles.get(parameters.get("dataset"))
        if bundle is None or not feasible(bundle, (("cmn", WALKTHROUGH_MODALITIES),)):
            return []
        seeds = 1 if stem.startswith("02") else parameters.get("seeds", 1)
        return [(_walkthrough(bundle.dataset), bundle, seed_list(seeds))]
    profile = parameters.get("profile", profile)
    seeds = seed_list(parameters.get("seeds") or default_seeds(profile))
    datasets = [d for d in parameters.get("datasets", ()) if d in bundles]
    specs: list[tuple[RunSpec, DataBundle]] = []
    if stem in ("05_training", "06_tables", "07_beyond_the_paper"):
        specs += [(spec, bundles[d]) for d in datasets
                  for spec in paper.table_specs(d, profile, feasible(bundles[d], paper.TABLE_MODELS))]
    if stem == "07_beyond_the_paper":
        longer = parameters.get("longer_datasets") or []
        specs += [(spec, bundles[d]) for d in datasets if d in longer
                  for spec in beyond.longer_specs(bundles[d], profile, epochs=30)]
        wiring = [d for d in (parameters.get("wiring_datasets") or datasets) if d in bundles]
        specs += [(spec, bundles[d]) for d in wiring for spec in beyond.wiring_specs(bundles[d], profile).values()]
    if stem == "08_alignment":
        widths = [None, {"hidden": 512}] if parameters.get("paper_width") else [None]
        specs += [(spec, bundles[d]) for d in datasets for overrides in widths
                  for spec in alignment.alignment_runs(bundles[d], profile, overrides=overrides).values()]
    return [(spec, bundle, seeds) for spec, bundle in specs]


def sequence_runs(notebooks: list[tuple[str, dict]], bundles: dict[str, DataBundle],
                  profile: str) -> list[tuple[RunSpec, DataBundle, list[int]]]:
    """Every run of the notebooks (``(stem, parameters)`` pairs, in order) once: a run two
    notebooks share (the tables' models in 05-07; CMN (L+A) in 02, 03 and the tables) is
    listed once with the union of their seeds."""
    merged: dict = {}
    for stem, parameters in notebooks:
        for spec, bundle, seeds in notebook_runs(stem, parameters, bundles, profile):
            spec = spec.resolved()
            key = run_dir(spec, bundle)
            if key in merged:
                merged[key] = (spec, bundle, sorted(set(merged[key][2]) | set(seeds)))
            else:
                merged[key] = (spec, bundle, list(seeds))
    return list(merged.values())
