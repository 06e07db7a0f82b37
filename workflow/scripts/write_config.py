"""Snakemake entry point: the config that produced the study, as YAML, so the report carries it."""

import yaml

from transferlaw.io import write_text
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    text = "# The configuration (after defaults; resource settings left out) this study ran with.\n"
    text += yaml.safe_dump(snakemake.params.config, sort_keys=False)
    write_text(text, snakemake.output[0])
