"""A local stand-in for the Hugging Face hub: enough of its HTTP API for the real huggingface_hub client.

Tests point the real client at ``FakeHub().endpoint`` (``HF_ENDPOINT`` / ``endpoint=``), in a subprocess
(``run_client``), since huggingface_hub reads ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` when it is imported and
the test process is offline. Implemented from huggingface_hub 2.4.0's source (model repos only):

- ``GET /api/models/{repo}[/revision/{rev}]?blobs=true`` (``HfApi.model_info``/``repo_info``, first call of
  ``snapshot_download`` for a branch): ``id``, ``sha``, ``siblings`` (``rfilename``; with ``blobs``:
  ``size``, ``blobId``, ``lfs: {sha256, size, pointerSize}``).
- ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=&expand=`` (``list_repo_tree`` through
  ``utils._pagination``; ``snapshot_download`` lists the commit's tree): ``{type, path, size, oid, lfs: {oid,
  size, pointerSize}}``, plus ``lastCommit`` with expand; pages of ``page_size`` chained by
  ``Link: <...>; rel="next"``.
- ``POST /api/models/{repo}/paths-info/{rev}`` (``get_paths_info``; form fields ``paths``, ``expand``).
- ``GET /api/models/{repo}/refs`` (``list_repo_refs``): ``branches`` (``{name, ref, targetCommit}``),
  empty ``tags``, ``converts``, ``pullRequests``.
- ``HEAD|GET /{repo}/resolve/{rev}/{file}`` (``file_download.get_hf_file_metadata``, ``http_get``):
  ``X-Repo-Commit``, ``ETag`` (git blob sha1), ``Content-Length``. LFS files (``*.safetensors``, ``*.bin``,
  ``*.pt``) answer 302 to a "CDN" on a second port (another origin, so the client stops there as it does for
  the hub's CDN) with ``X-Linked-Etag`` (the sha256, which names the cache blob) and ``X-Linked-Size``; the
  CDN (``/lfs/{sha256}/{file}``) serves the bytes. Files honour ``Range: bytes=N-`` (206 + Content-Range).
- Errors: 404 with ``X-Error-Code`` ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound`` (the last
  with ``X-Repo-Commit``), which ``utils._http.hf_raise_for_status`` maps to the client's exceptions.
- No ``X-Xet-Hash`` / ``Link: rel=xet-auth`` headers and no ``xetHash`` in trees, so the client never takes
  the Xet path (``parse_xet_file_data_from_response``, ``_xet_file_metadata_from_tree_cache``) even with
  hf_xet installed: every byte goes through plain HTTP GETs that tests can log, fail and cut.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

REPO = Path(__file__).resolve().parents[1]
LFS_SUFFIXES = (".safetensors", ".bin", ".pt")
DATE = "2026-01-01T00:00:00.000Z"
# repo ids are "name" or "org/name"; the client quotes revisions and tree paths into one segment each
API = re.compile(
    r"/api/models/(?P<repo>[^/]+(?:/[^/]+)??)"
    r"(?:/(?P<kind>revision|tree|paths-info|refs)(?:/(?P<rev>[^/]+)(?:/(?P<path>.+))?)?)?"
)
RESOLVE = re.compile(r"/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<path>.+)")


@functools.lru_cache(maxsize=256)  # bytes cache their hash, so repeated look-ups of a blob cost nothing
def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@functools.lru_cache(maxsize=256)
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    spec = "version https://git-lfs.github.com/spec/v1"
    return f"{spec}\noid sha256:{sha256(data)}\nsize {len(data)}\n".encode()


@dataclass
class FakeRepo:
    """A model repo: branches point at commits; every commit ever made stays resolvable by its sha."""

    repo_id: str
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> {filename: bytes}

    def set_branch(self, branch: str, files: dict[str, bytes]) -> str:
        """Commit ``files`` as the new head of ``branch``. The sha hashes repo, branch, parent and content,
        so branches serving identical files still have distinct commits (as Pythia's do)."""
        digest = hashlib.sha1(f"{self.repo_id}\0{branch}\0{self.branches.get(branch, '')}".encode())
        for name in sorted(files):
            digest.update(f"{name}\0{git_blob_oid(files[name])}\0".encode())
        commit = digest.hexdigest()
        self.commits[commit], self.branches[branch] = dict(files), commit
        return commit

    def resolve(self, revision: str) -> str | None:
        return self.branches.get(revision) or (revision if revision in self.commits else None)

    def files(self, revision: str) -> dict[str, bytes]:
        return self.commits[self.resolve(revision)]


def file_entry(path: str, data: bytes, commit: str, expand: bool) -> dict:
    entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_oid(data)}
    if path.endswith(LFS_SUFFIXES):  # git stores the pointer; the hub reports the object's size
        pointer = lfs_pointer(data)
        entry["oid"] = git_blob_oid(pointer)
        entry["lfs"] = {"oid": sha256(data), "size": len(data), "pointerSize": len(pointer)}
    if expand:  # the hub gives the last commit touching the file; the head commit is close enough here
        entry["lastCommit"] = {"id": commit, "title": "fakehub commit", "date": DATE}
    return entry


