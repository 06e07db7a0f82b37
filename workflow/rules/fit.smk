# Per-dataset table of runs, and the fitted law of each (dataset, model, method).


rule aggregate:
    input:
        runs=lambda wc: run_files(wc.dataset),
        verdicts=model_verdicts(),
    output:
        "results/runs/{dataset}.parquet",
    log:
        "logs/aggregate/{dataset}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/aggregate.py"


rule fit:
    # The main model and method (`fit.model`, `fit.method`): the layout of a single-model study.
    input:
        "results/runs/{dataset}.parquet",
    output:
        "results/fits/{dataset}.json",
    log:
        "logs/fit/{dataset}.log",
    benchmark:
        "results/benchmarks/fit/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        fit=STUDY["fit"],
        model=fit_model,
        method=fit_method,
        # the settings a dataset that cannot be fitted is told to change
        remedies=remedy_keys,
    script:
        "../scripts/fit.py"


use rule fit as fit_variant with:
    # Every other (model, method): the law fitted to its own runs, every replicate included.
    output:
        "results/fits/{dataset}/{model}/{method}.json",
    log:
        "logs/fit/{dataset}/{model}/{method}.log",
    benchmark:
        "results/benchmarks/fit/{dataset}/{model}/{method}.tsv"
    wildcard_constraints:
        model=one_of(MODELS),
        method=one_of(METHODS),
