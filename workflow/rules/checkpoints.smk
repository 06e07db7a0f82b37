# Checkpoints fetched once, verified, pinned (transferlaw.train.checkpoints): a hub model's revisions are fetched
# by `snakemake prefetch` (where the internet is), each revision passes its integrity gate (`pin_checkpoint`)
# before any of its fine-tuning jobs starts, each job loads the commit its revision's pin names, and the
# model-wide verdict (`verify_checkpoints`) checks the pins together before the records are aggregated.


rule prefetch_model:
    # `snakemake prefetch`: every revision of a hub model, listed on the hub and compared before anything is
    # downloaded, then fetched by commit. A local rule: it runs where Snakemake runs (a login node has the
    # internet; compute nodes usually do not). Offline (HF_HUB_OFFLINE=1) it describes a cache filled by hand,
    # and fails at once, saying how to fetch them, if revisions are missing. The study's pins read the cache,
    # not this manifest, so re-fetching reruns nothing. A rule for the revisions (`log_spaced`) is resolved
    # here, and the study is planned from the manifest (common.smk, REVISIONS): `update` keeps the previous
    # manifest for the job to read (and restores it if the job fails), so that re-running prefetch keeps the
    # resolution while the rule is unchanged. Its params are the config's, not the resolved list, so a
    # resolution never reruns it.
    output:
        update("results/checkpoints/{model}/manifest.json"),
    log:
        "logs/checkpoints/{model}.prefetch.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        source=lambda wc: tlconfig.checkpoint_source(STUDY, wc.model, LOCAL_MODELS),
        # pins written by an earlier gate (`step*.json` there): a pinned revision keeps its commit even if
        # its branch has moved since, and is judged on it when a rule is resolved
        pin_dir=lambda wc: f"results/checkpoints/{wc.model}",
    script:
        "../scripts/prefetch_model.py"


rule pin_checkpoint:
    # The integrity gate of one revision: fetched first if it is missing and the hub can be reached, its
    # weight files checked and hashed, refused if it serves another revision's weights; the pin names the
    # verified commit that every fine-tuning job of the revision loads. A pin depends on its own revision
    # only (never on a model-wide file that adding a revision rewrites), so adding a revision reruns no
    # finished run, and no input of the study is `ancient()`, which would hide work from the scheduler
    # (snakemake/snakemake#4166). Local: it reads the cache (or the hub), not a GPU.
    input:
        pin_input,
    output:
        "results/checkpoints/{model}/{revision}.json",
    log:
        "logs/checkpoints/{model}.{revision}.pin.log",
    benchmark:
        "results/benchmarks/checkpoints/{model}.{revision}.tsv"
    localrule: True
    params:
        source=lambda wc: tlconfig.revision_source(STUDY, wc.model, LOCAL_MODELS),
    run:
        write_pin(wildcards.model, wildcards.revision, params.source, output[0], log[0])


rule verify_checkpoints:
    # The model-wide verdict: every revision pinned, and no two serving the same weights unless the config
    # accepts them (`allow_identical`). Read by the aggregate, which refuses records of any other commit.
    input:
        pins=lambda wc: list(pin_files(wc.model).values()),
    output:
        "results/checkpoints/{model}/verified.json",
    log:
        "logs/checkpoints/{model}.verify.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        source=lambda wc: {
            **tlconfig.checkpoint_source(STUDY, wc.model, LOCAL_MODELS),
            "revisions": revisions_of(wc.model),
        },
    script:
        "../scripts/verify_checkpoints.py"


rule prefetch:
    # `snakemake prefetch`: everything a study downloads (hub checkpoints and datasets), and nothing else.
    input:
        expand(
            "results/checkpoints/{model}/manifest.json",
            model=[m for m in MODELS if STUDY["models"][m]["source"] == "hub"],
        ),
        expand("results/corpora/{dataset}.txt", dataset=FETCHED),
    localrule: True
