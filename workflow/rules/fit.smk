# Per-dataset table of runs, and the fitted law of each (dataset, model, method).


rule aggregate:
    input:
        # every run of the grid, or in an adaptive study the runs its last round fitted (adaptive.smk)
        runs=dataset_runs,
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
    # The law of one (dataset, model, method), fitted to its runs, every replicate included; {law} names the
    # (model, method) (common.smk): results/fits/<dataset>.json is the main law's.
    input:
        "results/runs/{dataset}.parquet",
    output:
        "results/fits/{dataset}{law}.json",
    log:
        "logs/fit/{dataset}{law}.log",
    benchmark:
        "results/benchmarks/fit/{dataset}{law}.tsv"
    wildcard_constraints:
        law=one_of(LAWS),
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
