"""Wall time of a whole study from scratch: `python benchmarks/study.py [CONFIG] [--cores N]`.

Runs the real Snakemake on the repository's Snakefile in a fresh temporary directory (the repository's
`resources/` linked in), so nothing cached from earlier runs counts, and prints the wall time with a
breakdown by rule from Snakemake's own benchmark files. Issue targets: the default study
(config/config.yaml) <= 15 min, the test study (tests/config/small.yaml) <= 3 min, on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the study folder and print its path")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="transferlaw-study-"))
    (workdir / "resources").symlink_to(REPO / "resources")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(Path(args.config).resolve()),
        "--directory",
        str(workdir),
        "--cores",
        str(args.cores),
        "--quiet",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"snakemake failed (exit {proc.returncode}); see {workdir}/logs")
    rows = []
    for f in (workdir / "results" / "benchmarks").rglob("*.tsv"):
        rule = f.relative_to(workdir / "results" / "benchmarks").parts[0]
        rows.append({"rule": rule, "seconds": float(pd.read_csv(f, sep="\t")["s"].iloc[0])})
    by_rule = pd.DataFrame(rows).groupby("rule")["seconds"].agg(["count", "sum", "mean"]).round(1)
    print(f"config: {args.config}\ncores: {args.cores}  load average before/after: see `uptime`")
    print(by_rule.to_string())
    print(f"study wall time: {wall:.1f} s ({wall / 60:.2f} min)")
    if args.keep:
        print(f"study folder: {workdir}")


if __name__ == "__main__":
    main()
