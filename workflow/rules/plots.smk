# Figures of the paper per dataset and across datasets, the summary page and the config, all report items.
# Inputs from the bootstrap and cross-validation stages are used where a rule produces them (or they exist),
# so the figures that need only runs and fits build on any study.

FIGURES_PER_DATASET = {  # figure name: report subcategory
    "raw_data": "raw data (Fig. 5)",
    "cross_section": "fitted law (Figs. 1, 3, 4, 6)",
    "iso_loss": "fitted law (Figs. 1, 3, 4, 6)",
    "surface": "fitted law (Figs. 1, 3, 4, 6)",
    "epochs": "epochs to convergence (Fig. 8)",
}
#: figure costs for the budget-allocation figures (Fig. 2): C_p per pre-training step, C_f per fine-tune
#: example; the budget is the cost of the study's largest run (budget None) unless set here.
ALLOCATION_COSTS = {"cost_pretrain": 1.0, "cost_finetune": 1.0, "budget": None}


def produced(path):
    """True if some rule of the workflow writes ``path`` (a pattern) or the file is already there."""
    if os.path.exists(path):
        return True
    pattern = path.replace("{dataset}", "{}")
    for rule in workflow.rules:
        for out in rule.output:
            if str(out).replace("{dataset}", "{}") == pattern:
                return True
    return False


def optional(pattern, **wildcards):
    """``pattern`` filled in, if its producer exists in this workflow; else nothing."""
    return (
        [pattern.format(**wildcards)]
        if produced(pattern.format(**wildcards)) or produced(pattern)
        else []
    )


def produced_all(pattern):
    """A producer rule exists, or the file exists for every dataset (e.g. copied in from elsewhere)."""
    return produced(pattern) or all(
        os.path.exists(pattern.format(dataset=ds)) for ds in DATASETS
    )


def plot_outputs():
    """Every figure this workflow can build now: the bootstrap/CV ones only when their inputs are produced."""
    names = list(FIGURES_PER_DATASET)
    if produced_all("results/bootstrap/{dataset}.parquet"):
        names.append("bootstrap")
    out = expand(
        "results/figures/{dataset}/{name}.{ext}",
        dataset=DATASETS,
        name=names,
        ext=["png", "pdf"],
    )
    cross = ["allocation_gap", "allocation_cost"]
    if produced_all("results/bootstrap/{dataset}.json"):
        cross.append("parameters")
    if produced_all("results/crossval/{dataset}.csv"):
        cross.append("law_forms")
    out += expand("results/figures/{name}.{ext}", name=cross, ext=["png", "pdf"])
    return out + ["results/summary.md", "results/config.yaml"]


def figure_rule_inputs(name):
    def inputs(wildcards):
        ins = {
            "runs": f"results/runs/{wildcards.dataset}.parquet",
            "fit": f"results/fits/{wildcards.dataset}.json",
        }
        if name == "cross_section":
            ins["samples"] = optional(
                "results/bootstrap/{dataset}.parquet", dataset=wildcards.dataset
            )
        if name == "bootstrap":
            ins = {
                "fit": ins["fit"],
                "samples": f"results/bootstrap/{wildcards.dataset}.parquet",
            }
        return ins

    return inputs


for _name, _sub in {
    **FIGURES_PER_DATASET,
    "bootstrap": "bootstrap (uncertainty)",
}.items():

    rule:
        name:
            f"plot_{_name}"
        input:
            unpack(figure_rule_inputs(_name)),
        output:
            png=report(
                f"results/figures/{{dataset}}/{_name}.png",
                caption=f"../report/{_name}.rst",
                category="{dataset}",
                subcategory=_sub,
                labels={"dataset": "{dataset}", "figure": _name.replace("_", " ")},
            ),
            pdf=f"results/figures/{{dataset}}/{_name}.pdf",
        log:
            f"logs/plots/{{dataset}}/{_name}.log",
        localrule: True
        conda:
            "../../envs/plots.yaml"
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            figure=_name,
        script:
            "../scripts/plot_dataset.py"


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

for _name, (_sub, _inputs) in CROSS_FIGURES.items():

    rule:
        name:
            f"plot_{_name}"
        input:
            **_inputs(),
        output:
            png=report(
                f"results/figures/{_name}.png",
                caption=f"../report/{_name}.rst",
                category="across datasets",
                subcategory=_sub,
                labels={"dataset": "all", "figure": _name.replace("_", " ")},
            ),
            pdf=f"results/figures/{_name}.pdf",
        log:
            f"logs/plots/{_name}.log",
        localrule: True
        conda:
            "../../envs/plots.yaml"
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            figure=_name,
            datasets=DATASETS,
            costs=ALLOCATION_COSTS,
        script:
            "../scripts/plot_summary.py"


rule summary:
    input:
        fits=expand("results/fits/{dataset}.json", dataset=DATASETS),
        intervals=lambda wc: [
            p
            for ds in DATASETS
            for p in optional("results/bootstrap/{dataset}.json", dataset=ds)
        ],
        crossval=lambda wc: [
            p
            for ds in DATASETS
            for p in optional("results/crossval/{dataset}.csv", dataset=ds)
        ],
    output:
        report(
            "results/summary.md",
            caption="../report/summary.rst",
            category="study",
            subcategory="summary and config",
            labels={"dataset": "all", "figure": "summary"},
        ),
    log:
        "logs/plots/summary.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        datasets=DATASETS,
        title=STUDY.get("study", "transferlaw study"),
    script:
        "../scripts/summary.py"


rule study_config:
    output:
        report(
            "results/config.yaml",
            caption="../report/config.rst",
            category="study",
            subcategory="summary and config",
            labels={"dataset": "all", "figure": "config"},
        ),
    log:
        "logs/plots/config.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        config=STUDY,
    script:
        "../scripts/write_config.py"
