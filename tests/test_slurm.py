"""The study through `snakemake --profile profiles/slurm` on a real single-node Slurm (tests/slurm.py).

The finished small study is copied, its fine-tuning records and everything after them are deleted, and the
Slurm profile redoes them with only what this cluster needs on top (no accounting: poll squeue, send no
account), no scheduling option: no `--cores`, no `--resources`. The node has 2 CPUs, fewer than a
checkpoint's group of 3 one-CPU runs would ask for if their CPUs were summed. Checked: every submitted job
started and finished (none left pending), each group asked for one run's CPUs and memory, jobs went through
sbatch, one allocation per checkpoint served all of its runs with one worker (its own job step), and the
records and fit equal the local run's bit for bit. Then a preempted (requeued) job restarts cleanly and leaves
its record once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SMALL_CONFIG, assert_nothing_planned, edit_config
from slurm import LocalSlurm, ensure_installed

from transferlaw.schema import read_records

DS = "devils-dictionary"
#: the overlay for a cluster without accounting; everything else, resources included, comes from
#: profiles/slurm. The last two only make the test faster (the first status poll after 5 s, not 40; 5 s of
#: waiting for a missing output, not 60): they change no job's request and no order of jobs.
OVERLAY = [
    "--slurm-status-command", "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks", "5",
    "--latency-wait", "5",
]  # fmt: skip
#: why a pending job would never start on this cluster, as squeue gives it (the job asks for more than a node
#: or the partition has); "Resources" and "Priority" only mean waiting for another job to end
NEVER = ("PartitionConfig", "PartitionTimeLimit", "PartitionNodeLimit", "ReqNodeNotAvail", "BadConstraints")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = ensure_installed()
    if why:
        pytest.skip(why)
    with LocalSlurm(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


def profile_command(slurm: LocalSlurm, workers: Path, *targets: str) -> tuple[list[str], dict[str, str]]:
    """`snakemake --profile profiles/slurm` with the overlay, and its environment (the cluster's commands
    first on PATH, this checkout's package, workers in ``workers``)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml"]
    cmd += ["--profile", str(REPO / "profiles" / "slurm"), *OVERLAY, *targets]
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = {**slurm.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": pythonpath}
    env.update(TRANSFERLAW_WORKER_DIR=str(workers), TRANSFERLAW_WORKER_IDLE="30")
    return cmd, env


def submitted(output: str) -> dict[str, str]:
    """Snakemake job id -> Slurm job id, from the plugin's 'has been submitted with SLURM jobid' lines."""
    return dict(re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+)", output))


def show_job(slurm: LocalSlurm, job: str) -> dict[str, str]:
    """`scontrol show job` of a Slurm job as a dict (kept MinJobAge = 300 s after the job ends)."""
    out = slurm.run("scontrol", "show", "job", "--oneliner", job).stdout
    return dict(f.split("=", 1) for f in out.split() if "=" in f)


def run_watching_the_queue(slurm: LocalSlurm, cmd, cwd: Path, env, timeout: float = 900) -> str:
    """Run ``cmd`` (Snakemake submitting to ``slurm``); fail at once, killing it, if a job it submitted is
    held pending for a reason that never clears (it asks for more than the node has). Its output."""
    out_path = cwd.parent / "snakemake.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                queue = slurm.run("squeue", "-h", "-o", "%i %T %r", check=False).stdout.split("\n")
                stuck = [line for line in queue if "PENDING" in line and line.split()[-1] in NEVER]
                assert not stuck, f"jobs that will never start: {stuck}\n" + "\n".join(
                    f"{j}: {show_job(slurm, j.split()[0]).get('TRES')}" for j in stuck
                )
                assert time.monotonic() < deadline, "snakemake did not finish in time"
                time.sleep(1)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = out_path.read_text()
    assert proc.returncode == 0, output[-8000:]
    return output


@pytest.fixture(scope="module")
def slurm_study(slurm, small_study, tmp_path_factory):
    """One dataset's runs and first analyses of the small study, redone through the Slurm profile."""
    study = tmp_path_factory.mktemp("slurm-study") / "study"
    shutil.copytree(small_study, study, symlinks=True)
    for sub in ("runs", "fits", "bootstrap", "crossval", "tables", "figures"):
        shutil.rmtree(study / "results" / sub, ignore_errors=True)
    workers = study.parent / "workers"
    targets = [f"results/runs/{DS}.parquet", f"results/fits/{DS}.json", f"results/bootstrap/{DS}.json"]
    cmd, env = profile_command(slurm, workers, *targets)
    output = run_watching_the_queue(slurm, cmd, study, env)
    return study, output, workers


def test_every_group_asks_for_one_run_and_every_job_started(slurm, slurm_study):
    _, output, _ = slurm_study
    jobs = {slurm_id: show_job(slurm, slurm_id) for slurm_id in submitted(output).values()}
    node = slurm.run("scontrol", "show", "node", "--oneliner", "localhost").stdout
    node_cpus, node_mb = (int(re.search(rf"{key}=(\d+)", node)[1]) for key in ("CPUTot", "RealMemory"))
    print(f"\nthe node: {node_cpus} CPUs, {node_mb} MB")
    for slurm_id, job in sorted(jobs.items()):
        print(
            f"Slurm job {slurm_id} {job['Comment']}: NumCPUs={job['NumCPUs']} TRES={job['TRES']} "
            f"TimeLimit={job['TimeLimit']} JobState={job['JobState']} StartTime={job['StartTime']}"
        )
    # every submitted job started and ended well: none was left pending
    assert {job["JobState"] for job in jobs.values()} == {"COMPLETED"}
    assert all(job["StartTime"] not in ("Unknown", "None") for job in jobs.values())
    finetune = [job for job in jobs.values() if job["Comment"].startswith("rule_ft_")]
    assert len(finetune) == 3
    # a checkpoint's group asks for one run's CPUs and memory: summed over its runs, its CPUs would exceed
    # the node's, and it would never start
    run = yaml.safe_load(SMALL_CONFIG.read_text())["finetune"]
    runs = len(yaml.safe_load(SMALL_CONFIG.read_text())["datasets"][DS]["sizes"])
    assert runs * run["threads"] > node_cpus
    for job in finetune:
        assert job["NumCPUs"] == str(run["threads"]), job["TRES"]
        assert f"mem={run['mem_mb']}M" in job["TRES"].split(","), job["TRES"]
        # and for the sum of its runs' minutes, since they run one after another
        assert job["TimeLimit"] == f"{runs * run['runtime'] // 60:02d}:{runs * run['runtime'] % 60:02d}:00"


def test_jobs_go_through_sbatch_one_allocation_per_checkpoint(slurm_study):
    _, output, _ = slurm_study
    jobs = submitted(output)
    groups = re.findall(r"Group job (\S+) ", output)
    # three checkpoints, one allocation each; the fit and bootstrap of a dataset share one
    assert sorted(g for g in groups if g.startswith("ft_")) == [
        "ft_tiny-neox_step0",
        "ft_tiny-neox_step16",
        "ft_tiny-neox_step256",
    ]
    assert [g for g in groups if g.startswith("analysis_")] == ["analysis_devils-dictionary"]
    assert len(jobs) == len(groups) == 4  # 9 fine-tuning runs, a fit and a bootstrap: 4 submissions
    assert len(set(jobs.values())) == 4  # four sbatch calls, four Slurm job ids


def test_a_checkpoint_s_runs_share_one_worker_running_as_its_own_job_step(slurm_study):
    _, _, workers = slurm_study
    logs = sorted(workers.rglob("slot-*.log"))
    starts = [m for p in logs for m in re.findall(r"serving .* in Slurm job (\d+) step (\d+)", p.read_text())]
    served = sum(p.read_text().count(" run finetune ") for p in logs)
    assert served == 3 * 3  # every run went to a worker
    allocations = {job for job, _ in starts}
    assert len(allocations) == 3  # one per checkpoint's group
    # one worker per allocation (its one CPU is one slot), not one per run (3 runs per checkpoint)
    assert len(starts) == len(allocations) < served


def test_results_equal_the_local_run(slurm_study, small_study):
    study, _, _ = slurm_study
    local = read_records(str(small_study / f"results/runs/{DS}.parquet"))
    remote = read_records(str(study / f"results/runs/{DS}.parquet"))
    cols = ["revision", "revision_sha", "finetune_size", "eval_loss", "epochs", "status"]
    assert remote[cols].equals(local[cols])
    assert remote["eval_curve"].map(list).tolist() == local["eval_curve"].map(list).tolist()
    fit, local_fit = (json.loads((s / f"results/fits/{DS}.json").read_text()) for s in (study, small_study))
    assert fit["params"] == local_fit["params"]


def test_a_preempted_job_is_requeued_and_leaves_its_record_once(slurm, study_copy, tmp_path):
    study = study_copy
    # runs of seconds (no early stop), so that preemption can hit one; the prepared data stay as they are
    edit_config(study, lambda c: c["datasets"][DS].update(finetune={"patience": 300, "max_epochs": 300}))
    target = f"results/runs/{DS}/tiny-neox/step16/f16.full.s0.parquet"
    (study / target).unlink()
    log = study / f"logs/finetune/{DS}/tiny-neox/step16/f16.full.s0.log"
    log.unlink()
    out = open(tmp_path / "snakemake.out", "w")  # noqa: SIM115
    cmd, env = profile_command(slurm, tmp_path / "workers", target)
    proc = subprocess.Popen(cmd, cwd=study, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 300
        while not (log.is_file() and "epochs:" in log.read_text() and "/300" in log.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, (
                tmp_path / "snakemake.out"
            ).read_text()
            time.sleep(0.2)
        (job,) = slurm.run("squeue", "-h", "-o", "%i").stdout.split()
        slurm.run("scontrol", "requeue", job)  # what preemption with PreemptMode=REQUEUE does
        # Slurm holds a requeued job back for minutes (its begin time); let it start again at once
        deadline = time.monotonic() + 30
        while "JobState=PENDING" not in slurm.run("scontrol", "show", "job", job).stdout:
            assert time.monotonic() < deadline, "the job was not requeued"
            time.sleep(0.5)
        slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")
        assert proc.wait(timeout=600) == 0, (tmp_path / "snakemake.out").read_text()[-5000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    (record,) = read_records(str(study / target)).itertuples()
    assert record.epochs == 300 and record.status == "max_epochs"
    leftovers = [p.name for p in (study / target).parent.iterdir() if ".tmp" in p.name]
    assert leftovers == []  # no temporary record of the preempted attempt
    history = slurm.run("scontrol", "show", "job", job, check=False).stdout
    assert "Restarts=1" in history
    assert_nothing_planned(study, target)  # the run that exited 0 left nothing undone


def test_the_plan_checks_groups_against_the_partition_s_time_limit(slurm, monkeypatch, capsys):
    """`transferlaw plan` reads the partition's MaxTime from this Slurm and names the key to lower."""
    from transferlaw.cli import main as transferlaw

    for name in ("PATH", "SLURM_CONF"):
        monkeypatch.setenv(name, slurm.env[name])
    plan = ["plan", "--configfile", str(SMALL_CONFIG), "--profile", str(REPO / "profiles" / "slurm")]
    plan += ["--snakefile", str(REPO / "Snakefile")]
    slurm.run("scontrol", "update", "PartitionName=debug", "MaxTime=02:00:00")
    assert transferlaw(plan) == 0  # the longest submission, the pre-training, asks for 120 minutes
    assert "fits the time limit (each partition's MaxTime from scontrol)" in capsys.readouterr().out
    # a one-hour partition: a checkpoint's 6 runs at their last retry ask for 6 x 15 minutes
    slurm.run("scontrol", "update", "PartitionName=debug", "MaxTime=01:00:00")
    try:
        status = transferlaw(plan)
    finally:
        slurm.run("scontrol", "update", "PartitionName=debug", "MaxTime=INFINITE")
    err = capsys.readouterr().err
    assert status == 1
    assert (
        "ft_tiny-neox_step0: its last retry (attempt 3) asks for 90 min, over the 60 min that the default "
        "partition allows, and would never start: lower `group-components: ft_{model}_{revision}=N`"
    ) in err
    assert "to N <= 4 (its jobs ask for up to 15 min each at attempt 3)" in err
