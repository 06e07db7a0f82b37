"""The study through `snakemake --profile profiles/slurm` on a real single-node Slurm (tests/slurm.py).

The finished small study is copied, its fine-tuning records and everything after them are deleted, and the
Slurm profile redoes them with a CPU-only overlay (this cluster has no GPU and no accounting). Checked: jobs
went through sbatch, one allocation per checkpoint served all of its runs with one worker (its own job step),
and the records and fit equal the local run's bit for bit. Then a preempted (requeued) job restarts cleanly
and leaves its record once.
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
from conftest import REPO, edit_config
from slurm import LocalSlurm, ensure_installed

from transferlaw.schema import read_records

DS = "devils-dictionary"
#: the overlay for a 2-core CPU cluster without accounting; everything else comes from profiles/slurm
OVERLAY = [
    "--cores", "2",  # per submission (the group's runs share the allocation's two cores)
    "--slurm-status-command", "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks", "5",
    "--latency-wait", "5",
]  # fmt: skip


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
    proc = subprocess.run(cmd, cwd=study, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return study, proc.stdout + proc.stderr, workers


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
    # at most one worker per core of an allocation (2), not one per run (3 runs per checkpoint)
    assert len(starts) <= 2 * len(allocations) < served


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
    target = f"results/runs/{DS}/tiny-neox/step16/f16.parquet"
    (study / target).unlink()
    log = study / f"logs/finetune/{DS}/tiny-neox/step16/f16.log"
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
