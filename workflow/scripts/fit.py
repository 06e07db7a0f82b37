"""Snakemake entry point: fit the transfer law to one dataset's runs."""

from transferlaw.fit import fit_table
from transferlaw.io import write_json
from transferlaw.runlog import log_to
from transferlaw.schema import read_model_runs

with log_to(snakemake.log[0]):
    f = snakemake.params.fit
    table = read_model_runs(snakemake.input[0], f["model"])
    dataset = snakemake.wildcards.dataset
    result = fit_table(table, form=f["form"], group="dataset", p=f["p"], f=f["f"], loss="eval_loss")[dataset]
    result["model"] = f["model"]
    write_json(result, snakemake.output[0])
    print(result)
