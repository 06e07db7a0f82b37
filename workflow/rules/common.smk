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


# sorted, so that reordering the config's blocks changes no job's params (and reruns nothing)
DATASETS = sorted(STUDY["datasets"])
PRETRAINED = [
    m for m, block in STUDY["models"].items() if block["source"] == "pretrain"
]


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
    outs += [
        "results/tables/parameters.md",
        "results/tables/intervals.md",
        "results/tables/law_forms.md",
        "results/tables/effective_data.csv",
    ]
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
        return tlconfig.local_ref(wildcards.model, wildcards.revision)
    return []


def tokenizer_source():
    """Data is tokenized once per dataset with the study's tokenizer: the one built for the workflow's own
    model, or that of the fitted model (`fit.model`; models of one study must share a tokenizer)."""
    main = STUDY["fit"]["model"]
    return tlconfig.model_settings(STUDY, main) | {
        "revision": STUDY["models"][main]["revisions"][0],
        "source": STUDY["models"][main]["source"],
    }


FIGURES_PER_DATASET = {  # figure name: report subcategory
    "raw_data": "raw data (Fig. 5)",
    "cross_section": "fitted law (Figs. 1, 3, 4, 6)",
    "iso_loss": "fitted law (Figs. 1, 3, 4, 6)",
    "surface": "fitted law (Figs. 1, 3, 4, 6)",
    "epochs": "epochs to convergence (Fig. 8)",
    "bootstrap": "bootstrap (uncertainty)",
}
#: figure costs for the budget-allocation figures (Fig. 2): C_p per pre-training step, C_f per fine-tune
#: example; the budget is the cost of the study's largest run (budget None) unless set here.
ALLOCATION_COSTS = {"cost_pretrain": 1.0, "cost_finetune": 1.0, "budget": None}


def plot_outputs():
    """Every figure of the study, the summary page and the config that produced them."""
    out = expand(
        "results/figures/{dataset}/{name}.{ext}",
        dataset=DATASETS,
        name=list(FIGURES_PER_DATASET),
        ext=["png", "pdf"],
    )
    out += expand(
        "results/figures/{name}.{ext}", name=list(CROSS_FIGURES), ext=["png", "pdf"]
    )
    return out + ["results/summary.md", "results/config.yaml"]


def figure_rule_inputs(name):
    """Input function of a per-dataset figure: runs and fit, plus bootstrap samples where drawn."""

    def inputs(wildcards):
        ins = {
            "runs": f"results/runs/{wildcards.dataset}.parquet",
            "fit": f"results/fits/{wildcards.dataset}.json",
        }
        if name in ("cross_section", "bootstrap"):
            ins["samples"] = f"results/bootstrap/{wildcards.dataset}.parquet"
        return ins

    return inputs


CROSS_FIGURES = {
    "allocation_gap": (
        "budget allocation (Fig. 2)",
        lambda: {
            "fits": expand("results/fits/{dataset}.json", dataset=DATASETS),
            "runs": expand("results/runs/{dataset}.parquet", dataset=DATASETS),
        },
    ),
    "allocation_cost": (
        "budget allocation (Fig. 2)",
        lambda: {
            "fits": expand("results/fits/{dataset}.json", dataset=DATASETS),
            "runs": expand("results/runs/{dataset}.parquet", dataset=DATASETS),
        },
    ),
    "parameters": (
        "parameters and transfer gap",
        lambda: {
            "intervals": expand("results/bootstrap/{dataset}.json", dataset=DATASETS),
        },
    ),
    "law_forms": (
        "law forms (cross-validation)",
        lambda: {
            "crossval": expand("results/crossval/{dataset}.csv", dataset=DATASETS),
        },
    ),
}
