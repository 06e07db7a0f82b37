"""An adaptive study (issue 21): rounds of fit, bootstrap and advice until G's interval is narrow enough or a
budget is spent.

A round takes the runs so far, bootstraps the law as the study does (:func:`transferlaw.law.bootstrap.
bootstrap_table`, the same resamples and seed as ``results/bootstrap/<dataset>.json``, so the last round's
interval is the one the study reports), then decides (:func:`decide`): stop, and say what stopped it, or
run the next batch, which :func:`transferlaw.law.advise.advise_table` picks from the grid of configured
checkpoints x sizes (a repeat of a cell is a new seed of it, never the same run again: :func:`new_seeds`).
Round 0 is the initial design: the configured grid, or a space-filling batch of N cells.

The package knows nothing of files: the workflow (``workflow/rules/adaptive.smk``) runs each round as a
Snakemake checkpoint and each chosen run as an ordinary fine-tuning job; ``benchmarks/adaptive.py`` runs the
same :func:`plan_round` on simulated runs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.defaults import default
from transferlaw.law.advise import advise_table, grid_candidates, space_filling
from transferlaw.law.advise import new_seeds as _advise_new_seeds
from transferlaw.law.bootstrap import bootstrap_table
from transferlaw.law.fit import Columns

#: what stopped a study: its interval met the target, a budget was spent, or the rounds ran out
STOP_TARGET = "target"
STOP_BUDGET_RUNS = "budget_runs"
STOP_BUDGET_HOURS = "budget_gpu_hours"
STOP_MAX_ROUNDS = "max_rounds"
STOPS = (STOP_TARGET, STOP_BUDGET_RUNS, STOP_BUDGET_HOURS, STOP_MAX_ROUNDS)
#: the columns of ``rounds.csv`` (the target's own name replaces G where it is another parameter)
ROUND_COLUMNS = ["round", "runs", "cost", "G", "G_low", "G_high", "stop"]


@dataclass(frozen=True)
class Settings:
    """The config's ``adaptive`` block (schema defaults filled in): see config/README.md."""

    initial: str | int = "grid"
    batch: int = 10
    width: float | None = None  # target: absolute width of the 95% interval
    relative: float | None = None  # target: width / |estimate|
    budget_runs: int | None = None
    budget_gpu_hours: float | None = None
    max_rounds: int = 20

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> Settings:
        """From a resolved ``adaptive`` block; ValueError naming the key where a value is unusable (the
        schema checks types; this checks what the schema cannot say)."""
        target, budget = block.get("target") or {}, block.get("budget") or {}
        initial = block.get("initial", default("adaptive.initial"))
        if not (
            initial == "grid" or (isinstance(initial, int) and not isinstance(initial, bool) and initial >= 1)
        ):
            raise ValueError(f"adaptive.initial: {initial!r} is neither `grid` nor a number of runs >= 1")
        out = cls(
            initial=initial,
            batch=int(block.get("batch", default("adaptive.batch"))),
            width=target.get("width"),
            relative=target.get("relative"),
            budget_runs=budget.get("runs"),
            budget_gpu_hours=budget.get("gpu_hours"),
            max_rounds=int(block.get("max_rounds", default("adaptive.max_rounds"))),
        )
        for key, value in (
            ("adaptive.batch", out.batch),
            ("adaptive.max_rounds", out.max_rounds),
            ("adaptive.target.width", out.width),
            ("adaptive.target.relative", out.relative),
            ("adaptive.budget.runs", out.budget_runs),
            ("adaptive.budget.gpu_hours", out.budget_gpu_hours),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key}: {value!r} is not a positive number")
        return out


@dataclass
class Interval:
    """The target's 95% interval as the bootstrap summary gives it (NaN where there is none)."""

    estimate: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    bounded: bool = False  # below the top of the search box: a width worth comparing with a target

    @classmethod
    def from_summary(cls, entry: Mapping[str, Any] | None) -> Interval:
        if not entry:
            return cls()

        def number(key: str) -> float:
            value = entry.get(key)
            return float("nan") if value is None else float(value)

        # as the advice reads an interval: a width unless it reaches the top of the search box (one at the
        # lower bound, G = 0 within the noise, is an upper limit, and its width is worth reaching)
        bounded = "high" not in (entry.get("bound") or [])
        return cls(number("estimate"), number("ci_low"), number("ci_high"), bounded)

    @property
    def width(self) -> float:
        return self.high - self.low if self.bounded else float("nan")


def target_met(interval: Interval, settings: Settings) -> bool:
    """Whether the interval is as narrow as every target given asks (no target: never). An interval that
    reaches the top of the search box meets none."""
    if settings.width is None and settings.relative is None:
        return False
    w = interval.width
    if not np.isfinite(w):
        return False
    if settings.width is not None and not w <= settings.width:
        return False
    if settings.relative is not None:
        scale = abs(interval.estimate)
        if not (np.isfinite(scale) and scale > 0 and w / scale <= settings.relative):
            return False
    return True


