"""``cmn bench --parity``: does mixed precision (bf16) change what CMN learns? The quick
profile's CMN (L+A) trained in fp32 and in bf16 with the same seeds on both synthetic sets,
judged over the seeds (:func:`cmnlib.studies.precision.precision_findings`), written to
``parity.json`` and ``parity.md``. Runs are cached like every other run."""
from __future__ import annotations

from pathlib import Path

from .. import findings
from ..atomic import write_json, write_text
from ..config import synthetic_datasets
from ..data import load_dataset
from ..metrics import headline
from ..precision import cpu_features
from ..studies import precision as study


def run_parity(out: str | Path = "reports/bench", datasets=None, seeds: int | None = None,
               profile: str = study.PARITY.profile, echo: bool = True, sources: dict | None = None) -> dict:
    """Train, judge and write the parity study (:data:`cmnlib.studies.precision.PARITY`);
    returns {dataset: {'data', 'scores', 'seconds', 'findings'}}. ``seeds``: default the
    study's declared number; ``sources``: dataset -> data path (default: the synthetic
    quick sets)."""
    seeds = study.PARITY.seeds if seeds is None else seeds
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    declared = "as declared" if seeds == study.PARITY.seeds else f"NOT the declared {study.PARITY.seeds}"
    results, lines = {}, [f"# bf16 against fp32 (CMN L+A, {profile} profile, {seeds} seeds, {declared})", "",
                          f"Equivalence margin: ±{study.PARITY.margin:g} points, declared before the runs: "
                          f"{study.PARITY.why}. Two one-sided tests on bf16 minus fp32, paired by seed.", "",
                          "CPU features: " + ", ".join(f"{k} {'yes' if v else 'no'}"
                                                       for k, v in cpu_features().items()) + ".", ""]
    for dataset in datasets or synthetic_datasets():
        bundle = load_dataset(dataset, (sources or {}).get(dataset, "synthetic"), scale="quick")
        trained = study.train_precisions(bundle, profile, seeds, progress=echo)
        found = study.precision_findings(dataset, trained)
        metric = headline(dataset).key
        results[dataset] = {"data": bundle.source_label,
                            "scores": {p: r.scores(metric) for p, r in trained.items()},
                            "seconds": {p: sum(m.train_seconds for m in r.members) for p, r in trained.items()},
                            "findings": findings.findings_table(found).to_dict("records")}
        lines += [f"## {dataset}: {bundle.source_label}", "",
                  study.precision_table(dataset, trained).to_markdown(index=False), "",
                  findings.bullets(found), ""]
    write_json(out / "parity.json", results)
    write_text(out / "parity.md", "\n".join(lines))
    if echo:
        print("\n".join(lines))
    return results
