# Figures of the paper per dataset and across datasets, the summary page and the config, all report items.
# Figure names, costs and input functions live in common.smk.

for _name, _sub in FIGURES_PER_DATASET.items():

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


for _name, (_sub, _inputs) in BEYOND_FIGURES.items():

    rule:
        name:
            f"plot_{_name}"
        input:
            **_inputs,
        output:
            png=report(
                f"results/figures/{_name}.png",
                caption=f"../report/{_name}.rst",
                category="across models, methods and seeds",
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
            runtime=5,
        params:
            figure=_name,
        script:
            "../scripts/plot_beyond.py"


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
        form=STUDY["fit"]["form"],
    script:
        "../scripts/plot_crossval_splits.py"


rule check_study:
    # The study's last step (a target of `all`): every (dataset, model, method) the config asks for has a
    # law. It runs once every other output is written and fails, naming each law that could not be fitted
    # and the setting to change, so that such a study does not finish green. It writes its file only when it
    # passes, so the next run, after the fix, checks again.
    input:
        fits=fit_files(),
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
