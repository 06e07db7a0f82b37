"""Snakemake entry point: one cross-dataset figure (``params.figure``), as PNG and PDF."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import numpy as np
import pandas as pd

from transferlaw.io import read_table
from transferlaw.law.allocate import sweep_cost_ratio, sweep_gap
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.fit import FitRecord
from transferlaw.report import plots
from transferlaw.runlog import log_to


def budget_for(fit: FitRecord, runs: pd.DataFrame, costs: dict) -> float:
    """The budget of the study's own largest run, C_p·p_max + C_f·f_max, unless the config fixes one."""
    if costs.get("budget"):
        return float(costs["budget"])
    p_max = float(runs[fit.columns.p].max())
    f_max = float(runs[fit.columns.f].max())
    return costs["cost_pretrain"] * p_max + costs["cost_finetune"] * f_max


with log_to(snakemake.log[0]):
    name = snakemake.params.figure
    datasets = snakemake.params.datasets
    inp = snakemake.input
    if name == "parameters":
        intervals = {
            ds: BootstrapSummary.read(path) for ds, path in zip(datasets, inp.intervals, strict=True)
        }
        fig = plots.plot_parameters(intervals)
    elif name == "law_forms":
        fig = plots.plot_law_forms(pd.concat([pd.read_csv(path) for path in inp.crossval], ignore_index=True))
    elif name in ("allocation_gap", "allocation_cost"):
        costs = snakemake.params.costs
        fits = {ds: FitRecord.read(path) for ds, path in zip(datasets, inp.fits, strict=True)}
        runs = {ds: read_table(path) for ds, path in zip(datasets, inp.runs, strict=True)}
        no_law = [ds for ds, fit in fits.items() if not fit.fitted]  # nothing to allocate with
        fits = {ds: fit for ds, fit in fits.items() if fit.fitted}
        sweeps = {}
        if name == "allocation_gap":
            gaps_fit = [fit.params["G"] for fit in fits.values()] or [1.0]
            # a fixed range of plausible gaps (nats) widened to include every fitted G (a fit may put G ~ 0)
            lo = max(min(1e-3, min(gaps_fit) / 10), 1e-4)
            gaps = np.geomspace(lo, max(10.0, max(gaps_fit) * 10), 61)
            for ds, fit in fits.items():
                budget = budget_for(fit, runs[ds], costs)
                sweep = sweep_gap(
                    fit.params, fit.form, budget, costs["cost_pretrain"], costs["cost_finetune"], gaps
                )
                sweeps[ds] = sweep.assign(G_fit=fit.params["G"], budget=budget)
            fig = plots.plot_allocation_gap(sweeps, no_law)
        else:
            ratios = np.geomspace(1e-3, 1e4, 57)
            for ds, fit in fits.items():
                budget = budget_for(fit, runs[ds], costs)
                sweeps[ds] = sweep_cost_ratio(fit.params, fit.form, budget, costs["cost_pretrain"], ratios)
            fig = plots.plot_allocation_cost(sweeps, no_law)
        for ds, sweep in sweeps.items():
            print(ds, sweep.to_string(max_rows=10), sep="\n")
    else:
        raise ValueError(f"unknown figure {name!r}")
    plots.save(fig, snakemake.output.png, snakemake.output.pdf)
    print(f"wrote {snakemake.output.png} and {snakemake.output.pdf}")
