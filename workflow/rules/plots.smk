# Figures of the paper per dataset and across datasets, the summary page and the config, all report items,
# and the study's final check. One rule per figure kind; the lists below say which figures the study makes.

#: figures of every dataset, one rule each: results/figures/<dataset>/<name>.{png,pdf}
DATASET_FIGURES = [
    "raw_data",
    "cross_section",
    "iso_loss",
    "surface",
    "epochs",
    "bootstrap",
]
#: figures across datasets, one rule each: results/figures/<name>.{png,pdf}
STUDY_FIGURES = ["allocation_gap", "allocation_cost", "parameters", "law_forms"]
#: figures of a study with several models or seeds (their tables: analysis.smk)
BEYOND_FIGURES = (["gap_vs_size"] if SEVERAL_MODELS else []) + (
    ["run_noise"] if REPLICATES else []
)
#: the budget-allocation figures' (Fig. 2) costs and budget, from the config (`allocation:`)
ALLOCATION_COSTS = STUDY["allocation"]


# ---- per dataset: the main law's runs, fit and (where drawn) bootstrap refits ---------------------------


rule plot_raw_data:
    input:
        runs="results/runs/{dataset}.parquet",
        fit="results/fits/{dataset}.json",
    output:
        png=report(
            "results/figures/{dataset}/raw_data.png",
            caption="../report/raw_data.rst",
            category="{dataset}",
            subcategory="raw data (Fig. 5)",
            labels={"dataset": "{dataset}", "figure": "raw data"},
        ),
        pdf="results/figures/{dataset}/raw_data.pdf",
    log:
        "logs/plots/{dataset}/raw_data.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="raw_data",
    script:
        "../scripts/plot_dataset.py"


rule plot_cross_section:
    input:
        runs="results/runs/{dataset}.parquet",
        fit="results/fits/{dataset}.json",
        samples="results/bootstrap/{dataset}.parquet",
    output:
        png=report(
            "results/figures/{dataset}/cross_section.png",
            caption="../report/cross_section.rst",
            category="{dataset}",
            subcategory="fitted law (Figs. 1, 3, 4, 6)",
            labels={"dataset": "{dataset}", "figure": "cross section"},
        ),
        pdf="results/figures/{dataset}/cross_section.pdf",
    log:
        "logs/plots/{dataset}/cross_section.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="cross_section",
    script:
        "../scripts/plot_dataset.py"


rule plot_iso_loss:
    input:
        runs="results/runs/{dataset}.parquet",
        fit="results/fits/{dataset}.json",
    output:
        png=report(
            "results/figures/{dataset}/iso_loss.png",
            caption="../report/iso_loss.rst",
            category="{dataset}",
            subcategory="fitted law (Figs. 1, 3, 4, 6)",
            labels={"dataset": "{dataset}", "figure": "iso loss"},
        ),
        pdf="results/figures/{dataset}/iso_loss.pdf",
    log:
        "logs/plots/{dataset}/iso_loss.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="iso_loss",
    script:
        "../scripts/plot_dataset.py"


rule plot_surface:
    input:
        runs="results/runs/{dataset}.parquet",
        fit="results/fits/{dataset}.json",
    output:
        png=report(
            "results/figures/{dataset}/surface.png",
            caption="../report/surface.rst",
            category="{dataset}",
            subcategory="fitted law (Figs. 1, 3, 4, 6)",
            labels={"dataset": "{dataset}", "figure": "surface"},
        ),
        pdf="results/figures/{dataset}/surface.pdf",
    log:
        "logs/plots/{dataset}/surface.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="surface",
    script:
        "../scripts/plot_dataset.py"


rule plot_epochs:
    input:
        runs="results/runs/{dataset}.parquet",
        fit="results/fits/{dataset}.json",
    output:
        png=report(
            "results/figures/{dataset}/epochs.png",
            caption="../report/epochs.rst",
            category="{dataset}",
            subcategory="epochs to convergence (Fig. 8)",
            labels={"dataset": "{dataset}", "figure": "epochs"},
        ),
        pdf="results/figures/{dataset}/epochs.pdf",
    log:
        "logs/plots/{dataset}/epochs.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="epochs",
    script:
        "../scripts/plot_dataset.py"


