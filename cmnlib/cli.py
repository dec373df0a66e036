"""The command line: ``python -m cmnlib <command>`` (also installed as ``cmn``).

Commands: ``synth`` (write a synthetic set in the real formats), ``inspect`` (validate
and describe data), ``featurize`` (transcripts and labels to a text-only data set),
``train`` (train models and ensembles), ``reproduce`` (run the notebook sequence into
reports/), ``notebooks`` (copy the shipped notebooks into a folder), ``runs`` (the trained
runs on disk; pruning), ``bench`` (speed and memory benchmark).

Each command imports what it needs inside its function, on purpose: ``cmn --help`` and
``cmn inspect`` answer without loading torch, papermill or the benchmark.
"""
from __future__ import annotations

import argparse
import os
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
    from .metrics import is_percent, metric
    from .model import build_model
    from .results import summary_name
    from .train import TRAIN_PROFILES, RunSpec, run_dir, seed_list, train_seeds
    from .train_stacked import stack_refusal, stack_size, train_group
    try:
        bundle = load_dataset(args.dataset, args.data, scale=args.scale)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:  # the data may lack a modality: choose what it has, or say which flag to change
        modalities, chosen = options.choose_modalities(args.model, args.modalities, bundle["train"].modalities,
                                                       args.data or bundle.source_label)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train_config = TRAIN_PROFILES[args.profile]
    changes = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size),
                                  ("device", args.device), ("precision", args.precision)) if v is not None}
    spec = RunSpec(model=args.model, dataset=args.dataset, head=args.head, modalities=modalities,
                   profile=args.profile, model_overrides=_overrides(args.set),
                   train=replace(train_config, **changes))
    try:  # a bad --set or modality subset: one clear line before any training starts
        resolved = spec.resolved()
        build_model(resolved.model, resolved.head, bundle.feature_dims, resolved.modalities,
                    resolved.profile, **resolved.model_overrides)
    except (TypeError, ValueError) as error:
        print(f"error: cannot build {args.model} with modalities={modalities!r}, "
              f"--set {args.set}: {error}", file=sys.stderr)
        return 2
    seeds = args.seeds if args.seeds is not None else config.default_seeds(args.profile)
    root = Path(args.out) if args.out else None
    stack = args.stack or stack_size(resolved.train.device)
    refusal = stack_refusal(spec, bundle) if stack > 1 else None
    print(f"training {spec.label} on {bundle.source_label}, {seeds} seed(s) ({chosen})"
          + (f"; {min(stack, seeds)} seeds at a time, stacked" if stack > 1 and not refusal and seeds > 1 else "")
          + (f"; one seed at a time: {refusal}" if refusal else ""))
    if stack > 1 and not refusal:
        train_group(spec, bundle, seed_list(seeds), run_dir(spec, bundle, root), stack=stack)
    result = train_seeds(spec, bundle, seeds, root=root)
    names = result.metric_names()
    metric_keys = [k for k in config.dataset_info(args.dataset).key_metrics if k in names]
    metric_keys = metric_keys or names[:3]  # another head than the data set's default

    def shown(key: str, value: float) -> str:
        name = metric(key, args.dataset).label + (" (has 0)" if key.endswith("_has0") else "")
        return f"{name} {100 * value:.1f}" if is_percent(key) else f"{name} {value:.3f}"

    for member, found in zip(result.members, result.metrics()):
        values = ", ".join(shown(k, found[k]) for k in metric_keys)
        print(f"  seed {member.seed}: best epoch {member.best_epoch}/{member.epochs_run}, test {values}")
    print("  mean ± std: " + ", ".join(f"{shown(k, result.mean(k))} ± "
                                        f"{(100 if is_percent(k) else 1) * result.std(k):.{1 if is_percent(k) else 3}f}"
                                        for k in metric_keys))
    print("  ensemble:   " + ", ".join(shown(k, result.ensemble()[k]) for k in metric_keys))
    if any(k.endswith(("_has0", "_non0")) for k in metric_keys):
        print("  (has 0: non-negative against negative over every utterance; non-zero: positive against negative, "
              "utterances labelled 0 left out; rates in percent)")
    print(f"  written to {result.folder} ({summary_name(result.seeds)}, seed*/result.json, checkpoints)")
    return 0


