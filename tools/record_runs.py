"""Train the alignment ablation's long runs and write their records (test outputs, curves,
specs and the Bayes rules on the test split, no weights) to ``cmnlib/resources/recorded/``,
which notebook 08 shows and CI never retrains.

Run by a maintainer after a change that alters training (a test fails when a record no
longer matches the runs today's code would train); runs already in ``data/runs`` are read
from there. About an hour and a half on 2 CPU cores for all of them.

    python tools/record_runs.py                 # every record in cmnlib.studies.alignment.ALIGNMENT_RECORDS
    python tools/record_runs.py NAME [NAME ...]
    python tools/record_runs.py --rules [NAME ...]   # add the Bayes rules to records written without them
"""
import sys

from cmnlib.studies import alignment


def main(args: list[str]) -> None:
    rules_only = "--rules" in args
    names = [a for a in args if a != "--rules"] or list(alignment.ALIGNMENT_RECORDS)
    for name in names:
        if name not in alignment.ALIGNMENT_RECORDS:
            raise SystemExit(f"unknown record {name!r}; known: {', '.join(alignment.ALIGNMENT_RECORDS)}")
        if rules_only:
            print(f"{name}: Bayes rules added to", alignment.keep_rules(name), flush=True)
            continue
        print(f"{name}: {alignment.ALIGNMENT_RECORDS[name]['description']}", flush=True)
        written = alignment.record_alignments(name, **alignment.ALIGNMENT_RECORDS[name], processes=2)
        print("  written to", written, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
