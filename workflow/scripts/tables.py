"""Snakemake entry point: Tables 2, 3 and 5, effective data transferred and Hernandez et al.'s fit."""

import json

import pandas as pd

from transferlaw.crossval import best_by_form
from transferlaw.io import read_table, write_csv, write_json, write_text
from transferlaw.runlog import log_to
from transferlaw.tables import interval_table, law_forms_table, parameter_table, to_markdown
from transferlaw.transfer import effective_data_table, hernandez_fit_table

with log_to(snakemake.log[0]):
    out = snakemake.output
    summaries = {}
    for path in snakemake.input.bootstrap:
        rec = json.loads(open(path).read())
        summaries[str(rec["dataset"])] = rec
    for table, csv, md in (
        (parameter_table(summaries), out.parameters_csv, out.parameters_md),
        (interval_table(summaries), out.intervals_csv, out.intervals_md),
        (
            law_forms_table(best_by_form(pd.concat(map(pd.read_csv, snakemake.input.crossval)))),
            out.law_forms_csv,
            out.law_forms_md,
        ),
    ):
        write_csv(table, csv)
        write_text(to_markdown(table), md)
        print(to_markdown(table))
    runs = pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
    fit_model = snakemake.params.fit["model"]
    frames = []
    for path in snakemake.input.fits:
        fit = json.loads(open(path).read())
        sub = runs[(runs["dataset"] == fit["dataset"]) & (runs["model"] == fit_model)]
        frames.append(effective_data_table(sub, fit))
    write_csv(pd.concat(frames, ignore_index=True), out.effective_data)
    write_json(hernandez_fit_table(runs, snakemake.params.fit), out.hernandez)
