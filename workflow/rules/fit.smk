# Per-dataset table of runs, and the fitted law.


rule aggregate:
    input:
        runs=lambda wc: run_files(wc.dataset),
        pins=all_pins(),
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
    script:
        "../scripts/fit.py"
