# An adaptive study (config `adaptive:`, issue 21): per dataset, rounds that fit, bootstrap and advise on
# the runs so far, then run the advised batch, until the target's interval is narrow enough or a budget is
# spent. Each round is a Snakemake checkpoint: its JSON names the runs the next round reads, so the DAG
# grows by one batch of ordinary fine-tuning jobs (rule finetune, one record each) per round. A killed
# study resumes where it stopped: the rounds written are kept, the runs finished are not redone, and the
# next round replans the same batch (seeded by dataset and round). The dataset's aggregate, and with it
# every analysis (`snakemake results/fits/<dataset>.json`), reads the runs the last round fitted.
checkpoint adaptive_round:
    # One round of one dataset: the runs of the rounds before are fitted and bootstrapped as the study's
    # bootstrap does, then the stopping rule decides: stop (and say what stopped it) or the next batch, by
    # the advice. Round 0 is the initial design (`adaptive.initial`). Local: a fit and a bootstrap, no GPU.
    input:
        unpack(adaptive_round_input),
    output:
        "results/adaptive/{dataset}/round{round}.json",
    log:
        "logs/adaptive/{dataset}/round{round}.log",
    benchmark:
        "results/benchmarks/adaptive/{dataset}/round{round}.tsv"
    wildcard_constraints:
        round=r"[0-9]+",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        adaptive=lambda wc: {
            k: v
            for k, v in tlconfig.adaptive_settings(STUDY, wc.dataset).items()
            if k != "reference"
        },
        fit=STUDY["fit"],
        bootstrap={
            k: STUDY["analysis"][k]
            for k in (
                "bootstrap_samples",
                "bootstrap_seed",
                "advice_target",
                "advice_cost",
                "advice_samples",
                "advice_seed",
            )
        },
        grid=lambda wc: adaptive_grid(wc.dataset),
        remedies=lambda wc: tlconfig.remedy_keys(
            STUDY, wc.dataset, MAIN_MODEL, MAIN_METHOD
        ),
    script:
        "../scripts/adaptive_round.py"


rule adaptive_rounds:
    # results/adaptive/<dataset>/rounds.csv: per round the runs so far, their cost, the target's interval
    # and, on the last row, what stopped the study.
    input:
        adaptive_rounds,
    output:
        "results/adaptive/{dataset}/rounds.csv",
    log:
        "logs/adaptive/{dataset}/rounds.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/adaptive_rounds.py"


rule plot_adaptive:
    # The target's interval against the runs spent, round by round, beside a grid study's where
    # `adaptive.reference` names one that exists.
    input:
        unpack(adaptive_reference),
        rounds="results/adaptive/{dataset}/rounds.csv",
    output:
        png=report(
            "results/adaptive/{dataset}/rounds.png",
            caption="../report/adaptive.rst",
            category="{dataset}",
            subcategory="adaptive rounds",
            labels={"dataset": "{dataset}", "figure": "adaptive rounds"},
        ),
        pdf="results/adaptive/{dataset}/rounds.pdf",
    log:
        "logs/plots/{dataset}/adaptive.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    params:
        target=STUDY["analysis"]["advice_target"],
    script:
        "../scripts/plot_adaptive.py"
