"""Snakemake entry point: one per-dataset figure (which one: ``params.figure``), as PNG and PDF."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import pandas as pd

from transferlaw.io import read_table
from transferlaw.law.fit import Columns, FitRecord
from transferlaw.report import plots
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    name = snakemake.params.figure
    dataset = snakemake.wildcards.dataset
    inp = snakemake.input
    fit = FitRecord.read(inp.fit) if "fit" in inp.keys() else None
    runs = read_table(inp.runs) if "runs" in inp.keys() else None
    if runs is not None and fit is not None:  # the runs the law was fitted to, and those it left out
        runs = fit.runs(runs, usable=False)
    samples = pd.read_parquet(inp.samples) if "samples" in inp.keys() and inp.samples else None
    p_column = (fit.columns if fit is not None else Columns()).p
    what = {"cross_section": "fitted law through the data", "iso_loss": "iso-loss contours",
            "surface": "fitted surface", "bootstrap": "bootstrap distributions"}  # fmt: skip
    if name in what and not fit.fitted:  # the runs that exist, and why there is no law
        fig = plots.plot_no_law(runs, fit, what[name], dataset=dataset)
    elif name == "raw_data":
        fig = plots.plot_raw_data(runs, p_column, dataset=dataset)
    elif name == "cross_section":
        fig = plots.plot_cross_section(runs, fit, samples, dataset=dataset)
    elif name == "iso_loss":
        fig = plots.plot_iso_loss(runs, fit, dataset=dataset)
    elif name == "surface":
        fig = plots.plot_surface(runs, fit, dataset=dataset)
    elif name == "epochs":
        fig = plots.plot_epochs(runs, p_column, dataset=dataset)
    elif name == "bootstrap":
        fig = plots.plot_bootstrap(samples, fit, dataset=dataset)
    else:
        raise ValueError(f"unknown figure {name!r}")
    plots.save(fig, snakemake.output.png, snakemake.output.pdf)
    print(f"wrote {snakemake.output.png} and {snakemake.output.pdf}")
