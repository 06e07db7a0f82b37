# The stand-in for the Pythia suite: tiny GPT-NeoX models (one per `source: pretrain` model, each of its own
# size) trained from scratch on one corpus with one tokenizer, saved at the same log-spaced steps.


rule pretrain:
    input:
        corpus=STUDY["pretrain"]["corpus"] if "pretrain" in STUDY else [],
        tokenizer="results/tokenizer/tokenizer.json",
    output:
        refs=[
            tlconfig.local_ref(LOCAL_MODELS, "{model}", f"step{s}")
            for s in STUDY.get("pretrain", {}).get("save_steps", [])
        ],
    log:
        "logs/pretrain/{model}.log",
    benchmark:
        "results/benchmarks/pretrain/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: tlconfig.pretrain_settings(STUDY, wc.model)["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        # each model's own size and optimisation (`models.<name>.pretrain`); corpus and saved steps shared
        settings=lambda wc: tlconfig.job_params(
            tlconfig.pretrain_settings(STUDY, wc.model)
        ),
        repo_id=lambda wc: tlconfig.local_repo_id(wc.model),
    script:
        "../scripts/pretrain.py"
