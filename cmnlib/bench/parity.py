"""``cmn bench --parity``: does mixed precision (bf16) change what CMN learns? The quick
profile's CMN (L+A) trained in fp32 and in bf16 with the same seeds on both synthetic sets,
judged over the seeds (:func:`cmnlib.tables.precision_findings`), written to
``parity.json`` and ``parity.md``. Runs are cached like every other run."""
from __future__ import annotations

import json
from pathlib import Path

from .. import findings, runs, tables
from ..config import headline
from ..data import load_dataset
from ..precision import cpu_features


def run_parity(out: str | Path = "reports/bench", datasets=("mosei", "iemocap"), seeds: int = 10,
               profile: str = "quick", echo: bool = True, sources: dict | None = None) -> dict:
    """Train, judge and write the parity study; returns {dataset: {'data', 'scores',
    'seconds', 'findings'}}. ``sources``: dataset -> data path (default: the synthetic
    quick sets)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, lines = {}, [f"# bf16 against fp32 (CMN L+A, {profile} profile, {seeds} seeds)", "",
                          "CPU features: " + ", ".join(f"{k} {'yes' if v else 'no'}"
                                                       for k, v in cpu_features().items()) + ".", ""]
    for dataset in datasets:
        bundle = load_dataset(dataset, (sources or {}).get(dataset, "synthetic"), scale="quick")
        summaries = runs.train_precisions(bundle, profile, seeds, progress=echo)
        found = tables.precision_findings(dataset, summaries)
        metric, label = headline(dataset)
        results[dataset] = {"data": bundle.source_label,
                            "scores": {p: tables.seed_scores(s, metric) for p, s in summaries.items()},
                            "seconds": {p: sum(m["train_seconds"] for m in s["members"]) for p, s in summaries.items()},
                            "findings": [f.__dict__ for f in found]}
        lines += [f"## {dataset}: {bundle.source_label}", "",
                  tables.precision_table(dataset, summaries).to_markdown(index=False), "",
                  findings.bullets(found), ""]
    (out / "parity.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    (out / "parity.md").write_text("\n".join(lines))
    if echo:
        print("\n".join(lines))
    return results
