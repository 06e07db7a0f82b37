"""Light workflow jobs that cost their work, not their imports.

A figure, a table or the summary is a Snakemake job of its own, and each job is a new Python process:
importing pandas, matplotlib, scipy and numba and loading the estimator's compiled kernels takes 1.5-2.5 s of
CPU, more than most of these jobs' own work (the small test study makes 40 of them; the embedded study, 100).
So a light job's script starts with::

    from transferlaw.warm import run_warm
    run_warm(snakemake, __file__)  # the rest of this script runs in a warm process (transferlaw.warm)

and hands itself to a long-lived **warm process** on the same machine, which has imported that stack once
(``PRELOAD``) and forks a child per job. The child takes the job's working directory, environment, umask,
``sys.path``, standard streams (passed over the socket) and its ``snakemake`` object, runs the script from
its top, and reports its exit status, which the job exits with: to Snakemake, the job ran as before (its
own process, its log, its exit status, its outputs written atomically by itself). A job whose process is
killed takes its child with it (the child watches the connection and exits when it closes).

The warm process is private to the user, this exact code and interpreter, and the environment variables
that change what an import does (``ENV_PREFIXES``): its socket lives in the fine-tuning workers' folder
(:func:`slot_dir`), named by a hash of those. It exits after ``TRANSFERLAW_WORKER_IDLE`` seconds (default
120) without a job. ``TRANSFERLAW_WARM=0`` turns it off; inside a Slurm allocation it is off (a process
started by one job step would die with that step), and any failure to reach it runs the job in its own
process, as without it.

The fine-tuning worker (:mod:`transferlaw.train.worker`) shares the folder and the socket helpers here. This
module imports only the standard library: every light job imports it before anything else.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import importlib
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: what the light jobs import, imported once by the warm process (names, not imports: this module is the
#: foundation's and stays importable without them)
PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "snakemake.io",
    "snakemake.iocontainers",
    "snakemake.logging",
    "transferlaw.law.adaptive",
    "transferlaw.law.allocate",
    "transferlaw.law.bootstrap",
    "transferlaw.law.compare",
    "transferlaw.law.crossval",
    "transferlaw.law.fit",
    "transferlaw.law.noise",
    "transferlaw.law.transfer",
    "transferlaw.report.plots",
    "transferlaw.report.study",
    "transferlaw.report.summary",
    "transferlaw.report.tables",
)
#: environment variables that change what an import does: a warm process serves only jobs whose values of
#: these equal its own
ENV_PREFIXES = ("PYTHON", "NUMBA_", "MPL", "MATPLOTLIB", "OMP_", "OPENBLAS_", "MKL_", "LD_", "TRANSFERLAW_")
#: seconds a warm process or a fine-tuning worker waits for a job before it exits
IDLE_SECONDS = float(os.environ.get("TRANSFERLAW_WORKER_IDLE", "120"))
START_SECONDS = 120.0  # the warm process imports the stack before it listens: seconds on a busy machine
#: set in a warm process's child (and so in what it starts): the script is already where it runs
CHILD_MARKER = "TRANSFERLAW_WARM_CHILD"


# ----------------------------------------------------------------------------------------------------
# where warm processes and workers live, and how a job talks to them
# ----------------------------------------------------------------------------------------------------
def fingerprint() -> str:
    """This code and this allocation: the interpreter, every module of the package (path and mtime), and the
    Slurm job and GPUs the process may use. Workers are shared only by identical fingerprints."""
    package = Path(__file__).resolve().parent
    parts = [sys.executable, os.environ.get("SLURM_JOB_ID", ""), os.environ.get("CUDA_VISIBLE_DEVICES", "")]
    for path in sorted(package.rglob("*.py")):
        parts.append(f"{path}:{path.stat().st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def slot_dir() -> Path:
    """The folder of this code's workers and warm processes, private to the user."""
    base = Path(os.environ.get("TRANSFERLAW_WORKER_DIR") or tempfile.gettempdir())
    folder = base / f"transferlaw-worker-{os.getuid()}" / fingerprint()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.parent.stat().st_uid != os.getuid():
        raise OSError(f"{folder.parent} belongs to another user")
    folder.parent.chmod(0o700)
    return folder


