"""Snakemake entry point: one round of an adaptive study of one dataset (transferlaw.law.adaptive): round 0
the initial design, round r >= 1 the fit and bootstrap of the runs so far, the stopping rule, and the next
batch. The JSON names every run fitted or to run (`runs`), which the next round and the aggregate read."""

import json

from transferlaw.io import write_json
from transferlaw.law.adaptive import Decision, Interval, Round, Settings, initial_design, plan_round
from transferlaw.law.fit import Columns
from transferlaw.runlog import log_to
from transferlaw.schema import read_records, revision_step


def run_list(table):
    """Runs as the JSON names them: revision, size, seed; sorted, so that a replanned round is the same."""
    rows = table.rename(columns={"finetune_size": "size"})[["revision", "size", "seed"]]
    return run_list_of(rows.to_dict("records"))


def run_list_of(runs):
    """A list of runs without repeats, sorted as :func:`run_list` sorts them."""
    rows = {(r["revision"], int(r["size"]), int(r["seed"])) for r in runs}
    rows = sorted(rows, key=lambda r: (revision_step(r[0]), r[1], r[2]))
    return [{"revision": v, "size": z, "seed": s} for v, z, s in rows]


with log_to(snakemake.log[0]):
    settings = Settings.from_config(snakemake.params.adaptive)
    fit, boot, grid = snakemake.params.fit, snakemake.params.bootstrap, snakemake.params.grid
    dataset, round_ = snakemake.wildcards.dataset, int(snakemake.wildcards.round)
    steps = [revision_step(r) for r in grid["revisions"]]
    target = boot["advice_target"]
    if round_ == 0:
        batch = initial_design(steps, grid["sizes"], settings, grid["seeds"])
        how = "the grid" if settings.initial == "grid" else f"{len(batch)} space-filling cells"
        done = Round(0, 0, float("nan"), Interval(), Decision(None, len(batch), f"initial design: {how}"))
        done.batch = batch
        previous = []
    else:
        runs = read_records(list(snakemake.input.runs))
        done = plan_round(
            runs,
            round_,
            settings,
            steps=steps,
            sizes=grid["sizes"],
            first_seed=grid["base_seed"],
            form=fit["form"],
            columns=Columns(p=fit["p"], f=fit["f"]),
            target=target,
            n_samples=boot["bootstrap_samples"],
            bootstrap_seed=boot["bootstrap_seed"],
            advice_samples=boot["advice_samples"],
            advice_seed=boot["advice_seed"],
            cost=boot["advice_cost"],
            keys=snakemake.params.remedies,
        )
        with open(snakemake.input.previous) as fh:
            previous = json.load(fh)["runs"]
    record = done.record(target)
    record["batch"] = run_list(done.batch) if len(done.batch) else []
    record["runs"] = run_list_of(previous + record["batch"])
    write_json(record, snakemake.output[0])
    print(json.dumps({k: v for k, v in record.items() if k != "runs"}, indent=1))
