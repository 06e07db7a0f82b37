"""Snakemake entry point: Table 1 (datasets), Table 4 (checkpoints x sizes) and eq. 3's compute, from what
the study ran."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import json

import pandas as pd

from transferlaw.io import read_table, write_csv, write_text
from transferlaw.report.study import compute_table, datasets_table, grid_table
from transferlaw.report.tables import to_markdown
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    out = snakemake.output
    runs = pd.concat([read_table(p) for p in snakemake.input.runs], ignore_index=True)
    manifests = {}
    for path in snakemake.input.manifests:
        m = json.loads(open(path).read())
        manifests[str(m["dataset"])] = m
    for table, csv, md in (
        (datasets_table(manifests, snakemake.params.described), out.datasets_csv, out.datasets_md),
        (grid_table(runs), out.grid_csv, out.grid_md),
        (compute_table(runs), out.compute_csv, out.compute_md),
    ):
        write_csv(table, csv)
        write_text(to_markdown(table), md)
        print(to_markdown(table))
