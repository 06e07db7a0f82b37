"""Snakemake entry point: the runs to do next on one dataset, from the study's grid of checkpoints x sizes."""

from transferlaw.io import write_csv
from transferlaw.law.advise import advise_table, grid_candidates
from transferlaw.law.fit import Columns
from transferlaw.runlog import log_to
from transferlaw.schema import read_model_runs

with log_to(snakemake.log[0]):
    fit, analysis, grid = snakemake.params.fit, snakemake.params.analysis, snakemake.params.grid
    table = read_model_runs(snakemake.input[0], fit["model"], fit["method"])
    advice = advise_table(
        table,
        grid_candidates(table, grid["steps"], grid["sizes"], fit["p"], fit["f"]),
        analysis["advice_runs"],
        form=fit["form"],
        columns=Columns(p=fit["p"], f=fit["f"]),
        target=analysis["advice_target"],
        cost=analysis["advice_cost"],
        n_samples=analysis["advice_samples"],
        seed=analysis["advice_seed"],
        keys=snakemake.params.remedies,  # without a law: the settings to change, then a space-filling batch
    )
    write_csv(advice, snakemake.output[0])
    print(advice.to_string(index=False))