def tree(files: dict[str, bytes], commit: str, prefix: str, recursive: bool, expand: bool) -> list[dict]:
    """Entries under folder ``prefix`` ('' for the root): its children, or all descendants if recursive."""
    out: dict[str, dict] = {}
    for name in sorted(files):
        if prefix and not name.startswith(prefix + "/"):
            continue
        parts = name[len(prefix) + 1 if prefix else 0 :].split("/")
        for i in range(1, len(parts) if recursive else min(2, len(parts))):
            folder = "/".join(filter(None, [prefix, *parts[:i]]))
            oid = hashlib.sha1(f"{commit}\0{folder}".encode()).hexdigest()
            out.setdefault(folder, {"type": "directory", "path": folder, "oid": oid, "size": 0})
        if recursive or len(parts) == 1:
            out[name] = file_entry(name, files[name], commit, expand)
    return [out[p] for p in sorted(out)]


class HubError(Exception):
    def __init__(self, code: str, message: str, commit: str | None = None):
        super().__init__(message)
        self.code, self.commit = code, commit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def log_message(self, *args) -> None:  # the request log is FakeHub.requests
        pass

    def do_HEAD(self) -> None:
        self.server.hub._serve(self)

    do_GET = do_POST = do_HEAD


@dataclass
class _Fault:  # the next `times` requests of `method` (any if None) with `needle` in their path
    needle: str
    value: int  # the status to answer, or the bytes to send before closing
    times: int
    method: str | None = None


