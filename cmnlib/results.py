"""Typed results: what a trained run is, written and read in this module only.

A :class:`RunResult` is one spec trained with several seeds on one data set: the spec, the
data's label and hash, the labels of the evaluated splits, and one :class:`SeedResult` per
seed (its learning curve, the selected epoch, its raw outputs on the validation and test
splits, where and when it was trained). Metrics are **computed from the stored outputs**
when they are asked for (:meth:`RunResult.metrics`, cached per result), by
:func:`evaluate`, so a metric added to :mod:`cmnlib.metrics` appears for every cached run
and record without retraining. The metrics written at training time (``result.json``) are
kept for people and for records that hold no outputs ("metric-only").

On disk (a run folder, see :mod:`cmnlib.train`)::

    run.json               the spec, the data's label and hash
    labels.npz             the labels of the valid and test splits (the targets)
    seed<N>/result.json    history, selected epoch, metrics at training time, provenance
    seed<N>/outputs.pt     the selected model's raw outputs on valid and test

A **record** (:func:`record_payload`, :func:`from_record`) is a RunResult as JSON, without
weights: what ships in ``cmnlib/resources/recorded`` for runs too long to train in CI. Its
test outputs and labels are stored compactly (little-endian float32 / int64, base64);
records written before outputs were stored hold none and are marked metric-only.
"""
from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import torch

from . import config
from . import metrics as M
from .atomic import atomic_write, write_bytes, write_json
from .data.loader import targets_from_labels
from .model import heads as H
from .data.split import class_index
from .precision import machine_description
from .spec import TRAINER_VERSION, RunSpec

SPLITS = ("valid", "test")


# ======================================================================================
# Metrics from outputs
# ======================================================================================

def evaluate(dataset: str, head: str, outputs, labels) -> dict:
    """Every metric of ``dataset``'s family for raw model ``outputs`` (or averaged ensemble
    outputs) against a split's ``labels``, plus the head's mean ``loss``; fractions, not
    percent (see :mod:`cmnlib.metrics`)."""
    outputs = torch.as_tensor(np.asarray(outputs, dtype=np.float32))
    labels = np.asarray(labels)
    result = {"loss": float(H.loss(head, outputs, targets_from_labels(labels, head)))}
    truth = class_index(labels) if head == "4class" else labels  # the 4-class metrics take class indices
    result.update(M.score(M.family_of(dataset, head), H.predict(head, outputs).numpy(), truth))
    return result


def ensemble_outputs(head: str, outputs: list) -> torch.Tensor:
    """Average the members' outputs: scores for regression, class probabilities (as
    log-probabilities, so ``predict``/``loss`` apply unchanged) for classification."""
    stacked = torch.stack([torch.as_tensor(np.asarray(o, dtype=np.float32)) for o in outputs])
    if head == "regression":
        return stacked.mean(0)
    return stacked.softmax(-1).mean(0).log()


# ======================================================================================
# The types
# ======================================================================================

@dataclass
class SeedResult:
    """One seed of a run. ``outputs``: split -> the selected model's raw outputs (None in a
    metric-only record); ``recorded_metrics``: split -> the metrics computed when it was
    trained; ``provenance``: the machine, torch version and date that trained it (None for
    runs cached before provenance was written)."""

    seed: int
    best_epoch: int
    epochs_run: int
    history: list[dict]
    train_seconds: float
    outputs: dict[str, np.ndarray] | None = None
    recorded_metrics: dict[str, dict] = field(default_factory=dict)
    provenance: dict | None = None
    fused_kernels: str | None = None      # bf16 runs: how the fused kernels ran

    def curve(self, key: str) -> list[float]:
        """The per-epoch values of ``key`` (e.g. 'valid_loss', 'valid_acc2_has0')."""
        return [h[key] for h in self.history]


