"""Snakemake entry point: seed-to-seed spread of eval loss per cell, and run noise against each law's
residuals."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import pandas as pd

from transferlaw.io import write_csv, write_text
from transferlaw.law.compare import keyed
from transferlaw.law.fit import Columns, FitRecord
from transferlaw.law.noise import cell_noise, noise_markdown, noise_vs_residuals
from transferlaw.runlog import log_to
from transferlaw.schema import read_records

with log_to(snakemake.log[0]):
    runs = pd.concat([read_records(p) for p in snakemake.input.runs], ignore_index=True)
    fits = keyed(snakemake.params.fitted, [FitRecord.read(p) for p in snakemake.input.fits])
    fit = snakemake.params.fit
    cells = cell_noise(runs, columns=Columns(p=fit["p"], f=fit["f"]))
    summary = noise_vs_residuals(runs, fits)
    write_csv(cells, snakemake.output.cells)
    write_csv(summary, snakemake.output.summary)
    text = noise_markdown(cells, summary)
    write_text(text, snakemake.output.md)
    print(text)
