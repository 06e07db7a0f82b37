"""Snakemake entry point: one dataset's run records -> one validated table, checked against the pins."""

import json
from pathlib import Path

from transferlaw.checkpoints import stale_records
from transferlaw.runlog import log_to
from transferlaw.schema import read_records, write_records

with log_to(snakemake.log[0]):
    table = read_records(list(snakemake.input.runs))
    pins = [json.loads(Path(p).read_text()) for p in snakemake.input.pins]
    stale = stale_records(table, {(p["model"], p["revision"]): p["commit"] for p in pins})
    if stale:
        raise RuntimeError(
            "runs of another checkpoint than the one now pinned (delete their records to rerun them):\n  "
            + "\n  ".join(stale)
        )
    write_records(table, snakemake.output[0])
    print(table.drop(columns="eval_curve").to_string())
