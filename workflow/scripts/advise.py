"""Snakemake entry point: the runs to do next on one dataset, from the study's grid of checkpoints x sizes
and the checkpoints and sizes the config lets the advice propose beyond it. Each row says which config
change runs it: a repeat of a finished cell is a new seed of it (`seeds:`), never the same run again."""

from transferlaw.io import write_csv
from transferlaw.law.advise import advise_table, grid_candidates
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.fit import Columns
from transferlaw.runlog import log_to
from transferlaw.schema import read_model_runs


def seeds_setting(seeds, base, needed):
    """The `seeds:` value that adds seed `needed` (a count from the dataset's base seed, or a list)."""
    if isinstance(seeds, int):
        return f"seeds: {max(seeds, needed - base + 1)}"
    return f"seeds: {sorted({*map(int, seeds), needed})}"


def config_change(row, grid, dataset):
    """What runs an advised row: nothing for a configured cell not yet run, else the keys to change."""
    changes = []
    if row["pretrain_step"] not in grid["steps"]:
        changes.append(f"add {row['revision']} to models.{grid['model']}.revisions")
    if row["finetune_size"] not in grid["sizes"]:
        changes.append(f"add {row['finetune_size']} to datasets.{dataset}.sizes")
    if row["replicate"] > 0:  # the study's seeds apply to every cell: say so
        setting = seeds_setting(grid["seeds"], grid["base_seed"], int(row["seed"]))
        changes.append(f"{setting} (seed {row['seed']} of every cell)")
    return "; ".join(changes) or "none: configured, not yet run"


with log_to(snakemake.log[0]):
    fit, analysis, grid = snakemake.params.fit, snakemake.params.analysis, snakemake.params.grid
    dataset = snakemake.wildcards.dataset
    table = read_model_runs(snakemake.input.runs, fit["model"], fit["method"])
    # the study's own interval, so that the message states the one the tables and summary state
    intervals = {dataset: BootstrapSummary.read(snakemake.input.bootstrap)}
    candidates = grid_candidates(
        table, grid["steps"], grid["sizes"], fit["p"], fit["f"], grid["extra_steps"], grid["extra_sizes"]
    )
    advice = advise_table(
        table,
        candidates.drop(columns=["in_grid"]),
        analysis["advice_runs"],
        form=fit["form"],
        columns=Columns(p=fit["p"], f=fit["f"]),
        target=analysis["advice_target"],
        cost=analysis["advice_cost"],
        n_samples=analysis["advice_samples"],
        seed=analysis["advice_seed"],
        keys=snakemake.params.remedies,  # without a law: the settings to change, then a space-filling batch
        intervals=intervals,
    )
    advice.insert(
        advice.columns.get_loc("rank"),
        "config_change",
        [config_change(row, grid, dataset) for row in advice.to_dict("records")],
    )
    write_csv(advice, snakemake.output[0])
    print(advice.to_string(index=False))
