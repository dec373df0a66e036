"""Orchestration: which runs a table or an analysis needs, trained (or read from the cache)
in one process or spread over several.

Every run is :func:`cmnlib.train.train_one` for one (model, seed) into the run folder that
:func:`cmnlib.train.run_dir` names; :func:`cmnlib.train.train_seeds` then reads the
members and builds the summary (mean, std, ensemble). Runs are independent, so they need
no communication: on a small CPU the fastest way to train many small models is a pool of
single-threaded processes (their steps are too short to keep two threads busy). Data
parallelism for one large model is :mod:`cmnlib.distributed`.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import replace
from datetime import date
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm import tqdm

from .config import TABLE_MODELS, headline, parse_modalities
from .data.sources import bayes_ceilings, load_dataset
from .data.split import DataBundle
from .model.cmn import ALIGNMENTS, CMNConfig
from .precision import machine_description
from .train import TRAIN_PROFILES, RunSpec, TrainConfig, run_dir, train_one, train_seeds

# rough relative cost of one run (quick profile, 2 CPU cores), to start the long ones first
_JOB_COST = {("mult", 3): 10.0, ("cmn", 3): 4.0, ("cmn", 2): 3.5, ("ef_lstm", 3): 0.5}

_BUNDLE: DataBundle | None = None


def _pool_init(bundle: DataBundle, threads: int) -> None:
    global _BUNDLE
    _BUNDLE = bundle
    torch.set_num_threads(threads)


def _pool_train(spec: RunSpec, seed: int, folder: str) -> dict:
    return train_one(spec, _BUNDLE, seed, Path(folder) / f"seed{seed}", progress=False)


def train_many(specs: list[RunSpec], bundle: DataBundle, seeds: int | list[int], processes: int = 2,
               root: Path | None = None, threads: int = 1, progress: bool = True) -> list[dict]:
    """:func:`cmnlib.train.train_seeds` for several models, every (model, seed) run trained
    in a pool of ``processes`` spawned processes with ``threads`` torch threads each.

    The jobs run longest-first (by a rough cost per model) so the pool ends together; runs
    already in the cache are not started. Each run's numbers depend only on its seed and
    its thread count (see :class:`cmnlib.train.TrainConfig`), not on which worker ran it.
    Returns one summary per spec, as ``train_seeds`` does. A worker's exception is raised
    here, and the runs not yet started are cancelled.
    """
    specs = [spec.resolved() for spec in specs]
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    jobs = []
    for spec in specs:
        folder = run_dir(spec, bundle, root)
        for seed in seed_list:
            if not (folder / f"seed{seed}" / "result.json").exists():
                jobs.append((spec, seed, str(folder)))
    jobs.sort(key=lambda job: -_JOB_COST.get((job[0].model, len(job[0].modalities)), 1.0))
    if jobs:
        workers = max(1, min(processes, len(jobs)))
        # concurrent.futures (not multiprocessing.Pool): a worker that dies raises
        # BrokenProcessPool here instead of leaving the pool waiting forever
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_pool_init,
                                 initargs=(bundle, threads)) as pool:
            futures = [pool.submit(_pool_train, *job) for job in jobs]
            try:
                # mininterval: a notebook keeps every refresh of a plain tqdm bar in its output
                for future in tqdm(as_completed(futures), total=len(jobs), desc=f"{bundle.dataset}: runs",
                                   unit="run", disable=not progress, mininterval=20):
                    future.result()  # re-raises a worker's exception
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # drop the runs not yet started
                raise
    return [train_seeds(spec, bundle, seed_list, root=root, progress=False) for spec in specs]


def spread_seeds(spec: RunSpec, bundle: DataBundle, seeds: int | list[int], processes: int = 2,
                 root: Path | None = None, threads: int = 1) -> dict:
    """:func:`cmnlib.train.train_seeds` with the seeds trained in parallel: the same summary
    (members, mean, std, ensemble) as training them one after another."""
    return train_many([spec], bundle, seeds, processes, root, threads, progress=False)[0]


def default_processes(profile: str) -> int:
    """Worker processes for a profile's runs: 2 on a CPU with at least 2 cores in the quick
    profile (small models: two processes beat two threads), else 1 (this process)."""
    return 2 if profile == "quick" and (os.cpu_count() or 1) >= 2 else 1


def train_specs(specs: list[RunSpec], bundle: DataBundle, seeds: int, profile: str,
                processes: int | None = None, progress: bool = True) -> list[dict]:
    """``train_seeds`` for each spec (trained, or read from the cache), in a pool of
    worker processes when ``processes`` > 1 (default: :func:`default_processes`)."""
    processes = default_processes(profile) if processes is None else processes
    if processes > 1:
        return train_many(specs, bundle, seeds, processes=processes, progress=progress)
    return [train_seeds(spec, bundle, seeds, progress=progress) for spec in specs]


def table_specs(dataset: str, profile: str = "quick", models=TABLE_MODELS) -> list[RunSpec]:
    """The RunSpecs of the reproduced rows of Tables 1-2."""
    return [RunSpec(model=m, dataset=dataset, modalities=mods, profile=profile) for m, mods in models]


def train_table_models(bundle: DataBundle, profile: str = "quick", seeds: int = 2,
                       models=TABLE_MODELS, progress: bool = True, processes: int | None = None) -> list[dict]:
    """Train (or reuse from the cache) every reproduced row's model; one summary per row.
    Early fusion concatenates the modalities step by step, so on unaligned data (MMSA's
    ``unaligned_50.pkl``, for example) its row is left out; so are the rows of models whose
    modalities the data lacks."""
    return train_specs(table_specs(bundle.dataset, profile, _feasible(bundle, models)), bundle, seeds, profile,
                       processes, progress)


def _feasible(bundle: DataBundle, models) -> tuple:
    """``models`` ((name, modalities) pairs) that ``bundle`` can feed: early fusion only on
    aligned data; only models whose modalities the data has (a text-only set from cmn
    featurize), the constant predictor always (it reads no features, so it is given L)."""
    if not bundle.aligned:
        models = tuple((m, mods) for m, mods in models if m != "ef_lstm")
    present = set(bundle["train"].modalities)
    return tuple((m, mods if set(parse_modalities(mods)) <= present else "L") for m, mods in models
                 if m == "majority" or set(parse_modalities(mods)) <= present)


def train_longer(bundle: DataBundle, profile: str = "quick", seeds: int = 2, epochs: int = 30,
                 models=(("ef_lstm", "LA"), ("cmn", "LA")), processes: int | None = None,
                 progress: bool = True) -> list[dict]:
    """The profile's runs of ``models`` allowed ``epochs`` epochs (early stopping and
    patience unchanged): does a model that stays at the text-only ceiling within the
    profile's epochs get past it with more? Rows whose modalities the data lacks, and early
    fusion on unaligned data, are left out as in :func:`train_table_models`."""
    models = _feasible(bundle, models)
    train = replace(TRAIN_PROFILES[profile], epochs=epochs)
    specs = [RunSpec(model=m, dataset=bundle.dataset, modalities=mods, profile=profile, train=train)
             for m, mods in models]
    summaries = train_specs(specs, bundle, seeds, profile, processes, progress)
    for summary in summaries:  # the label says what differs from the table's run of the model
        summary["label"] += training_label({"epochs": epochs})
    return summaries


def train_alignments(bundle: DataBundle, profile: str = "quick", seeds: int = 2, alignments=None,
                     modalities: str = "LA", overrides: dict | None = None, train: dict | None = None,
                     processes: int | None = None, progress: bool = True) -> dict[str, dict]:
    """CMN with each ``alignment`` (default every value of :data:`cmnlib.model.cmn.ALIGNMENTS`)
    and the early-fusion LSTM on the same modalities, same data, profile and seeds:
    name -> summary ('none' is the tables' CMN run, read from the cache; 'ef_lstm' the
    early-fusion baseline). ``overrides``: other CMN fields for every variant (e.g.
    ``{"hidden": 512}``, the paper's width). ``train``: training settings that differ from
    the profile's for every row (e.g. ``{"epochs": 30}``; fields of
    :class:`cmnlib.train.TrainConfig`), named in the labels; ``{"epochs": 30}`` gives the
    runs of :func:`train_longer` where they coincide. Empty on unaligned data, which the
    variants refuse."""
    if not bundle.aligned or not set(parse_modalities(modalities)) <= set(bundle["train"].modalities):
        return {}
    specs = alignment_specs(bundle.dataset, profile, alignments, modalities, overrides, train)
    summaries = train_specs(list(specs.values()), bundle, seeds, profile, processes, progress)
    for summary in summaries:
        summary["label"] += training_label(train)
    return dict(zip(specs, summaries))


def training_label(train: dict | None) -> str:
    """What a label adds for training settings that differ from the profile's:
    ``{"epochs": 30}`` -> ', 30 epochs'; other fields as ', name=value'."""
    train = dict(train or {})
    epochs = train.pop("epochs", None)
    return (f", {epochs} epochs" if epochs is not None else "") + "".join(
        f", {k}={v}" for k, v in sorted(train.items()))


def alignment_specs(dataset: str, profile: str = "quick", alignments=None, modalities: str = "LA",
                    overrides: dict | None = None, train: dict | None = None) -> dict[str, RunSpec]:
    """The runs of :func:`train_alignments`: name ('none', each alignment, 'ef_lstm') -> RunSpec."""
    alignments = tuple(alignments or ALIGNMENTS)
    overrides = dict(overrides or {})
    train = None if not train else replace(TRAIN_PROFILES[profile], **train)
    specs = {a: RunSpec(model="cmn", dataset=dataset, modalities=modalities, profile=profile, train=train,
                        model_overrides=overrides if a == "none" else {**overrides, "alignment": a})
             for a in alignments}
    specs["ef_lstm"] = RunSpec(model="ef_lstm", dataset=dataset, modalities=modalities, profile=profile, train=train)
    return specs


# ======================================================================================
# Recorded runs: results too long to train in CI, shipped with the package
# ======================================================================================
RECORDED_DIR = Path(__file__).parent / "resources" / "recorded"

# longer training that does not stop on one noisy epoch: at the quick profile's lr 1e-3 the
# validation accuracy of the MOSEI-like runs swings by up to 10 points between epochs
_DECAY = {"epochs": 30, "patience": 8, "lr_schedule": "plateau"}
# The alignment ablation's runs that are too long for CI (notebook 08 shows them; the
# maintainers' tools/record_runs.py writes them): name -> arguments of record_alignments.
ALIGNMENT_RECORDS = {
    "alignment_mosei_quick_hidden512": dict(
        title="quick set, hidden 512",
        description="quick MOSEI-like set, the paper's width (hidden 512), the quick profile's 8 epochs",
        dataset="mosei", scale="quick", seeds=2, alignments=("none", "diagonal_prior", "relative_bias"),
        overrides={"hidden": 512}),
    "alignment_mosei_quick_hidden512_lr1e-4": dict(
        title="quick set, hidden 512, lr 1e-4, learning-rate decay",
        description="quick MOSEI-like set, the paper's width (hidden 512) at the paper's learning rate 1e-4 (at the "
                    "quick profile's 1e-3 every wide CMN collapses to the constant predictor), 30 epochs with "
                    "patience 8 and the learning rate halved when the validation loss stops improving",
        dataset="mosei", scale="quick", seeds=2, alignments=("none", "stepwise_fusion"), overrides={"hidden": 512},
        train={**_DECAY, "lr": 1e-4}),
    "alignment_mosei_quick_30epochs": dict(
        title="quick set, 30 epochs",
        description="quick MOSEI-like set, every variant allowed 30 epochs (early stopping unchanged: patience 3)",
        dataset="mosei", scale="quick", seeds=4, train={"epochs": 30}),
    "alignment_mosei_quick_plateau": dict(
        title="quick set, 30 epochs, learning-rate decay, 4 seeds",
        description="quick MOSEI-like set, the paper's CMN and the best variant, 4 seeds, 30 epochs with patience 8 "
                    "and the learning rate halved when the validation loss stops improving",
        dataset="mosei", scale="quick", seeds=4, alignments=("none", "stepwise_fusion"), train=_DECAY),
    "alignment_mosei_paper_30epochs": dict(
        title="paper-size set, 30 epochs",
        description="paper-size MOSEI-like set (16,326 training utterances), every variant allowed 30 epochs "
                    "(early stopping unchanged: patience 3)",
        dataset="mosei", scale="paper", seeds=2, train={"epochs": 30}),
    "alignment_mosei_paper_4seeds": dict(
        title="paper-size set, 30 epochs, 4 seeds",
        description="paper-size MOSEI-like set, the paper's CMN and the two best variants of the 2-seed run with "
                    "4 seeds, 30 epochs (patience 3)",
        dataset="mosei", scale="paper", seeds=4, alignments=("none", "diagonal_prior", "stepwise_fusion"),
        train={"epochs": 30}),
    "alignment_mosei_paper_plateau": dict(
        title="paper-size set, 30 epochs, learning-rate decay, 4 seeds",
        description="paper-size MOSEI-like set, the paper's CMN and the best variant, 4 seeds, 30 epochs with "
                    "patience 8 and the learning rate halved when the validation loss stops improving",
        dataset="mosei", scale="paper", seeds=4, alignments=("none", "stepwise_fusion"),
        train=_DECAY),
    "alignment_iemocap_quick_4seeds": dict(
        title="IEMOCAP-like quick set, 4 seeds",
        description="quick IEMOCAP-like set, every variant with 4 seeds, the quick profile's 8 epochs",
        dataset="iemocap", scale="quick", seeds=4),
}


def record_alignments(name: str, title: str, description: str, dataset: str = "mosei", source: str = "synthetic",
                      scale: str = "quick", profile: str = "quick", seeds: int = 2, folder: Path | None = None,
                      **call) -> Path:
    """Train (or read from the cache) :func:`train_alignments` on ``dataset`` from ``source``
    (the synthetic stand-in at ``scale``, or a path) with ``call`` (its other arguments:
    ``alignments``, ``overrides``, ``train``, ``processes``), and write the summaries to
    ``<folder>/<name>.json`` (default: the package's ``resources/recorded``): metrics,
    per-seed histories and specs, without weights, with the call, the data's label, hash and
    Bayes ceilings, the constant predictor's score (percent), the machine, torch and the
    date. A notebook shows such a record with :func:`recorded` where training the runs would
    take too long for CI, and :func:`retrain` trains the same runs again (the same run
    folders, see :func:`recorded_run_names`). The file is written whole or not at all."""
    bundle = load_dataset(dataset, source, scale=scale)
    summaries = train_alignments(bundle, profile, seeds, **call)
    # the constant predictor's score, against which a collapsed model is told apart
    majority = train_seeds(RunSpec(model="majority", dataset=dataset, modalities="L", profile=profile), bundle, [0],
                           progress=False)
    call = {"dataset": dataset, "source": str(source), "scale": scale, "profile": profile, "seeds": seeds,
            **{k: v for k, v in call.items() if k not in ("processes", "progress")}}
    payload = {"name": name, "title": title, "description": description, "call": call, "machine": machine_description(),
               "torch": torch.__version__, "recorded": date.today().isoformat(),
               "data": bundle.source_label, "data_hash": bundle.meta.get("source_hash"),
               "ceilings": bayes_ceilings(bundle), "constant": 100 * majority["mean"][headline(dataset)[0]],
               "summaries": {key: {**{k: v for k, v in s.items() if k != "folder"},
                                   "run": Path(s["folder"]).name} for key, s in summaries.items()}}
    folder = Path(folder or RECORDED_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")  # key order kept: the rows' order
    os.replace(tmp, path)
    return path


def recorded(name: str, folder: Path | None = None) -> dict:
    """A record written by :func:`record_alignments`: its fields, with every summary marked
    ``recorded`` (and ``folder`` None: no weights were shipped). A missing file or field is
    one ValueError naming the file and what was expected."""
    path = Path(folder or RECORDED_DIR) / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.json"))
        raise ValueError(f"{path}: no such record; recorded runs: {', '.join(known) or 'none'}")
    payload = json.loads(path.read_text())
    for key in ("title", "call", "summaries", "data", "data_hash", "ceilings", "constant", "machine", "recorded"):
        if key not in payload:
            raise ValueError(f"{path}: key {key!r} is missing (expected a record written by "
                             f"cmnlib.runs.record_alignments)")
    for summary in payload["summaries"].values():
        summary.update(recorded=True, folder=None)
    return payload


def retrain(name: str, folder: Path | None = None, processes: int | None = None, progress: bool = True) -> dict:
    """The runs of record ``name`` trained on this machine (or read from ``data/runs`` when
    cached): the record's fields with live summaries (weights in their folders) and this
    machine's description."""
    payload = recorded(name, folder)
    call = dict(payload["call"])
    bundle = load_dataset(call.pop("dataset"), call.pop("source"), scale=call.pop("scale"))
    summaries = train_alignments(bundle, call.pop("profile"), call.pop("seeds"), processes=processes,
                                 progress=progress, **call)
    return {**payload, "summaries": summaries, "machine": machine_description(), "recorded": None,
            "data": bundle.source_label, "data_hash": bundle.meta.get("source_hash")}


def records(names=None, retrain_them: bool = False, progress: bool = False) -> dict[str, dict]:
    """name -> record for ``names`` (None: every one of :data:`ALIGNMENT_RECORDS`; one name
    may be given as a string): read with :func:`recorded`, or trained on this machine with
    :func:`retrain` when ``retrain_them``."""
    names = list(ALIGNMENT_RECORDS) if names is None else [names] if isinstance(names, str) else list(names)
    return {name: retrain(name, progress=progress) if retrain_them else recorded(name) for name in names}


def recorded_run_names(payload: dict) -> dict[str, str]:
    """name -> the run folder (``<model>-<key>``) that the record's specs give with today's
    code and the recorded data hash: equal to the recorded ``run`` while the record is
    current (a test checks this for every shipped record)."""
    names = {}
    for key, summary in payload["summaries"].items():
        spec_dict = summary["spec"]
        spec = RunSpec(**{k: v for k, v in spec_dict.items() if k != "train"}, train=TrainConfig(**spec_dict["train"]))
        names[key] = spec.folder_name(payload["data_hash"])
    return names


def train_precisions(bundle: DataBundle, profile: str = "quick", seeds: int = 4, model: str = "cmn",
                     modalities: str = "LA", precisions=("fp32", "bf16"), processes: int | None = None,
                     progress: bool = True) -> dict[str, dict]:
    """The same model, data, profile and seeds trained in each precision: precision ->
    summary (the fp32 run is the tables' run when the seeds match, read from the cache)."""
    specs = [RunSpec(model=model, dataset=bundle.dataset, modalities=modalities, profile=profile,
                     train=replace(TRAIN_PROFILES[profile], precision=p)) for p in precisions]
    return dict(zip(precisions, train_specs(specs, bundle, seeds, profile, processes, progress)))


def train_wirings(bundle: DataBundle, profile: str = "quick", seeds: int = 2,
                  wirings=("encoder_decoder", "stacked", "symmetric"), modalities: str = "LA",
                  processes: int | None = None, progress: bool = True) -> dict[str, dict]:
    """CMN with each MUA wiring on the same data, profile and seeds: wiring -> summary. The
    default wiring is the tables' CMN run (read from the cache). Empty when the data lacks
    one of ``modalities`` (a text-only set)."""
    if not set(parse_modalities(modalities)) <= set(bundle["train"].modalities):
        return {}
    specs = [RunSpec(model="cmn", dataset=bundle.dataset, modalities=modalities, profile=profile,
                     model_overrides={} if w == CMNConfig.mua else {"mua": w}) for w in wirings]
    return dict(zip(wirings, train_specs(specs, bundle, seeds, profile, processes, progress)))
