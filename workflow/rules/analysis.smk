# Uncertainty analyses: bootstrap (Tables 2, 3), step-wise cross-validation (appendix D, Table 5), the
# cross-dataset tables with effective data transferred (appendix A.1), and which runs to do next.


rule bootstrap:
    input:
        "results/runs/{dataset}.parquet",
    output:
        samples="results/bootstrap/{dataset}.parquet",
        summary="results/bootstrap/{dataset}.json",
    log:
        "logs/bootstrap/{dataset}.log",
    benchmark:
        "results/benchmarks/bootstrap/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        fit=STUDY["fit"],
        analysis=STUDY["analysis"],
    script:
        "../scripts/bootstrap.py"


rule crossval:
    input:
        "results/runs/{dataset}.parquet",
    output:
        "results/crossval/{dataset}.csv",
    log:
        "logs/crossval/{dataset}.log",
    benchmark:
        "results/benchmarks/crossval/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 2  # law forms are scored in parallel processes
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        fit=STUDY["fit"],
        analysis=STUDY["analysis"],
    script:
        "../scripts/crossval.py"


rule advise:
    input:
        "results/runs/{dataset}.parquet",
    output:
        "results/advice/{dataset}.csv",
    log:
        "logs/advise/{dataset}.log",
    benchmark:
        "results/benchmarks/advise/{dataset}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        fit=STUDY["fit"],
        analysis=STUDY["analysis"],
        grid=lambda wc: advice_grid(wc.dataset),
    script:
        "../scripts/advise.py"


rule tables:
    input:
        runs=expand("results/runs/{dataset}.parquet", dataset=DATASETS),
        fits=expand("results/fits/{dataset}.json", dataset=DATASETS),
        bootstrap=expand("results/bootstrap/{dataset}.json", dataset=DATASETS),
        crossval=expand("results/crossval/{dataset}.csv", dataset=DATASETS),
    output:
        parameters_csv="results/tables/parameters.csv",
        parameters_md="results/tables/parameters.md",
        intervals_csv="results/tables/intervals.csv",
        intervals_md="results/tables/intervals.md",
        law_forms_csv="results/tables/law_forms.csv",
        law_forms_md="results/tables/law_forms.md",
        effective_data="results/tables/effective_data.csv",
        hernandez="results/tables/hernandez.json",
    log:
        "logs/tables.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fit=STUDY["fit"],
    script:
        "../scripts/tables.py"
