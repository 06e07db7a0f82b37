"""Snakemake entry point: the config that produced the study, as YAML, so the report carries it."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import yaml

from transferlaw.io import write_text
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    text = "# The configuration (after defaults; resource settings left out) this study ran with.\n"
    text += yaml.safe_dump(snakemake.params.config, sort_keys=False)
    write_text(text, snakemake.output[0])
