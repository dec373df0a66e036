"""Train the alignment ablation's long runs and write their records (summaries, no weights)
to ``cmnlib/resources/recorded/``, which notebook 08 shows and CI never retrains.

Run by a maintainer after a change that alters training (a test fails when a record no
longer matches the runs today's code would train); runs already in ``data/runs`` are read
from there. About an hour and a half on 2 CPU cores for all of them.

    python tools/record_runs.py                 # every record in cmnlib.runs.ALIGNMENT_RECORDS
    python tools/record_runs.py NAME [NAME ...]
"""
import sys

from cmnlib import runs


def main(names: list[str]) -> None:
    for name in names or list(runs.ALIGNMENT_RECORDS):
        if name not in runs.ALIGNMENT_RECORDS:
            raise SystemExit(f"unknown record {name!r}; known: {', '.join(runs.ALIGNMENT_RECORDS)}")
        print(f"{name}: {runs.ALIGNMENT_RECORDS[name]['description']}", flush=True)
        print("  written to", runs.record_alignments(name, **runs.ALIGNMENT_RECORDS[name], processes=2), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
