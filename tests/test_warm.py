"""Light jobs served by a warm process (transferlaw.warm): through the real Snakemake, a job's script runs in
a forked child of a process that has imported the stack, as the job (its directory, environment, umask,
streams and exit status), and dies with the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, snakemake

pytestmark = pytest.mark.slow

SCRIPT = '''"""A light job."""
from transferlaw.warm import run_warm

run_warm(snakemake, __file__)

import json, os, sys, time
import transferlaw.warm as warm

mode = snakemake.params.mode
print("the job's own stdout")
if mode == "fail":
    raise RuntimeError("the job's own error")
if mode == "exit":
    sys.exit(3)
if mode == "sleep":
    with open(snakemake.output[0] + ".pid", "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(120)
mask = os.umask(0)
os.umask(mask)
with open(snakemake.output[0], "w") as fh:
    json.dump({"served": warm.served(), "cwd": os.getcwd(), "value": os.environ.get("TL_VALUE"),
               "umask": mask, "pid": os.getpid(), "argv0": sys.argv[0]}, fh)
'''
SNAKEFILE = """
rule job:
    output: "out/{mode}.json"
    params: mode="{mode}"
    script: "job.py"
"""


@pytest.fixture()
def workflow(tmp_path):
    (tmp_path / "job.py").write_text(SCRIPT)
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "config.yaml").write_text("{}\n")
    return tmp_path


def env(tmp: Path, **extra: str) -> dict[str, str]:
    """Warm processes of this test alone, gone a few seconds after it."""
    return {"TRANSFERLAW_WORKER_DIR": str(tmp / "workers"), "TRANSFERLAW_WORKER_IDLE": "10", **extra}


def run(workflow: Path, target: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    return snakemake(workflow, "--cores", "1", target, check=check, env=env(workflow, **extra),
                     snakefile=workflow / "Snakefile")  # fmt: skip


def test_a_served_job_runs_as_the_job_and_one_not_served_runs_the_same(workflow):
    old = os.umask(0o027)
    try:
        run(workflow, "out/ok.json", TL_VALUE="first")
    finally:
        os.umask(old)
    served = json.loads((workflow / "out/ok.json").read_text())
    assert served["served"] is True  # run in the warm process's child
    assert served["cwd"] == str(workflow) and served["value"] == "first" and served["umask"] == 0o027
    assert (workflow / "out/ok.json").stat().st_mode & 0o777 == 0o640  # the job's umask, not the server's
    # a second job goes to the same warm process and sees its own environment
    (workflow / "out/ok.json").unlink()
    run(workflow, "out/ok.json", TL_VALUE="second")
    again = json.loads((workflow / "out/ok.json").read_text())
    assert again["served"] and again["value"] == "second" and again["pid"] != served["pid"]
    logs = list((workflow / "workers").rglob("warm-*.log"))
    assert len(logs) == 1 and logs[0].read_text().count("job ") == 2
    # turned off, the job runs in its own process, with the same result
    (workflow / "out/ok.json").unlink()
    run(workflow, "out/ok.json", TL_VALUE="second", TRANSFERLAW_WARM="0")
    alone = json.loads((workflow / "out/ok.json").read_text())
    assert alone["served"] is False
    for record in (again, alone):  # the job's own argv: Snakemake's copy of the script (a new name per job)
        assert record.pop("argv0").startswith(str(workflow / ".snakemake" / "scripts" / "tmp"))
    assert {**alone, "served": True, "pid": 0} == {**again, "pid": 0}


@pytest.mark.parametrize("mode, words", [("fail", "RuntimeError: the job's own error"), ("exit", "")])
def test_a_served_job_that_fails_fails_the_job_with_its_error(workflow, mode, words):
    proc = run(workflow, f"out/{mode}.json", check=False)
    assert proc.returncode != 0 and not (workflow / f"out/{mode}.json").exists()
    out = proc.stdout + proc.stderr
    assert "the job's own stdout" in out and words in out
    assert "Error in rule job" in out
    # and the warm process lives on: the next job is served
    run(workflow, "out/ok.json")
    assert json.loads((workflow / "out/ok.json").read_text())["served"] is True


def test_a_killed_job_takes_its_served_child_with_it(workflow):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(workflow / "Snakefile"), "--cores", "1"]
    cmd += ["out/sleep.json", "--configfile", "config.yaml"]
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": pythonpath, **env(workflow)}
    out = subprocess.DEVNULL
    proc = subprocess.Popen(
        cmd, cwd=workflow, env=environment, stdout=out, stderr=out, start_new_session=True
    )
    pid_file = workflow / "out/sleep.json.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the served job never started"
    time.sleep(0.2)
    child = int(pid_file.read_text())
    assert Path(f"/proc/{child}").exists()
    os.killpg(proc.pid, signal.SIGKILL)  # the job and Snakemake, as a node failure or `kill -9` would
    proc.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), "the served child outlived its job"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"