@dataclass(frozen=True)
class Decision:
    """Stop (``stop`` one of :data:`STOPS`) or run ``batch`` more runs; ``message`` says why."""

    stop: str | None
    batch: int
    message: str


def decide(
    round_: int,
    n_runs: int,
    cost: float,
    interval: Interval,
    settings: Settings,
    run_cost: float = float("nan"),
) -> Decision:
    """The stopping rule of round ``round_`` (>= 1: the initial batch and ``round_ - 1`` advised ones run),
    with ``n_runs`` runs spent at ``cost`` GPU-hours and the target's ``interval`` from them. In order: the
    target met; the run budget spent; the GPU-hour budget spent; ``max_rounds`` advised batches run. Else
    the next batch: ``batch`` runs, fewer where the budget left is smaller (in GPU-hours, at ``run_cost``
    per run, the mean so far; at least one run while any budget is left)."""
    if target_met(interval, settings):
        rel = f", {interval.width / abs(interval.estimate):.3g} of |estimate|" if interval.estimate else ""
        return Decision(STOP_TARGET, 0, f"interval width {interval.width:.4g}{rel}: the target is met")
    if settings.budget_runs is not None and n_runs >= settings.budget_runs:
        return Decision(STOP_BUDGET_RUNS, 0, f"{n_runs} runs spent of a budget of {settings.budget_runs}")
    hours = settings.budget_gpu_hours
    if hours is not None:
        if not np.isfinite(cost):
            raise ValueError("adaptive.budget.gpu_hours: the runs' records give no cost (wall_seconds)")
        if cost >= hours:
            return Decision(STOP_BUDGET_HOURS, 0, f"{cost:.3g} GPU-hours spent of a budget of {hours:g}")
    if round_ - 1 >= settings.max_rounds:  # round 0's batch is the initial design, not advised
        return Decision(STOP_MAX_ROUNDS, 0, f"{round_ - 1} advised batch(es) run (adaptive.max_rounds)")
    batch = settings.batch
    if settings.budget_runs is not None:
        batch = min(batch, settings.budget_runs - n_runs)
    if hours is not None and np.isfinite(run_cost) and run_cost > 0:
        batch = max(1, min(batch, int((hours - cost) // run_cost)))
    said = "no bounded interval yet" if not np.isfinite(interval.width) else f"width {interval.width:.4g}"
    return Decision(None, batch, f"{said}: {batch} more run(s)")


def runs_cost(runs: pd.DataFrame) -> float:
    """GPU-hours the runs took: their wall time, each run on one device (a CPU run counts its own hours);
    NaN where the table has no ``wall_seconds``."""
    if "wall_seconds" not in runs.columns:
        return float("nan")
    return float(pd.to_numeric(runs["wall_seconds"]).sum()) / 3600.0


def round_seed(base: int, dataset: str, round_: int) -> int:
    """A seed of its own per (dataset, round), the same on every machine and in a resumed study."""
    return int(np.random.SeedSequence([base, zlib.crc32(str(dataset).encode()), round_]).generate_state(1)[0])


def candidates(
    runs: pd.DataFrame, steps: Sequence[int], sizes: Sequence[int], p: str, f: str
) -> pd.DataFrame:
    """The grid (checkpoint steps x sizes) as advice candidates, with the law's p and f columns. A step or
    size no run has yet is priced by the runs' constant ratio (tokens per step, ...), as
    :func:`transferlaw.law.advise.grid_candidates` does for cells beyond the grid."""
    have_steps, have_sizes = set(runs["pretrain_step"].astype(int)), set(runs["finetune_size"].astype(int))
    cells = grid_candidates(
        runs,
        [s for s in steps if s in have_steps],
        [z for z in sizes if z in have_sizes],
        p,
        f,
        [s for s in steps if s not in have_steps],
        [z for z in sizes if z not in have_sizes],
    )
    return cells.drop(columns=["in_grid"])


def new_seeds(runs: pd.DataFrame, rows: pd.DataFrame, first: int) -> np.ndarray:
    """A seed per chosen row that its cell has never run (:func:`transferlaw.law.advise.new_seeds` over all
    the dataset's runs, capped ones included); ``first`` (the dataset's seed) for a cell not yet run."""
    return _advise_new_seeds(runs, rows, "pretrain_step", "finetune_size", first)


def initial_design(
    steps: Sequence[int], sizes: Sequence[int], settings: Settings, seeds: Sequence[int]
) -> pd.DataFrame:
    """Round 0: every cell of the grid at each of the study's ``seeds``, or ``settings.initial`` cells
    spread over it (greedy maximin in log step, log size: :func:`transferlaw.law.advise.space_filling`) at
    the first seed. Columns ``revision``, ``pretrain_step``, ``finetune_size``, ``seed``."""
    grid = pd.DataFrame(
        [(f"step{s}", int(s), int(z)) for s in steps for z in sizes],
        columns=["revision", "pretrain_step", "finetune_size"],
    )
    if settings.initial == "grid":
        rows = [grid.assign(seed=int(seed)) for seed in seeds]
        return pd.concat(rows, ignore_index=True)
    n = int(settings.initial)
    if n > len(grid):
        raise ValueError(
            f"adaptive.initial: {n} runs, but the grid has only {len(grid)} cells ({len(steps)} revisions x "
            f"{len(sizes)} sizes); give at most {len(grid)}, or `grid`"
        )
    empty = np.zeros(0)
    picks = space_filling(
        empty, empty, grid["pretrain_step"].to_numpy(float), grid["finetune_size"].to_numpy(float), n,
        np.ones(len(grid)),
    )  # fmt: skip
    return grid.iloc[picks].assign(seed=int(seeds[0])).reset_index(drop=True)


@dataclass
class Round:
    """One round's outcome: the runs it fitted (``n_runs``, their ``cost``), the target's interval, and the
    decision with the next ``batch`` (empty when it stops)."""

    round: int
    n_runs: int
    cost: float
    interval: Interval
    decision: Decision
    batch: pd.DataFrame = field(default_factory=pd.DataFrame)
    advice: str = ""  # the advice's own message

    def record(self, target: str = "G") -> dict[str, Any]:
        """The round as JSON-ready data (without the runs, which the workflow adds)."""

        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        return {
            "round": self.round,
            "runs_fitted": self.n_runs,
            "cost": num(self.cost),
            "target": target,
            "estimate": num(self.interval.estimate),
            "low": num(self.interval.low),
            "high": num(self.interval.high),
            "width": num(self.interval.width),
            "stop": self.decision.stop,
            "message": self.decision.message,
            "advice": self.advice,
            "batch": self.batch.to_dict("records"),
        }


def plan_round(
    runs: pd.DataFrame,
    round_: int,
    settings: Settings,
    *,
    steps: Sequence[int],
    sizes: Sequence[int],
    first_seed: int,
    form: str,
    columns: Columns,
    target: str = "G",
    n_samples: int,
    bootstrap_seed: int,
    advice_samples: int,
    advice_seed: int,
    cost: str | None = None,
    keys: Mapping[str, str] | None = None,
) -> Round:
    """Round ``round_`` >= 1 of one dataset: bootstrap the law on ``runs`` (the records of the rounds
    before, every status: those not ``ok`` count as spent, not as fitted), decide, and where the study goes
    on, advise the next batch from the grid ``steps`` x ``sizes``. Deterministic in its inputs: the advice's
    seed is ``advice_seed`` mixed with the dataset and round (:func:`round_seed`)."""
    runs = runs.reset_index(drop=True)
    dataset = str(runs["dataset"].iloc[0])
    summaries, _ = bootstrap_table(
        runs, form=form, columns=columns, n_samples=n_samples, seed=bootstrap_seed, keys=keys,
        record_unfitted=True,
    )  # fmt: skip
    summary = summaries[dataset]
    interval = Interval.from_summary(summary.params.get(target))
    spent = runs_cost(runs)
    decision = decide(round_, len(runs), spent, interval, settings, spent / max(len(runs), 1))
    out = Round(round_, len(runs), spent, interval, decision)
    if decision.stop is not None:
        return out
    cands = candidates(runs, steps, sizes, columns.p, columns.f)
    advice = advise_table(
        runs, cands, decision.batch, form=form, columns=columns, target=target, cost=cost,
        n_samples=advice_samples, seed=round_seed(advice_seed, dataset, round_), keys=keys,
        intervals={dataset: summary}, n_sims=0,
    )  # fmt: skip
    batch = advice[["revision", "pretrain_step", "finetune_size"]].copy()
    batch["seed"] = new_seeds(runs, batch, first_seed)
    out.batch = batch.astype({"pretrain_step": int, "finetune_size": int, "seed": int})
    out.advice = str(advice["message"].iloc[0])
    return out


def rounds_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``rounds.csv`` from the rounds' records (round 1 on: round 0 is the initial design, fitted by none):
    per round the runs so far, their cost, the target's interval, and on the last row what stopped it."""
    rows = []
    for r in records:
        if r["round"] < 1:
            continue
        t = r.get("target", "G")
        rows.append(
            {
                "round": r["round"],
                "runs": r["runs_fitted"],
                "cost": r["cost"],
                t: r["estimate"],
                f"{t}_low": r["low"],
                f"{t}_high": r["high"],
                "stop": r["stop"] or "",
            }
        )
    target = records[-1].get("target", "G") if records else "G"
    names = [c.replace("G", target) if c.startswith("G") else c for c in ROUND_COLUMNS]
    return pd.DataFrame(rows, columns=names)
