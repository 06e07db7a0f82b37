"""Snakemake entry point: results/summary.md from the fits, bootstrap, cross-validation and advice, and the
tables of a study with several methods, models or seeds."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import pandas as pd

from transferlaw.io import write_text
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.fit import FitRecord
from transferlaw.report.study import compute_sentence, exponent_variation_sentence
from transferlaw.report.summary import beyond_markdown, summary_markdown, summary_rst
from transferlaw.runlog import log_to


def table(name):
    """A named input table, or None where the study has none (the input is then an empty list)."""
    path = snakemake.input.get(name)
    return pd.read_csv(path) if isinstance(path, str) and path else None


with log_to(snakemake.log[0]):
    datasets = snakemake.params.datasets
    inp = snakemake.input
    fits = {ds: FitRecord.read(p) for ds, p in zip(datasets, inp.fits, strict=True)}
    intervals = {s.dataset: s for s in map(BootstrapSummary.read, inp.intervals)}
    crossval = {}
    for path in inp.crossval:
        df = pd.read_csv(path)
        if len(df):  # a study too small to cross-validate writes an empty table
            crossval[str(df["dataset"].iloc[0])] = df
    advice = {ds: pd.read_csv(p) for ds, p in zip(datasets, inp.advice, strict=True)}
    where, title = snakemake.params.where, snakemake.params.title  # where: the paths the page names
    text = summary_markdown(fits, intervals, crossval, title=title, advice=advice, where=where)
    # what the paper reports beside its fits: eq. 3's compute, section 5.1's check of the exponents
    study = [compute_sentence(pd.read_csv(inp.compute))]
    if sentence := exponent_variation_sentence(intervals):
        study.append(sentence)
    text = text.rstrip("\n") + "\n\n## The study\n\n" + "".join(f"- {s}\n" for s in study)
    beyond = beyond_markdown(table("methods"), table("gap"), table("trend"), table("noise"), where=where)
    if beyond:
        text = text.rstrip("\n") + "\n\n" + beyond
    write_text(text, snakemake.output.markdown)
    description = open(snakemake.input.description).read()
    write_text(summary_rst(fits, intervals, crossval, description, advice, where), snakemake.output.landing)
    print(text)
