# Checkpoints fetched once, verified, pinned (transferlaw.checkpoints): a hub model's revisions are fetched
# by `prefetch_model` (where the internet is), every model's revisions pass the integrity gate
# (`verify_checkpoints`) before any of its fine-tuning jobs starts, and each job loads the commit its
# revision's pin names.


rule prefetch_model:
    # A local rule: it runs where Snakemake runs (a login node has the internet; compute nodes usually do
    # not). Offline (HF_HUB_OFFLINE=1) it describes a cache filled by hand, and fails at once, saying how to
    # fetch them, if revisions are missing.
    output:
        "results/checkpoints/{model}/manifest.json",
    log:
        "logs/checkpoints/{model}.prefetch.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        source=lambda wc: tlconfig.checkpoint_source(STUDY, wc.model),
        # pins written by an earlier gate: a revision keeps its commit even if its branch has moved since
        pins=lambda wc: pin_files(wc.model),
    script:
        "../scripts/prefetch_model.py"


rule verify_checkpoints:
    # The integrity gate: hashes every weight file of every revision; refuses missing, incomplete or
    # changed revisions and revisions that serve identical weights. Local: it reads the cache, not a GPU.
    input:
        gate_input,
    output:
        "results/checkpoints/{model}/verified.json",
    log:
        "logs/checkpoints/{model}.verify.log",
    benchmark:
        "results/benchmarks/checkpoints/{model}.tsv"
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        source=lambda wc: tlconfig.checkpoint_source(STUDY, wc.model),
    script:
        "../scripts/verify_checkpoints.py"


rule pin_checkpoint:
    # One small file per revision, written from the gate's verdict: fine-tuning jobs depend on it as
    # ancient() input, so re-running the gate (a revision added, or a refusal fixed) reruns no finished run.
    input:
        "results/checkpoints/{model}/verified.json",
    output:
        "results/checkpoints/{model}/{revision}.json",
    log:
        "logs/checkpoints/{model}.{revision}.pin.log",
    localrule: True
    run:
        from transferlaw.checkpoints import write_pin

        write_pin(input[0], wildcards.model, wildcards.revision, output[0], log[0])


rule prefetch:
    # `snakemake prefetch`: everything a study downloads (hub checkpoints and datasets), and nothing else.
    input:
        expand(
            "results/checkpoints/{model}/manifest.json",
            model=[m for m in MODELS if STUDY["models"][m]["source"] == "hub"],
        ),
        expand("results/corpora/{dataset}.txt", dataset=FETCHED),
    localrule: True