rule plot_bootstrap:
    input:
        runs="results/runs/{dataset}.parquet",
        fit="results/fits/{dataset}.json",
        samples="results/bootstrap/{dataset}.parquet",
    output:
        png=report(
            "results/figures/{dataset}/bootstrap.png",
            caption="../report/bootstrap.rst",
            category="{dataset}",
            subcategory="bootstrap (uncertainty)",
            labels={"dataset": "{dataset}", "figure": "bootstrap"},
        ),
        pdf="results/figures/{dataset}/bootstrap.pdf",
    log:
        "logs/plots/{dataset}/bootstrap.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="bootstrap",
    script:
        "../scripts/plot_dataset.py"


# ---- across datasets -------------------------------------------------------------------------------------


rule plot_allocation_gap:
    input:
        fits=expand("results/fits/{dataset}.json", dataset=DATASETS),
        runs=expand("results/runs/{dataset}.parquet", dataset=DATASETS),
    output:
        png=report(
            "results/figures/allocation_gap.png",
            caption="../report/allocation_gap.rst",
            category="across datasets",
            subcategory="budget allocation (Fig. 2)",
            labels={"dataset": "all", "figure": "allocation gap"},
        ),
        pdf="results/figures/allocation_gap.pdf",
    log:
        "logs/plots/allocation_gap.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        figure="allocation_gap",
        datasets=DATASETS,
        costs=ALLOCATION_COSTS,
    script:
        "../scripts/plot_summary.py"


rule plot_allocation_cost:
    input:
        fits=expand("results/fits/{dataset}.json", dataset=DATASETS),
        runs=expand("results/runs/{dataset}.parquet", dataset=DATASETS),
    output:
        png=report(
            "results/figures/allocation_cost.png",
            caption="../report/allocation_cost.rst",
            category="across datasets",
            subcategory="budget allocation (Fig. 2)",
            labels={"dataset": "all", "figure": "allocation cost"},
        ),
        pdf="results/figures/allocation_cost.pdf",
    log:
        "logs/plots/allocation_cost.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        figure="allocation_cost",
        datasets=DATASETS,
        costs=ALLOCATION_COSTS,
    script:
        "../scripts/plot_summary.py"


rule plot_parameters:
    input:
        intervals=expand("results/bootstrap/{dataset}.json", dataset=DATASETS),
    output:
        png=report(
            "results/figures/parameters.png",
            caption="../report/parameters.rst",
            category="across datasets",
            subcategory="parameters and transfer gap",
            labels={"dataset": "all", "figure": "parameters"},
        ),
        pdf="results/figures/parameters.pdf",
    log:
        "logs/plots/parameters.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        figure="parameters",
        datasets=DATASETS,
    script:
        "../scripts/plot_summary.py"


rule plot_law_forms:
    input:
        crossval=expand("results/crossval/{dataset}.csv", dataset=DATASETS),
    output:
        png=report(
            "results/figures/law_forms.png",
            caption="../report/law_forms.rst",
            category="across datasets",
            subcategory="law forms (cross-validation)",
            labels={"dataset": "all", "figure": "law forms"},
        ),
        pdf="results/figures/law_forms.pdf",
    log:
        "logs/plots/law_forms.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        figure="law_forms",
        datasets=DATASETS,
    script:
        "../scripts/plot_summary.py"


# ---- across models, methods and seeds (a study with several models or `seeds:`) --------------------------


rule plot_gap_vs_size:
    input:
        table="results/tables/gap_vs_size.csv",
        trend="results/tables/gap_trend.csv",
    output:
        png=report(
            "results/figures/gap_vs_size.png",
            caption="../report/gap_vs_size.rst",
            category="across models, methods and seeds",
            subcategory="transfer gap against model size",
            labels={"dataset": "all", "figure": "gap vs size"},
        ),
        pdf="results/figures/gap_vs_size.pdf",
    log:
        "logs/plots/gap_vs_size.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="gap_vs_size",
    script:
        "../scripts/plot_beyond.py"