@dataclass
class RunResult:
    """One spec trained with one or more seeds on one data set (see the module docstring).

    ``labels``: split -> the split's labels (None in a metric-only record); ``folder``: the
    run folder (weights, checkpoints), None for a record; ``recorded``: read from a shipped
    record rather than trained or cached here; ``recorded_ensemble``: split -> the
    ensemble's metrics written with a metric-only record."""

    spec: RunSpec
    data: str
    data_hash: str | None
    labels: dict[str, np.ndarray] | None
    members: list[SeedResult]
    folder: Path | None = None
    recorded: bool = False
    recorded_ensemble: dict = field(default_factory=dict)
    recorded_run: str | None = None       # a record's run folder name when it was written
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.spec = self.spec.resolved()

    # -- what it is ----------------------------------------------------------------------
    @property
    def dataset(self) -> str:
        return self.spec.dataset

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def label(self) -> str:
        """The display label, from the spec (model, modalities, options, training changes)."""
        return self.spec.label

    @property
    def seeds(self) -> list[int]:
        return [m.seed for m in self.members]

    @property
    def trained(self) -> bool:
        """True when every seed went through training epochs (not the constant predictor)."""
        return all(m.history for m in self.members)

    def has_outputs(self, split: str = "test") -> bool:
        """Whether metrics on ``split`` come from stored outputs (False: a metric-only
        record, whose metrics are those written when it was trained)."""
        return self.labels is not None and split in self.labels and all(
            m.outputs is not None and split in m.outputs for m in self.members)

    @property
    def metric_only(self) -> bool:
        """A record without stored test outputs: only the metrics it was written with."""
        return not self.has_outputs("test")

    @property
    def provenance(self) -> list[dict]:
        """The distinct {machine, torch, date} that trained the seeds, where known."""
        seen = []
        for m in self.members:
            if m.provenance and m.provenance not in seen:
                seen.append(m.provenance)
        return seen

    # -- metrics -------------------------------------------------------------------------
    def metrics(self, split: str = "test") -> list[dict]:
        """Per seed, every metric on ``split``: computed from the stored outputs (cached
        in this object), else those recorded at training time."""
        key = ("seeds", split)
        if key not in self._cache:
            if self.has_outputs(split):
                self._cache[key] = [evaluate(self.dataset, self.spec.head, m.outputs[split], self.labels[split])
                                    for m in self.members]
            else:
                self._cache[key] = [dict(m.recorded_metrics.get(split, {})) for m in self.members]
        return self._cache[key]

    def has_metric(self, metric: str, split: str = "test") -> bool:
        return all(metric in found for found in self.metrics(split))

    def scores(self, metric: str, split: str = "test", percent: bool = True) -> list[float]:
        """``metric`` per seed, in percent when ``percent`` and the metric is a rate. A
        KeyError names the run and the metric when a metric-only record lacks it."""
        values = []
        for seed, found in zip(self.seeds, self.metrics(split)):
            if metric not in found:
                raise KeyError(f"{self.label}, seed {seed}: no {metric!r} on {split} (a metric-only record "
                               f"holds {', '.join(sorted(found)) or 'nothing'})")
            values.append(float(found[metric]))
        scale = 100.0 if percent and M.is_percent(metric) else 1.0
        return [scale * v for v in values]

    def mean(self, metric: str, split: str = "test", percent: bool = False) -> float:
        """The mean over seeds of ``metric``: a fraction for rates, as :func:`evaluate` gives
        it, or with ``percent`` the mean of the per-seed percentages, which is what tables and
        findings show (100 x the mean of fractions can differ in the last bit and so round
        the other way at a .x5)."""
        return float(np.mean(self.scores(metric, split, percent=percent)))

    def std(self, metric: str, split: str = "test", percent: bool = False) -> float:
        """The sample standard deviation over seeds (0.0 for one seed), of the per-seed
        percentages with ``percent``."""
        values = self.scores(metric, split, percent=percent)
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def metric_names(self, split: str = "test") -> list[str]:
        """The numeric metrics every seed has on ``split``, in the family's order."""
        found = self.metrics(split)
        return [k for k, v in found[0].items() if isinstance(v, float) and all(k in f for f in found)]

    def ensemble_outputs(self, split: str = "test") -> torch.Tensor:
        """The seeds' outputs averaged (:func:`ensemble_outputs`)."""
        if not self.has_outputs(split):
            raise ValueError(f"{self.label}: a metric-only record holds no outputs on {split}")
        return ensemble_outputs(self.spec.head, [m.outputs[split] for m in self.members])

    def ensemble(self, split: str = "test") -> dict:
        """The metrics of the ensemble (the seeds' averaged outputs) on ``split``; for a
        metric-only record, those written with it."""
        key = ("ensemble", split)
        if key not in self._cache:
            self._cache[key] = (evaluate(self.dataset, self.spec.head, self.ensemble_outputs(split),
                                         self.labels[split])
                                if self.has_outputs(split) else dict(self.recorded_ensemble.get(split, {})))
        return self._cache[key]

    def summary(self) -> dict:
        """Plain data for people (``ensemble-seeds<first>-<last>.json``): the spec, the data, per-seed metrics,
        mean and std over seeds, the ensemble's metrics."""
        keys = self.metric_names()
        return {"label": self.label, "spec": self.spec.to_dict(), "data": self.data, "data_hash": self.data_hash,
                "seeds": self.seeds, "test": self.metrics("test"), "valid": self.metrics("valid"),
                "mean": {k: self.mean(k) for k in keys}, "std": {k: self.std(k) for k in keys},
                "ensemble": {split: self.ensemble(split) for split in SPLITS if self.has_outputs(split)}}


