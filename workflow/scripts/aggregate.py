"""Snakemake entry point: one dataset's run records -> one validated table, checked against the commits each
model's verdict pinned."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import json
from pathlib import Path

from transferlaw.runlog import log_to
from transferlaw.schema import read_records, write_records
from transferlaw.train.checkpoints import stale_records

with log_to(snakemake.log[0]):
    table = read_records(list(snakemake.input.runs))
    pinned = {}
    for path in snakemake.input.verdicts:
        verdict = json.loads(Path(path).read_text())
        pinned.update({(verdict["model"], rev): e["commit"] for rev, e in verdict["revisions"].items()})
    stale = stale_records(table, pinned)
    if stale:
        raise RuntimeError(
            "runs of another checkpoint than the one now pinned (delete their records to rerun them):\n  "
            + "\n  ".join(stale)
        )
    write_records(table, snakemake.output[0])
    print(table.drop(columns="eval_curve").to_string())
