"""Benchmark: advised runs against random runs, by the width of G's 95% bootstrap interval (issue 12).

Tables are drawn from the paper's Table 2 (5 datasets, its 15 x 10 grid, 2% log-normal noise, form
``mikami``: ``tests/synthetic.py``). Per dataset and seed: start from ``--n0`` random cells of the grid,
then add ``--runs`` runs chosen by :func:`transferlaw.law.advise.advise` (candidates: the grid's 150 cells,
replicates allowed) or ``--runs`` runs at random (cells not yet run); every new run gets its own noise.
Both tables are refitted and bootstrapped (``--samples`` resamples) and the widths of G's interval
compared: the ratio advised / random, its median over datasets x seeds, and per dataset the median and the
worst ratio over seeds. Targets (issue 12): median ratio <= 0.75, and no dataset worse than random.

Then, per dataset, from the first ``--reach-seeds`` seeds' starts: advised runs are added ``--batch`` at a
time (the advice recomputed after each batch, as a study would) until G's interval is as narrow as the
full 150-run grid's (the same dataset, its own noise), or ``--max-runs`` advised runs; prints how many.

    python benchmarks/advise.py [--seeds 6] [--n0 20] [--runs 20] [--samples 400] [--reach-seeds 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from synthetic import TABLE2  # noqa: E402

from transferlaw.law.advise import STATUS_OK, advise  # noqa: E402
from transferlaw.law.bootstrap import bootstrap_fit  # noqa: E402
from transferlaw.law.forms import get_form  # noqa: E402

FORM = "mikami"
STEPS = np.unique(np.geomspace(1000, 143_000, 15).round())  # the grid of tests/synthetic.paper_grid
SIZES = np.unique(np.geomspace(10, 1100, 10).round())
GRID_P, GRID_F = (a.ravel() for a in np.meshgrid(STEPS, SIZES, indexing="ij"))


def run(params: dict, cells: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """The losses of runs at grid cells ``cells``, each with its own log-normal noise."""
    return get_form(FORM).predict(params, GRID_P[cells], GRID_F[cells]) * np.exp(
        rng.normal(0.0, noise, cells.size)
    )


def g_width(cells: np.ndarray, loss: np.ndarray, samples: int) -> float:
    g = bootstrap_fit(GRID_P[cells], GRID_F[cells], loss, FORM, n_samples=samples, seed=0).summary()["G"]
    return g["ci_high"] - g["ci_low"]


def advised(cells: np.ndarray, loss: np.ndarray, k: int, args: argparse.Namespace, seed: int) -> np.ndarray:
    a = advise(
        GRID_P[cells], GRID_F[cells], loss, GRID_P, GRID_F, k, FORM, n_samples=args.ensemble, seed=seed
    )
    if a.status != STATUS_OK:
        print(f"  [{a.status}] {a.message}", flush=True)
    if "random one" in a.message:
        print("  [guard] a random design replaced the greedy one", flush=True)
    return a.picks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--n0", type=int, default=20, help="random runs to start from")
    ap.add_argument("--runs", type=int, default=20, help="runs added by advice and at random")
    ap.add_argument("--samples", type=int, default=400, help="bootstrap resamples of each evaluation")
    ap.add_argument("--ensemble", type=int, default=200, help="bootstrap refits the advice averages over")
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument(
        "--reach-seeds", type=int, default=1, help="seeds of the runs-to-full-grid loop (0: skip)"
    )
    ap.add_argument("--batch", type=int, default=10, help="advised runs per step of that loop")
    ap.add_argument("--max-runs", type=int, default=130, help="advised runs at most in that loop")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    print(f"load average before: {os.getloadavg()}")
    print(
        f"{len(TABLE2)} datasets x {args.seeds} seeds: {args.n0} random runs, then {args.runs} advised or "
        f"{args.runs} random; G's 95% interval from {args.samples} resamples; ensemble {args.ensemble}"
    )
    ratios: dict[str, list[float]] = {}
    for d, (name, params) in enumerate(TABLE2.items()):
        for seed in range(args.seeds):
            rng = np.random.default_rng([seed, d, 0])
            start = rng.choice(GRID_P.size, args.n0, replace=False)
            loss0 = run(params, start, rng, args.noise)
            picks = advised(start, loss0, args.runs, args, seed)
            fresh = np.setdiff1d(np.arange(GRID_P.size), start)
            rand = np.random.default_rng([seed, d, 2]).choice(fresh, args.runs, replace=False)
            loss_a = run(params, picks, np.random.default_rng([seed, d, 1]), args.noise)
            loss_r = run(params, rand, np.random.default_rng([seed, d, 3]), args.noise)
            wa = g_width(np.r_[start, picks], np.r_[loss0, loss_a], args.samples)
            wr = g_width(np.r_[start, rand], np.r_[loss0, loss_r], args.samples)
            ratios.setdefault(name, []).append(wa / wr)
            print(
                f"{name:24s} seed {seed}: G's width, {args.runs} advised {wa:7.3g}, {args.runs} random "
                f"{wr:7.3g}: ratio {wa / wr:5.2f} ({np.unique(picks).size} distinct cells advised)",
                flush=True,
            )
    every = np.concatenate(list(ratios.values()))
    print(f"\nMEDIAN RATIO advised/random over {every.size} tables: {np.median(every):.3f} (target <= 0.75)")
    print(f"advised narrower than random in {int((every < 1).sum())} of {every.size} tables")
    print(f"{'dataset':24s} {'median':>7s} {'worst':>7s} {'best':>7s}")
    for name, r in ratios.items():
        print(f"{name:24s} {np.median(r):7.3f} {np.max(r):7.3f} {np.min(r):7.3f}")
    worse = [n for n, r in ratios.items() if np.median(r) > 1]
    print(
        "no dataset worse than random (median over seeds)" if not worse else f"WORSE than random on {worse}"
    )

    for d, (name, params) in enumerate(TABLE2.items()):
        for seed in range(args.reach_seeds):
            full = np.arange(GRID_P.size)
            w_full = g_width(
                full, run(params, full, np.random.default_rng([seed, d, 4]), args.noise), args.samples
            )
            rng = np.random.default_rng([seed, d, 0])
            cells = rng.choice(GRID_P.size, args.n0, replace=False)
            loss = run(params, cells, rng, args.noise)
            noise_rng = np.random.default_rng([seed, d, 5])
            added, w = 0, g_width(cells, loss, args.samples)
            while w > w_full and added < args.max_runs:
                k = min(args.batch, args.max_runs - added)
                picks = advised(cells, loss, k, args, seed + added)
                cells, loss = np.r_[cells, picks], np.r_[loss, run(params, picks, noise_rng, args.noise)]
                added += k
                w = g_width(cells, loss, args.samples)
            reached = f"{added} advised runs ({args.n0 + added} in all)" if w <= w_full else "not reached"
            print(
                f"REACH {name:24s} seed {seed}: full grid (150 runs) width {w_full:.3g}; "
                f"{reached}: width {w:.3g}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}; wall {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