def select(results, model: str | None = None, modalities: str | None = None, **options) -> list[RunResult]:
    """The results whose spec matches: ``model``, ``modalities`` and model options (e.g.
    ``alignment='diagonal_prior'``; ``alignment=None`` means the option is not set). How code
    finds a run: by its spec, never by its label."""
    out = []
    for result in results:
        spec = result.spec
        if model is not None and spec.model != model:
            continue
        if modalities is not None and spec.modalities != modalities:
            continue
        if any(spec.model_overrides.get(k) != v for k, v in options.items()):
            continue
        out.append(result)
    return out


def find(results, model: str, modalities: str | None = None, **options) -> RunResult | None:
    """The one result :func:`select` finds, None when there is none; a ValueError when the
    spec does not single one out."""
    found = select(results, model, modalities, **options)
    if len(found) > 1:
        raise ValueError(f"{len(found)} runs match model={model!r}, modalities={modalities!r}, {options}: "
                         f"{', '.join(r.label for r in found)}")
    return found[0] if found else None


# ======================================================================================
# Run folders
# ======================================================================================
RESULT_FILE, OUTPUTS_FILE, RUN_FILE, LABELS_FILE = "result.json", "outputs.pt", "run.json", "labels.npz"


def provenance_here() -> dict:
    """This machine, this torch, today and the trainer's version (and the nudge of the initial
    weights where the portability guard asked for it): what a newly trained seed or record
    keeps."""
    here = {"machine": machine_description(), "torch": torch.__version__, "date": date.today().isoformat(),
            "trainer": TRAINER_VERSION}
    if config.weights_nudged():
        here["initial_weights"] = config.NUDGED
    return here


def write_seed(folder: Path, seed: SeedResult, dataset: str, head: str, labels: dict) -> None:
    """A finished seed into its folder: the outputs first, then ``result.json`` (whose
    presence means the seed is done), each written whole or not at all. The metrics in
    ``result.json`` are computed here, for people; tables recompute them from the outputs."""
    folder = Path(folder)
    outputs = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in (seed.outputs or {}).items()}
    buffer = io.BytesIO()
    torch.save(outputs, buffer)
    write_bytes(folder / OUTPUTS_FILE, buffer.getvalue())
    result = {"seed": seed.seed, "best_epoch": seed.best_epoch, "epochs_run": seed.epochs_run,
              "history": seed.history,
              **{split: evaluate(dataset, head, outputs[split], labels[split]) for split in SPLITS},
              "train_seconds": seed.train_seconds, "provenance": seed.provenance}
    if seed.fused_kernels is not None:
        result["fused_kernels"] = seed.fused_kernels
    write_json(folder / RESULT_FILE, result)


