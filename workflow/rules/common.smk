# Config resolution, early checks and input functions. Nothing here runs a model: errors in the config
# (wrong types, missing files, unknown revisions, datasets too small) stop the workflow at parse time.
import transferlaw.config as tlconfig

try:
    STUDY = tlconfig.resolve(config)
    tlconfig.check_study(STUDY, root=".")
except tlconfig.ConfigError as err:
    raise WorkflowError(f"invalid config: {err}")


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    revision=r"step[0-9]+",
    size=r"[0-9]+",


DATASETS = list(STUDY["datasets"])
PRETRAINED = [m for m, block in STUDY["models"].items() if block["source"] == "pretrain"]


def run_files(dataset):
    """Every run record of one dataset: one per (model, revision, size)."""
    return [
        f"results/runs/{dataset}/{model}/{revision}/f{size}.parquet"
        for model, block in STUDY["models"].items()
        for revision in block["revisions"]
        for size in STUDY["datasets"][dataset]["sizes"]
    ]


def all_outputs():
    outs = expand("results/fits/{dataset}.json", dataset=DATASETS)
    outs += plot_outputs()  # plots.smk
    return outs


def dataset_text(wildcards):
    """The dataset's text: a shipped file, or the output of its generator rule."""
    block = STUDY["datasets"][wildcards.dataset]
    if "path" in block:
        return block["path"]
    return f"results/corpora/{wildcards.dataset}.txt"


def checkpoint_ref(wildcards):
    """A workflow-trained revision is an input (its ref file); a hub revision was checked at parse time."""
    if STUDY["models"][wildcards.model]["source"] == "pretrain":
        repo = tlconfig.local_repo_id(wildcards.model).replace("/", "--")
        return f"results/models/models--{repo}/refs/{wildcards.revision}"
    return []


def tokenizer_source():
    """Data is tokenized once per dataset with the study's tokenizer: the one built for the workflow's own
    model, or the first hub model's (models of one study must share a tokenizer)."""
    first = next(iter(STUDY["models"]))
    return tlconfig.model_settings(STUDY, first) | {
        "revision": STUDY["models"][first]["revisions"][0],
        "source": STUDY["models"][first]["source"],
    }
