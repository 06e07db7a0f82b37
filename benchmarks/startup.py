"""What a fine-tuning run costs beyond its training: 1-epoch runs of the test study's model through the real
Snakemake, side by side, each job importing torch and loading its checkpoint for itself
(`finetune.worker: false`, how every job ran before) and handing its run to a long-lived worker (the
default).

    python benchmarks/startup.py [--config tests/config/small.yaml] [--cores 2] [--repeats 1]

Everything up to the runs (tokenizer, pre-training, data, checkpoint gate and pins) is built first and not
timed; then the same N fine-tuning jobs are run (and their records deleted) once per mode, and the wall time
of each Snakemake invocation divided by N is the wall per run. The worker mode's figure includes starting
its workers (one per core, each importing torch once). Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from transferlaw.config import base_seed, resolve

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml"]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, *args], cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "tests/config/small.yaml"))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="alternate the two modes this many times")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="startup-"))
    (work / "resources").symlink_to(REPO / "resources")
    cfg = yaml.safe_load(Path(args.config).read_text())
    cfg["finetune"].update(max_epochs=1, patience=1)  # one epoch: what is left is the start-up
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath, "HF_HUB_OFFLINE": "1", "TRANSFERLAW_WORKER_IDLE": "5"}
    env["TRANSFERLAW_WORKER_DIR"] = str(work / "workers")  # cold workers: none left from earlier runs
    study = resolve(cfg)
    records = [
        f"results/runs/{d}/{m}/{r}/f{s}.full.s{base_seed(study, d)}.parquet"
        for d, block in cfg["datasets"].items()
        for m, model in cfg["models"].items()
        for r in model["revisions"]
        for s in block["sizes"]
    ]
    setup = [f"results/data/{d}.f{s}.ok" for d, b in cfg["datasets"].items() for s in b["sizes"]]
    setup += [f"results/checkpoints/{m}/{r}.json" for m, b in cfg["models"].items() for r in b["revisions"]]

    def run(worker: bool) -> float:
        cfg["finetune"]["worker"] = worker
        (work / "config.yaml").write_text(yaml.safe_dump(cfg))
        shutil.rmtree(work / "workers", ignore_errors=True)
        shutil.rmtree(work / "results" / "runs", ignore_errors=True)
        return snakemake(work, "--cores", str(args.cores), *records, env=env)

    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    built = snakemake(work, "--cores", str(args.cores), *setup, env=env)
    print(f"set-up (not timed per run): {built:.1f} s; {len(records)} one-epoch runs per mode", flush=True)
    walls: dict[str, list[float]] = {"process": [], "worker": []}
    for _ in range(args.repeats):
        for mode in walls:
            wall = run(mode == "worker")
            walls[mode].append(wall / len(records))
            print(
                f"{mode:8s}: {wall:6.1f} s for {len(records)} runs = {wall / len(records):.2f} s per run",
                flush=True,
            )
        time.sleep(6)  # let the workers exit (idle 5 s), so each repeat starts cold
    per_run = {mode: min(v) for mode, v in walls.items()}
    ratio = per_run["process"] / per_run["worker"]
    print(
        f"wall per 1-epoch run: {per_run['process']:.2f} s -> {per_run['worker']:.2f} s ({ratio:.1f}x less)"
    )
    print(json.dumps({"runs": len(records), "cores": args.cores, "per_run_s": per_run, "ratio": ratio}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
