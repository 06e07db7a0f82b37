"""How long the two tiers of the tests take: `make test-fast` (the pure tests) and `make test` (everything, as
CI runs it), each run as the Makefile runs it, with its own temporary folder.

    python benchmarks/tests.py [--tier fast|full|both] [--cores 2] [--repeats 1]

Prints, per tier and repeat, the wall time, the tests passed/failed/skipped and pytest's exit status, then
one JSON line. A figure from a machine shared with other work is an upper bound: say the load with it
(the script prints the 1-minute load average before and after each run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the Makefile's commands (`make test`, `make test-fast`), without `make` so that no setup step is timed
TIERS = {
    "fast": ["-m", "not slow"],
    "full": ["--dist", "loadfile", "--no-loadscope-reorder"],
}


def run_tier(tier: str, cores: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"tests-{tier}-") as tmp:
        cmd = [sys.executable, "-m", "pytest", "-q", "-ra", "-n", str(cores), *TIERS[tier]]
        cmd += ["--basetemp", str(Path(tmp) / "pt"), "-p", "no:cacheprovider"]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", proc.stdout)}
    if proc.returncode:
        print(proc.stdout[-4000:], file=sys.stderr)
    return {
        "tier": tier,
        "wall_s": round(wall, 1),
        "exit": proc.returncode,
        **counts,
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", choices=["fast", "full", "both"], default="both")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    tiers = ["fast", "full"] if args.tier == "both" else [args.tier]
    rows = []
    for _ in range(args.repeats):
        for tier in tiers:
            row = run_tier(tier, args.cores)
            rows.append(row)
            print(
                f"{tier:4s}  {row['wall_s']:7.1f} s  exit {row['exit']}  "
                f"passed {row.get('passed', 0)}  failed {row.get('failed', 0)}  "
                f"skipped {row.get('skipped', 0)}  load {row['load_before']} -> {row['load_after']}",
                flush=True,
            )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
