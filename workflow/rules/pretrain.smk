# The stand-in for the Pythia suite: a tiny GPT-NeoX trained from scratch, saved at log-spaced steps.


rule pretrain:
    input:
        corpus=STUDY["pretrain"]["corpus"] if "pretrain" in STUDY else [],
        tokenizer="results/tokenizer/tokenizer.json",
    output:
        refs=[
            tlconfig.local_ref("{model}", f"step{s}")
            for s in STUDY.get("pretrain", {}).get("save_steps", [])
        ],
    log:
        "logs/pretrain/{model}.log",
    benchmark:
        "results/benchmarks/pretrain/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: STUDY.get("pretrain", {}).get("threads", 1)
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=tlconfig.job_params(STUDY.get("pretrain", {})),
        repo_id=lambda wc: tlconfig.local_repo_id(wc.model),
    script:
        "../scripts/pretrain.py"