class FakeHub:
    """The hub on ``.endpoint`` and its LFS CDN on ``.cdn``, each a ThreadingHTTPServer in a thread."""

    def __init__(self, page_size: int = 1000):
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers), both servers
        self.page_size = page_size
        self._fails: list[_Fault] = []
        self._cuts: list[_Fault] = []
        self._lock = threading.Lock()
        self.home = Path(tempfile.mkdtemp(prefix="fakehub-home-"))  # the clients' HF_HOME
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in range(2)]
        for server in self._servers:
            server.hub, server.daemon_threads = self, True
        self.endpoint, self.cdn = (f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers)

    def __enter__(self) -> FakeHub:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(self.home, ignore_errors=True)

    def add_repo(self, repo_id: str, branches: dict[str, dict[str, bytes]]) -> FakeRepo:
        with self._lock:
            repo = self.repos[repo_id] = FakeRepo(repo_id)
            for branch, files in branches.items():
                repo.set_branch(branch, files)
        return repo

    def set_branch(self, repo_id: str, branch: str, files: dict[str, bytes]) -> str:
        """Move (or create) ``branch`` to a new commit serving ``files``; returns the commit."""
        with self._lock:
            return self.repos[repo_id].set_branch(branch, files)

    def fail_next(self, path_substring: str, status: int = 503, times: int = 1, method: str | None = None):
        """The next ``times`` requests (of ``method``; any if None) whose path contains the substring are
        answered ``status``."""
        with self._lock:
            self._fails.append(_Fault(path_substring, status, times, method))

    def cut_after(self, path_substring: str, nbytes: int, times: int = 1) -> None:
        """The next ``times`` GETs whose path contains the substring announce the full Content-Length,
        send ``nbytes`` of the body and close the connection. LFS bodies come from the CDN, at
        ``/lfs/<sha256>/<file>``."""
        with self._lock:
            self._cuts.append(_Fault(path_substring, nbytes, times, "GET"))

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method in (None, m)]

    def env(self, **extra: str) -> dict[str, str]:
        """``client_env`` for this hub, with ``HF_HOME`` a folder of its own (so the default cache, token and
        registry files never touch ~/.cache/huggingface): for any subprocess, e.g. a Snakemake run."""
        return client_env(HF_ENDPOINT=self.endpoint, HF_HOME=str(self.home), **extra)

    def run_client(self, code: str, env_extra: dict[str, str] | None = None, **kwargs):
        return run_client(code, self.env(**(env_extra or {})), **kwargs)

    def _take(self, faults: list[_Fault], method: str, path: str) -> int | None:
        with self._lock:
            for fault in faults:
                if fault.times > 0 and fault.needle in path and fault.method in (None, method):
                    fault.times -= 1
                    return fault.value
        return None

    def _serve(self, h: _Handler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self._lock:
            self.requests.append((h.command, h.path, dict(h.headers)))
        headers, cut = {}, None
        if (failed := self._take(self._fails, h.command, h.path)) is not None:
            status, data = failed, b'{"error": "injected fault"}'
        else:
            try:
                with self._lock:
                    status, headers, data = self._route(h, body)
            except HubError as err:
                status, data = 404, json.dumps({"error": str(err)}).encode()
                headers = {"X-Error-Code": err.code, "X-Error-Message": str(err)}
                headers.update({"X-Repo-Commit": err.commit} if err.commit else {})
            except Exception as err:  # a bug here: answer (the client would hang otherwise) and say so
                status, data = 500, json.dumps({"error": f"fakehub: {err!r}"}).encode()
                print(f"fakehub: {h.command} {h.path}: {err!r}", file=sys.stderr)
            ranged = re.fullmatch(r"bytes=(\d+)-", h.headers["Range"] or "")
            if status == 200 and "ETag" in headers and ranged:  # a file: resume where the client asks
                start, total = int(ranged[1]), len(data)
                status, data = (206, data[start:]) if start < total else (416, b"")
                headers["Content-Range"] = (
                    f"bytes {start}-{total - 1}/{total}" if start < total else f"bytes */{total}"
                )
            cut = self._take(self._cuts, h.command, h.path) if h.command == "GET" else None
        h.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            h.send_header(key, value)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data if cut is None else data[:cut])
        if cut is not None:
            h.wfile.flush()
            h.close_connection = True  # the client sees the body end early: an httpx2.RemoteProtocolError

    def _route(self, h: _Handler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        url, form = urlsplit(h.path), parse_qs(body.decode())
        query = {k: v[-1] for k, v in {**parse_qs(url.query), **form}.items()}
        if h.server is self._servers[1]:  # the CDN: LFS objects by sha256
            sha, _, name = url.path.removeprefix("/lfs/").partition("/")
            headers = {"ETag": f'"{sha}"', "Content-Disposition": f'attachment; filename="{name}"'}
            for data in (d for r in self.repos.values() for f in r.commits.values() for d in f.values()):
                if sha256(data) == sha:
                    return 200, headers, data
            raise HubError("EntryNotFound", f"no LFS object at {url.path}")
        if url.path == "/api/agent-harnesses":  # huggingface_hub.cli fetches it once a day, even on import
            return _json({"standardEnvVars": [], "harnesses": {}})
        if m := RESOLVE.fullmatch(url.path):
            commit, files = self._revision(unquote(m["repo"]), unquote(m["rev"]))
            if (name := unquote(m["path"])) not in files:
                raise HubError("EntryNotFound", f"{name} not found at {commit}", commit)
            data = files[name]
            headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_oid(data)}"', "Accept-Ranges": "bytes"}
            if not name.endswith(LFS_SUFFIXES):
                return 200, headers, data
            headers["ETag"] = f'"{git_blob_oid(lfs_pointer(data))}"'
            headers["X-Linked-Etag"], headers["X-Linked-Size"] = f'"{sha256(data)}"', str(len(data))
            headers["Location"] = f"{self.cdn}/lfs/{sha256(data)}/{quote(name)}"
            return 302, headers, b""
        if not (m := API.fullmatch(url.path)) or (m["kind"] in (None, "refs") and m["rev"]):
            raise HubError("EntryNotFound", f"fakehub does not serve {h.command} {h.path}")
        repo_id, kind, expand = unquote(m["repo"]), m["kind"], query.get("expand") == "true"
        if kind == "refs":
            branches = self._repo(repo_id).branches.items()
            refs = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in branches]
            return _json({"branches": refs, "tags": [], "converts": [], "pullRequests": []})
        commit, files = self._revision(repo_id, unquote(m["rev"] or "main"))
        if kind in (None, "revision"):
            siblings = []
            for e in (e for e in tree(files, commit, "", True, False) if e["type"] == "file"):
                siblings.append(sibling := {"rfilename": e["path"]})
                if query.get("blobs") == "true":  # siblings spell the LFS sha256 "sha256", trees "oid"
                    sibling.update(size=e["size"], blobId=e["oid"])
                    if lfs := e.get("lfs"):
                        sibling["lfs"] = {
                            "sha256": lfs["oid"],
                            **{k: lfs[k] for k in ("size", "pointerSize")},
                        }
            info = {"id": repo_id, "modelId": repo_id, "sha": commit, "lastModified": DATE}
            return _json({**info, "private": False, "disabled": False, "gated": False, "siblings": siblings})
        if kind == "paths-info":
            wanted = set(form.get("paths", []))
            return _json([e for e in tree(files, commit, "", True, expand) if e["path"] in wanted])
        prefix = unquote(m["path"] or "")
        if prefix and not any(n.startswith(prefix + "/") for n in files):
            raise HubError("EntryNotFound", f"{prefix} is not a folder at {commit}", commit)
        listing = tree(files, commit, prefix, query.get("recursive") == "true", expand)
        start, headers = int(query.get("cursor", 0)), {}
        if start + self.page_size < len(listing):  # paginated as the hub does, by a Link header
            params = urlencode({**query, "cursor": start + self.page_size})
            headers["Link"] = f'<{self.endpoint}{url.path}?{params}>; rel="next"'
        return 200, headers, json.dumps(listing[start : start + self.page_size]).encode()

    def _repo(self, repo_id: str) -> FakeRepo:
        if repo_id not in self.repos:
            raise HubError("RepoNotFound", f"Repository {repo_id} not found")
        return self.repos[repo_id]

    def _revision(self, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]]:
        repo = self._repo(repo_id)
        if (commit := repo.resolve(revision)) is None:
            raise HubError("RevisionNotFound", f"Invalid rev id: {revision}")
        return commit, repo.commits[commit]


