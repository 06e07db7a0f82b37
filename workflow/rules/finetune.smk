# One job per (dataset, checkpoint, fine-tune size, method, seed). Each writes one parquet record, atomically.


rule finetune:
    input:
        data="results/data/{dataset}.npz",
        size_ok="results/data/{dataset}.f{size}.ok",
        pin=checkpoint_pin,
        checkpoint=checkpoint_ref,
    output:
        "results/runs/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.parquet",
    log:
        "logs/finetune/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.tsv"
    wildcard_constraints:
        method=one_of(METHODS),
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
        # dataset's block leaves this job's parameters, and so its result, untouched. The method's name is
        # the wildcard, not a param, so that a full fine-tune has the params it had before methods existed.
        settings=lambda wc: tlconfig.job_params(
            tlconfig.run_settings(STUDY, wc.dataset, wc.method, int(wc.seed))
        ),
        model=lambda wc: tlconfig.model_settings(STUDY, wc.model),
    script:
        "../scripts/finetune.py"


# ---- one time: a study written before every record named its method and seed (common.smk) ------------


rule migrate_layout:
    # `snakemake migrate_layout --cores 1` (with the study's --configfile), once: moves the records of a study
    # written before every record named its method and seed (README, "Records written in the old layout")
    # to this layout, reruns none of them, and moves nothing the second time. It refuses, moving nothing,
    # where a run's record exists in both layouts.
    log:
        "logs/migrate_layout.log",
    localrule: True
    run:
        migrate_old_layout(log[0])
