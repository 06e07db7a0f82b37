# One job per (dataset, checkpoint, fine-tune size, method, seed). Each writes one parquet record, atomically.


rule finetune:
    # A full fine-tune at the dataset's own seed: the layout of a study without methods or replicates.
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
    threads: finetune_resource("threads")
    resources:
        # a retry asks for more: memory and minutes are multiplied by the attempt number
        mem_mb=finetune_resource("mem_mb", per_attempt=True),
        runtime=finetune_resource("runtime", per_attempt=True),
        gpu=finetune_resource("gpus"),
    params:
        # only this dataset's and method's settings and this model's loading recipe: editing another
        # dataset's block leaves this job's parameters, and so its result, untouched
        settings=lambda wc: tlconfig.job_params(
            tlconfig.run_settings(STUDY, wc.dataset, run_method(wc), run_seed(wc))
        ),
        model=lambda wc: tlconfig.model_settings(STUDY, wc.model),
    script:
        "../scripts/finetune.py"


use rule finetune as finetune_variant with:
    # Any other method (`methods:`), or a replicate seed (`seeds:`).
    output:
        "results/runs/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.parquet",
    log:
        "logs/finetune/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.tsv"
    wildcard_constraints:
        method=one_of(METHODS),
