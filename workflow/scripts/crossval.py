"""Snakemake entry point: step-wise cross-validation of every configured law form on one dataset.

Forms that need p > 0 are scored without the step-0 runs; the `n_dropped` column counts them. A form with no
split to score, or that cannot be fitted to the runs, gets one row whose `status` and `message` say why.
"""

from transferlaw.io import write_csv
from transferlaw.law.crossval import best_by_form, crossval_table
from transferlaw.law.fit import Columns
from transferlaw.runlog import log_to
from transferlaw.schema import read_model_runs

with log_to(snakemake.log[0]):
    fit, analysis = snakemake.params.fit, snakemake.params.analysis
    table = read_model_runs(snakemake.input[0], fit["model"], fit["method"])
    cv = crossval_table(
        table,
        forms=analysis["crossval_forms"],
        columns=Columns(p=fit["p"], f=fit["f"]),
        skip=analysis["crossval_skip"],
        l2_exponents=analysis["l2_exponents"],
        l2_coefficients=analysis["l2_coefficients"],
        workers=snakemake.threads,
        form=fit["form"],  # a dataset without this law gets rows that say why, as its fit does
        keys=snakemake.params.remedies,
    )
    write_csv(cv, snakemake.output[0])
    print(best_by_form(cv).to_string(index=False))
