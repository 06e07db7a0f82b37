"""Snakemake entry point: results/summary.md from the fits, bootstrap, cross-validation and advice."""

import json

import pandas as pd

from transferlaw.io import write_text
from transferlaw.runlog import log_to
from transferlaw.summary import summary_markdown, summary_rst

with log_to(snakemake.log[0]):
    datasets = snakemake.params.datasets
    inp = snakemake.input
    fits = {ds: json.loads(open(p).read()) for ds, p in zip(datasets, inp.fits, strict=True)}
    intervals = {json.loads(open(p).read())["dataset"]: json.loads(open(p).read()) for p in inp.intervals}
    crossval = {}
    for path in inp.crossval:
        df = pd.read_csv(path)
        crossval[str(df["dataset"].iloc[0])] = df
    advice = {ds: pd.read_csv(p) for ds, p in zip(datasets, inp.advice, strict=True)}
    text = summary_markdown(fits, intervals, crossval, title=snakemake.params.title, advice=advice)
    write_text(text, snakemake.output.markdown)
    description = open(snakemake.input.description).read()
    write_text(summary_rst(fits, intervals, crossval, description, advice), snakemake.output.landing)
    print(text)
