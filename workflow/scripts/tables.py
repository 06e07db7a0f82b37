"""Snakemake entry point: Tables 2, 3 and 5, effective data transferred and Hernandez et al.'s fit."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import json

import pandas as pd

from transferlaw.io import read_table, write_csv, write_json, write_text
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.crossval import best_by_form, unscored
from transferlaw.law.fit import Columns, FitRecord
from transferlaw.law.transfer import EMPTY_EFFECTIVE_DATA, effective_data_table, hernandez_fit_table
from transferlaw.report.tables import interval_table, law_forms_table, parameter_table, to_markdown
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    out = snakemake.output
    summaries = {}
    for path in snakemake.input.bootstrap:
        rec = BootstrapSummary.read(path)
        summaries[str(rec.dataset)] = rec
    crossval = pd.concat(map(pd.read_csv, snakemake.input.crossval), ignore_index=True)
    for table, csv, md in (
        (parameter_table(summaries), out.parameters_csv, out.parameters_md),
        (interval_table(summaries), out.intervals_csv, out.intervals_md),
        (law_forms_table(best_by_form(crossval), unscored(crossval)), out.law_forms_csv, out.law_forms_md),
    ):
        write_csv(table, csv)
        write_text(to_markdown(table), md)
        print(to_markdown(table))
    runs = pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
    main = snakemake.params.fit
    frames = []
    for path in snakemake.input.fits:  # the main model and method's law, where one was fitted
        fit = FitRecord.read(path)
        if not fit.fitted:
            print(f"{fit.dataset}: no law fitted, so no effective data: {fit.reason}")
            continue
        frames.append(effective_data_table(runs, fit))  # the runs of its dataset, model and method
    write_csv(pd.concat(frames, ignore_index=True) if frames else EMPTY_EFFECTIVE_DATA, out.effective_data)
    fits = {}
    for path in [*snakemake.input.fits, *snakemake.input.all_fits]:  # each model's own law, where fitted
        fit = FitRecord.read(path)
        fits[(str(fit.dataset), fit.model, fit.method or main["method"])] = fit
    hernandez = hernandez_fit_table(runs, fits, form=main["form"], columns=Columns(p=main["p"], f=main["f"]))
    write_json(hernandez, out.hernandez)
    print(json.dumps(hernandez, indent=2))
