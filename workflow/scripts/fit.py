"""Snakemake entry point: fit the transfer law to one dataset's runs."""

from transferlaw.fit import fit_table
from transferlaw.io import read_table, write_json
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    f = snakemake.params.fit
    table = read_table(snakemake.input[0])
    table = table[table["model"] == f["model"]]
    dataset = snakemake.wildcards.dataset
    result = fit_table(table, form=f["form"], group="dataset", p=f["p"], f=f["f"], loss="eval_loss")[dataset]
    result["model"] = f["model"]
    write_json(result, snakemake.output[0])
    print(result)
