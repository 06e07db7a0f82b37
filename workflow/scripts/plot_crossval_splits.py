"""Snakemake entry point: Fig. 7, the step-wise cross-validation splits of one dataset, as PNG and PDF."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

from transferlaw.io import read_table
from transferlaw.law.fit import FitRecord
from transferlaw.report import plots
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    fit = FitRecord.read(snakemake.input.fit)
    runs = fit.runs(read_table(snakemake.input.runs), usable=False)  # the main law's runs
    fig = plots.plot_crossval_splits(runs, fit.form, fit.columns.p, dataset=snakemake.params.dataset)
    plots.save(fig, snakemake.output.png, snakemake.output.pdf)
    print(f"wrote {snakemake.output.png} and {snakemake.output.pdf}")
