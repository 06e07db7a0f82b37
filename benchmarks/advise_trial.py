"""Issue 21's trial of ``transferlaw advise``, as a new user would run it: everything through the CLI.

Per Table 2 law (``tests/synthetic.py``, form ``mikami``, the paper's 15 x 10 grid, log-normal noise) and
seed: 25 random cells of the grid are run, ``transferlaw advise`` (its defaults, or ``--form``) picks 25
more from the 150 cells, 25 other runs go to random cells not yet run; every run gets its own noise (a
replicate is a new seed). Both tables are bootstrapped with ``transferlaw bootstrap`` (its defaults: cells
resampled, 4,000 resamples) and the widths of G's interval compared. Prints per table the ratio
advised/random, where the advised runs went, the width the advice expected and the width achieved; then
the median ratio, per-law medians and how often the achieved width was within +-25% of the expected one.

    python benchmarks/advise_trial.py [--seeds 3] [--form mikami_shifted] [--samples 4000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from synthetic import TABLE2  # noqa: E402

from transferlaw.cli import main as cli  # noqa: E402
from transferlaw.law.forms import get_form  # noqa: E402

STEPS = np.unique(np.geomspace(1000, 143_000, 15).round())  # tests/synthetic.paper_grid
SIZES = np.unique(np.geomspace(10, 1100, 10).round())
GRID_P, GRID_F = (a.ravel() for a in np.meshgrid(STEPS, SIZES, indexing="ij"))


def table(name: str, p: np.ndarray, f: np.ndarray, loss: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"dataset": name, "pretrain_step": p, "finetune_size": f, "eval_loss": loss, "status": "ok"}
    )


def run_cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli(list(args))
    if rc != 0:
        raise RuntimeError(f"transferlaw {' '.join(args)}: exit {rc}")
    return out.getvalue()


def g_width(tmp: Path, frame: pd.DataFrame, form: str, samples: int) -> float:
    path, out = tmp / "t.csv", tmp / "b.json"
    frame.to_csv(path, index=False)
    run_cli("bootstrap", str(path), "-o", str(out), "--form", form, "--samples", str(samples))
    g = next(iter(json.loads(out.read_text()).values()))["params"]["G"]
    return g["ci_high"] - g["ci_low"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n0", type=int, default=25)
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--form", default=None, help="--form of advise and bootstrap (default: the CLI's)")
    ap.add_argument("--samples", type=int, default=4000, help="bootstrap resamples of each evaluation")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"load average before: {os.getloadavg()}", flush=True)
    truth = get_form("mikami")
    form_args = ["--form", args.form] if args.form else []
    eval_form = args.form or "mikami_shifted"
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        cands = tmp / "cands.csv"
        pd.DataFrame({"pretrain_step": GRID_P, "finetune_size": GRID_F}).to_csv(cands, index=False)
        for d, (name, params) in enumerate(TABLE2.items()):
            for seed in range(args.seeds):
                rng = np.random.default_rng([seed, d, 21])
                start = rng.choice(GRID_P.size, args.n0, replace=False)

                def draw(cells: np.ndarray, params: dict = params, rng: np.random.Generator = rng):
                    loss = truth.predict(params, GRID_P[cells], GRID_F[cells])
                    return loss * np.exp(rng.normal(0.0, args.noise, cells.size))

                runs0 = table(name, GRID_P[start], GRID_F[start], draw(start))
                runs0.to_csv(tmp / "runs.csv", index=False)
                run_cli(
                    "advise", str(tmp / "runs.csv"), "--candidates", str(cands), "--runs", str(args.runs),
                    "-o", str(tmp / "next.csv"), *form_args,
                )  # fmt: skip
                nxt = pd.read_csv(tmp / "next.csv")
                key = dict(zip(zip(GRID_P, GRID_F, strict=True), range(GRID_P.size), strict=True))
                picks = np.array(
                    [key[(p, f)] for p, f in zip(nxt["pretrain_step"], nxt["finetune_size"], strict=True)]
                )
                fresh = np.setdiff1d(np.arange(GRID_P.size), start)
                rand = rng.choice(fresh, args.runs, replace=False)
                adv = pd.concat([runs0, table(name, GRID_P[picks], GRID_F[picks], draw(picks))])
                ran = pd.concat([runs0, table(name, GRID_P[rand], GRID_F[rand], draw(rand))])
                wa = g_width(tmp, adv, eval_form, args.samples)
                wr = g_width(tmp, ran, eval_form, args.samples)
                expected = float(nxt["expected_width"].iloc[-1])
                cells, counts = np.unique(picks, return_counts=True)
                top = sorted(zip(counts, cells, strict=True), reverse=True)[:3]
                where = ", ".join(f"{c}x(p={GRID_P[j]:g},f={GRID_F[j]:g})" for c, j in top)
                rows.append(
                    dict(law=name, seed=seed, advised=wa, random=wr, ratio=wa / wr, expected=expected)
                )
                print(
                    f"{name:24s} seed {seed}: G width advised {wa:7.3g} random {wr:7.3g} ratio {wa / wr:5.2f}"
                    f" | expected {expected:7.3g} (achieved/expected {wa / expected:5.2f}) | "
                    f"{cells.size} cells, most: {where}",
                    flush=True,
                )
    res = pd.DataFrame(rows)
    print(
        f"\nform {eval_form}: MEDIAN RATIO advised/random over {len(res)} tables: {res['ratio'].median():.3f}"
    )
    print(res.groupby("law")["ratio"].agg(["median", "max", "min"]).round(3).to_string())
    within = (np.abs(res["advised"] / res["expected"] - 1) <= 0.25).mean()
    print(f"achieved width within +-25% of the expected one: {within:.0%}")
    print(f"median achieved/expected: {(res['advised'] / res['expected']).median():.2f}")
    print(f"load average after: {os.getloadavg()}; wall {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
