"""Benchmark: bootstrap and step-wise cross-validation on data shaped like the paper's.

5 datasets x 150 runs (15 checkpoints x 10 fine-tune sizes, Table 2-like parameters, log-normal
noise, as in ``benchmarks/fit.py``). Times the bootstrap of ``--samples`` resamples of every dataset
and the full cross-validation grid (6 forms x 35 penalty pairs x every threshold combination) of
every dataset, then checks a sample of the cheap refits against full-grid multi-start refits.

    python benchmarks/uncertainty.py [--samples 4000] [--skip 1] [--check 10]

Targets (issue): bootstrap <= 60 s and cross-validation <= 120 s in total on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit import make_data  # noqa: E402

from transferlaw.law.bootstrap import bootstrap_fit, verify_refits  # noqa: E402
from transferlaw.law.crossval import stepwise_cv, verify_crossval  # noqa: E402
from transferlaw.law.forms import FORMS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--skip", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="processes for cross-validation (2 cores here)")
    ap.add_argument("--check", type=int, default=10, help="resamples / CV problems checked per dataset")
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = make_data(args.seed, args.noise)
    print(f"load average before: {os.getloadavg()}")

    t_boot, boots = 0.0, {}
    for name, (p, f, loss) in data.items():
        t0 = time.perf_counter()
        boots[name] = bootstrap_fit(p, f, loss, "mikami", n_samples=args.samples, seed=args.seed)
        dt = time.perf_counter() - t0
        t_boot += dt
        conv = boots[name].samples["converged"].mean()
        print(f"bootstrap {name}: {dt:.1f} s, {conv:.2%} converged", flush=True)
    print(f"BOOTSTRAP TOTAL: {t_boot:.1f} s for {len(data)} datasets x {args.samples} resamples", flush=True)

    t_cv, n_rows = 0.0, 0
    for name, (p, f, loss) in data.items():
        t0 = time.perf_counter()
        cv = stepwise_cv(p, f, loss, list(FORMS), skip=args.skip, workers=args.workers)
        dt = time.perf_counter() - t0
        t_cv += dt
        n_rows += len(cv)
        print(f"crossval {name}: {dt:.1f} s, {len(cv)} fits", flush=True)
    print(
        f"CROSSVAL TOTAL: {t_cv:.1f} s for {n_rows} fits (skip {args.skip}, {args.workers} workers)",
        flush=True,
    )
    print(f"load average after timings: {os.getloadavg()}", flush=True)

    if args.check:
        agree = []
        for name, (p, f, loss) in data.items():
            chk = verify_refits(boots[name], p, f, loss, n_check=args.check)
            agree.append(chk["agree_rate"])
            print(f"bootstrap check {name}: {chk}", flush=True)
        print(f"bootstrap agreement with full-grid refits: {np.mean(agree):.1%}")
        name, (p, f, loss) = next(iter(data.items()))
        for form in ("mikami", "mikami_pf_shift"):
            chk = verify_crossval(p, f, loss, form, n_check=args.check)
            print(f"crossval check {name} {form}: {chk}", flush=True)


if __name__ == "__main__":
    main()
