# Config resolution, early checks and input functions. Nothing here runs a model: errors in the config
# (wrong types, missing files, unknown revisions, datasets too small) stop the workflow at parse time.
import re

import transferlaw.config as tlconfig

try:
    STUDY = tlconfig.resolve(config)
    tlconfig.check_study(STUDY, root=".")
    for _dataset in STUDY[
        "datasets"
    ]:  # a new sha256 pin against the file already downloaded
        tlconfig.check_download_pin(
            STUDY, _dataset, f"results/corpora/{_dataset}.txt.json"
        )
except tlconfig.ConfigError as err:
    raise WorkflowError(f"invalid config: {err}")


# sorted, so that reordering the config's blocks changes no job's params (and reruns nothing)
DATASETS = sorted(STUDY["datasets"])
MODELS = sorted(STUDY["models"])
#: datasets whose text is made by the workflow, downloaded (`url`, `hub`) or generated (`generate`)
FETCHED = [d for d in DATASETS if {"url", "hub"} & set(STUDY["datasets"][d])]
GENERATED = [d for d in DATASETS if "generate" in STUDY["datasets"][d]]


def one_of(names):
    """A wildcard constraint matching exactly these names (nothing if there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


#: fine-tuning methods by name (`full` alone unless the study lists `methods:`)
METHODS = tlconfig.methods(STUDY)


def run_file(dataset, model, revision, size, method, seed):
    """One run's record. A full fine-tune at the dataset's own seed keeps the layout of a study without
    methods or replicates (its finished runs, GPU-hours at the paper's scale, stay valid); every other
    method or replicate seed adds `.<method>.s<seed>`."""
    if method == "full" and seed == tlconfig.base_seed(STUDY, dataset):
        return f"results/runs/{dataset}/{model}/{revision}/f{size}.parquet"
    return f"results/runs/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.parquet"


def run_files(dataset):
    """Every run record of one dataset: one per (model, method, revision, size, seed)."""
    return [
        run_file(dataset, model, revision, size, method, seed)
        for model, block in STUDY["models"].items()
        for method in METHODS
        for revision in block["revisions"]
        for size in STUDY["datasets"][dataset]["sizes"]
        for seed in tlconfig.run_seeds(STUDY, dataset)
    ]


def advice_grid(dataset):
    """The cells the advice chooses from: the fitted model's configured checkpoints x the dataset's sizes,
    and the checkpoints and sizes it may propose beyond them (analysis.advice_revisions, advice_sizes; a
    workflow-trained model's saved steps from its first revision on), with the study's seeds: what the
    advice needs to say which config change runs a recommended cell or replicate."""
    model = STUDY["fit"]["model"]
    block = STUDY["models"][model]
    steps = [tlconfig.revision_step(r) for r in block["revisions"]]
    extra = [tlconfig.revision_step(r) for r in STUDY["analysis"]["advice_revisions"]]
    if block["source"] == "pretrain":
        extra += [s for s in STUDY["pretrain"]["save_steps"] if s >= min(steps)]
    sizes = list(STUDY["datasets"][dataset]["sizes"])
    return {
        "model": model,
        "steps": steps,
        "sizes": sizes,
        "extra_steps": sorted(set(extra) - set(steps)),
        "extra_sizes": sorted(set(STUDY["analysis"]["advice_sizes"]) - set(sizes)),
        "seeds": STUDY.get("seeds", 1),
        "base_seed": tlconfig.base_seed(STUDY, dataset),
    }


def run_method(wildcards):
    """A fine-tuning job's method: its wildcard, or `full` for the single-method layout."""
    return wildcards.get("method", "full")


def run_seed(wildcards):
    """A fine-tuning job's seed: its wildcard, or the dataset's own for the single-seed layout."""
    if "seed" in wildcards.keys():
        return int(wildcards.seed)
    return tlconfig.base_seed(STUDY, wildcards.dataset)


def model_verdicts():
    """Every model's verdict on its pins (what records are checked against before they are aggregated)."""
    return [f"results/checkpoints/{m}/verified.json" for m in MODELS]


def all_outputs():
    outs = expand("results/fits/{dataset}.json", dataset=DATASETS)
    outs += [
        "results/tables/parameters.md",
        "results/tables/intervals.md",
        "results/tables/law_forms.md",
        "results/tables/effective_data.csv",
    ]
    outs += beyond_outputs()
    outs += plot_outputs()  # plots.smk
    return outs


def finetune_resource(key, per_attempt=False):
    """A fine-tuning job's resource from its dataset's and method's settings (``finetune.threads``, ...)."""

    def value(wc):
        return tlconfig.run_settings(STUDY, wc.dataset, run_method(wc))[key]

    if per_attempt:
        return lambda wc, attempt: value(wc) * attempt
    return value


# ---- fits per (dataset, model, method) -------------------------------------------------------------------
# The main model and method (`fit.model`, `fit.method`) keep the single-model layout, results/fits/<dataset>.json
# and results/bootstrap/<dataset>.{json,parquet}, which the per-dataset figures, tables and summary read; every
# other (model, method) is fitted and bootstrapped into <dataset>/<model>/<method>.*.
MAIN_METHOD = STUDY["fit"]["method"]
#: every fitted law: (dataset, model, method)
FITS = [(d, m, me) for d in DATASETS for m in MODELS for me in METHODS]


def fit_file(dataset, model, method, kind="fits", ext="json"):
    """Where the law of (dataset, model, method) is written (``kind``: fits or bootstrap)."""
    if (model, method) == (MAIN_MODEL, MAIN_METHOD):
        return f"results/{kind}/{dataset}.{ext}"
    return f"results/{kind}/{dataset}/{model}/{method}.{ext}"


def fit_files(kind="fits", ext="json"):
    return [fit_file(d, m, me, kind, ext) for d, m, me in FITS]


def fit_model(wildcards):
    return wildcards.get("model", MAIN_MODEL)


def fit_method(wildcards):
    return wildcards.get("method", MAIN_METHOD)


def remedy_keys(wildcards):
    """The config keys that would change what a (dataset, model, method)'s law is fitted to: what an
    analysis of a dataset without a law tells the user to change (transferlaw.law.fit.why_no_law).
    """
    return tlconfig.remedy_keys(
        STUDY, wildcards.dataset, fit_model(wildcards), fit_method(wildcards)
    )


#: whether the study has what each cross-model table compares
SEVERAL_METHODS = len(METHODS) > 1
SEVERAL_MODELS = len(MODELS) > 1
REPLICATES = any(len(tlconfig.run_seeds(STUDY, d)) > 1 for d in DATASETS)


def beyond_outputs():
    """The tables and figures of a study with several methods, models or seeds (analysis.smk, plots.smk)."""
    outs = []
    if SEVERAL_METHODS:
        outs += ["results/tables/methods.md"]
    if SEVERAL_MODELS:
        outs += ["results/tables/gap_vs_size.csv", "results/figures/gap_vs_size.png"]
    if REPLICATES:
        outs += ["results/tables/run_noise.csv", "results/figures/run_noise.png"]
    return outs


def dataset_text(wildcards):
    """The dataset's text: a local file (or maildir folder), or what its fetch or generator rule wrote."""
    block = STUDY["datasets"][wildcards.dataset]
    if "path" in block:
        return block["path"]
    return f"results/corpora/{wildcards.dataset}.txt"


def checkpoint_pin(wildcards):
    """The verified commit a fine-tuning job loads. Pins are rewritten only when their own revision changes
    (see pin_checkpoint), so this is a plain input: no input of the study is `ancient()`.
    """
    return f"results/checkpoints/{wildcards.model}/{wildcards.revision}.json"


def pin_files(model):
    """Revision -> the pin file of each of a model's revisions."""
    revisions = STUDY["models"][model]["revisions"]
    return {r: f"results/checkpoints/{model}/{r}.json" for r in revisions}


def checkpoint_ref(wildcards):
    """A workflow-trained revision's ref: re-training the model reruns its fine-tuning jobs."""
    if STUDY["models"][wildcards.model]["source"] == "pretrain":
        return tlconfig.local_ref(wildcards.model, wildcards.revision)
    return []


def write_pin(model, revision, source, out, log):
    """The pin rule's job. The model's other revisions and accepted groups are read here, when the job runs,
    not passed as params: adding a revision (or accepting a group) must not rewrite the pins that exist.
    The model-wide verdict (verify_checkpoints) checks all of them together again."""
    from transferlaw.train.checkpoints import write_revision_pin

    block = STUDY["models"][model]
    write_revision_pin(
        source,
        revision,
        out,
        log,
        revisions=block["revisions"],
        pins=pin_files(model),
        allow_identical=block.get("allow_identical", []),
    )


def pin_input(wildcards):
    """What a revision's gate reads: the workflow-trained model's published revisions (all of them, a set the
    revision list does not change: the others are compared with it), or nothing for a hub model, whose
    revisions are in the cache (`snakemake prefetch`) or fetched by the gate itself."""
    if STUDY["models"][wildcards.model]["source"] == "pretrain":
        steps = STUDY["pretrain"]["save_steps"]
        return [tlconfig.local_ref(wildcards.model, f"step{s}") for s in steps]
    return []


#: the model whose tokenizer prepares every dataset (`fit.model`; models of one study share a tokenizer)
MAIN_MODEL = STUDY["fit"]["model"]
MAIN_REVISION = STUDY["models"][MAIN_MODEL]["revisions"][0]


def tokenizer_pin():
    """A hub model's tokenizer is read from a verified commit; the workflow's own is built before it."""
    if STUDY["models"][MAIN_MODEL]["source"] == "hub":
        return f"results/checkpoints/{MAIN_MODEL}/{MAIN_REVISION}.json"
    return []


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


#: figures of a study with several models or seeds (plots.smk; listed by beyond_outputs): name ->
#: (report subcategory, inputs)
BEYOND_FIGURES = {
    "gap_vs_size": (
        "transfer gap against model size",
        {
            "table": "results/tables/gap_vs_size.csv",
            "trend": "results/tables/gap_trend.csv",
        },
    ),
    "run_noise": (
        "run noise against the law's residuals",
        {
            "cells": "results/tables/run_noise.csv",
            "summary": "results/tables/run_noise_summary.csv",
        },
    ),
}