class UnreadableSeed(ValueError):
    """A finished seed's ``result.json`` or ``outputs.pt`` cannot be read (truncated, foreign,
    or refused for safety). Both are derived files: the trainer sets the seed aside and trains
    it again."""


def load_tensors(path: Path) -> dict:
    """A seed's derived torch file (outputs, checkpoint, weights) loaded with
    ``weights_only=True`` (tensors and plain containers only: nothing in it can run); any
    failure is an :class:`UnreadableSeed` naming the file and saying why in one phrase."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, foreign, or a pickle payload refused by weights_only
        if "unsupported global" in str(error).lower():  # weights_only met a callable: nothing was run
            why = "refused: loading it would run code (a pickle payload), so it was never loaded"
        else:
            why = f"unreadable ({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})"
        raise UnreadableSeed(f"{Path(path).name} {why}") from None


def read_seed(folder: Path) -> SeedResult | None:
    """A finished seed from its folder; None when it has not finished (no ``result.json``).
    Outputs load with ``weights_only=True`` (tensors only, no code). An unreadable result
    or outputs file raises :class:`UnreadableSeed` with one phrase saying which and why."""
    folder = Path(folder)
    path = folder / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
        for key in ("seed", "best_epoch", "epochs_run", "history", "train_seconds"):
            result[key]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UnreadableSeed(f"{RESULT_FILE} unreadable ({type(error).__name__})") from None
    outputs_path = folder / OUTPUTS_FILE
    outputs = None
    if outputs_path.exists():
        outputs = {k: v.numpy() for k, v in load_tensors(outputs_path).items()}
    return SeedResult(seed=result["seed"], best_epoch=result["best_epoch"], epochs_run=result["epochs_run"],
                      history=result["history"], train_seconds=result["train_seconds"], outputs=outputs,
                      recorded_metrics={split: result[split] for split in SPLITS if split in result},
                      provenance=result.get("provenance"), fused_kernels=result.get("fused_kernels"))


def write_run(folder: Path, spec: RunSpec, data: str, data_hash: str | None, labels: dict) -> None:
    """What a run folder holds besides its seeds: ``run.json`` (the spec, the data, and
    whether its seeds start from nudged weights) and ``labels.npz`` (the labels of the
    evaluated splits)."""
    folder = Path(folder)
    nudge = {"initial_weights": config.NUDGED} if config.weights_nudged() else {}
    write_json(folder / RUN_FILE, {"spec": spec.to_dict(), "data": data, "data_hash": data_hash, **nudge})
    atomic_write(folder / LABELS_FILE, lambda tmp: _save_npz(tmp, labels))


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append '.npz' to a bare path
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def read_spec(folder: Path) -> RunSpec:
    """The spec a run folder was trained with (its ``run.json``)."""
    return RunSpec.from_dict(json.loads((Path(folder) / RUN_FILE).read_text())["spec"])


def summary_name(seeds: list[int]) -> str:
    """The file name of the summary of an ensemble of ``seeds``: it says which seeds it
    averages (``ensemble-seeds0-4.json`` for 0..4, ``ensemble-seeds0_3_7.json`` otherwise),
    so ensembles of different seeds of one run live side by side."""
    seeds = list(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1:
        return f"ensemble-seeds{seeds[0]}-{seeds[-1]}.json"
    return "ensemble-seeds" + "_".join(str(s) for s in seeds) + ".json"


def write_summary(folder: Path, result: RunResult) -> Path:
    """:meth:`RunResult.summary`, for people, in the run folder under :func:`summary_name`
    (nothing reads it back); returns its path."""
    path = Path(folder) / summary_name(result.seeds)
    write_json(path, result.summary())
    return path


def read_run(folder: Path, seeds: list[int], labels: dict | None = None) -> RunResult:
    """The run in ``folder`` with ``seeds`` (each finished). ``labels`` (split -> labels)
    default to the folder's ``labels.npz``, read without pickles."""
    folder = Path(folder)
    run = json.loads((folder / RUN_FILE).read_text())
    if labels is None:
        with np.load(folder / LABELS_FILE, allow_pickle=False) as stored:
            labels = {k: stored[k] for k in stored.files}
    members = []
    for seed in seeds:
        member = read_seed(folder / f"seed{seed}")
        if member is None:
            raise FileNotFoundError(f"{folder / f'seed{seed}' / RESULT_FILE}: seed {seed} has not finished")
        members.append(member)
    return RunResult(RunSpec.from_dict(run["spec"]), run["data"], run.get("data_hash"), labels, members,
                     folder=folder)


