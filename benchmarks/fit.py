"""Benchmark: the batched estimator against a plain scipy-BFGS loop over the paper's 2,240-start grid.

Generates data like the paper's (15 checkpoints x 10 fine-tuning sizes per dataset, 5 datasets with
Table 2-like parameters, log-normal noise), fits every dataset with :func:`transferlaw.law.fit.fit_law`,
then with ``scipy.optimize.minimize(method="BFGS")`` from every grid start (finite-difference
gradients as in the paper's code; ``--baseline-jac`` gives it the analytic gradient instead), and
prints both wall times, their ratio and both objectives. The plain loop takes minutes per dataset, so
``--baseline-datasets N`` times it on the first N datasets only and extrapolates linearly to all.

    python benchmarks/fit.py [--baseline-datasets N] [--baseline-jac] [--noise 0.02] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from transferlaw.law.fit import fit_law, objective, objective_and_gradient  # noqa: E402
from transferlaw.law.forms import get_form  # noqa: E402

#: Table 2 of the paper (A, G, alpha, beta, E per dataset), p in pre-training steps.
TRUE = {
    "fictional_encyclopedia": dict(A=284.766, alpha=0.730, G=2.570, beta=0.123, E=0.538),
    "math_arxiv": dict(A=317.966, alpha=0.756, G=0.166, beta=0.059, E=1.758),
    "statistics_textbook": dict(A=177.321, alpha=0.627, G=1.305, beta=0.126, E=1.367),
    "enron_emails": dict(A=181.482, alpha=0.611, G=0.595, beta=0.159, E=1.373),
    "house_cat_genome": dict(A=43.556, alpha=0.718, G=0.548, beta=0.228, E=2.677),
}


def make_data(seed: int, noise: float) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    steps = np.unique(np.geomspace(1000, 143_000, 15).round())
    sizes = np.unique(np.geomspace(10, 1100, 10).round())
    p, f = (a.ravel() for a in np.meshgrid(steps, sizes, indexing="ij"))
    law = get_form("mikami")
    return {
        name: (p, f, law.predict(true, p, f) * np.exp(rng.normal(0.0, noise, p.size)))
        for name, true in TRUE.items()
    }


def plain_loop(p: np.ndarray, f: np.ndarray, loss: np.ndarray, jac: bool) -> tuple[float, np.ndarray]:
    """The paper's procedure: scipy BFGS from every grid start, keep the lowest objective."""
    best, best_x = np.inf, None
    for start in get_form("mikami").initial_grid():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if jac:
                res = minimize(objective_and_gradient, start, args=(p, f, loss), jac=True, method="BFGS")
            else:
                res = minimize(objective, start, args=(p, f, loss), method="BFGS")
        if np.isfinite(res.fun) and res.fun < best:
            best, best_x = float(res.fun), res.x
    return best, best_x


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--baseline-datasets", type=int, default=len(TRUE), help="datasets to run the plain loop on"
    )
    ap.add_argument("--baseline-jac", action="store_true", help="give the plain loop the analytic gradient")
    ap.add_argument("--noise", type=float, default=0.02, help="sd of the log-normal noise (default 0.02)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    data = make_data(args.seed, args.noise)
    names = list(data)
    n_base = max(0, min(args.baseline_datasets, len(names)))

    fast: dict[str, float] = {}
    t0 = time.perf_counter()
    for name in names:
        fast[name] = fit_law(*data[name]).objective
    t_fast = time.perf_counter() - t0

    base: dict[str, float] = {}
    t0 = time.perf_counter()
    for name in names[:n_base]:
        base[name], _ = plain_loop(*data[name], jac=args.baseline_jac)
        print(f"  plain loop done: {name}", flush=True)
    t_base_measured = time.perf_counter() - t0
    t_base = t_base_measured * len(names) / n_base if n_base else float("nan")

    grad = "analytic gradient" if args.baseline_jac else "finite-difference gradient"
    print(f"data: {len(names)} datasets x 150 points, log-normal noise sd {args.noise}, seed {args.seed}")
    print(f"{'dataset':24s} {'fast objective':>16s} {'plain objective':>16s} {'fast - plain':>13s}")
    for name in names:
        b = base.get(name, float("nan"))
        print(f"{name:24s} {fast[name]:16.10g} {b:16.10g} {fast[name] - b:13.3g}")
    print(f"fast estimator (2,240-start grid, pruned batched LM): {t_fast:8.2f} s for {len(names)} datasets")
    if n_base < len(names):
        print(
            f"plain scipy-BFGS loop ({grad}): {t_base_measured:8.2f} s measured on {n_base} dataset(s), "
            f"EXTRAPOLATED to {t_base:.1f} s for {len(names)}"
        )
    else:
        print(f"plain scipy-BFGS loop ({grad}): {t_base:8.2f} s for {len(names)} datasets")
    print(f"speed-up: {t_base / t_fast:.0f}x")
    worse = [n for n in base if fast[n] > base[n] * (1 + 1e-9) + 1e-15]
    print(
        "objective no worse than the plain loop on every dataset compared"
        if not worse
        else f"WORSE on {worse}"
    )
    return 0 if not worse else 1


if __name__ == "__main__":
    sys.exit(main())
