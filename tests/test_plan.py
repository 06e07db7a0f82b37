"""`transferlaw plan`: what each Slurm submission of a study asks for, from Snakemake's and the Slurm plugin's
own code, on the test study planned from nothing (a dry run: nothing is submitted)."""

import json

import pytest
import yaml
from conftest import REPO, SMALL_CONFIG

from transferlaw.cli import main as transferlaw

PROFILE = REPO / "profiles" / "slurm"

pytestmark = pytest.mark.slow  # plans the study with Snakemake's own code
BASE = [
    "plan",
    "--configfile",
    str(SMALL_CONFIG),
    "--profile",
    str(PROFILE),
    "--snakefile",
    str(REPO / "Snakefile"),
]


def plan(capsys, *args: str) -> tuple[int, str, str]:
    status = transferlaw([*BASE, *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_checkpoint_s_group_asks_for_one_run_for_the_sum_of_its_minutes(capsys):
    status, out, _ = plan(capsys, "--json", "--time-limit", "2-00:00:00")
    assert status == 0
    result = json.loads(out)
    run = yaml.safe_load(SMALL_CONFIG.read_text())["finetune"]
    finetune = [s for s in result["submissions"] if s["kind"] == "ft_{model}_{revision}"]
    # three checkpoints, each with its 2 datasets x 3 sizes
    assert sorted(s["name"] for s in finetune) == [
        "ft_tiny-neox_step0",
        "ft_tiny-neox_step16",
        "ft_tiny-neox_step256",
    ]
    for s in finetune:
        assert s["runs"] == 6 and s["grouped"]
        assert (s["cpus"], s["mem_mb"], s["gpus"]) == (run["threads"], run["mem_mb"], 0)
        assert s["minutes"] == 6 * run["runtime"]
        # the plugin's own sbatch options
        opts = s["sbatch"].split()
        assert f"--cpus-per-task={run['threads']}" in opts and "--gpus" not in s["sbatch"]
        assert s["sbatch"].count(f"--mem {run['mem_mb']}") == 1 and f"-t {6 * run['runtime']}" in s["sbatch"]
    for s in result["last_retry"]:  # attempt 3: the rule multiplies memory and minutes by the attempt
        if s["kind"] == "ft_{model}_{revision}":
            assert (s["attempt"], s["mem_mb"], s["minutes"]) == (3, 3 * run["mem_mb"], 3 * 6 * run["runtime"])
    assert not any(s["more_than_one_job"] for s in result["submissions"])
    # every job planned is submitted or run by Snakemake itself
    assert sum(s["runs"] for s in result["submissions"]) + sum(result["local_jobs"].values()) == sum(
        result["jobs"].values()
    )


def test_the_text_plan_has_a_line_per_kind_of_submission(capsys):
    status, out, _ = plan(capsys, "--time-limit", "600")
    assert status == 0
    assert (
        "ft_{model}_{revision}: 3 submissions of 6 jobs, each asking for 1 CPU, 1000 MB, no GPU, 30 min "
        "(its largest job: 1 CPU, 1000 MB, 5 min)"
    ) in out
    assert "every submission's last retry fits the time limit (--time-limit 600)" in out
    assert "WARNING" not in out


def test_without_the_run_slot_the_plan_shows_the_sum_and_warns(capsys):
    # a `--default-resources` on the command line replaces the profile's list, run_slot with it: the
    # fine-tuning groups are then sized as if their 6 runs ran side by side, as before this profile
    status, out, _ = plan(capsys, "--", "--default-resources", "mem_mb=4000", "runtime=60")
    assert status == 0
    assert "ft_{model}_{revision}: 3 submissions of 6 jobs, each asking for 6 CPUs, 6000 MB" in out
    assert "WARNING: 5 submissions ask for more CPUs or memory than their largest job needs" in out


def test_a_submission_over_the_time_limit_fails_naming_the_key(capsys):
    # an 80-minute partition: the fine-tuning groups' last retry asks for 6 runs x 15 min = 90 min
    status, _, err = plan(capsys, "--time-limit", "80")
    assert status == 1
    assert (
        "ft_tiny-neox_step0: its last retry (attempt 3) asks for 90 min, over the 80 min that the default "
        f"partition allows, and would never start: lower `group-components: ft_{{model}}_{{revision}}=N` in "
        f"{PROFILE} to N <= 5 (its jobs ask for up to 15 min each at attempt 3)"
    ) in err
    # a job alone over the limit: no group to split
    assert "pretrain[model=tiny-neox]: its last retry (attempt 3) asks for 120 min, over the 80 min" in err
    assert "one pretrain job alone asks for 120 min; lower its runtime" in err
    # lowered as the message says, the fine-tuning groups fit (5 runs and 1 per checkpoint)
    lowered = ["--", "--group-components", "ft_{model}_{revision}=5", "analysis_{dataset}=3"]
    status, _, err = plan(capsys, "--time-limit", "80", *lowered)
    assert "ft_" not in err and "pretrain" in err
    # a 2-hour partition takes every submission
    assert plan(capsys, "--time-limit", "2:00:00")[0] == 0


def test_a_bad_profile_or_config_is_named(capsys, tmp_path):
    assert transferlaw([*BASE[:3], "--profile", str(REPO / "profiles" / "local")]) == 2
    assert "its executor is 'local', not slurm" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL_CONFIG.read_text().replace("threads: 1\n  mem_mb", "threads: many\n  mem_mb"))
    assert transferlaw(["plan", "--configfile", str(bad), "--snakefile", str(REPO / "Snakefile")]) == 2
    err = capsys.readouterr().err
    assert "could not be planned" in err and "threads" in err