def _json(obj) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, json.dumps(obj).encode()


def client_env(**extra: str) -> dict[str, str]:
    """This process's environment, online (HF_HUB_OFFLINE=0), sending no token, importing transferlaw from
    this checkout; then ``extra``."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    return {**env, "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "PYTHONPATH": pythonpath, **extra}


def run_client(code: str, env: dict[str, str] | None = None, *, check: bool = True, timeout: float = 300):
    """Run Python ``code`` in a fresh process with ``env`` (default ``client_env()``)."""
    cmd = [sys.executable, "-c", code]
    proc = subprocess.run(cmd, env=env or client_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        raise AssertionError(f"client failed ({proc.returncode}):\n{output}")
    return proc


def tiny_neox_files(seed: int) -> dict[str, bytes]:
    """The files ``save_pretrained`` writes for a real tiny GPT-NeoX (hidden 16, 1 layer, byte-level BPE vocab
    300): model.safetensors, config.json, generation_config.json, tokenizer files. The weights depend on
    ``seed``, the tokenizer does not (so its files are shared blobs, as across Pythia's branches)."""
    return dict(_tiny_neox_files(seed))


@functools.lru_cache(maxsize=8)
def _tiny_neox_files(seed: int) -> tuple[tuple[str, bytes], ...]:
    import torch
    from transformers import GPTNeoXForCausalLM

    from transferlaw.data.prepare import read_text
    from transferlaw.train.pretrain import build_tokenizer, model_config

    tokenizer = build_tokenizer(read_text(REPO / "resources/datasets/devils_dictionary.txt.xz")[:50_000], 300)
    settings = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    with torch.random.fork_rng(), tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(seed)
        GPTNeoXForCausalLM(model_config({**settings, "context_length": 64}, tokenizer)).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return tuple((p.name, p.read_bytes()) for p in sorted(Path(tmp).iterdir()) if p.is_file())


# -- a cache filled "by hand" ----------------------------------------------------------------------------
def _blob_id(name: str, data: bytes) -> str:
    return sha256(data) if name.endswith(LFS_SUFFIXES) else git_blob_oid(data)


def commit_of(files: dict[str, bytes]) -> str:
    """A commit id for a set of files (what the hub would call it does not matter to a cache)."""
    h = hashlib.sha1()
    for name in sorted(files):
        h.update(name.encode() + _blob_id(name, files[name]).encode())
    return h.hexdigest()


def write_hub_cache(cache_dir: Path, repo_id: str, branches: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """Lay out ``branches`` ({branch: {file: bytes}}) of ``repo_id`` in a Hugging Face cache exactly as
    ``hf download`` does (blobs named by sha256 for LFS files and by git blob id otherwise, snapshot
    symlinks, ``refs/<branch>``), without a server; return branch -> commit."""
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    commits = {}
    for branch, files in branches.items():
        commit = commit_of(files)
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            blob = repo / "blobs" / _blob_id(name, data)
            blob.parent.mkdir(parents=True, exist_ok=True)
            if not blob.exists():
                blob.write_bytes(data)
            link = snap / name
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(blob, link.parent))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / branch).write_text(commit)
        commits[branch] = commit
    return commits


def weight_blob(cache_dir: Path, repo_id: str, commit: str, name: str = "model.safetensors") -> Path:
    """The blob a snapshot's weight file points to (to corrupt it in a test)."""
    return (
        Path(cache_dir) / ("models--" + repo_id.replace("/", "--")) / "snapshots" / commit / name
    ).resolve()
