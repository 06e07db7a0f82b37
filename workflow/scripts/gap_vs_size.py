"""Snakemake entry point: G against model size N per dataset and method, and the trend G(N) where it can be
fitted."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import pandas as pd

from transferlaw.io import write_csv, write_text
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.compare import gap_markdown, gap_table, gap_trend, keyed
from transferlaw.law.fit import FitRecord
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    keys = snakemake.params.fitted
    summaries = keyed(keys, [BootstrapSummary.read(p) for p in snakemake.input.summaries])
    samples = keyed(keys, [pd.read_parquet(p) for p in snakemake.input.samples])
    fits = keyed(keys, [FitRecord.read(p) for p in snakemake.input.fits])
    n_params = {model: fit.model_n_params for (_, model, _), fit in fits.items()}
    table = gap_table(summaries, n_params)
    trend = gap_trend(table, samples)
    write_csv(table, snakemake.output.table)
    write_csv(trend, snakemake.output.trend)
    text = gap_markdown(table, trend)
    write_text(text, snakemake.output.md)
    print(text)
