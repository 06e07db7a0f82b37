"""A real single-node Slurm for the tests: Debian's slurmctld, slurmd and munge, started in a scratch folder.

Facts this harness relies on (../shared/notes/local-slurm.md): without systemd or cgroups, slurm.conf uses
proctrack/linuxproc and task/none; the daemons are started by hand and stopped by the PID they wrote; the
config lives outside /etc/slurm, so small wrappers named like the Slurm commands (first on PATH) set
SLURM_CONF, which Snakemake's job-step plugin clears before its nested srun; there is no accounting database,
so Snakemake's Slurm executor is told to poll squeue and to send no account.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
DAEMONS = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd"]
COMMANDS = ["sbatch", "srun", "squeue", "scancel", "scontrol", "sinfo", "sacct", "sacctmgr", "salloc"]


def ensure_installed() -> str | None:
    """Install Debian's Slurm and munge if they are missing; return why not where that cannot be done."""
    if all(Path(d).exists() for d in DAEMONS) and shutil.which("sbatch"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return (
            "Slurm is not installed, and Debian packages cannot be installed here (not root, or no apt-get)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode:
            return f"installing Debian's Slurm failed ({' '.join(cmd)}): {proc.stderr[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line() -> str:
    """This machine as Slurm sees it (`slurmd -C`), under the node name `localhost`."""
    out = subprocess.run(["/usr/sbin/slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(f.split("=", 1) for f in out.split()[1:] if "=" in f and not f.startswith("UpTime"))
    fields["RealMemory"] = str(int(fields["RealMemory"]) - 1024)  # head-room, else the node drains
    return "NodeName=localhost NodeAddr=127.0.0.1 " + " ".join(f"{k}={v}" for k, v in fields.items())


class LocalSlurm:
    """``with LocalSlurm(folder) as slurm:`` a controller and one node, up; ``slurm.env`` runs commands
    against it; leaving the block stops every daemon it started, by PID."""

    def __init__(self, folder: Path, min_job_age: int = 300) -> None:
        self.dir = Path(folder)
        self.min_job_age = min_job_age
        self.bin = self.dir / "bin"
        self.conf = self.dir / "slurm.conf"
        self.pids: list[Path] = []

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "SLURM_CONF": str(self.conf),
        }

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=check, timeout=120)

    def __enter__(self) -> LocalSlurm:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        os.chmod(d / "munge", 0o755)  # munged refuses a socket folder others may write to, or a private one
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        sock = d / "munge" / "munge.socket"
        self._daemon(
            "munged",
            [
                "/usr/sbin/munged",
                f"--socket={sock}",
                f"--key-file={key}",
                f"--pid-file={d / 'munge' / 'munged.pid'}",
                f"--log-file={d / 'log' / 'munged.log'}",
                f"--seed-file={d / 'munge' / 'munged.seed'}",
                "--force",
            ],
            d / "munge" / "munged.pid",
        )
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=transferlaw-test",
                    "SlurmctldHost=localhost(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={sock}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "DefMemPerCPU=500",
                    f"MinJobAge={self.min_job_age}",
                    "ReturnToService=2",
                    "MailProg=/bin/true",
                    f"StateSaveLocation={d / 'state'}",
                    f"SlurmdSpoolDir={d / 'spool'}",
                    f"SlurmctldPidFile={d / 'slurmctld.pid'}",
                    f"SlurmdPidFile={d / 'slurmd.pid'}",
                    f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
                    _node_line(),
                    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        self.bin.mkdir(exist_ok=True)
        for name in COMMANDS:  # the job-step plugin clears SLURM_CONF: the wrappers set it again
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec /usr/bin/{name} "$@"\n')
            wrapper.chmod(0o755)
        self._daemon("slurmctld", ["/usr/sbin/slurmctld", "-f", str(self.conf)], d / "slurmctld.pid")
        self._daemon(
            "slurmd", ["/usr/sbin/slurmd", "-f", str(self.conf), "-N", "localhost"], d / "slurmd.pid"
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the local Slurm did not come up (node state {state!r}); see {d / 'log'}")

    def _daemon(self, name: str, cmd: list[str], pid_file: Path) -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60)
        if proc.returncode:
            raise RuntimeError(f"{name} did not start: {proc.stderr or proc.stdout}")
        deadline = time.monotonic() + 20
        while not (pid_file.is_file() and pid_file.read_text().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} wrote no PID file {pid_file}")
            time.sleep(0.1)
        self.pids.append(pid_file)

    def stop(self) -> None:
        """Cancel what is left, then stop the daemons this harness started, newest first, by their PIDs."""
        if self.pids:
            self.run("scancel", "--full", "--user", str(os.getuid()), check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.5)
        for pid_file in reversed(self.pids):
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            for sig, wait in ((15, 10.0), (9, 5.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.1)
                if not _alive(pid):
                    break
        self.pids = []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (the daemon's parent is gone, init has not reaped it yet) counts as stopped
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
