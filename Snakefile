# transferlaw: scaling laws for transfer (Barnett 2024) as a Snakemake study.
# One fine-tuning job per (dataset, checkpoint, fine-tune size, method, seed); aggregation, fits per
# (dataset, model, method) and analyses downstream.
from pathlib import Path

from snakemake.utils import min_version

from transferlaw.config import ConfigError, validate_schema

min_version("9.0")


# A --configfile describes the whole study; the embedded default is read only when none is given (merging
# the two would add the toy's datasets and model to every study). `--config key=value` still overrides.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# The report's landing page: the summary table (results/report.rst, written by the summary rule) once the
# study has made it, else the static description alone.
report:
    str(Path("results/report.rst").resolve())
    if Path("results/report.rst").exists()
    else "workflow/report/workflow.rst"


# Defaults are filled by transferlaw.config.resolve (see common.smk), not by the validator: a dataset's
# `finetune` block holds overrides only.
try:
    validate_schema(config)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}")


# names become paths: the same patterns as the config schema's (models, datasets, revisions, methods)
wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    revision=r"step[0-9]+",
    size=r"[0-9]+",
    method=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    seed=r"[0-9]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/checkpoints.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/adaptive.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/plots.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
        # last: fails, after everything else is written, if a dataset's law could not be fitted
        "results/study_check.txt",