def _featurized_for_reproduce(args) -> int | None:
    """``reproduce --data label.csv``: transcripts and labels (MMSA's layout) become a
    text-only set first (``cmn featurize``), kept under the data folder by the csv's
    SHA-256 so that a second run reuses it; ``args`` then point at it. Returns an exit
    status when that fails (one line), else None."""
    import hashlib

    from .data import DataError
    from .data.featurize import featurize
    from .data.sources import data_dir
    from .reproduce import caller_path
    csv = Path(caller_path(args.data))
    if not csv.is_file():
        print(f"error: {csv}: file not found (--data: a label.csv, a data file or a folder)", file=sys.stderr)
        return 2
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()[:12]
    folder = data_dir() / "featurized" / f"{csv.stem}-{digest}"
    explicit = args.dataset is not None
    found = sorted(folder.glob("*_text_*.pkl"))
    if found and (not explicit or found[0].name.startswith(f"{args.dataset}_text_")):
        path = found[0]
        print(f"reproduce: {csv.name} was featurized before: {path}")
    else:
        print(f"reproduce: {csv.name} holds transcripts and labels: featurizing them first (cmn featurize) -> {folder}")
        try:
            path = featurize(csv, folder, dataset=args.dataset if explicit else None)
        except (DataError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    args.data, args.dataset = str(path), path.name.split("_text_")[0]
    return None


def _cmd_reproduce(args) -> int:
    from .reproduce import reproduce, runs_first_processes
    try:
        runs_first_processes(args.profile)  # a malformed $CMN_POOL_WORKERS: one line, before anything runs
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.data and args.data.lower().endswith(".csv"):
        failed = _featurized_for_reproduce(args)
        if failed is not None:
            return failed
    datasets = tuple(args.dataset.split(",")) if args.dataset else None  # None: reproduce's default
    return reproduce(profile=args.profile, datasets=datasets, data=args.data,
                     seeds=args.seeds, only=args.only.split(",") if args.only else None,
                     out=args.out, in_place=args.in_place, precision=args.precision, workers=args.jobs,
                     runs_only=args.runs_only)


def _cmd_notebooks(args) -> int:
    from .reproduce import write_notebooks
    try:
        written = write_notebooks(args.out)
    except FileExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.out} (the notebook sequence: executed .ipynb and their .py sources)")
    print("  open them in JupyterLab, or run them all: cmn reproduce (it uses ./notebooks when present)")
    return 0


