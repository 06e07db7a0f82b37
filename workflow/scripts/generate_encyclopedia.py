"""Snakemake entry point: generate the fictional encyclopedia (deterministic, with a provenance file)."""

from transferlaw.data.encyclopedia import write_corpus
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    g = snakemake.params.generate
    write_corpus(snakemake.output.text, seed=g["seed"], n_entries=g["entries"])
    print(f"{g['entries']} entries (seed {g['seed']}) -> {snakemake.output.text}")
