# Uncertainty analyses: bootstrap (Tables 2, 3), step-wise cross-validation (appendix D, Table 5), the
# cross-dataset tables with effective data transferred (appendix A.1), and which runs to do next.


rule bootstrap:
    # The law of one (dataset, model, method), as rule fit names it. Resamples draw cells (checkpoint, size)
    # with all their seed replicates, with the same resampling seed for every law: where two methods or
    # models ran the same cells, resample i draws the same cells for each, so differences between them are
    # paired.
    input:
        "results/runs/{dataset}.parquet",
    output:
        samples="results/bootstrap/{dataset}{law}.parquet",
        summary="results/bootstrap/{dataset}{law}.json",
    log:
        "logs/bootstrap/{dataset}{law}.log",
    benchmark:
        "results/benchmarks/bootstrap/{dataset}{law}.tsv"
    wildcard_constraints:
        law=one_of(LAWS),
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        fit=STUDY["fit"],
        analysis=STUDY["analysis"],
        model=fit_model,
        method=fit_method,
        remedies=remedy_keys,
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
        remedies=remedy_keys,
    script:
        "../scripts/crossval.py"


rule advise:
    # The study's own interval (the bootstrap's) is the one the advice states: one interval per dataset.
    input:
        runs="results/runs/{dataset}.parquet",
        bootstrap="results/bootstrap/{dataset}.json",
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
        remedies=remedy_keys,
    script:
        "../scripts/advise.py"


rule tables:
    input:
        runs=expand("results/runs/{dataset}.parquet", dataset=DATASETS),
        fits=expand("results/fits/{dataset}.json", dataset=DATASETS),
        # Hernandez et al.'s fit needs each model's own law
        all_fits=fit_files() if SEVERAL_MODELS else [],
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


rule study_tables:
    # What the study ran, from its records and prepared data (not from the config): Table 1 (datasets),
    # Table 4 (checkpoints x sizes per dataset) and eq. 3's fine-tuning compute.
    input:
        runs=expand("results/runs/{dataset}.parquet", dataset=DATASETS),
        manifests=expand("results/data/{dataset}.json", dataset=DATASETS),
    output:
        datasets_csv="results/tables/datasets.csv",
        datasets_md="results/tables/datasets.md",
        grid_csv="results/tables/grid.csv",
        grid_md="results/tables/grid.md",
        compute_csv="results/tables/compute.csv",
        compute_md="results/tables/compute.md",
    log:
        "logs/study_tables.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        described={ds: tlconfig.describe_dataset(STUDY, ds) for ds in DATASETS},
    script:
        "../scripts/study_tables.py"


# Across models, methods and seeds (a study with `methods:`, several `models:` or `seeds:`).


rule compare_methods:
    # Each method's law side by side per (dataset, model), and the difference in G with its interval.
    input:
        summaries=fit_files("bootstrap"),
        samples=fit_files("bootstrap", "parquet"),
    output:
        csv="results/tables/methods.csv",
        md="results/tables/methods.md",
    log:
        "logs/tables/methods.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fitted=FITS,
        # the difference is from full fine-tuning where the study has it (is LoRA's gap larger?)
        reference="full" if "full" in METHODS else MAIN_METHOD,
    script:
        "../scripts/compare_methods.py"


rule gap_vs_size:
    # G and its interval against the model's N per dataset and method, and the trend G(N) with 3+ sizes.
    input:
        summaries=fit_files("bootstrap"),
        samples=fit_files("bootstrap", "parquet"),
        fits=fit_files(),
    output:
        table="results/tables/gap_vs_size.csv",
        trend="results/tables/gap_trend.csv",
        md="results/tables/gap_vs_size.md",
    log:
        "logs/tables/gap_vs_size.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fitted=FITS,
    script:
        "../scripts/gap_vs_size.py"


rule run_noise:
    # Seed-to-seed spread of eval loss per cell, against each law's residuals (lack of fit vs pure error).
    input:
        runs=expand("results/runs/{dataset}.parquet", dataset=DATASETS),
        fits=fit_files(),
    output:
        cells="results/tables/run_noise.csv",
        summary="results/tables/run_noise_summary.csv",
        md="results/tables/run_noise.md",
    log:
        "logs/tables/run_noise.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        fitted=FITS,
        fit=STUDY["fit"],
    script:
        "../scripts/run_noise.py"