def _cmd_featurize(args) -> int:
    from .data import DataError
    from .data.featurize import featurize
    try:
        path = featurize(args.labels, args.out, dataset=args.dataset, max_words=args.max_words)
    except (DataError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dataset = Path(path).name.split("_text_")[0]  # featurize names its file <dataset>_text_<encoder>.pkl
    print(f"wrote {path}")
    print(f"  train on it: cmn train --dataset {dataset} --data {path} --model cmn --modalities L")
    return 0


def _cmd_runs(args) -> int:
    from .inventory import inventory, prune
    from .train import runs_root
    root = Path(args.root) if args.root else runs_root()
    if args.prune or args.prune_stale:
        table = inventory(root)
        names = list(args.prune) + (list(table.loc[table.state != "current", "run"]) if args.prune_stale else [])
        try:
            removed = prune(root, list(dict.fromkeys(names)))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        for folder in removed:
            print(f"removed {folder}")
        print(f"{len(removed)} run folder(s) removed from {root}")
        return 0
    table = inventory(root)
    if table.empty:
        print(f"no runs in {root}")
        return 0
    print(table.to_markdown(index=False))
    stale = int((table.state != "current").sum())
    print(f"\n{len(table)} run folder(s) in {root}, {table.MB.sum():.1f} MB"
          + (f"; {stale} stale (trained by an earlier trainer or loader and never read again: "
             f"cmn runs --prune-stale removes them)" if stale else ""))
    return 0


def _cmd_bench(args) -> int:
    from .bench import run_from_args
    return run_from_args(args)


RUNS_FOLDER_HELP = "runs folder (default: $CMN_RUNS_DIR, else data/runs under $CMN_HOME, the checkout or this folder)"


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
    feat.add_argument("--max-words", type=options.positive_int, default=50,
                      help="words kept per transcript (the first ones)")
    feat.set_defaults(func=_cmd_featurize)

    tr = sub.add_parser("train", help="train a model (several seeds and their ensemble)")
    options.add_data_options(tr)
    options.add_model_options(tr)
    tr.add_argument("--seeds", type=options.positive_int, default=None, help="default: 2 (quick) or 10 (paper)")
    tr.add_argument("--batch-size", type=options.positive_int, default=None)
    tr.add_argument("--device", default=None, help="cpu or cuda")
    tr.add_argument("--stack", type=options.positive_int, default=None, metavar="K",
                    help="train K seeds of a CMN as one computation (weights stacked along a seed dimension; the "
                         "same results up to float rounding). Default: $CMN_STACK, else 1 on a CPU, where it was "
                         "measured slower, and 10 on a GPU")
    options.add_precision_option(tr, default=None)
    tr.add_argument("--out", default=None, help=RUNS_FOLDER_HELP)
    tr.set_defaults(func=_cmd_train)

    repro = sub.add_parser("reproduce", help="run the notebook sequence headlessly into reports/")
    repro.add_argument("--profile", choices=list(config.PROFILES), default="quick")
    repro.add_argument("--dataset", default=None,
                       help=f"comma-separated, from {', '.join(config.DATASETS)} (default: "
                            f"{','.join(config.synthetic_datasets())}, the synthetic stand-ins)")
    repro.add_argument("--data", default=None,
                       help="path to real files (a MulT or MMSA pickle, a folder of .csd files, or MMSA's label.csv "
                            "of transcripts, featurized first), relative to this folder or absolute "
                            "(default: synthetic)")
    repro.add_argument("--seeds", type=options.positive_int, default=None, help="seeds per model (default: profile's)")
    repro.add_argument("--only", default=None, help="comma-separated notebook prefixes, e.g. 02,03")
    repro.add_argument("--out", default=None,
                       help="report folder (default: reports/<profile> under $CMN_HOME, the checkout or this folder)")
    repro.add_argument("--in-place", action="store_true",
                       help="re-execute notebooks/ in place instead (to refresh committed outputs)")
    options.add_precision_option(repro)
    repro.add_argument("--jobs", type=options.positive_int, default=None, metavar="N",
                       help="notebooks run at once, each after those it depends on and with its share of the cores "
                            "(default: 2 for the quick profile on two cores or more, else 1; --in-place runs one at "
                            "a time)")
    repro.add_argument("--runs-only", action="store_true",
                       help="train (or find in the cache) every run the selected notebooks train, and run no "
                            "notebook: a first run trains them all up front anyway, in one pool of worker processes")
    repro.set_defaults(func=_cmd_reproduce)

    nbs = sub.add_parser("notebooks", help="write the notebook sequence shipped with cmnlib into a folder")
    nbs.add_argument("--out", default="notebooks", help="folder to write (default: ./notebooks); existing files "
                     "are never overwritten")
    nbs.set_defaults(func=_cmd_notebooks)

    runs = sub.add_parser("runs", help="list the trained runs on disk, or prune the ones you name")
    runs.add_argument("--root", default=None, help=RUNS_FOLDER_HELP)
    runs.add_argument("--prune", nargs="+", default=[], metavar="RUN", help="remove these run folders (by name)")
    runs.add_argument("--prune-stale", action="store_true",
                      help="remove every stale run folder (its name no longer matches its spec: never read again)")
    runs.set_defaults(func=_cmd_runs)

    bench = sub.add_parser("bench", help="speed and memory benchmark (CMN fast vs plain reference, MulT, data)")
    options.add_bench_options(bench)
    bench.set_defaults(func=_cmd_bench)
    return parser


def _one_line_warnings(message, category, filename, lineno, file=None, line=None):
    """The data and derived-file warnings as one line each (they name the file and why)."""
    print(f"warning: {message}", file=file or sys.stderr)


def _disk_error(error: OSError) -> str | None:
    """One line for a full disk, a read-only folder or missing permissions: the file or
    folder, the operation, and for a full disk the free space; None for other errors."""
    import errno
    import shutil
    where = Path(error.filename) if error.filename else None
    folder = where.parent if where is not None else Path.cwd()
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        try:
            free = f"{shutil.disk_usage(folder).free / 2 ** 20:.0f} MB free"
        except OSError:
            free = "free space unknown"
        return (f"no space left on the device while writing {where or folder} ({free}); nothing was left "
                f"half-written: free some space and run the same command again to continue")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {where or folder}: {error.strerror.lower()}; choose a folder you can write "
                f"(--out, $CMN_DATA_DIR, $CMN_RUNS_DIR) and run the command again")
    return None


def main(argv: list[str] | None = None) -> int:
    import warnings
    args = build_parser().parse_args(argv)
    from .atomic import DerivedFileWarning
    from .data.errors import DataWarning
    previous = warnings.showwarning

    def show(message, category, *rest, **kw):
        if issubclass(category, (DerivedFileWarning, DataWarning)):
            return _one_line_warnings(message, category, *rest, **kw)
        return previous(message, category, *rest, **kw)

    warnings.showwarning = show
    try:
        return args.func(args)
    except OSError as error:  # a full disk or a folder that cannot be written: one line, no traceback
        line = _disk_error(error)
        if line is None or os.environ.get("CMN_DEBUG"):
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: every file is written atomically, so nothing is half-saved
        if os.environ.get("CMN_DEBUG"):
            raise
        print("interrupted: what was saved is kept (a rerun resumes the runs and rebuilds the report)",
              file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())
