# Config resolution, early checks, the study's names and the input functions of the rules. Nothing here runs a
# model: errors in the config (wrong types, missing files, unknown revisions, datasets too small) stop the
# workflow at parse time. Every path of the study is written in the rule files (and, for the few an input
# function needs, here): the package takes the paths it reads and writes as arguments.
import json
import re

import transferlaw.config as tlconfig

try:
    STUDY = tlconfig.resolve(config)
    tlconfig.check_study(STUDY, root=".")
    for _dataset in STUDY[
        "datasets"
    ]:  # a new sha256 pin against the file already downloaded
        tlconfig.check_download_pin(
            STUDY, _dataset, f"results/corpora/{_dataset}.txt.json"
        )
except tlconfig.ConfigError as err:
    raise WorkflowError(f"invalid config: {err}")


# sorted, so that reordering the config's blocks changes no job's params (and reruns nothing)
DATASETS = sorted(STUDY["datasets"])
MODELS = sorted(STUDY["models"])
#: fine-tuning methods by name (`full` alone unless the study lists `methods:`)
METHODS = tlconfig.methods(STUDY)
#: datasets whose text is made by the workflow, downloaded (`url`, `hub`) or generated (`generate`)
FETCHED = [d for d in DATASETS if {"url", "hub"} & set(STUDY["datasets"][d])]
GENERATED = [d for d in DATASETS if "generate" in STUDY["datasets"][d]]
#: the main law (`fit.model`, `fit.method`): the per-dataset figures, tables, advice and summary are its
MAIN_MODEL = STUDY["fit"]["model"]
MAIN_METHOD = STUDY["fit"]["method"]
#: where the workflow's own pre-trained models are laid out, as a Hugging Face cache (rule pretrain)
LOCAL_MODELS = "results/models"

#: whether the study has what each cross-model table compares
SEVERAL_METHODS = len(METHODS) > 1
SEVERAL_MODELS = len(MODELS) > 1
REPLICATES = any(len(tlconfig.run_seeds(STUDY, d)) > 1 for d in DATASETS)


def one_of(names):
    """A wildcard constraint matching exactly these names (an empty name matches the empty string; no names,
    nothing)."""
    if not names:
        return "(?!)"
    return "(?:" + "|".join(re.escape(n) for n in names) + ")"


def manifest_file(model):
    return f"results/checkpoints/{model}/manifest.json"


#: each model's revisions: its list, or what `snakemake prefetch` resolved its rule to, read from the model's
#: manifest (the file every machine reads, so the study is planned from prefetch's choice and nothing is
#: resolved again); None while a rule is unresolved, when only `snakemake prefetch` can be planned
REVISIONS = {m: tlconfig.planned_revisions(STUDY, m, manifest_file(m)) for m in MODELS}


def revisions_of(model):
    """A model's revisions; a clear error, naming what to run, while its rule is unresolved."""
    if REVISIONS[model] is None:
        raise WorkflowError(
            tlconfig.unresolved_message(STUDY, model, manifest_file(model))
        )
    return REVISIONS[model]


# ---- records: one per fine-tuning run -------------------------------------------------------------------
def run_file(dataset, model, revision, size, method, seed):
    """One run's record, written by rule finetune. Every run names its method and seed; a study written
    before records did (a full fine-tune at the dataset's own seed was f<size>.parquet) is moved once by
    `snakemake migrate_layout` (finetune.smk)."""
    return f"results/runs/{dataset}/{model}/{revision}/f{size}.{method}.s{seed}.parquet"


def run_files(dataset):
    """Every run record of one dataset: one per (model, method, revision, size, seed)."""
    return [
        run_file(dataset, model, revision, size, method, seed)
        for model in STUDY["models"]
        for method in METHODS
        for revision in revisions_of(model)
        for size in STUDY["datasets"][dataset]["sizes"]
        for seed in tlconfig.run_seeds(STUDY, dataset)
    ]