# ======================================================================================
# Records: runs as JSON, without weights
# ======================================================================================
RECORD_FORMAT = 2  # 2: runs with their test outputs (or metric-only), labels, provenance
RECORDED_DIR = Path(__file__).parent / "resources" / "recorded"  # the records that ship with cmnlib


def _encode(array: np.ndarray) -> dict:
    """An array as compact JSON: little-endian bytes in base64, with dtype and shape."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder("<")
    return {"dtype": dtype.str, "shape": list(array.shape),
            "base64": base64.b64encode(array.astype(dtype).tobytes()).decode("ascii")}


def _decode(blob: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(blob["base64"]), dtype=np.dtype(blob["dtype"])).reshape(blob["shape"]).copy()


def run_payload(result: RunResult, splits=("test",)) -> dict:
    """``result`` as JSON-able data for a record: the spec, the data, the labels and each
    seed's outputs on ``splits`` (compact), curves, recorded metrics and provenance, and
    the run folder's name (to tell when the record goes stale)."""
    stored = [s for s in splits if result.has_outputs(s)]
    return {"spec": result.spec.to_dict(), "data": result.data, "data_hash": result.data_hash,
            "run": None if result.folder is None else Path(result.folder).name,
            "labels": {s: _encode(result.labels[s]) for s in stored} or None,
            "members": [{"seed": m.seed, "best_epoch": m.best_epoch, "epochs_run": m.epochs_run,
                         "history": m.history, "train_seconds": m.train_seconds,
                         "metrics": {s: (result.metrics(s)[i]) for s in SPLITS if result.metrics(s)[i]},
                         "outputs": {s: _encode(m.outputs[s]) for s in stored} or None,
                         "provenance": m.provenance}
                        for i, m in enumerate(result.members)],
            "ensemble": {s: result.ensemble(s) for s in SPLITS if result.ensemble(s)}}


def from_payload(payload: dict) -> RunResult:
    """The inverse of :func:`run_payload`: a RunResult marked ``recorded``, no folder."""
    labels = None if not payload.get("labels") else {s: _decode(b) for s, b in payload["labels"].items()}
    members = [SeedResult(seed=m["seed"], best_epoch=m["best_epoch"], epochs_run=m["epochs_run"],
                          history=m["history"], train_seconds=m["train_seconds"],
                          outputs=None if not m.get("outputs") else {s: _decode(b) for s, b in m["outputs"].items()},
                          recorded_metrics=m.get("metrics", {}), provenance=m.get("provenance"))
               for m in payload["members"]]
    return RunResult(RunSpec.from_dict(payload["spec"]), payload["data"], payload.get("data_hash"), labels,
                     members, folder=None, recorded=True, recorded_ensemble=payload.get("ensemble", {}),
                     recorded_run=payload.get("run"))


@dataclass
class Record:
    """Runs too long to train in CI, trained once and shipped as JSON (no weights), or the
    same runs trained here again (``recorded`` False). ``call``: what trained them (a
    study's arguments); ``ceilings``: the data's Bayes ceilings; ``constant``: the constant
    predictor's headline score in percent; ``provenance``: the machine, torch and date that
    trained them; ``bayes_rules``: the Bayes rule on the test split of the synthetic data the
    runs were scored on (None for real data, or a record written before rules were kept):
    ``truth`` (the split's true classes), ``classes``, ``predicted`` (subset -> the
    rule's classes) and ``f1`` (the F1 ``metric`` and, under ``predicted``, the classes of
    each subset's F1-optimal rule), so that each run can be judged against the rule utterance by
    utterance without generating the data again (:func:`cmnlib.studies.bayes.record_rule`)."""

    name: str
    title: str
    description: str
    call: dict
    data: str
    data_hash: str | None
    ceilings: dict | None
    constant: float | None
    runs: dict[str, RunResult]
    provenance: dict
    recorded: bool = True
    bayes_rules: dict | None = None

    @property
    def metric_only(self) -> bool:
        """True when some run holds no test outputs (metrics as written, nothing new computable)."""
        return any(r.metric_only for r in self.runs.values())

    @property
    def trainer(self) -> int:
        """The trainer version that trained the runs (:data:`cmnlib.spec.TRAINER_VERSION`):
        as the provenance says, else 2, the version of every record written before it said."""
        return int(self.provenance.get("trainer", 2))


