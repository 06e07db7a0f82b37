"""Snakemake entry point: Fig. 7, the step-wise cross-validation splits of one dataset, as PNG and PDF."""

import json

from transferlaw.io import read_table
from transferlaw.report import plots
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    fit = json.loads(open(snakemake.input.fit).read())
    runs = read_table(snakemake.input.runs)
    if fit.get("model"):  # the runs the main law is fitted to
        runs = runs[runs["model"] == fit["model"]]
        if fit.get("method") and "method" in runs.columns:
            runs = runs[runs["method"] == fit["method"]]
    form = fit.get("form", snakemake.params.form)
    p_column = fit.get("p_column", "pretrain_step")
    fig = plots.plot_crossval_splits(runs, form, p_column, dataset=snakemake.params.dataset)
    plots.save(fig, snakemake.output.png, snakemake.output.pdf)
    print(f"wrote {snakemake.output.png} and {snakemake.output.pdf}")