def finetune_resource(key, per_attempt=False):
    """A fine-tuning job's resource from its dataset's and method's settings (``finetune.threads``, ...)."""

    def value(wc):
        return tlconfig.run_settings(STUDY, wc.dataset, wc.method)[key]

    if per_attempt:
        return lambda wc, attempt: value(wc) * attempt
    return value


# ---- laws: one per (dataset, model, method) -------------------------------------------------------------
# A law's files are results/{fits,bootstrap}/<dataset>{law}.<ext>, where {law} names the (model, method):
# empty for the main law, so that it is results/fits/<dataset>.json, which the per-dataset figures, tables and
# summary read (and users ask for); `/<model>/<method>` for every other law of a study with several.
#: the folder separator in a law's name (a string literal that starts with it reads as an absolute path to
#: `snakemake --lint`)
SEP = "/"


def law_name(model, method):
    """The {law} wildcard of a (model, method)."""
    if (model, method) == (MAIN_MODEL, MAIN_METHOD):
        return ""
    return f"{SEP}{model}{SEP}{method}"


#: every law's {law} wildcard -> its (model, method)
LAWS = {law_name(m, me): (m, me) for m in MODELS for me in METHODS}
#: every fitted law: (dataset, model, method)
FITS = [(d, m, me) for d in DATASETS for m in MODELS for me in METHODS]


def fit_file(dataset, model, method, kind="fits", ext="json"):
    """Where the law of (dataset, model, method) is written (``kind``: fits or bootstrap)."""
    return f"results/{kind}/{dataset}{law_name(model, method)}.{ext}"


def fit_files(kind="fits", ext="json"):
    return [fit_file(d, m, me, kind, ext) for d, m, me in FITS]


def fit_model(wildcards):
    """The model of a job's law: its {law} wildcard's, or the main model (analyses of the main law only)."""
    return LAWS[wildcards.get("law", "")][0]


def fit_method(wildcards):
    """The method of a job's law: its {law} wildcard's, or the main method."""
    return LAWS[wildcards.get("law", "")][1]


def remedy_keys(wildcards):
    """The config keys that would change what a (dataset, model, method)'s law is fitted to: what an
    analysis of a dataset without a law tells the user to change (transferlaw.law.fit.why_no_law).
    """
    return tlconfig.remedy_keys(
        STUDY, wildcards.dataset, fit_model(wildcards), fit_method(wildcards)
    )


def advice_grid(dataset):
    """The cells the advice chooses from: the fitted model's configured checkpoints x the dataset's sizes,
    and the checkpoints and sizes it may propose beyond them (analysis.advice_revisions, advice_sizes; a
    workflow-trained model's saved steps from its first revision on), with the study's seeds: what the
    advice needs to say which config change runs a recommended cell or replicate."""
    model = STUDY["fit"]["model"]
    block = STUDY["models"][model]
    steps = [tlconfig.revision_step(r) for r in revisions_of(model)]
    extra = [tlconfig.revision_step(r) for r in STUDY["analysis"]["advice_revisions"]]
    if block["source"] == "pretrain":
        extra += [s for s in STUDY["pretrain"]["save_steps"] if s >= min(steps)]
    sizes = list(STUDY["datasets"][dataset]["sizes"])
    return {
        "model": model,
        "steps": steps,
        "sizes": sizes,
        "extra_steps": sorted(set(extra) - set(steps)),
        "extra_sizes": sorted(set(STUDY["analysis"]["advice_sizes"]) - set(sizes)),
        "seeds": STUDY.get("seeds", 1),
        "base_seed": tlconfig.base_seed(STUDY, dataset),
    }


# ---- targets --------------------------------------------------------------------------------------------
def all_outputs():
    outs = expand("results/fits/{dataset}.json", dataset=DATASETS)
    outs += [
        "results/tables/parameters.md",
        "results/tables/intervals.md",
        "results/tables/law_forms.md",
        "results/tables/effective_data.csv",
        "results/tables/datasets.md",
        "results/tables/grid.md",
        "results/tables/compute.md",
        "results/figures/crossval_splits.png",
    ]
    outs += beyond_outputs()
    outs += adaptive_outputs()  # adaptive.smk
    outs += plot_outputs()  # plots.smk
    return outs


