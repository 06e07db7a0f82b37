# One job per (dataset, checkpoint, fine-tune size). Each writes one parquet record, atomically.


rule finetune:
    input:
        data="results/data/{dataset}.npz",
        size_ok="results/data/{dataset}.f{size}.ok",
        pin=checkpoint_pin,
        checkpoint=checkpoint_ref,
    output:
        "results/runs/{dataset}/{model}/{revision}/f{size}.parquet",
    log:
        "logs/finetune/{dataset}/{model}/{revision}/f{size}.log",
    benchmark:
        "results/benchmarks/finetune/{dataset}/{model}/{revision}/f{size}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: tlconfig.finetune_settings(STUDY, wc.dataset)["threads"]
    resources:
        mem_mb=lambda wc: tlconfig.finetune_settings(STUDY, wc.dataset)["mem_mb"],
        runtime=lambda wc: tlconfig.finetune_settings(STUDY, wc.dataset)["runtime"],
        gpu=lambda wc: tlconfig.finetune_settings(STUDY, wc.dataset)["gpus"],
    params:
        # only this dataset's settings and this model's loading recipe: editing another dataset's block
        # leaves this job's parameters, and so its result, untouched
        settings=lambda wc: tlconfig.job_params(
            tlconfig.finetune_settings(STUDY, wc.dataset)
        ),
        model=lambda wc: tlconfig.model_settings(STUDY, wc.model),
    script:
        "../scripts/finetune.py"
