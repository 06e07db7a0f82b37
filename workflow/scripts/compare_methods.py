"""Snakemake entry point: each method's law side by side, and the difference in G from the reference
method."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import pandas as pd

from transferlaw.io import write_csv, write_text
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.compare import keyed, method_markdown, method_table
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    keys = snakemake.params.fitted
    summaries = keyed(keys, [BootstrapSummary.read(p) for p in snakemake.input.summaries])
    samples = keyed(keys, [pd.read_parquet(p) for p in snakemake.input.samples])
    table = method_table(summaries, samples, reference=snakemake.params.reference)
    write_csv(table, snakemake.output.csv)
    text = method_markdown(table)
    write_text(text, snakemake.output.md)
    print(text)