def plot_outputs():
    """Every figure of the study (the lists in plots.smk), the summary page and the config that produced them."""
    out = expand(
        "results/figures/{dataset}/{name}.{ext}",
        dataset=DATASETS,
        name=DATASET_FIGURES,
        ext=["png", "pdf"],
    )
    out += expand(
        "results/figures/{name}.{ext}",
        name=STUDY_FIGURES + BEYOND_FIGURES,
        ext=["png", "pdf"],
    )
    return out + ["results/summary.md", "results/config.yaml"]


def beyond_outputs():
    """The tables of a study with several methods, models or seeds (analysis.smk; their figures: plots.smk)."""
    outs = []
    if SEVERAL_METHODS:
        outs += ["results/tables/methods.md"]
    if SEVERAL_MODELS:
        outs += ["results/tables/gap_vs_size.csv"]
    if REPLICATES:
        outs += ["results/tables/run_noise.csv"]
    return outs


# ---- data and checkpoints -------------------------------------------------------------------------------
def dataset_text(wildcards):
    """The dataset's text: a local file (or maildir folder), or what its fetch or generator rule wrote."""
    block = STUDY["datasets"][wildcards.dataset]
    if "path" in block:
        return block["path"]
    return f"results/corpora/{wildcards.dataset}.txt"


def model_verdicts():
    """Every model's verdict on its pins (what records are checked against before they are aggregated)."""
    return [f"results/checkpoints/{m}/verified.json" for m in MODELS]


def checkpoint_pin(wildcards):
    """The verified commit a fine-tuning job loads. Pins are rewritten only when their own revision changes
    (see pin_checkpoint), so this is a plain input: no input of the study is `ancient()`.
    """
    return f"results/checkpoints/{wildcards.model}/{wildcards.revision}.json"


def pin_files(model):
    """Revision -> the pin file of each of a model's revisions."""
    return {r: f"results/checkpoints/{model}/{r}.json" for r in revisions_of(model)}


def checkpoint_ref(wildcards):
    """A workflow-trained revision's ref: re-training the model reruns its fine-tuning jobs."""
    if STUDY["models"][wildcards.model]["source"] == "pretrain":
        return tlconfig.local_ref(LOCAL_MODELS, wildcards.model, wildcards.revision)
    return []


def write_pin(model, revision, source, out, log):
    """The pin rule's job. The model's other revisions and accepted groups are read here, when the job runs,
    not passed as params: adding a revision (or accepting a group) must not rewrite the pins that exist.
    The model-wide verdict (verify_checkpoints) checks all of them together again."""
    from transferlaw.train.checkpoints import write_revision_pin

    block = STUDY["models"][model]
    write_revision_pin(
        source,
        revision,
        out,
        log,
        revisions=revisions_of(model),
        pins=pin_files(model),
        allow_identical=block.get("allow_identical", []),
    )


def pin_input(wildcards):
    """What a revision's gate reads: the workflow-trained model's published revisions (all of them, a set the
    revision list does not change: the others are compared with it), or nothing for a hub model, whose
    revisions are in the cache (`snakemake prefetch`) or fetched by the gate itself."""
    if STUDY["models"][wildcards.model]["source"] == "pretrain":
        steps = STUDY["pretrain"]["save_steps"]
        return [
            tlconfig.local_ref(LOCAL_MODELS, wildcards.model, f"step{s}") for s in steps
        ]
    return []


def tokenizer_pin():
    """A hub model's tokenizer is read from a verified commit (its first revision's, once known: an input
    function); the workflow's own is built before it."""
    if STUDY["models"][MAIN_MODEL]["source"] == "hub":
        return (
            lambda wc: f"results/checkpoints/{MAIN_MODEL}/{revisions_of(MAIN_MODEL)[0]}.json"
        )
    return []


