"""Adaptive studies (issue 21): the stopping rule and round bookkeeping on their own (fast), and the real
workflow on a small adaptive study (slow): a round added, a target met, a budget spent, a kill and resume
mid-round. The slow tests share one adaptive study, built once from a copy of the small study (its grid's
runs are reused), and change copies of it."""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    REPO,
    assert_nothing_planned,
    build_once,
    copy_study,
    edit_config,
    executed_outputs,
    planned_outputs,
    snakemake,
)

from transferlaw.config import ConfigError, adaptive_settings, check_study, load_config, resolve
from transferlaw.law.adaptive import (
    ROUND_COLUMNS,
    STOP_BUDGET_HOURS,
    STOP_BUDGET_RUNS,
    STOP_MAX_ROUNDS,
    STOP_TARGET,
    Interval,
    Settings,
    decide,
    initial_design,
    new_seeds,
    plan_round,
    round_seed,
    rounds_table,
    target_met,
)
from transferlaw.law.fit import Columns

DS = "devils-dictionary"


# ---- the stopping rule ------------------------------------------------------------------------------------
def interval(est: float, lo: float, hi: float, bounded: bool = True) -> Interval:
    return Interval(est, lo, hi, bounded)


def test_a_target_is_met_only_when_every_target_given_is():
    iv = interval(2.0, 1.75, 2.25)  # width 0.5, a quarter of the estimate
    assert not target_met(iv, Settings())  # no target: never
    assert target_met(iv, Settings(width=0.5)) and not target_met(iv, Settings(width=0.49))
    assert target_met(iv, Settings(relative=0.25)) and not target_met(iv, Settings(relative=0.2))
    assert not target_met(iv, Settings(width=1.0, relative=0.2))  # both given: both must hold
    assert not target_met(interval(2.0, 1.75, 2.25, bounded=False), Settings(width=10.0))  # reaches the top


def test_an_interval_at_the_top_of_the_search_box_has_no_width_but_one_at_zero_has():
    top = Interval.from_summary({"estimate": 1.0, "ci_low": 0.5, "ci_high": 1e20, "bound": ["high"]})
    zero = Interval.from_summary({"estimate": 1e-26, "ci_low": 1e-26, "ci_high": 0.3, "bound": ["low"]})
    assert math.isnan(top.width) and not target_met(top, Settings(width=1e30))
    assert zero.width == pytest.approx(0.3) and target_met(zero, Settings(width=0.31))
    assert math.isnan(Interval.from_summary(None).width)  # no law: no interval


def test_the_stopping_rule_checks_target_then_budgets_then_rounds():
    wide, narrow = interval(1.0, 0.0, 2.0), interval(1.0, 0.95, 1.05)
    s = Settings(width=0.2, budget_runs=30, budget_gpu_hours=2.0, max_rounds=3, batch=10)
    assert decide(1, 30, 5.0, narrow, s).stop == STOP_TARGET  # the target first, whatever is spent
    assert decide(1, 30, 5.0, wide, s).stop == STOP_BUDGET_RUNS
    assert decide(1, 20, 2.0, wide, s).stop == STOP_BUDGET_HOURS
    assert decide(4, 20, 1.0, wide, s, 0.01).stop == STOP_MAX_ROUNDS  # 3 advised batches run
    go = decide(3, 20, 1.0, wide, s, 0.01)  # 2 advised batches run: a third
    assert go.stop is None and go.batch == 10
    # the batch shrinks to what a budget has left: 5 runs; 0.3 GPU-hours at 0.1 each, 3 runs
    assert decide(1, 25, 1.0, wide, s, 0.01).batch == 5
    assert decide(1, 20, 1.7, wide, s, 0.1).batch == 3
    with pytest.raises(ValueError, match="adaptive.budget.gpu_hours"):
        decide(1, 20, float("nan"), wide, s)  # a GPU-hour budget needs the records' wall time


def test_settings_name_the_key_of_a_bad_value():
    for block, key in (
        ({"initial": "all"}, "adaptive.initial"),
        ({"initial": 0}, "adaptive.initial"),
        ({"batch": 0}, "adaptive.batch"),
        ({"target": {"width": -1.0}}, "adaptive.target.width"),
        ({"budget": {"gpu_hours": float("inf")}}, "adaptive.budget.gpu_hours"),
    ):
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            Settings.from_config(block)
    assert Settings.from_config({"initial": 6, "target": {"relative": 0.1}}) == Settings(
        initial=6, relative=0.1
    )


