"""Snakemake entry point: an adaptive study's rounds of one dataset as a table (rounds.csv)."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import json

from transferlaw.io import write_csv
from transferlaw.law.adaptive import rounds_table
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    records = []
    for path in snakemake.input:
        with open(path) as fh:
            records.append(json.load(fh))
    table = rounds_table(sorted(records, key=lambda r: r["round"]))
    write_csv(table, snakemake.output[0])
    print(table.to_string(index=False))
