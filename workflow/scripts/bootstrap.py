"""Snakemake entry point: bootstrap the fitted law of one (dataset, model, method): samples and summary.

Resamples draw cells (checkpoint, fine-tune size) with replacement, each with all its seed replicates.
"""

from dataclasses import replace

from transferlaw.io import write_json, write_parquet
from transferlaw.law.bootstrap import bootstrap_table
from transferlaw.law.fit import Columns
from transferlaw.runlog import log_to
from transferlaw.schema import read_model_runs

with log_to(snakemake.log[0]):
    fit, analysis = snakemake.params.fit, snakemake.params.analysis
    model, method = snakemake.params.model, snakemake.params.method
    dataset = snakemake.wildcards.dataset
    table = read_model_runs(snakemake.input[0], model, method)
    summaries, samples = bootstrap_table(
        table,
        form=fit["form"],
        columns=Columns(p=fit["p"], f=fit["f"]),
        n_samples=analysis["bootstrap_samples"],
        seed=analysis["bootstrap_seed"],
        keys=snakemake.params.remedies,
        record_unfitted=True,  # a dataset without a law gets a summary that says why, and no resamples
    )
    record = replace(summaries[dataset], model=model, method=method).to_json()
    write_parquet(samples[dataset], snakemake.output.samples)
    write_json(record, snakemake.output.summary)
    print(record)
