"""The command line: ``python -m cmnlib <command>`` (also installed as ``cmn``).

Commands: ``synth`` (write a synthetic set in the real formats), ``inspect`` (validate
and describe data), ``featurize`` (transcripts and labels to a text-only data set),
``train`` (train models and ensembles), ``reproduce`` (run the notebook sequence into
reports/), ``bench`` (speed and memory benchmark).

Each command imports what it needs inside its function, on purpose: ``cmn --help`` and
``cmn inspect`` answer without loading torch, papermill or the benchmark.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from . import config, options


def _cmd_synth(args) -> int:
    from .data.synthetic import generate
    from .metrics import headline
    summary = generate(args.dataset, args.out, scale=args.scale, seed=args.seed, progress=True)
    print(f"wrote a SYNTHETIC {args.dataset.upper()}-like set (scale={args.scale}, seed={args.seed}) to {args.out}")
    for split, size in summary["sizes"].items():
        print(f"  {split}: {size} samples")
    for file in summary["files"]:
        print(f"  {file}")
    print("Bayes ceilings (best achievable, from the generative process):")
    ceilings = summary["bayes_ceilings"]
    metric = headline(args.dataset)
    for subset in ("L", "A", "V", "LA", "LAV"):
        print(f"  {subset:<4} {metric.label} {100 * ceilings[subset][metric.key]:.1f}")
    return 0


def _cmd_inspect(args) -> int:
    from .data.errors import DataError
    from .data.inspect import inspect_path
    try:
        lines = inspect_path(args.path, args.dataset)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    print("usable: yes")
    return 0


def _overrides(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs as a dict; a malformed pair ends the command with one line."""
    try:
        return config.parse_overrides(pairs)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def _cmd_train(args) -> int:
    from .data import load_dataset
    from .data.errors import DataError
    from .model import build_model
    from .train import TRAIN_PROFILES, RunSpec, train_seeds
    try:
        bundle = load_dataset(args.dataset, args.data, scale=args.scale)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train_config = TRAIN_PROFILES[args.profile]
    changes = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size),
                                  ("device", args.device), ("precision", args.precision)) if v is not None}
    spec = RunSpec(model=args.model, dataset=args.dataset, head=args.head, modalities=args.modalities,
                   profile=args.profile, model_overrides=_overrides(args.set),
                   train=replace(train_config, **changes))
    try:  # a bad --set or modality subset: one clear line before any training starts
        resolved = spec.resolved()
        build_model(resolved.model, resolved.head, bundle.feature_dims, resolved.modalities,
                    resolved.profile, **resolved.model_overrides)
    except (TypeError, ValueError) as error:
        print(f"error: cannot build {args.model} with modalities={args.modalities!r}, "
              f"--set {args.set}: {error}", file=sys.stderr)
        return 2
    seeds = args.seeds if args.seeds is not None else config.default_seeds(args.profile)
    print(f"training {spec.label} on {bundle.source_label}, {seeds} seed(s)")
    result = train_seeds(spec, bundle, seeds, root=Path(args.out) if args.out else None)
    names = result.metric_names()
    metric_keys = [k for k in config.dataset_info(args.dataset).key_metrics if k in names]
    metric_keys = metric_keys or names[:3]  # another head than the data set's default
    for member, found in zip(result.members, result.metrics()):
        values = ", ".join(f"{k} {found[k]:.4f}" for k in metric_keys)
        print(f"  seed {member.seed}: best epoch {member.best_epoch}/{member.epochs_run}, test {values}")
    print("  mean ± std: " + ", ".join(f"{k} {result.mean(k):.4f} ± {result.std(k):.4f}" for k in metric_keys))
    print("  ensemble:   " + ", ".join(f"{k} {result.ensemble()[k]:.4f}" for k in metric_keys))
    print(f"  written to {result.folder} (ensemble.json, seed*/result.json, checkpoints)")
    return 0


def _cmd_reproduce(args) -> int:
    from .reproduce import reproduce
    return reproduce(profile=args.profile, datasets=tuple(args.dataset.split(",")), data=args.data,
                     seeds=args.seeds, only=args.only.split(",") if args.only else None,
                     out=args.out or f"reports/{args.profile}", in_place=args.in_place, precision=args.precision)


def _cmd_featurize(args) -> int:
    from .data import DataError
    from .data.featurize import featurize
    try:
        path = featurize(args.labels, args.out, dataset=args.dataset, max_words=args.max_words)
    except (DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    print(f"  train on it: cmn train --dataset <its data set> --data {path} --model lstm_l")
    return 0


def _cmd_bench(args) -> int:
    from .bench import run_from_args
    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write a synthetic data set in the real formats")
    synth.add_argument("--dataset", choices=config.synthetic_datasets(), required=True)
    synth.add_argument("--scale", choices=["quick", "paper"], default="quick")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_cmd_synth)

    inspect = sub.add_parser("inspect", help="validate and describe a data file or folder")
    inspect.add_argument("path")
    inspect.add_argument("--dataset", choices=list(config.DATASETS), default=None,
                         help="needed only when the file name does not tell")
    inspect.set_defaults(func=_cmd_inspect)

    feat = sub.add_parser("featurize", help="MMSA's label.csv (transcripts, labels) -> a text-only data set")
    feat.add_argument("--labels", required=True, help="MMSA's label.csv")
    feat.add_argument("--out", required=True, help="output folder")
    feat.add_argument("--dataset", choices=config.mmsa_datasets(), default=None,
                      help="default: from the folder names (MOSI/label.csv) or the columns")
    feat.add_argument("--max-words", type=int, default=50, help="words kept per transcript (the first ones)")
    feat.set_defaults(func=_cmd_featurize)

    tr = sub.add_parser("train", help="train a model (several seeds and their ensemble)")
    options.add_data_options(tr)
    options.add_model_options(tr)
    tr.add_argument("--seeds", type=int, default=None, help="default: 2 (quick) or 10 (paper)")
    tr.add_argument("--batch-size", type=int, default=None)
    tr.add_argument("--device", default=None, help="cpu or cuda")
    options.add_precision_option(tr, default=None)
    tr.add_argument("--out", default=None, help="runs folder (default: data/runs, or $CMN_RUNS_DIR)")
    tr.set_defaults(func=_cmd_train)

    repro = sub.add_parser("reproduce", help="run the notebook sequence headlessly into reports/")
    repro.add_argument("--profile", choices=list(config.PROFILES), default="quick")
    repro.add_argument("--dataset", default=",".join(config.synthetic_datasets()),
                       help=f"comma-separated, from {', '.join(config.DATASETS)} (default: %(default)s)")
    repro.add_argument("--data", default=None, help="path to real files (default: synthetic)")
    repro.add_argument("--seeds", type=int, default=None, help="seeds per model (default: profile's)")
    repro.add_argument("--only", default=None, help="comma-separated notebook prefixes, e.g. 02,03")
    repro.add_argument("--out", default=None, help="report folder (default: reports/<profile>)")
    repro.add_argument("--in-place", action="store_true",
                       help="re-execute notebooks/ in place instead (to refresh committed outputs)")
    options.add_precision_option(repro)
    repro.set_defaults(func=_cmd_reproduce)

    bench = sub.add_parser("bench", help="speed and memory benchmark (CMN fast vs plain reference, MulT, data)")
    options.add_bench_options(bench)
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
