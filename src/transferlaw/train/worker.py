"""Fine-tuning runs that cost their training, not their start-up.

Each Snakemake job is a new process, and at the toy's scale (and, per run, at the paper's) a fine-tuning
run's own work is smaller than the process's start-up: importing torch and transformers (4-5 s of CPU),
initialising the device, loading the checkpoint (11 GB for Pythia-2.8B in fp32). So a fine-tuning job is a
thin client: it hands its run to a long-lived **worker** process on the same node, which pays those costs
once, keeps the checkpoint it last loaded and restores its pristine weights before each run of it. The job
keeps everything else of the design's contract: one job per (dataset, checkpoint, size), its own record,
written atomically by the job itself, and its own place in the DAG.

Slots. A worker serves one run at a time. Its slot is a lock file, a socket and a state file in a folder
private to the user and to this exact code (``<tmp>/transferlaw-worker-<uid>/<fingerprint>/``, so a worker
never serves code other than its own, nor another Slurm allocation's GPU). A job takes a free slot, preferring
the one whose worker holds its checkpoint, holds the slot's lock (``flock``) while its run lasts, and starts
the slot's worker if none is listening. The lock dies with the job: a killed job frees its slot; a worker
whose client has gone abandons the run at the next epoch and writes nothing. Workers exit after ``idle``
seconds without a run (``TRANSFERLAW_WORKER_IDLE``, default 120).

Inside a Slurm allocation a worker is a job step of its own (:func:`slurm_step`): Slurm ends a step's
processes with the step (every process of its cgroup, with ``proctrack/cgroup``), and each Snakemake job of a
group runs as its own step, so a worker started as a plain child of a job would die with it. The worker's step
overlaps the jobs' steps (``--overlap``, sharing the allocation's CPUs, memory and GPUs) and ends with the
allocation.
See docs/cluster.md.

This module is imported by every fine-tuning job, so it imports only the standard library (and the slot
folder and socket helpers of :mod:`transferlaw.warm`, which the warm process of the light jobs shares).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib
import json
import os
import select
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from transferlaw.warm import (
    IDLE_SECONDS,
    connect,
    listen,
    receive,
    remove_socket,
    say,
    send,
    slot_dir,
    start_server,
)

#: tasks a worker runs, by name: "module:function", each called as function(request, cancelled)
TASKS = {"finetune": "transferlaw.train.finetune:run_job"}
START_SECONDS = 300.0  # a cold worker imports torch and transformers: minutes on a busy shared node


class WorkerError(RuntimeError):
    """The run failed in the worker (the message carries its traceback), or the worker died."""


class Cancelled(Exception):
    """The job that asked for this run has gone: the run is abandoned and nothing is written."""


# ----------------------------------------------------------------------------------------------------
# where slots live
# ----------------------------------------------------------------------------------------------------
def _visible_gpus() -> list[str]:
    return [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]


def default_slots(device: str, threads: int) -> list[str | None]:
    """One slot per visible GPU (each worker sees only its own), or per ``threads`` CPU cores (of the Slurm
    allocation on this node, where there is one)."""
    visible = _visible_gpus()
    if device != "cpu" and visible:
        return visible
    if device == "cuda":
        return [None]
    cores = int(os.environ.get("SLURM_CPUS_ON_NODE") or len(os.sched_getaffinity(0)))
    return [None] * max(1, cores // max(1, threads))


#: the Slurm variables a step started from inside another step keeps: which allocation, and where its
#: configuration is (the rest, the enclosing step's task and CPU layout, would conflict with the flags)
_SLURM_KEEP = {"SLURM_JOB_ID", "SLURM_JOBID", "SLURM_CONF", "SLURM_CLUSTER_NAME"}


def slurm_step(threads: int, log: Path) -> tuple[list[str], dict[str, str]] | None:
    """The ``srun`` prefix and environment that start a worker as its own step of the current Slurm
    allocation, on this node, with this job's GPUs; None outside an allocation (or without ``srun``)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or os.environ.get("TRANSFERLAW_WORKER_STEP", "1") == "0" or not shutil.which("srun"):
        return None
    cmd = ["srun", f"--jobid={job}", "--overlap", "--mem=0", "--ntasks=1", "--nodes=1"]
    if node := os.environ.get("SLURMD_NODENAME"):
        cmd.append(f"--nodelist={node}")  # the job talks to its worker through a Unix socket on this node
    if gpus := len(_visible_gpus()):
        cmd.append(f"--gpus={gpus}")
    cmd += [
        f"--cpus-per-task={threads}",
        "--job-name=transferlaw-worker",
        "--kill-on-bad-exit=0",
        "--input=none",
        f"--output={log}",
        "--open-mode=append",
        "--quiet",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SRUN_", "SBATCH_"))}
    env.update({k: os.environ[k] for k in _SLURM_KEEP if k in os.environ})
    return cmd, env


# ----------------------------------------------------------------------------------------------------
# the job's side
# ----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _take_slot(folder: Path, slots: list[str | None], key: str) -> Iterator[tuple[int, Any]]:
    """Hold a free slot for the duration: the one that last ran ``key`` if it is free, else any free one,
    else wait for one."""
    handles = [open(folder / f"slot-{i}.lock", "a+") for i in range(len(slots))]  # noqa: SIM115
    try:
        while True:
            order = sorted(range(len(slots)), key=lambda i: _state(folder, i).get("key") != key)
            for i in order:
                try:
                    fcntl.flock(handles[i], fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                try:
                    yield i, handles[i]
                finally:
                    fcntl.flock(handles[i], fcntl.LOCK_UN)
                return
            time.sleep(0.2)
    finally:
        for h in handles:
            h.close()


def _state(folder: Path, i: int) -> dict[str, Any]:
    try:
        return json.loads((folder / f"slot-{i}.json").read_text())
    except (OSError, ValueError):
        return {}


def _start_worker(folder: Path, i: int, device: str | None, threads: int = 1) -> socket.socket:
    """Start slot ``i``'s worker, as a Slurm step of its own inside an allocation, and connect to it."""
    path = folder / f"slot-{i}.sock"
    log = folder / f"slot-{i}.log"  # the worker's own log: start-up errors, one line per run served
    cmd = [sys.executable, "-m", "transferlaw.train.worker", str(path), str(IDLE_SECONDS)]
    if device is not None:  # srun sets a step's CUDA_VISIBLE_DEVICES: the worker's own choice comes after
        cmd = ["env", f"CUDA_VISIBLE_DEVICES={device}", *cmd]
    step = slurm_step(threads, log)
    if step is not None:
        try:
            return _launch(step[0] + cmd, step[1], path, i)
        except WorkerError as err:  # no step could be made: a plain process serves, if only this job
            with open(log, "a") as fh:
                print(f"transferlaw: no Slurm step for the worker ({err}); starting it as a process", file=fh)
    return _launch(cmd, dict(os.environ), path, i)


def _launch(cmd: list[str], env: dict[str, str], path: Path, i: int) -> socket.socket:
    """Start slot ``i``'s worker (its log: the socket's ``.log``, ``slot-{i}.log``) and connect to it."""
    try:
        return start_server(cmd, env, path, f"the worker of slot {i}", START_SECONDS)
    except OSError as err:
        raise WorkerError(str(err)) from err


def run_task(task: str, request: dict[str, Any], *, key: str, device: str = "auto", threads: int = 1) -> Any:
    """Run ``task`` on ``request`` in a worker on this node and return its result.

    ``key`` names what the worker keeps between runs (the pinned checkpoint), so that runs of one
    checkpoint go to the worker that holds it. Raises :class:`WorkerError` with the worker's traceback.
    """
    try:
        folder = slot_dir()
    except OSError as err:
        raise WorkerError(str(err)) from err
    slots = default_slots(device, threads)
    with _take_slot(folder, slots, key) as (i, _lock):
        sock = connect(folder / f"slot-{i}.sock") or _start_worker(folder, i, slots[i], threads)
        with sock:
            send(sock, {"task": task, "request": request, "cwd": os.getcwd()})
            reply = receive(sock)
        if reply is None:
            raise WorkerError(f"the worker of slot {i} died during the run; see {folder / f'slot-{i}.log'}")
        (folder / f"slot-{i}.json").write_text(json.dumps({"key": key}))
        if not reply["ok"]:
            raise WorkerError(reply["error"])
        return reply["result"]


# ----------------------------------------------------------------------------------------------------
# the worker's side
# ----------------------------------------------------------------------------------------------------
def _gone(conn: socket.socket) -> bool:
    """Whether the client has closed its end (a readable socket that reads nothing)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _task(name: str) -> Callable[..., Any]:
    module, function = TASKS[name].split(":")
    return getattr(importlib.import_module(module), function)


def serve(path: str | Path, idle: float = IDLE_SECONDS) -> None:
    """Serve runs on the Unix socket ``path``, one at a time, until ``idle`` seconds pass without one."""
    path = Path(path)
    listener = listen(path, 4)
    mine = path.stat().st_ino  # at exit it removes this socket file only, not a newer worker's
    pid = path.with_suffix(".pid")
    pid.write_text(str(os.getpid()))
    step = os.environ.get("SLURM_STEP_ID")
    where = f" in Slurm job {os.environ.get('SLURM_JOB_ID')} step {step}" if step else ""
    say(f"worker {os.getpid()} serving {path}{where}")
    try:
        while select.select([listener], [], [], idle)[0]:
            conn, _ = listener.accept()
            with conn:
                message = receive(conn)
                if message is None:
                    continue
                try:
                    # a worker serves every study on this node that runs this code: paths are the job's
                    os.chdir(message["cwd"])
                    say(f"run {message['task']} for {message['request'].get('record', '?')}")
                    result = _task(message["task"])(message["request"], lambda c=conn: _gone(c))
                    reply = {"ok": True, "result": result}
                except Cancelled:
                    continue
                except BaseException as err:  # the job reports it; the worker lives on
                    reply = {"ok": False, "error": "".join(traceback.format_exception(err)).rstrip()}
                    if not isinstance(err, Exception):
                        raise
                with contextlib.suppress(OSError):
                    send(conn, reply)
    finally:
        listener.close()
        remove_socket(path, mine)
        with contextlib.suppress(OSError):
            if pid.read_text() == str(os.getpid()):
                pid.unlink()


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # workers load pinned checkpoints from the cache only
    try:
        serve(argv[0], float(argv[1]) if len(argv) > 1 else IDLE_SECONDS)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:  # another worker took this slot first: it serves
            return 0
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