# ---- an adaptive study (adaptive.smk) ------------------------------------------------------------------
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


# ---- one time: a study written before every record named its method and seed (rule migrate_layout) -----
#: the paths of such a study's full fine-tunes at their dataset's own seed (every other run already had
#: today's name): log, benchmark and record, which moves last (the moves are found from the records left,
#: so a migration killed half-way leaves nothing behind when run again)
OLD_LAYOUT = {
    "log": "logs/finetune/{dataset}/{model}/{revision}/f{size}.log",
    "benchmark": "results/benchmarks/finetune/{dataset}/{model}/{revision}/f{size}.tsv",
    "output": "results/runs/{dataset}/{model}/{revision}/f{size}.parquet",
}


def old_layout_moves():
    """(old path, new path) of every record in the old layout, and of its log and benchmark: each record is
    named by the method and seed it holds."""
    # the reader fills the columns of records older than methods (method full)
    from transferlaw.schema import read_records

    today = {  # rule finetune's paths
        "output": rules.finetune.output[0],
        "log": rules.finetune.log[0],
        "benchmark": rules.finetune.benchmark,
    }
    moves = []
    for path in sorted(Path("results/runs").glob("*/*/*/f*.parquet")):
        dataset, model, revision = path.parts[-4:-1]
        size = path.name[len("f") : -len(".parquet")]
        if not size.isdigit():
            continue  # a record of today's layout
        record = read_records(str(path)).iloc[0]
        old = dict(dataset=dataset, model=model, revision=revision, size=size)
        new = {**old, "method": record["method"], "seed": int(record["seed"])}
        for key, pattern in OLD_LAYOUT.items():
            moves.append((pattern.format(**old), str(today[key]).format(**new)))
    return moves


def move_metadata(moves):
    """Carry Snakemake's metadata over the moves (old path -> new path), so that the moved records are what
    Snakemake recorded: each record's entry (its rule's params, code and inputs: what reruns it when they
    change) moves to its new name, and each aggregate's list of inputs names the records by their new names
    (otherwise the changed list would rerun every analysis). Entries already moved are left as they are, so a
    migration stopped half-way finishes when run again."""
    store = workflow.persistence
    if not all(
        hasattr(store, f) for f in ("_read_record", "_write_record", "_delete_record")
    ):
        raise WorkflowError(
            "migrate_layout: this Snakemake keeps its metadata in a way this rule does not know; "
            "nothing was moved (it was written for Snakemake 9.27)"
        )
    renamed = dict(moves)
    for old, new in moves:
        entry = store._read_record(old)
        if entry is None:
            continue  # a log or benchmark (Snakemake keeps metadata of outputs only), or already moved
        entry.log = sorted(renamed.get(p, p) for p in entry.log or [])
        store._write_record(new, entry)
        store._delete_record(old)
    for dataset in DATASETS:
        table = rules.aggregate.output[0].format(dataset=dataset)
        entry = store._read_record(table)
        if entry is None or not set(entry.input or []) & set(renamed):
            continue
        entry.input = sorted(renamed.get(p, p) for p in entry.input)
        entry.input_checksums = {
            renamed.get(p, p): c for p, c in (entry.input_checksums or {}).items()
        }
        store._write_record(table, entry)


def migrate_old_layout(log):
    """Move the old layout's files (old_layout_moves) with their Snakemake metadata, and list each move in
    ``log``. Nothing changes where a file would be overwritten."""
    from transferlaw.io import move_files, planned_moves

    moves = planned_moves(old_layout_moves())  # refuses here, before anything changes
    move_metadata(moves)
    moved = move_files(moves)
    with open(log, "w") as out:
        out.writelines(f"{old} -> {new}\n" for old, new in moved)
    print(f"moved {len(moved)} file(s) to today's layout (each listed in {log})")
