"""The command line: ``python -m cmnlib <command>`` (also installed as ``cmn``).

Commands: ``synth`` (write a synthetic set in the real formats), ``inspect`` (validate
and describe data), ``train`` (train models and ensembles), ``reproduce`` (run the
notebook sequence into reports/), ``bench`` (speed and memory benchmark).
"""
from __future__ import annotations

import argparse
import json
import sys


def _cmd_synth(args) -> int:
    from .data.synthetic import generate
    summary = generate(args.dataset, args.out, scale=args.scale, seed=args.seed, progress=True)
    print(f"wrote a SYNTHETIC {args.dataset.upper()}-like set (scale={args.scale}, seed={args.seed}) to {args.out}")
    for split, size in summary["sizes"].items():
        print(f"  {split}: {size} samples")
    for file in summary["files"]:
        print(f"  {file}")
    print("Bayes ceilings (best achievable, from the generative process):")
    ceilings = summary["bayes_ceilings"]
    metric = "acc2_has0" if args.dataset == "mosei" else "accuracy"
    for subset in ("L", "A", "V", "LA", "LAV"):
        print(f"  {subset:<4} {metric} {100 * ceilings[subset][metric]:.1f}")
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


def _cmd_reproduce(args) -> int:
    from .reproduce import reproduce
    return reproduce(profile=args.profile, datasets=tuple(args.dataset.split(",")), data=args.data,
                     seeds=args.seeds, only=args.only.split(",") if args.only else None,
                     out=args.out or f"reports/{args.profile}", in_place=args.in_place)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write a synthetic data set in the real formats")
    synth.add_argument("--dataset", choices=["mosei", "iemocap"], required=True)
    synth.add_argument("--scale", choices=["quick", "paper"], default="quick")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_cmd_synth)

    inspect = sub.add_parser("inspect", help="validate and describe a data file or folder")
    inspect.add_argument("path")
    inspect.add_argument("--dataset", choices=["mosei", "mosi", "iemocap"], default=None,
                         help="needed only when the file name does not tell")
    inspect.set_defaults(func=_cmd_inspect)

    repro = sub.add_parser("reproduce", help="run the notebook sequence headlessly into reports/")
    repro.add_argument("--profile", choices=["quick", "paper"], default="quick")
    repro.add_argument("--dataset", default="mosei,iemocap", help="comma-separated: mosei,iemocap")
    repro.add_argument("--data", default=None, help="path to real files (default: synthetic)")
    repro.add_argument("--seeds", type=int, default=None, help="seeds per model (default: profile's)")
    repro.add_argument("--only", default=None, help="comma-separated notebook prefixes, e.g. 02,03")
    repro.add_argument("--out", default=None, help="report folder (default: reports/<profile>)")
    repro.add_argument("--in-place", action="store_true",
                       help="re-execute notebooks/ in place instead (to refresh committed outputs)")
    repro.set_defaults(func=_cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
