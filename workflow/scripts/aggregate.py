"""Snakemake entry point: one dataset's run records -> one validated table."""

from transferlaw.runlog import log_to
from transferlaw.schema import read_records, write_records

with log_to(snakemake.log[0]):
    table = read_records(list(snakemake.input))
    write_records(table, snakemake.output[0])
    print(table.drop(columns="eval_curve").to_string())