def send(sock: socket.socket, obj: Any) -> None:
    sock.sendall(json.dumps(obj).encode() + b"\n")


def receive(sock: socket.socket) -> Any:
    """One JSON line, or None if the other end closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


@contextlib.contextmanager
def short_address(path: Path) -> Iterator[str]:
    """A name for ``path`` that fits a Unix socket address (108 bytes): through an open handle on its folder
    (``/proc/self/fd/N/name``, on Linux) when the path itself is longer."""
    if len(os.fsencode(path)) < 100 or not Path("/proc/self/fd").is_dir():
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect(path: Path) -> socket.socket | None:
    """A connection to the socket at ``path``, or None where nothing listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with short_address(path) as address:
            sock.connect(address)
        return sock
    except OSError:
        sock.close()
        return None


def listen(path: Path, backlog: int) -> socket.socket:
    """A socket listening at ``path``, readable by the user alone (raises EADDRINUSE where one listens)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with short_address(path) as address:
        listener.bind(address)
    path.chmod(0o600)
    listener.listen(backlog)
    return listener


def remove_socket(path: Path, inode: int) -> None:
    """Remove the socket file at ``path`` if it is still the one a server listened at (``inode``): a server
    that exits must not take a newer server's socket with it, or the next job starts yet another one."""
    with contextlib.suppress(OSError):
        if path.is_socket() and path.stat().st_ino == inode:
            path.unlink()


def say(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)


# ----------------------------------------------------------------------------------------------------
# the job's side
# ----------------------------------------------------------------------------------------------------
def served() -> bool:
    """Whether this process is a warm process's child running a light job's script."""
    return bool(os.environ.get(CHILD_MARKER))


def _environment_key() -> str:
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIXES))
    return hashlib.sha1(json.dumps(env).encode()).hexdigest()[:12]


def _enabled() -> bool:
    return os.environ.get("TRANSFERLAW_WARM", "1") != "0" and not os.environ.get("SLURM_JOB_ID")


