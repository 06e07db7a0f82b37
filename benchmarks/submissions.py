"""How many Slurm jobs a study submits with a profile.

    python benchmarks/submissions.py [CONFIG] [--profile DIR]

Plans the study from nothing (a dry run in an empty folder: no checkpoints, no data, no internet needed) with
the profile, which forms the group jobs, and reads the workflow's local rules (run by Snakemake itself, never
submitted) from Snakemake's API. A submission is a group job or a job of a non-local rule outside any group.
Prints the fine-tuning jobs planned, the submissions, and one JSON line.
Issue target: the paper's config (config/barnett2024.yaml) submits a few dozen jobs, not 750.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run(config: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="tl-plan-") as tmp:
        (Path(tmp) / "resources").symlink_to(REPO / "resources")
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", str(config)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run([*cmd, "-n", *args], cwd=tmp, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"the dry run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def local_rules(config: Path) -> set[str]:
    """Rules Snakemake runs itself: `localrule: True`, and rules with nothing to run (`all`)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with (
        tempfile.TemporaryDirectory(prefix="tl-plan-") as tmp,
        SnakemakeApi(OutputSettings(quiet={"all"})) as api,
    ):
        (Path(tmp) / "resources").symlink_to(REPO / "resources")
        os.environ["HF_HUB_OFFLINE"] = "1"
        wf = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[config]),
            snakefile=REPO / "Snakefile",
            workdir=Path(tmp),
        )._workflow
        return {r.name for r in wf.rules if r.name in wf._localrules or r.norun}


def count(config: Path, profile: Path) -> dict:
    local = local_rules(config)
    plan = dry_run(config, "--profile", str(profile))
    groups = re.findall(r"Group job (\S+) ", plan)
    alone = Counter(r for r in re.findall(r"^rule (\w+):", plan, re.M) if r not in local)
    jobs = Counter(re.findall(r"^\s*rule (\w+):", plan, re.M))
    return {
        "config": str(config),
        "profile": str(profile),
        "finetune_jobs": jobs["finetune"],
        "jobs": sum(jobs.values()),
        "local_jobs": sum(n for r, n in jobs.items() if r in local),
        "group_jobs": len(groups),
        "ungrouped_submissions": dict(alone),
        "submissions": len(groups) + sum(alone.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", default=str(REPO / "config" / "barnett2024.yaml"))
    ap.add_argument("--profile", default=str(REPO / "profiles" / "slurm"))
    args = ap.parse_args()
    c = count(Path(args.config).resolve(), Path(args.profile).resolve())
    print(f"{c['finetune_jobs']} fine-tuning jobs ({c['jobs']} in all, {c['local_jobs']} local)")
    print(
        f"{c['submissions']} Slurm submissions: {c['group_jobs']} group jobs + {c['ungrouped_submissions']}"
    )
    print(json.dumps(c))


if __name__ == "__main__":
    main()