_RECORD_KEYS = ("name", "title", "description", "call", "data", "data_hash", "ceilings", "constant", "runs",
                "provenance")


def write_record(path: str | Path, record: Record) -> Path:
    """``record`` as JSON at ``path``, written whole or not at all (run order kept)."""
    payload = {"format": RECORD_FORMAT, "name": record.name, "title": record.title,
               "description": record.description, "call": record.call, "provenance": record.provenance,
               "data": record.data, "data_hash": record.data_hash, "ceilings": record.ceilings,
               "constant": record.constant, "runs": {k: run_payload(r) for k, r in record.runs.items()}}
    if record.bayes_rules is not None:
        payload["bayes_rules"] = rules_payload(record.bayes_rules)
    return write_json(path, payload)


def rules_payload(rules: dict) -> dict:
    """A record's ``bayes_rules`` (see :class:`Record`) as JSON-able data (compact arrays)."""
    payload = {"split": rules["split"], "classes": int(rules["classes"]), "truth": _encode(rules["truth"]),
               "predicted": {subset: _encode(p) for subset, p in rules["predicted"].items()}}
    if rules.get("f1") is not None:
        payload["f1"] = {"metric": rules["f1"]["metric"],
                         "predicted": {subset: _encode(p) for subset, p in rules["f1"]["predicted"].items()}}
    return payload


def _rules_from_payload(path: Path, payload: dict | None) -> dict | None:
    if payload is None:
        return None
    try:
        rules = {"split": payload["split"], "classes": int(payload["classes"]), "truth": _decode(payload["truth"]),
                 "predicted": {subset: _decode(p) for subset, p in payload["predicted"].items()}}
        if "f1" in payload:  # absent from records written before the F1-optimal rules were kept
            rules["f1"] = {"metric": str(payload["f1"]["metric"]),
                           "predicted": {subset: _decode(p) for subset, p in payload["f1"]["predicted"].items()}}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: key 'bayes_rules' is not readable ({error!r}; expected split, classes, truth and "
                         f"predicted as written by cmnlib.results.write_record)") from None
    kept = [*rules["predicted"].values(), *(rules["f1"]["predicted"].values() if "f1" in rules else ())]
    if any(p.shape != rules["truth"].shape for p in kept):
        raise ValueError(f"{path}: key 'bayes_rules': a rule predicts another number of utterances than the "
                         f"split's {len(rules['truth'])}")
    return rules


def read_record(path: str | Path) -> Record:
    """A record written by :func:`write_record`; a missing file, another format or a missing
    key is one ValueError naming the file and what was expected."""
    path = Path(path)
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.json"))
        raise ValueError(f"{path}: no such record; recorded runs: {', '.join(known) or 'none'}")
    try:
        payload = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not a readable record (expected JSON: {error})") from None
    if payload.get("format") != RECORD_FORMAT:
        raise ValueError(f"{path}: record format {payload.get('format')!r}, expected {RECORD_FORMAT}")
    missing = [k for k in _RECORD_KEYS if k not in payload]
    if missing:
        raise ValueError(f"{path}: key {missing[0]!r} is missing (expected a record written by "
                         f"cmnlib.results.write_record)")
    return Record(**{k: payload[k] for k in _RECORD_KEYS if k != "runs"},
                  runs={k: from_payload(run) for k, run in payload["runs"].items()},
                  bayes_rules=_rules_from_payload(path, payload.get("bayes_rules")))
