"""Snakemake entry point: the study's final check. Every (dataset, model, method) the config asks for must
have a law; where one could not be fitted the job fails, naming it and the setting to change, after every
other output has been written (README, "Exit status")."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import sys

from transferlaw.io import write_text
from transferlaw.law.compare import keyed
from transferlaw.law.fit import FitRecord
from transferlaw.report.summary import study_check
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    fits = keyed(snakemake.params.fitted, [FitRecord.read(p) for p in snakemake.input.fits])
    passed, text = study_check(fits, summary=snakemake.input.summary)
    print(text)
    if not passed:
        # the log is where a job's output goes; the reason also belongs on the terminal that ran the study
        print(text, file=sys.__stderr__, flush=True)
        raise RuntimeError(text.splitlines()[0])
    write_text(text + "\n", snakemake.output[0])