rule plot_run_noise:
    input:
        cells="results/tables/run_noise.csv",
        summary="results/tables/run_noise_summary.csv",
    output:
        png=report(
            "results/figures/run_noise.png",
            caption="../report/run_noise.rst",
            category="across models, methods and seeds",
            subcategory="run noise against the law's residuals",
            labels={"dataset": "all", "figure": "run noise"},
        ),
        pdf="results/figures/run_noise.pdf",
    log:
        "logs/plots/run_noise.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        figure="run_noise",
    script:
        "../scripts/plot_beyond.py"


# ---- the summary page, the config, the final check ------------------------------------------------------


rule summary:
    input:
        fits=expand("results/fits/{dataset}.json", dataset=DATASETS),
        intervals=expand("results/bootstrap/{dataset}.json", dataset=DATASETS),
        crossval=expand("results/crossval/{dataset}.csv", dataset=DATASETS),
        advice=expand("results/advice/{dataset}.csv", dataset=DATASETS),
        compute="results/tables/compute.csv",
        description=workflow.source_path("../report/workflow.rst"),
        # a study with several methods, models or seeds: what they show
        methods="results/tables/methods.csv" if SEVERAL_METHODS else [],
        gap="results/tables/gap_vs_size.csv" if SEVERAL_MODELS else [],
        trend="results/tables/gap_trend.csv" if SEVERAL_MODELS else [],
        noise="results/tables/run_noise_summary.csv" if REPLICATES else [],
    output:
        markdown=report(
            "results/summary.md",
            caption="../report/summary.rst",
            category="study",
            subcategory="summary and config",
            labels={"dataset": "all", "figure": "summary"},
        ),
        # the report's landing page (see the Snakefile's `report:`)
        landing="results/report.rst",
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
        # where the page sends its reader: other rules' outputs (transferlaw.report.summary.WHERE)
        where={
            "check": "results/study_check.txt",
            "bootstrap": fit_file("{dataset}", MAIN_MODEL, MAIN_METHOD, "bootstrap"),
            "advice": "results/advice/",
            "tables": [
                "results/tables/parameters.md",
                "results/tables/intervals.md",
                "results/tables/law_forms.md",
                "results/tables/effective_data.csv",
            ],
            "figures": "results/figures/",
            "methods": "results/tables/methods.md",
            "gap": ["results/tables/gap_vs_size.csv", "results/tables/gap_trend.csv"],
            "gap_figure": "results/figures/gap_vs_size.png",
            "noise": "results/tables/run_noise.csv",
            "noise_figure": "results/figures/run_noise.png",
        },
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
        config=tlconfig.without_resources(STUDY),
    script:
        "../scripts/write_config.py"


rule plot_crossval_splits:
    # Fig. 7 for one dataset, the study's first: which runs train and which validate the law at the first
    # three thresholds of step-wise cross-validation.
    input:
        runs=f"results/runs/{DATASETS[0]}.parquet",
        fit=f"results/fits/{DATASETS[0]}.json",
    output:
        png=report(
            "results/figures/crossval_splits.png",
            caption="../report/crossval_splits.rst",
            category="study",
            subcategory="cross-validation",
            labels={"dataset": DATASETS[0], "figure": "crossval splits"},
        ),
        pdf="results/figures/crossval_splits.pdf",
    log:
        "logs/plots/crossval_splits.log",
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        dataset=DATASETS[0],
    script:
        "../scripts/plot_crossval_splits.py"


rule check_study:
    # The study's last step (a target of `all`): every (dataset, model, method) the config asks for has a
    # law. It runs once every other output is written and fails, naming each law that could not be fitted
    # and the setting to change, so that such a study does not finish green. It writes its file only when it
    # passes, so the next run, after the fix, checks again.
    input:
        fits=fit_files(),
        summary="results/summary.md",  # which lists the laws without one first
        outputs=all_outputs(),
    output:
        "results/study_check.txt",
    log:
        "logs/check_study.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fitted=FITS,
    script:
        "../scripts/check_study.py"
