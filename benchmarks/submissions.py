"""How many Slurm jobs a study submits with a profile, and what each asks for.

    python benchmarks/submissions.py [CONFIG] [--profile DIR]

Plans the study from nothing (no checkpoints, no data, no internet needed) with the profile, through
`transferlaw plan` (src/transferlaw/plan.py: Snakemake's own DAG, group and resource code and the Slurm
plugin's submit code). A submission is a group job or a job of a non-local rule outside any group.
Prints the fine-tuning jobs planned, the submissions, one line per kind of submission, and one JSON line.
Issue targets: the paper's config (config/barnett2024.yaml) submits a few dozen jobs, not 750, and no
submission asks for more CPUs or memory than its largest job needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from transferlaw.plan import kind_line, kinds, make_plan  # noqa: E402


def count(config: Path, profile: Path) -> dict:
    plan = make_plan(config, profile, snakefile=REPO / "Snakefile")
    groups = [s for s in plan.first if s.grouped]
    alone = Counter(s.kind for s in plan.first if not s.grouped)
    return {
        "config": str(config),
        "profile": str(profile),
        "finetune_jobs": plan.jobs.get("finetune", 0),
        "jobs": sum(plan.jobs.values()),
        "local_jobs": sum(plan.local_jobs.values()),
        "group_jobs": len(groups),
        "ungrouped_submissions": dict(alone),
        "submissions": len(plan.first),
        "more_than_one_job": [s.name for s in plan.first if s.more_than_one_job],
        "kinds": [kind_line(k) for k in kinds(plan.first)],
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
    for line in c["kinds"]:
        print(f"  {line}")
    print(f"submissions asking for more than their largest job: {len(c['more_than_one_job'])}")
    print(json.dumps(c))


if __name__ == "__main__":
    main()