def _warm_socket() -> socket.socket:
    """A connection to this code's warm process, started (under a lock, so once) if none listens."""
    folder = slot_dir()
    path = folder / f"warm-{_environment_key()}.sock"
    if (sock := connect(path)) is not None:
        return sock
    with open(folder / "warm.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (sock := connect(path)) is not None:  # another job started it while this one waited
            return sock
        cmd = [sys.executable, "-m", "transferlaw.warm", str(path), str(IDLE_SECONDS)]
        return start_server(cmd, dict(os.environ), path, "the warm process", START_SECONDS)


def start_server(cmd: list[str], env: dict[str, str], path: Path, what: str, seconds: float) -> socket.socket:
    """Start ``cmd``, a process that listens at ``path``, in a session of its own (its output appended to
    ``path``'s ``.log``), and connect to it; OSError naming ``what`` if it exits first or does not listen
    within ``seconds``."""
    path.unlink(missing_ok=True)
    log = path.with_suffix(".log")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (sock := connect(path)) is not None:
            return sock
        if proc.poll() is not None:
            raise OSError(f"{what} exited at start (code {proc.returncode}); see {log}")
        time.sleep(0.05)
    proc.kill()
    raise OSError(f"{what} did not start within {seconds:.0f} s; see {log}")


def run_warm(snakemake: Any, script: str) -> None:
    """Run the rest of the Snakemake script ``script`` (its ``__file__``) in a warm process and exit with its
    status; return at once (the script goes on here) inside the warm process, where it is off, or where the
    warm process cannot be reached."""
    if served() or not _enabled():
        return
    try:
        sock = _warm_socket()
    except OSError as err:
        print(f"transferlaw.warm: running in this process ({err})", file=sys.stderr)
        return
    request = {
        "script": str(Path(script).resolve()),
        "snakemake": pickle.dumps(snakemake, protocol=4).hex(),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "argv": sys.argv,
        "path": sys.path,
        "umask": _umask(),
    }
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with sock:
        try:
            data = json.dumps(request).encode() + b"\n"
            socket.send_fds(sock, [data[:1]], _streams())  # the job's standard streams go with its first byte
            sock.sendall(data[1:])
        except OSError as err:  # nothing ran yet
            print(f"transferlaw.warm: running in this process ({err})", file=sys.stderr)
            return
        try:
            reply = receive(sock)
        except OSError:
            reply = None
    if reply is None:
        reply = {"exit": 1, "error": "the warm process's child ended before it reported (killed?)"}
    if reply.get("error"):
        print(f"transferlaw.warm: {reply['error']}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(reply["exit"])


def _streams() -> list[int]:
    """The job's standard input, output and error; /dev/null for any it does not have open."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------------------------------
# the warm process
# ----------------------------------------------------------------------------------------------------
def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The job's request and its three standard streams (sent with the request's first byte)."""
    data, fds, _flags, _addr = socket.recv_fds(conn, 1, 3)
    if not data or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise EOFError("the job closed the connection before its request")
    while not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            for fd in fds:
                os.close(fd)
            raise EOFError("the job closed the connection mid-request")
        data += chunk
    return json.loads(data), fds


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)  # sys.exit("message") prints the message and exits 1, as Python does
    return 1


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the job (streams, directory, environment, umask, path), run its script
    from the top, report its exit status. Never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv[:] = request["argv"]
        sys.path[:] = request["path"]

        def watch() -> None:  # the job is gone (killed, interrupted): so is its child
            with contextlib.suppress(OSError):
                conn.recv(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
        os.environ[CHILD_MARKER] = "1"  # never hand a served script on again
        snakemake = pickle.loads(bytes.fromhex(request["snakemake"]))
        # run as the job's own process would: argv as it is, the script as __main__
        script = request["script"]
        code_object = compile(Path(script).read_bytes(), script, "exec")
        exec(
            code_object,
            {"__name__": "__main__", "__file__": script, "__builtins__": builtins, "snakemake": snakemake},
        )
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(BaseException):
            send(conn, {"exit": code})
        os._exit(code)


def serve(path: str | Path, idle: float = IDLE_SECONDS) -> None:
    """Import ``PRELOAD``, then fork a child per job connecting to the Unix socket ``path``, until ``idle``
    seconds pass with neither a new job nor a running one."""
    path = Path(path)
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as err:  # an extra not installed: the jobs that need it import it themselves
            say(f"not preloaded: {name} ({err})")
    listener = listen(path, 64)
    mine = path.stat().st_ino  # the socket file this process listens at: at exit, it removes that one only
    say(f"warm process {os.getpid()} serving {path}")
    children: set[int] = set()
    why = "an error (see above)"
    try:
        closing = False
        while True:
            polling = bool(children)  # children run: wake each second to reap them, and do not count it idle
            wait = 0.0 if closing else 1.0 if polling else idle
            readable = select.select([listener], [], [], wait)[0]
            while children:  # reap finished children
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                children.discard(pid)
            if not readable:
                if closing:
                    break
                if polling:  # not a whole idle period
                    continue
                # idle: first take the socket's name away, then serve what connected before that, so that
                # no job that reached this process is dropped
                why, closing = f"idle for {idle:.0f} s", True
                remove_socket(path, mine)
                continue
            conn, _ = listener.accept()
            try:
                request, fds = _read_request(conn)
            except (OSError, EOFError, ValueError) as err:
                say(f"dropped a job: {err}")
                conn.close()
                continue
            say(f"job {request['script']} in {request['cwd']}")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                _child(conn, request, fds)
            children.add(pid)
            conn.close()
            for fd in fds:
                os.close(fd)
    finally:
        listener.close()
        remove_socket(path, mine)
        say(f"warm process {os.getpid()} exits: {why}")


def main(argv: list[str]) -> int:
    try:
        serve(argv[0], float(argv[1]) if len(argv) > 1 else IDLE_SECONDS)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:  # another warm process took this socket first: it serves
            return 0
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
