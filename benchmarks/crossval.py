"""Benchmark: step-wise cross-validation as a new user runs it (`transferlaw crossval TABLE`).

Writes a table shaped like the paper's (5 datasets x 150 runs: 15 checkpoints x 10 fine-tune sizes,
Table 2-like parameters, 2% log-normal noise, as in ``benchmarks/fit.py``), times the command line on it
(all forms, the paper's 35 penalty pairs, every threshold combination, the default workers), and, given a
reference CSV from an earlier run (``--compare``), prints how far the scores moved: the largest relative
change of rmse and mae over all rows, and whether every (dataset, form) keeps its best penalty pair.

    python benchmarks/crossval.py [--out DIR] [--compare REF.csv]

Target (issue 10): <= 60 s on this 2-core machine, with the same results.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit import make_data  # noqa: E402

KEYS = ["dataset", "form", "l2_exponents", "l2_coefficients", "p_threshold", "f_threshold"]


def compare(new: pd.DataFrame, ref: pd.DataFrame) -> None:
    both = new.merge(ref, on=KEYS, suffixes=("", "_ref"), how="outer", indicator=True)
    unmatched = int((both["_merge"] != "both").sum())
    both = both[both["_merge"] == "both"]
    print(f"rows: {len(new)} now, {len(ref)} in the reference, {unmatched} not in both")
    for col in ("rmse", "mae"):
        rel = np.abs(both[col] - both[f"{col}_ref"]) / both[f"{col}_ref"]
        print(
            f"{col}: largest relative change {rel.max():.2e}, 99th percentile {rel.quantile(0.99):.2e}, "
            f"rows changed by > 1e-3: {int((rel > 1e-3).sum())}"
        )

    def winners(df: pd.DataFrame) -> pd.Series:
        mean = df.groupby(["dataset", "form", "l2_exponents", "l2_coefficients"])["rmse"].mean()
        return mean.groupby(level=[0, 1]).idxmin()

    w_new, w_ref = winners(new), winners(ref)
    same = int((w_new == w_ref).sum())
    print(f"best penalty pair (mean rmse) unchanged for {same} of {len(w_ref)} (dataset, form)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/out/crossval", help="where the table and scores go")
    ap.add_argument("--compare", help="reference scores (a CSV written by an earlier run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        pd.DataFrame({"dataset": name, "pretrain_step": p, "finetune_size": f, "eval_loss": loss})
        for name, (p, f, loss) in make_data(args.seed, 0.02).items()
    ]
    table = out / "table.parquet"
    pd.concat(rows, ignore_index=True).to_parquet(table)
    scores = out / "scores.csv"
    cmd = ["transferlaw", "crossval", str(table), "-o", str(scores)]
    print(f"load average before: {os.getloadavg()}")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    print(f"load average after: {os.getloadavg()}")
    new = pd.read_csv(scores)
    print(f"CROSSVAL WALL: {wall:.1f} s for {len(new)} scored fits ({' '.join(cmd)})")
    if args.compare:
        compare(new, pd.read_csv(args.compare))


if __name__ == "__main__":
    main()
