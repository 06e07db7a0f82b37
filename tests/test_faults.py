"""Faults lose nothing: a workflow killed mid-run, a worker that dies, a run that diverges, a corrupt record,
an interrupted study; and the same run twice gives the same loss to the last bit. All through the real
Snakemake on copies of the finished small study. After every recovering run that exits 0, a dry run plans
nothing: a run that says done is done."""

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_nothing_planned, edit_config, executed_outputs, planned_outputs, snakemake

from transferlaw.schema import read_records

DS = "devils-dictionary"


@pytest.fixture()
def study(study_copy):
    return study_copy


def records(workdir: Path, dataset: str = DS) -> list[Path]:
    return sorted((workdir / "results/runs" / dataset).rglob("f*.parquet"))


def all_records(workdir: Path) -> list[Path]:
    return sorted((workdir / "results/runs").glob("*/*/*/f*.parquet"))


def start(workdir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Snakemake in its own process group (so that the whole workflow can be killed at once)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml"]
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": pythonpath, **(env or {})}
    with open(workdir / "snakemake.out", "w") as out:  # what it prints, for the test to read
        return subprocess.Popen(
            [*cmd, *args], cwd=workdir, env=full_env, start_new_session=True, stdout=out, stderr=out,
            preexec_fn=as_from_a_terminal,
        )  # fmt: skip


def as_from_a_terminal() -> None:
    """Ctrl-C interrupts, as in a terminal: a process started in the background by a shell without job
    control (`pytest ... &` in a script) ignores SIGINT, and so would Snakemake, which inherits it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def slow_dataset(cfg) -> None:
    """A dataset whose runs last seconds (no early stop), so that a fault can hit one mid-run."""
    cfg["datasets"]["slow"] = {
        "path": "resources/datasets/devils_dictionary.txt.xz",
        "sizes": [16],
        "finetune": {"patience": 400, "max_epochs": 400},
    }


def ctrl_c(workdir: Path, proc: subprocess.Popen) -> None:
    """Ctrl-C, pressed again until Snakemake says it heard it. Snakemake's log handler swallows a
    KeyboardInterrupt that lands while it writes a line (snakemake/logging.py, ``except (KeyboardInterrupt,
    SystemExit): pass`` in ``emit``), and the workflow then runs on to the end: a user presses Ctrl-C again,
    and so does this test, so that the interrupt lands every time, not only when Snakemake is not logging."""
    heard = "Terminating processes on user request"
    for _ in range(50):
        os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if proc.poll() is not None or heard in (workdir / "snakemake.out").read_text():
                return
            time.sleep(0.05)
    raise AssertionError("Snakemake did not stop on 50 Ctrl-C")


def test_a_workflow_killed_mid_run_leaves_no_partial_record_and_reruns_only_missing_work(study):
    edit_config(study, slow_dataset)
    proc = start(study, "--cores", "2", "results/runs/slow.parquet")
    log = study / "logs/finetune/slow/tiny-neox/step256/f16.full.s0.log"
    wait_for(lambda: log.is_file() and "epochs:" in log.read_text())  # a run is under way
    os.killpg(proc.pid, signal.SIGKILL)  # the whole workflow, at once
    proc.wait()
    time.sleep(3)  # its worker finds its job gone and abandons the run
    assert not any(p.suffix == ".tmp" or ".tmp" in p.name for p in (study / "results/runs").rglob("*"))
    for path in records(study, "slow"):
        read_records(str(path))  # whatever exists is complete
    done = {p.relative_to(study).as_posix() for p in records(study, "slow")}
    snakemake(study, "--unlock")  # the README says: clear the lock left by a killed workflow
    planned = set(planned_outputs(study, "results/runs/slow.parquet"))
    wanted = {f"results/runs/slow/tiny-neox/{r}/f16.full.s0.parquet" for r in ("step0", "step16", "step256")}
    assert {o for o in planned if o.startswith("results/runs/slow/")} == wanted - done
    assert not {o for o in planned if o.startswith(f"results/runs/{DS}")}
    snakemake(study, "--cores", "2", "results/runs/slow.parquet")
    assert_nothing_planned(study, "results/runs/slow.parquet")


def test_a_run_whose_worker_dies_fails_and_succeeds_on_retry(study, tmp_path):
    edit_config(study, slow_dataset)
    workers = tmp_path / "workers"
    env = {"TRANSFERLAW_WORKER_DIR": str(workers)}
    target = "results/runs/slow/tiny-neox/step0/f16.full.s0.parquet"
    proc = start(study, "--cores", "1", "--retries", "1", target, env=env)
    log = study / "logs/finetune/slow/tiny-neox/step0/f16.full.s0.log"
    wait_for(lambda: log.is_file() and "epochs:" in log.read_text())
    (pid_file,) = workers.rglob("slot-0.pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # as the kernel's OOM killer would
    assert proc.wait(timeout=300) == 0
    (record,) = read_records(str(study / target)).itertuples()
    assert record.status == "max_epochs" and record.epochs == 400
    output = (study / "snakemake.out").read_text()
    assert "died during the run" in output and "Trying to restart job" in output
    # the retry asks for more: memory and minutes grow with the attempt (small.yaml: 1000 MB, 5 min)
    first, retry = output.split("Trying to restart job", 1)
    assert "mem_mb=1000" in first and "runtime=5" in first
    assert "mem_mb=2000" in retry and "runtime=10" in retry
    assert_nothing_planned(study, target)


def test_a_diverging_run_is_recorded_and_excluded_with_a_count(study):
    edit_config(study, lambda c: c["datasets"]["chloroplast-dna"].update(finetune={"lr": 100.0}))
    proc = snakemake(study, "--cores", "2", "results/fits/chloroplast-dna.json", check=False)
    runs = read_records(str(study / "results/runs/chloroplast-dna.parquet"))  # the aggregate did not crash
    assert (runs["status"] == "diverged").all()
    out = proc.stdout + proc.stderr + (study / "logs/fit/chloroplast-dna.log").read_text()
    assert "excluding 9 run(s)" in out and "diverged" in out
    assert (study / f"results/fits/{DS}.json").is_file()  # the other dataset's fit is untouched
    if proc.returncode == 0:
        assert_nothing_planned(study, "results/fits/chloroplast-dna.json")


def test_a_corrupt_record_is_named_and_nothing_else_is_lost(study):
    victim = study / f"results/runs/{DS}/tiny-neox/step16/f8.full.s0.parquet"
    victim.write_bytes(victim.read_bytes()[:200])
    (study / f"results/runs/{DS}.parquet").unlink()
    others = {p: p.read_bytes() for p in (study / "results").rglob("*") if p.is_file() and p != victim}
    proc = snakemake(study, "--cores", "2", f"results/fits/{DS}.json", check=False)
    assert proc.returncode != 0
    assert f"{victim.relative_to(study)}: unreadable record" in proc.stdout + proc.stderr + "".join(
        p.read_text() for p in (study / "logs/aggregate").iterdir()
    )
    assert all(p.read_bytes() == data for p, data in others.items() if p.exists())
    assert all(p.exists() for p in others if "runs" in p.parts and p.name != f"{DS}.parquet")
    victim.unlink()  # as the message says: the run is redone, nothing else
    outs = planned_outputs(study, f"results/runs/{DS}.parquet")
    assert [o for o in outs if o.count("/") > 3] == [victim.relative_to(study).as_posix()]
    snakemake(study, "--cores", "2", f"results/fits/{DS}.json")
    assert_nothing_planned(study, f"results/fits/{DS}.json")


NEW_REVISIONS = ["step4", "step64"]


def pins_half_rewritten(study: Path) -> set[str]:
    """The state an interrupt can leave after revisions are added: the new revisions' pins (and step0's)
    written, the others not redone. Made deterministically by running only those pins. Returns the records
    the study now needs."""
    edit_config(study, lambda c: c["models"]["tiny-neox"]["revisions"].extend(NEW_REVISIONS))
    pins = [f"results/checkpoints/tiny-neox/{r}.json" for r in [*NEW_REVISIONS, "step0"]]
    snakemake(study, "--cores", "2", *pins)
    return {
        f"results/runs/{d}/tiny-neox/{r}/f{s}.full.s0.parquet"
        for d in (DS, "chloroplast-dna")
        for r in NEW_REVISIONS
        for s in (4, 8, 16)
    }


def test_a_resume_after_a_partial_pin_rewrite_plans_and_does_everything(study):
    """An outdated or freshly written pin must not hide the rest of the study from the scheduler: the plan
    names every job the study still needs, the run does exactly those, and then nothing is left."""
    needed = pins_half_rewritten(study)
    planned = set(planned_outputs(study, "--rerun-incomplete"))
    assert needed <= planned, (
        f"the plan leaves out {len(needed - planned)} run(s): {sorted(needed - planned)}"
    )
    assert "results/summary.md" in planned
    proc = snakemake(study, "--cores", "2", "--rerun-incomplete")
    assert set(executed_outputs(proc)) == planned  # the plan was the truth
    assert_nothing_planned(study)
    assert {p.relative_to(study).as_posix() for p in (study / "results/runs").rglob("f*.parquet")} >= needed


def test_an_interrupted_study_resumes_without_redoing_finished_runs(study):
    """Ctrl-C while the study fine-tunes the revisions just added (after their pins were written and the
    others' were not: the state that hid 41 jobs from the resume), then a resume: no finished run is redone,
    every run the study needs exists, and nothing is left."""
    needed = pins_half_rewritten(study)
    before = {p: p.stat().st_mtime_ns for p in all_records(study)}
    proc = start(study, "--cores", "2")

    def new_runs_under_way():
        assert proc.poll() is None, "the study stopped before fine-tuning the new revisions: work was hidden"
        return len(all_records(study)) >= len(before) + 2

    wait_for(new_runs_under_way)
    ctrl_c(study, proc)
    assert proc.wait(timeout=300) != 0
    # a record renamed into place just before the interrupt, whose job Snakemake had not yet seen finish,
    # is incomplete in Snakemake's eyes and rightly redone; every other one must stay
    incomplete = {
        study / base64.urlsafe_b64decode(m.name).decode() for m in (study / ".snakemake/incomplete").iterdir()
    }
    finished = {p: p.stat().st_mtime_ns for p in all_records(study) if p not in incomplete}
    assert len(finished) < len(before) + len(needed)  # the interrupt left new runs undone
    snakemake(study, "--cores", "2", "--rerun-incomplete")  # as `make study` and the profiles do
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # nothing finished was redone
    assert len(all_records(study)) == len(before) + len(needed)
    assert_nothing_planned(study)


def test_the_same_run_twice_gives_the_same_loss_to_the_last_bit(study):
    target = f"results/runs/{DS}/tiny-neox/step16/f8.full.s0.parquet"
    first = read_records(str(study / target))
    losses = []
    for worker in (True, True, False):  # a warm worker, again, and a job loading for itself
        (study / target).unlink()
        edit_config(study, lambda c, w=worker: c["finetune"].update(worker=w))
        snakemake(study, "--cores", "1", target)
        losses.append(read_records(str(study / target))[["eval_loss", "eval_curve"]])
    for other in losses:
        assert other["eval_loss"].tolist() == first["eval_loss"].tolist()
        assert other["eval_curve"].map(list).tolist() == first["eval_curve"].map(list).tolist()
