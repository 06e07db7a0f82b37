"""The paper's protocol as a config (config/barnett2024.yaml), planned on a machine with none of its
checkpoints or data and no internet: exactly the 750 fine-tuning runs, plus the jobs that fetch them."""

import json
import re
import shutil

import pytest
import yaml
from conftest import REPO, snakemake

from transferlaw.cli import main as transferlaw
from transferlaw.plan import kind_line, kinds, make_plan, time_problems

PAPER_CONFIG = REPO / "config" / "barnett2024.yaml"
PROFILE = REPO / "profiles" / "slurm"
FT_GROUP = "ft_{model}_{revision}"


@pytest.fixture(scope="module")
def paper_plan():
    """The paper's study planned from nothing with the Slurm profile, as shipped (no option added)."""
    return make_plan(PAPER_CONFIG, PROFILE, snakefile=REPO / "Snakefile")


def job_counts(proc) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run, as {rule: count}."""
    table = (proc.stdout + proc.stderr).split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


@pytest.mark.slow
def test_paper_protocol_plans_750_fine_tunes_from_nothing(tmp_path):
    shutil.copy(PAPER_CONFIG, tmp_path / "config.yaml")  # an empty folder: no resources, no cache, no data
    counts = job_counts(snakemake(tmp_path, "-n"))
    assert counts["finetune"] == 750 == 15 * 5 * 10
    # each revision's gate reads the cache (`snakemake prefetch` fills it where the internet is)
    assert counts["pin_checkpoint"] == 15 and counts["verify_checkpoints"] == 1
    assert "prefetch_model" not in counts
    assert counts["fetch_dataset"] + counts["generate_encyclopedia"] == 5
    # a --configfile describes the whole study: none of the embedded toy's datasets or model is added
    cfg = yaml.safe_load(PAPER_CONFIG.read_text())
    assert counts["prepare_data"] == len(cfg["datasets"]) == 5
    assert "pretrain" not in counts


@pytest.mark.slow
def test_prefetch_target_plans_only_downloads(tmp_path):
    shutil.copy(PAPER_CONFIG, tmp_path / "config.yaml")
    counts = job_counts(snakemake(tmp_path, "-n", "prefetch"))
    assert counts == {"prefetch_model": 1, "fetch_dataset": 4, "prefetch": 1, "total": 6}


def test_paper_protocol_settings():
    cfg = yaml.safe_load(PAPER_CONFIG.read_text())
    (model,) = cfg["models"].values()
    assert model["repo_id"] == "EleutherAI/pythia-2.8b" and model["tokens_per_step"] == 2097152
    steps = [int(r.removeprefix("step")) for r in model["revisions"]]
    assert len(steps) == 15 and steps[0] == 0 and steps[-1] == 143000 and steps == sorted(steps)
    ft = cfg["finetune"]
    assert (ft["lr"], ft["micro_batch"], ft["grad_accum"], ft["patience"], ft["context_length"]) == (
        1e-5,
        10,
        25,
        3,
        256,
    )
    for block in cfg["datasets"].values():
        assert len(block["sizes"]) == 10 and min(block["sizes"]) == 10 and max(block["sizes"]) == 1100


@pytest.mark.slow
def test_paper_protocol_submits_a_few_dozen_slurm_jobs_with_the_profile(paper_plan):
    assert paper_plan.jobs["finetune"] == 750
    groups = [s for s in paper_plan.first if s.grouped]
    # one group per checkpoint (15), one per dataset's analyses (5), and the few data jobs
    assert len(groups) == 15 + 5
    assert len(paper_plan.first) <= 40
    assert "finetune" not in {s.kind for s in paper_plan.first if not s.grouped}


@pytest.mark.slow
def test_paper_protocol_no_submission_asks_for_more_than_one_run(paper_plan):
    print()
    for k in kinds(paper_plan.first):
        print(kind_line(k))
    run = yaml.safe_load(PAPER_CONFIG.read_text())["finetune"]
    for s in paper_plan.first:
        # what the plugin's sbatch options ask for is what the largest of its jobs needs, not their sum
        assert s.cpus == s.job_cpus and s.mem_mb == s.job_mem_mb, s
        assert not s.more_than_one_job
    finetune = [s for s in paper_plan.first if s.kind == FT_GROUP]
    assert len(finetune) == 15
    for s in finetune:
        # one run's threads, memory and GPU, for the sum of its 50 runs' minutes
        assert (s.runs, s.cpus, s.mem_mb, s.gpus) == (50, run["threads"], run["mem_mb"], run["gpus"])
        assert s.minutes == 50 * run["runtime"]
        assert f"--cpus-per-task={run['threads']}" in s.sbatch and f"--mem {run['mem_mb']}" in s.sbatch
    # a retry asks for its attempt times a run's memory and minutes: the last (attempt 3) 3 times
    for s in (s for s in paper_plan.last if s.kind == FT_GROUP):
        assert (s.attempt, s.cpus, s.mem_mb, s.minutes) == (3, 8, 3 * 64000, 3 * 50 * 10)


@pytest.mark.slow
def test_a_group_over_the_partition_s_time_limit_names_the_key_to_lower(paper_plan, capsys):
    # a 10-hour partition: a checkpoint's 50 runs at their last retry (30 min each) need 25 hours
    (problem,) = time_problems(paper_plan, {"*": 600}, "profiles/slurm")
    assert "1500 min, over the 600 min" in problem
    assert f"lower `group-components: {FT_GROUP}=N` in profiles/slurm to N <= 20" in problem
    # lowered as the message says, every submission fits: each checkpoint's runs in 3 submissions
    args = ["plan", "--configfile", str(PAPER_CONFIG), "--profile", str(PROFILE), "--time-limit", "10:00:00"]
    args += ["--snakefile", str(REPO / "Snakefile"), "--json"]
    assert transferlaw(args) == 1
    assert "N <= 20" in capsys.readouterr().err
    lowered = ["--", "--group-components", f"{FT_GROUP}=20", "analysis_{dataset}=3"]
    assert transferlaw(args + lowered) == 0
    out = capsys.readouterr()
    plan = json.loads(out.out)
    finetune = [s for s in plan["last_retry"] if s["kind"] == FT_GROUP]
    assert sorted(s["runs"] for s in finetune) == [10] * 15 + [20] * 30
    assert max(s["minutes"] for s in finetune) == 600 and plan["time_problems"] == []