def test_a_config_names_what_an_adaptive_study_cannot_do():
    cfg = load_config(REPO / "config/config.yaml", root=REPO)
    for adaptive, key in (
        ({"initial": 100}, "adaptive.initial"),  # 24 cells per dataset
        ({"initial": 8, "budget": {"runs": 5}}, "adaptive.budget.runs"),  # fewer than the first round
    ):
        bad = resolve({**cfg, "adaptive": adaptive})
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            check_study(bad, root=REPO)
    # a dataset's own budget is named as the dataset's; an override in a study that is not adaptive is named
    own = copy.deepcopy(cfg)
    own["datasets"]["encyclopedia"]["adaptive"] = {"budget": {"runs": 5}}
    for adaptive, key in (
        ({"initial": 8}, "datasets.encyclopedia.adaptive.budget.runs"),
        (None, "datasets.encyclopedia.adaptive"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            check_study(resolve({**own, "adaptive": adaptive}), root=REPO)
    two = resolve({**cfg, "adaptive": {}, "methods": {"full": {}, "lora": {"method": "lora"}}})
    with pytest.raises(ConfigError, match="one model and one method"):
        check_study(two, root=REPO)
    check_study(resolve({**cfg, "adaptive": {"initial": 8}}), root=REPO)  # a good one passes


def test_a_dataset_s_target_and_budget_override_the_study_s_key_by_key():
    cfg = load_config(REPO / "config/config.yaml", root=REPO)
    cfg["adaptive"] = {"initial": 8, "target": {"relative": 0.5}, "budget": {"runs": 20}}
    cfg["datasets"]["encyclopedia"]["adaptive"] = {"target": {"width": 0.25}, "budget": {"runs": 12}}
    study = resolve(cfg)
    check_study(study, root=REPO)
    own = Settings.from_config(adaptive_settings(study, "encyclopedia"))
    other = Settings.from_config(adaptive_settings(study, "python-stdlib"))
    assert (own.width, own.relative, own.budget_runs, own.initial) == (0.25, 0.5, 12, 8)
    assert (other.width, other.relative, other.budget_runs, other.initial) == (None, 0.5, 20, 8)
    assert "adaptive" not in study["datasets"]["python-stdlib"]  # nothing filled into a dataset's block


# ---- bookkeeping ------------------------------------------------------------------------------------------
def test_the_initial_design_is_the_grid_or_distinct_cells_spread_over_it():
    grid = initial_design([64, 128, 256], [8, 24], Settings(), seeds=[0, 1])
    assert len(grid) == 12 and set(grid["seed"]) == {0, 1}
    assert len(grid.drop_duplicates(["pretrain_step", "finetune_size", "seed"])) == 12
    spread = initial_design([64, 128, 256, 512], [8, 24, 72], Settings(initial=4), seeds=[3])
    assert len(spread.drop_duplicates(["pretrain_step", "finetune_size"])) == 4 and set(spread["seed"]) == {3}
    # the corners of the grid first (maximin in log step, log size)
    assert {(64, 8), (512, 72)} <= set(zip(spread["pretrain_step"], spread["finetune_size"], strict=True))
    with pytest.raises(ValueError, match="adaptive.initial"):
        initial_design([64, 128], [8], Settings(initial=3), seeds=[0])


def test_a_repeat_is_a_seed_its_cell_has_never_run_whatever_the_runs_status():
    runs = pd.DataFrame(
        {"pretrain_step": [64, 64, 128], "finetune_size": [8, 8, 8], "seed": [0, 1, 0]},
    )  # (128, 8) seed 0 stopped at the epoch cap: a repeat is seed 1, not seed 0 again
    rows = pd.DataFrame({"pretrain_step": [64, 128, 64, 256], "finetune_size": [8, 8, 8, 8]})
    assert new_seeds(runs, rows, first=0).tolist() == [2, 1, 3, 0]


def test_rounds_table_has_the_issues_columns_and_the_stop_on_the_last_row():
    recs = [
        {
            "round": 0,
            "runs_fitted": 0,
            "cost": None,
            "estimate": None,
            "low": None,
            "high": None,
            "stop": None,
        },
        {"round": 1, "runs_fitted": 9, "cost": 0.1, "estimate": 0.5, "low": 0.1, "high": 2.0, "stop": None},
        {
            "round": 2,
            "runs_fitted": 11,
            "cost": 0.2,
            "estimate": 0.4,
            "low": 0.3,
            "high": 0.6,
            "stop": "target",
        },
    ]
    table = rounds_table(recs)
    assert list(table.columns) == ROUND_COLUMNS
    assert table["runs"].tolist() == [9, 11] and table["stop"].tolist() == ["", "target"]


def synthetic_runs(cells, seed=0):
    from transferlaw.law.forms import get_form

    law = get_form("mikami_shifted")
    params = {"A": 3.0, "alpha": 0.5, "G": 0.4, "beta": 0.3, "E": 1.0}
    rng = np.random.default_rng(seed)
    p, f = np.array(cells, float).T
    return pd.DataFrame(
        {
            "dataset": "toy",
            "revision": [f"step{int(s)}" for s in p],
            "pretrain_step": p.astype(int),
            "finetune_size": f.astype(int),
            "seed": 0,
            "status": "ok",
            "eval_loss": law.predict(params, p, f) * np.exp(rng.normal(0, 0.01, p.size)),
            "wall_seconds": 36.0,
        }
    )


def test_a_round_replans_the_same_batch_and_stops_once_the_target_is_met():
    steps, sizes = [0, 16, 64, 256, 1024], [4, 8, 16, 32]
    runs = synthetic_runs([(s, z) for s in steps[::2] for z in sizes])  # 12 of the 20 cells
    kw = dict(
        steps=steps, sizes=sizes, first_seed=0, form="mikami_shifted", columns=Columns(),
        n_samples=60, bootstrap_seed=0, advice_samples=30, advice_seed=0,
    )  # fmt: skip
    s = Settings(batch=4, width=1e-6)
    one, two = plan_round(runs, 1, s, **kw), plan_round(runs, 1, s, **kw)
    assert one.decision.stop is None and len(one.batch) == 4
    pd.testing.assert_frame_equal(one.batch, two.batch)  # a resumed study replans the same batch
    assert one.n_runs == 12 and one.cost == pytest.approx(12 * 0.01)
    assert set(one.batch["pretrain_step"]) <= set(steps) and set(one.batch["finetune_size"]) <= set(sizes)
    width = one.interval.width
    assert np.isfinite(width)
    done = plan_round(runs, 1, Settings(batch=4, width=width * 1.01), **kw)
    assert done.decision.stop == STOP_TARGET and done.batch.empty
    assert round_seed(0, "toy", 1) != round_seed(0, "toy", 2) != round_seed(0, "other", 1)


def test_the_rounds_figure_shows_a_grid_study_s_interval_beside_them_where_one_is_given():
    from transferlaw.law.bootstrap import BootstrapSummary
    from transferlaw.report.plots import plot_adaptive

    table = pd.DataFrame(
        {"round": [1, 2], "runs": [9, 13], "cost": [0.1, 0.2], "G": [0.5, 0.45], "G_low": [0.1, 0.3],
         "G_high": [0.9, 0.6], "stop": ["", STOP_TARGET]}
    )  # fmt: skip
    grid = {"estimate": 0.47, "ci_low": 0.35, "ci_high": 0.58, "identified": True}
    ref = BootstrapSummary(dataset="a", form="mikami_shifted", params={"G": grid}, n_points=24)
    with_ref, without = plot_adaptive(table, "G", ref, "a"), plot_adaptive(table, "G", None, "a")
    (ax,) = with_ref.axes
    assert ax.get_legend_handles_labels()[1] == ["adaptive rounds", "full grid"]
    assert without.axes[0].get_legend_handles_labels()[1] == ["adaptive rounds"]
    band = [p for p in ax.patches if p.get_alpha() == 0.15]  # the grid's interval as a band across
    assert len(band) == 1 and np.allclose([band[0].get_bbox().y0, band[0].get_bbox().y1], [0.35, 0.58])
    import matplotlib.pyplot as plt

    plt.close("all")


# ---- the real workflow ------------------------------------------------------------------------------------
def rounds(workdir: Path) -> pd.DataFrame:
    return pd.read_csv(workdir / f"results/adaptive/{DS}/rounds.csv", keep_default_na=False)


def round_json(workdir: Path, r: int) -> dict:
    return json.loads((workdir / f"results/adaptive/{DS}/round{r}.json").read_text())


def adaptive_config(cfg) -> None:
    """The small study, one dataset, adaptive: its grid first, then batches of 2, one advised batch."""
    del cfg["datasets"]["chloroplast-dna"]
    cfg["adaptive"] = {"initial": "grid", "batch": 2, "max_rounds": 1}


def build_adaptive(small_study: Path, folder: Path) -> None:
    copy_study(small_study, folder)  # the grid's runs (round 0) are the small study's: not run again
    edit_config(folder, adaptive_config)
    snakemake(folder, "--cores", "2")


@pytest.fixture(scope="session")
def adaptive_study(small_study, tmp_path_factory) -> Path:
    return build_once(tmp_path_factory, "adaptive-study", lambda f: build_adaptive(small_study, f))


@pytest.fixture()
def adaptive_copy(adaptive_study, tmp_path) -> Path:
    return copy_study(adaptive_study, tmp_path / "adaptive")


RUNS = f"results/runs/{DS}/tiny-neox"


def record_files(workdir: Path) -> dict[str, float]:
    return {p.relative_to(workdir).as_posix(): p.stat().st_mtime for p in (workdir / RUNS).rglob("*.parquet")}


@pytest.mark.slow
def test_a_round_adds_the_advised_runs_and_every_analysis_uses_them(adaptive_study):
    table = rounds(adaptive_study)
    assert list(table.columns) == ROUND_COLUMNS
    assert table["runs"].tolist() == [9, 11] and table["stop"].tolist() == ["", STOP_MAX_ROUNDS]
    assert table["cost"].is_monotonic_increasing and (table["cost"] > 0).all()
    batch = round_json(adaptive_study, 1)["batch"]
    assert len(batch) == 2
    grid = {(r["revision"], r["size"], r["seed"]) for r in round_json(adaptive_study, 0)["runs"]}
    for run in batch:  # each an ordinary record; a repeat of a cell is a new seed of it
        assert (run["revision"], run["size"], run["seed"]) not in grid
        assert (
            adaptive_study / f"{RUNS}/{run['revision']}/f{run['size']}.full.s{run['seed']}.parquet"
        ).is_file()
    from transferlaw.schema import read_records

    assert len(read_records(str(adaptive_study / f"results/runs/{DS}.parquet"))) == 11
    fit = json.loads((adaptive_study / f"results/fits/{DS}.json").read_text())
    assert fit["n_points"] + fit.get("n_excluded", 0) == 11
    assert (adaptive_study / f"results/adaptive/{DS}/rounds.png").stat().st_size > 0
    assert_nothing_planned(adaptive_study)
    assert_nothing_planned(adaptive_study, f"results/fits/{DS}.json")


@pytest.mark.slow
def test_a_met_target_stops_the_study_without_another_run(adaptive_copy):
    before = record_files(adaptive_copy)

    def target(cfg):
        cfg["analysis"]["advice_target"] = "E"  # the small study's G is not identified; E is bounded
        # the study's own target is out of reach; the dataset's, which overrides it, is not
        cfg["adaptive"].update(max_rounds=5, target={"width": 1e-9})
        cfg["datasets"][DS]["adaptive"] = {"target": {"width": 1000.0}}

    edit_config(adaptive_copy, target)
    proc = snakemake(adaptive_copy, "--cores", "2", f"results/adaptive/{DS}/rounds.csv")
    assert not [o for o in executed_outputs(proc) if o.startswith("results/runs/")]
    table = rounds(adaptive_copy)
    assert list(table.columns) == ["round", "runs", "cost", "E", "E_low", "E_high", "stop"]
    assert table["stop"].tolist() == [STOP_TARGET] and table["runs"].tolist() == [9]
    assert (table["E_high"] - table["E_low"] <= 1000.0).all()
    assert record_files(adaptive_copy) == before  # nothing rerun, nothing lost
    assert_nothing_planned(adaptive_copy, f"results/adaptive/{DS}/rounds.csv")


@pytest.mark.slow
def test_a_spent_budget_stops_the_study(adaptive_copy):
    before = record_files(adaptive_copy)
    edit_config(adaptive_copy, lambda c: c["adaptive"].update(max_rounds=5, budget={"runs": 12}))
    proc = snakemake(adaptive_copy, "--cores", "2", f"results/adaptive/{DS}/rounds.csv")
    table = rounds(adaptive_copy)
    # 11 runs, the budget leaves one: a batch of 1, then the budget stops it
    assert table["runs"].tolist() == [9, 11, 12] and table["stop"].tolist() == ["", "", STOP_BUDGET_RUNS]
    new = [o for o in executed_outputs(proc) if o.startswith(RUNS)]
    assert len(new) == 1 and not set(new) & set(before)
    after = record_files(adaptive_copy)
    assert {k: after[k] for k in before} == before  # no finished run redone
    assert_nothing_planned(adaptive_copy, f"results/adaptive/{DS}/rounds.csv")


@pytest.mark.slow
def test_a_spent_gpu_hour_budget_stops_the_study_and_cuts_each_batch_to_what_is_left(adaptive_copy):
    """`adaptive.budget.gpu_hours` from the records' wall_seconds: each batch is cut to the hours left at
    the mean run's cost so far (at least one run), and the study stops on the round whose runs spent it."""
    before, first = record_files(adaptive_copy), rounds(adaptive_copy)
    c9, c11 = (float(c) for c in first["cost"][:2])
    # round 1's batch of 2 still fits (so its runs are kept, not replanned), and a little more after it
    hours = max(c11, c9 + 2 * c9 / 9) + 1e-9
    edit_config(adaptive_copy, lambda c: c["adaptive"].update(max_rounds=20, budget={"gpu_hours": hours}))
    target = f"results/adaptive/{DS}/rounds.csv"
    snakemake(adaptive_copy, "--cores", "2", target)
    table = rounds(adaptive_copy)
    runs, cost = table["runs"].tolist(), table["cost"].astype(float).tolist()
    assert runs[:2] == [9, 11] and len(runs) >= 3
    assert table["stop"].tolist() == [""] * (len(runs) - 1) + [STOP_BUDGET_HOURS]
    assert cost[-1] >= hours > cost[-2]  # spent by the last batch, not before
    for r in range(len(runs) - 1):  # each batch: 2, or what the hours left buy at the mean cost so far
        assert runs[r + 1] - runs[r] == max(1, min(2, int((hours - cost[r]) // (cost[r] / runs[r]))))
    after = record_files(adaptive_copy)
    assert {k: after[k] for k in before} == before  # no finished run redone
    assert_nothing_planned(adaptive_copy, target)


@pytest.mark.slow
def test_a_grid_study_named_as_reference_is_drawn_beside_the_rounds(adaptive_copy, small_study):
    """`adaptive.reference` names a grid study's bootstrap summary: it becomes an input of the rounds'
    figure, which is redrawn from it, and nothing else reruns."""
    grid = adaptive_copy / "grid" / f"{DS}.json"
    grid.parent.mkdir()
    grid.write_bytes((small_study / f"results/bootstrap/{DS}.json").read_bytes())
    edit_config(adaptive_copy, lambda c: c["adaptive"].update(reference="grid/{dataset}.json"))
    figure = f"results/adaptive/{DS}/rounds.png"
    proc = snakemake(adaptive_copy, "--cores", "2", figure)
    jobs = (proc.stdout + proc.stderr).split("rule ")[1:]
    drawn = [j for j in jobs if j.startswith("plot_adaptive:")]
    assert len(drawn) == 1 and f"grid/{DS}.json" in drawn[0].split("output:")[0]  # an input of the figure
    assert not [o for o in executed_outputs(proc) if o.startswith(RUNS)]
    assert_nothing_planned(adaptive_copy, figure)


@pytest.mark.slow
def test_a_study_killed_mid_round_resumes_without_redoing_a_run(adaptive_copy):
    from test_faults import start, wait_for

    before = record_files(adaptive_copy)
    edit_config(adaptive_copy, lambda c: c["adaptive"].update(max_rounds=2))
    target = f"results/adaptive/{DS}/rounds.csv"
    proc = start(adaptive_copy, "--cores", "1", target)  # one job at a time: the batch's runs one by one

    def one_of_the_batch_done() -> bool:
        return len(record_files(adaptive_copy)) > len(before)

    wait_for(one_of_the_batch_done, timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole workflow, mid-round: a run done, one not
    proc.wait()
    time.sleep(2)
    done = record_files(adaptive_copy)
    plan = round_json(adaptive_copy, 2)  # round 2 planned before the kill
    assert plan["stop"] is None and len(plan["batch"]) == 2 and len(done) == len(before) + 1
    snakemake(adaptive_copy, "--unlock")
    proc2 = snakemake(adaptive_copy, "--cores", "2", target)
    redone = set(executed_outputs(proc2)) & set(done)
    assert not redone, f"finished runs redone: {redone}"
    assert round_json(adaptive_copy, 2)["batch"] == plan["batch"]  # the same batch, replanned or kept
    table = rounds(adaptive_copy)
    assert table["runs"].tolist() == [9, 11, 13] and table["stop"].tolist()[-1] == STOP_MAX_ROUNDS
    after = record_files(adaptive_copy)
    assert {k: after[k] for k in done} == done
    assert_nothing_planned(adaptive_copy, target)
    assert planned_outputs(adaptive_copy, target) == []


def test_the_embedded_adaptive_config_is_the_embedded_study_in_adaptive_mode():
    import yaml

    adaptive = yaml.safe_load((REPO / "config/adaptive.yaml").read_text())
    grid = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for block in adaptive["datasets"].values():  # a dataset's own target: the adaptive study's alone
        block.pop("adaptive", None)
    assert {k: v for k, v in adaptive.items() if k not in ("adaptive", "study")} == {
        k: v for k, v in grid.items() if k != "study"
    }
    check_study(resolve(load_config(REPO / "config/adaptive.yaml", root=REPO)), root=REPO)
