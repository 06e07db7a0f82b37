"""Snakemake entry point: a figure of a study with several models or seeds (``params.figure``), as PNG
and PDF."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import pandas as pd

from transferlaw.report import plots
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    name = snakemake.params.figure
    inp = snakemake.input
    if name == "gap_vs_size":
        fig = plots.plot_gap_vs_size(pd.read_csv(inp.table), pd.read_csv(inp.trend))
    elif name == "run_noise":
        fig = plots.plot_run_noise(pd.read_csv(inp.cells), pd.read_csv(inp.summary))
    else:
        raise ValueError(f"unknown figure {name!r}")
    plots.save(fig, snakemake.output.png, snakemake.output.pdf)
    print(f"wrote {snakemake.output.png} and {snakemake.output.pdf}")
