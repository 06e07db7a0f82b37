# Downstream datasets: downloaded or generated where the config says so, then prepared once per dataset.


rule fetch_dataset:
    # A local rule, like prefetch_model: downloads (a URL pinned by sha256, or a hub dataset at a pinned
    # revision) into `data_cache`, resuming and retrying, and writes the dataset's training text.
    output:
        text="results/corpora/{dataset}.txt",
        provenance="results/corpora/{dataset}.txt.json",
    log:
        "logs/fetch/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(FETCHED),
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        source=lambda wc: tlconfig.dataset_source(STUDY, wc.dataset),
    script:
        "../scripts/fetch_dataset.py"


rule generate_encyclopedia:
    output:
        text="results/corpora/{dataset}.txt",
        provenance="results/corpora/{dataset}.txt.json",
    log:
        "logs/generate/{dataset}.log",
    wildcard_constraints:
        dataset=one_of(GENERATED),
    conda:
        "../../envs/data.yaml"
    params:
        generate=lambda wc: STUDY["datasets"][wc.dataset]["generate"],
    script:
        "../scripts/generate_encyclopedia.py"


rule tokenizer:
    # Built here for the workflow's own model; copied from the verified commit of a hub model's checkpoint.
    input:
        corpus=STUDY["pretrain"]["corpus"] if "pretrain" in STUDY else [],
        pin=tokenizer_pin(),
    output:
        "results/tokenizer/tokenizer.json",
    log:
        "logs/tokenizer.log",
    conda:
        "../../envs/data.yaml"
    params:
        model=tlconfig.model_settings(STUDY, MAIN_MODEL),
        source=STUDY["models"][MAIN_MODEL]["source"],
        vocab_size=STUDY.get("pretrain", {}).get("vocab_size"),
    script:
        "../scripts/tokenizer.py"


rule prepare_data:
    input:
        text=dataset_text,
        tokenizer="results/tokenizer/tokenizer.json",
    output:
        data="results/data/{dataset}.npz",
        manifest="results/data/{dataset}.json",
    log:
        "logs/prepare/{dataset}.log",
    # prepared before fine-tuning starts, so a dataset too small for its sizes fails first
    priority: 10
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=2000,
    params:
        settings=lambda wc: tlconfig.prepare_settings(STUDY, wc.dataset),
    script:
        "../scripts/prepare_data.py"


rule check_size:
    # One marker per (dataset, size), so adding a size adds a check and a fine-tune job, nothing more.
    # Runs in a thread of Snakemake (profiles/default: force-use-threads) and ahead of fine-tuning
    # (priority), so a size that does not fit fails early.
    input:
        manifest="results/data/{dataset}.json",
    output:
        "results/data/{dataset}.f{size}.ok",
    log:
        "logs/prepare/{dataset}.f{size}.log",
    priority: 10
    localrule: True
    params:
        unit=lambda wc: tlconfig.finetune_settings(STUDY, wc.dataset)["unit"],
    run:
        from transferlaw.data.prepare import check_size_marker

        check_size_marker(
            input.manifest,
            int(wildcards.size),
            params.unit,
            wildcards.dataset,
            output[0],
            log[0],
        )
