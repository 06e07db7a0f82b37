"""Snakemake entry point: an adaptive study's rounds of one dataset as a figure (PNG and PDF)."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import pandas as pd

from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.report import plots
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    rounds = pd.read_csv(snakemake.input.rounds, keep_default_na=True)
    rounds["stop"] = rounds["stop"].fillna("")
    ref = snakemake.input.get("reference")
    reference = BootstrapSummary.read(ref) if ref else None
    fig = plots.plot_adaptive(rounds, snakemake.params.target, reference, snakemake.wildcards.dataset)
    plots.save(fig, snakemake.output.png, snakemake.output.pdf)
    print(f"wrote {snakemake.output.png} and {snakemake.output.pdf}")
