"""Snakemake entry point: fit the transfer law to the runs of one (dataset, model, method)."""

from transferlaw.io import write_json
from transferlaw.law.fit import Columns, fit_table
from transferlaw.runlog import log_to
from transferlaw.schema import read_model_runs

with log_to(snakemake.log[0]):
    f, model, method = snakemake.params.fit, snakemake.params.model, snakemake.params.method
    table = read_model_runs(snakemake.input[0], model, method)
    dataset = snakemake.wildcards.dataset
    # a dataset whose runs cannot be fitted gets a record that says why, not an error: the others go on
    result = fit_table(
        table,
        form=f["form"],
        columns=Columns(p=f["p"], f=f["f"]),
        keys=snakemake.params.remedies,
        record_unfitted=True,
    )[dataset]
    result = result.with_runs(
        model=model,
        method=method,
        n_seeds=int(table["seed"].nunique()),
        model_n_params=int(table["n_params"].iloc[0]) if len(table) else 0,
    )
    write_json(result.to_json(), snakemake.output[0])
    print(result.to_json())
