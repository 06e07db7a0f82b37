# An adaptive study (config `adaptive:`, issue 21): per dataset, rounds that fit, bootstrap and advise on
# the runs so far, then run the advised batch, until the target's interval is narrow enough or a budget is
# spent. Each round is a Snakemake checkpoint: its JSON names the runs the next round reads, so the DAG
# grows by one batch of ordinary fine-tuning jobs (rule finetune, one record each) per round. A killed
# study resumes where it stopped: the rounds written are kept, the runs finished are not redone, and the
# next round replans the same batch (seeded by dataset and round). The dataset's aggregate, and with it
# every analysis (`snakemake results/fits/<dataset>.json`), reads the runs the last round fitted.
import json

#: the resolved `adaptive` block, or None for a study that runs its whole grid
ADAPTIVE = STUDY.get("adaptive")


def adaptive_round_file(dataset, round_):
    return f"results/adaptive/{dataset}/round{round_}.json"


def read_round(dataset, round_):
    """A finished round's JSON, through its checkpoint: until the round has run, Snakemake stops here,
    runs it, and evaluates the DAG again (so the study grows one round at a time)."""
    path = checkpoints.adaptive_round.get(dataset=dataset, round=str(round_)).output[0]
    with open(path) as fh:
        return json.load(fh)


def round_runs(dataset, plan):
    """The record files of a round's runs (the main model's and method's: an adaptive study has one each)."""
    return [
        run_file(dataset, MAIN_MODEL, r["revision"], r["size"], MAIN_METHOD, r["seed"])
        for r in plan["runs"]
    ]


def last_round(dataset):
    """The dataset's round that stopped, and its JSON (every round before it run first)."""
    round_ = 0
    while True:
        plan = read_round(dataset, round_)
        if plan["stop"]:
            return round_, plan
        round_ += 1


def adaptive_round_input(wildcards):
    """Round r reads round r - 1's plan and the records of every run it lists (round 0: nothing)."""
    round_ = int(wildcards.round)
    if round_ == 0:
        return {}
    previous = read_round(wildcards.dataset, round_ - 1)
    if previous["stop"]:
        raise WorkflowError(
            f"{adaptive_round_file(wildcards.dataset, round_)}: round {round_ - 1} stopped the study "
            f"({previous['stop']}); there is no round {round_}"
        )
    return {
        "previous": adaptive_round_file(wildcards.dataset, round_ - 1),
        "runs": round_runs(wildcards.dataset, previous),
    }


def adaptive_rounds(wildcards):
    """Every round's JSON, up to the one that stopped."""
    last, _ = last_round(wildcards.dataset)
    return [adaptive_round_file(wildcards.dataset, r) for r in range(last + 1)]


def dataset_runs(wildcards):
    """The records a dataset's aggregate reads: every run of its grid, or in an adaptive study the runs its
    last round fitted."""
    if ADAPTIVE is None:
        return run_files(wildcards.dataset)
    _, plan = last_round(wildcards.dataset)
    return round_runs(wildcards.dataset, plan)


def adaptive_grid(dataset):
    """What a round chooses from: the main model's revisions x the dataset's sizes, and the seeds."""
    return {
        "revisions": list(revisions_of(MAIN_MODEL)),
        "sizes": list(STUDY["datasets"][dataset]["sizes"]),
        "seeds": tlconfig.run_seeds(STUDY, dataset),
        "base_seed": tlconfig.base_seed(STUDY, dataset),
    }


def adaptive_reference(wildcards):
    """A grid study's bootstrap summary of the dataset (`adaptive.reference`), where the file exists."""
    pattern = ADAPTIVE["reference"]
    if pattern:
        path = pattern.replace("{dataset}", wildcards.dataset)
        if Path(path).exists():
            return {"reference": path}
    return {}


def adaptive_outputs():
    """The rounds' table and figure of every dataset (none outside an adaptive study)."""
    if ADAPTIVE is None:
        return []
    return expand(
        "results/adaptive/{dataset}/{name}",
        dataset=DATASETS,
        name=["rounds.csv", "rounds.png", "rounds.pdf"],
    )


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
        adaptive={k: v for k, v in (ADAPTIVE or {}).items() if k != "reference"},
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
