"""Experiments for the embedded default study: does a toy configuration measure the transfer gap?

    python benchmarks/toy_design.py VARIANT [--cores 2] [--samples 400]
    python benchmarks/toy_design.py --list

Runs the real workflow on ``config/config.yaml`` changed as the variant says (``VARIANTS``), in a fresh
temporary folder, up to every dataset's bootstrap, and prints per dataset G, alpha, beta and E with their 95%
intervals (or "not identified"), how many datasets have G identified, and the wall time. The figures go to
``benchmarks/out/toy_design/<variant>.json``; ``docs/toy-design.md`` keeps the table of what was tried.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CHECKPOINTS = "revisions"


def _set(cfg: dict, key: str, value) -> None:
    node = cfg
    *parents, last = key.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[last] = value


#: each variant: config keys (dotted) set on a copy of config/config.yaml
VARIANTS: dict[str, dict[str, object]] = {
    "current": {},
    # byte-level vocabulary, a model small enough to saturate on its corpus, checkpoints past the plateau
    "bytes-small": {
        "pretrain.vocab_size": 260,
        "pretrain.hidden_size": 64,
        "pretrain.num_hidden_layers": 3,
        "pretrain.intermediate_size": 256,
        "pretrain.batch_size": 32,
        "pretrain.steps": 4096,
        "pretrain.threads": 2,
        "models.tiny-neox.revisions": ["step0", "step16", "step64", "step256", "step1024", "step4096"],
        "finetune.eval_sequences": 64,
    },
    # a broad pre-training corpus (a third each KJV, GCIDE dictionary, Python documentation), fine-tune sizes
    # up to 324 sequences, a gentler fine-tuning step
    "library-bytes": {
        "pretrain.corpus": "resources/pretrain/library.txt.xz",
        "pretrain.vocab_size": 260,
        "pretrain.hidden_size": 64,
        "pretrain.num_hidden_layers": 3,
        "pretrain.intermediate_size": 256,
        "pretrain.batch_size": 32,
        "pretrain.steps": 2048,
        "pretrain.threads": 1,
        "models.tiny-neox.revisions": ["step0", "step8", "step32", "step128", "step512", "step2048"],
        "finetune.lr": 1.0e-3,
        "finetune.eval_sequences": 64,
        "datasets.*.sizes": [4, 12, 36, 108, 324],
    },
    # library-bytes's checkpoints; fine-tuning with a larger step and micro-batch, a smaller evaluation set
    "library-bytes-fast": {},
}


VARIANTS["library-bytes-fast"] = {
    **VARIANTS["library-bytes"],
    "finetune.lr": 3.0e-3,
    "finetune.micro_batch": 16,
    "finetune.eval_sequences": 48,
}

# the early checkpoints' fine-tuned losses equal step 0's (a few steps teach no more than the fine-tuning
# data does) and break the power law in p: checkpoints from step 64 on, doubling; four sizes 8-216
VARIANTS["library"] = {
    **VARIANTS["library-bytes-fast"],
    "models.tiny-neox.revisions": ["step64", "step128", "step256", "step512", "step1024", "step2048"],
    "datasets.*.sizes": [8, 24, 72, 216],
}

# library's fine-tuning step exceeded its pre-training one (3e-3 against a 2e-3 peak) and made the late
# checkpoints worse than zero-shot; a quarter of the pre-training peak, as the paper's 1e-5 is of Pythia's
VARIANTS["library-lr5e-4"] = {**VARIANTS["library"], "finetune.lr": 5.0e-4}

# library-lr5e-4's losses fall by a constant step per doubling of p up to its last checkpoint: no saturation,
# so A·p^-alpha takes all of it and G goes to 0. A model a sixth the size saturates within the run (and
# costs less per step); step sizes scaled with it
VARIANTS["library-small"] = {
    **VARIANTS["library-lr5e-4"],
    "pretrain.hidden_size": 32,
    "pretrain.num_hidden_layers": 2,
    "pretrain.intermediate_size": 128,
    "pretrain.lr": 4.0e-3,
    "finetune.lr": 1.0e-3,
}


# the default (library-small with the DNA at lr 3e-3) puts G's estimate above 0 on the text datasets but
# 13-29% of resamples at 0: the loss still falls at step 2048. A model half as wide saturates sooner ...
VARIANTS["tiny"] = {
    "pretrain.hidden_size": 16,
    "pretrain.intermediate_size": 64,
}
# ... or the default's model pre-trained twice as long, so that its last checkpoints sit on the plateau.
# (tiny identified G on one dataset, the 30k default on none: tiny became the default on 2026-12-02)
VARIANTS["long"] = {
    "pretrain.hidden_size": 32,
    "pretrain.intermediate_size": 128,
    "pretrain.steps": 4096,
    "models.tiny-neox.revisions": ["step128", "step256", "step512", "step1024", "step2048", "step4096"],
}


def variant_config(name: str) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    for key, value in VARIANTS[name].items():
        if key.startswith("models.") and key.endswith(CHECKPOINTS):
            cfg["models"][key.split(".")[1]]["revisions"] = value
        elif key.startswith("datasets.*."):
            for block in cfg["datasets"].values():
                _set(block, key[len("datasets.*.") :], value)
        else:
            _set(cfg, key, value)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variant", nargs="?")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--samples", type=int, default=400, help="bootstrap resamples (the study's: 4000)")
    ap.add_argument(
        "--work", type=Path, help="folder to run in (kept; a rerun there redoes only what the change touches)"
    )
    args = ap.parse_args()
    if args.list or not args.variant:
        for name, over in VARIANTS.items():
            print(f"{name}: {over}")
        return
    from transferlaw.law.bootstrap import BootstrapSummary
    from transferlaw.law.diagnostics import describe

    cfg = variant_config(args.variant)
    cfg.setdefault("analysis", {})["bootstrap_samples"] = args.samples
    work = args.work or Path(tempfile.mkdtemp(prefix=f"toy-{args.variant}-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "resources").exists():
        (work / "resources").symlink_to(REPO / "resources")
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results/bootstrap/{d}.json" for d in cfg["datasets"]]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml"]
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": pythonpath}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--cores", str(args.cores), *targets], cwd=work, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"the study failed ({work}):\n{proc.stderr[-3000:]}")
    rows, grids = {}, {}
    for ds in cfg["datasets"]:
        runs = pd.read_parquet(work / f"results/runs/{ds}.parquet")
        grid = runs.pivot_table(index="pretrain_step", columns="finetune_size", values="eval_loss")
        grids[ds] = {str(k): {str(c): v for c, v in row.items()} for k, row in grid.iterrows()}
        print(f"{ds}: eval loss by pre-training step (rows) and fine-tune size (columns)")
        print(grid.round(3).to_string())
        rec = BootstrapSummary.read(work / f"results/bootstrap/{ds}.json")
        rows[ds] = {n: {**e, "text": describe(n, e)} for n, e in rec.params.items()}
        print(
            f"{ds:18s} " + "  ".join(f"{n}: {rows[ds][n]['text']}" for n in ("G", "alpha", "beta", "E", "A"))
        )
    n_g = sum(rows[d]["G"]["identified"] for d in rows)
    print(f"variant {args.variant}: G identified on {n_g} of {len(rows)} datasets; wall {wall / 60:.1f} min")
    out = REPO / "benchmarks" / "out" / "toy_design" / f"{args.variant}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "variant": args.variant,
                "settings": VARIANTS[args.variant],
                "wall_s": wall,
                "g_identified": n_g,
                "params": rows,
                "eval_loss": grids,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
