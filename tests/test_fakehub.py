"""The real huggingface_hub client against the local hub stand-in (tests/fakehub.py).

The client runs in a subprocess (online, HF_ENDPOINT set), the server in this (offline) process. The tests
also pin down what huggingface_hub 2.4 retries and resumes by itself, which the prefetch command builds on.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import urllib.request

import pytest
from fakehub import FakeHub, git_blob_oid, tiny_neox_files

pytestmark = pytest.mark.slow  # the real client in subprocesses; checkpoints built with torch

MiB = 2**20
# what a download may request: nothing else (no Xet token or reconstruction call)
KNOWN = re.compile(
    r"/api/agent-harnesses|/api/models/[^?]+/(revision|tree|paths-info|refs)\b.*"
    r"|/[^/]+/[^/]+/resolve/.+|/lfs/[0-9a-f]{64}/.+"
)


def client(hub: FakeHub, code: str, check: bool = True, **values):
    """Run client ``code`` with ``values`` as globals and the usual imports."""
    head = "import json\nfrom huggingface_hub import HfApi, hf_hub_download, snapshot_download\n"
    return hub.run_client(f"{head}globals().update(json.loads({json.dumps(values)!r}))\n{code}", check=check)


def client_json(hub: FakeHub, code: str, **values):
    """Run client ``code`` that prints one JSON document as its last line; return it."""
    return json.loads(client(hub, code, **values).stdout.strip().splitlines()[-1])


def blob_name(name: str, data: bytes) -> str:
    """The cache names LFS blobs by their sha256 and other files by their git blob sha1 (their ETag)."""
    return hashlib.sha256(data).hexdigest() if name.endswith(".safetensors") else git_blob_oid(data)


DOWNLOAD = """
snapshots = [snapshot_download("org/tiny", revision=r, cache_dir=cache) for r in revs]
# the client checks only sizes; 2.4 can hash a snapshot against the hub's listing on request
check = HfApi().verify_repo_checksums("org/tiny", revision=revs[0], cache_dir=cache)
assert check.checked_count == n_files, check
assert not (check.mismatches or check.missing_paths or check.extra_paths), check
print(json.dumps(snapshots))
"""


def test_snapshot_download_builds_the_hub_cache_and_transformers_loads_it_offline(tmp_path):
    w0, w1 = tiny_neox_files(0), tiny_neox_files(1)
    assert w0["model.safetensors"] != w1["model.safetensors"] and w0["tokenizer.json"] == w1["tokenizer.json"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(w0)
    cache = tmp_path / "cache"
    with FakeHub() as hub:
        repo = hub.add_repo("org/tiny", {"main": w1, "step0": w0, "step1": w0, "step2": w1})
        snapshots = client_json(hub, DOWNLOAD, cache=str(cache), revs=["step0", "step2"], n_files=len(w0))
    folder = cache / "models--org--tiny"
    for rev, files, snapshot in (("step0", w0, snapshots[0]), ("step2", w1, snapshots[1])):
        commit = (folder / "refs" / rev).read_text()
        assert commit == repo.branches[rev] and snapshot == str(folder / "snapshots" / commit)
        assert sorted(p.name for p in (folder / "snapshots" / commit).iterdir()) == sorted(files)
        for name, data in files.items():
            link = folder / "snapshots" / commit / name
            assert link.is_symlink() and link.resolve() == folder / "blobs" / blob_name(name, data)
            assert link.read_bytes() == data
        assert (folder / "trees" / f"{commit}.json").is_file()  # 2.4 caches the commit's tree listing
    blobs = {blob_name(n, d) for files in (w0, w1) for n, d in files.items()}
    assert {p.name for p in (folder / "blobs").iterdir()} == blobs  # tokenizer stored once, no partial file
    # every byte came over plain HTTP (no Xet), each distinct blob fetched once
    assert all(KNOWN.fullmatch(path) for path in hub.paths()), hub.paths()
    assert not any("xet" in json.dumps(headers).lower() for _, _, headers in hub.requests)
    gets = [p for p in hub.paths("GET") if "/resolve/" in p or p.startswith("/lfs/")]
    assert len(gets) == len(blobs)
    weights = sorted(hashlib.sha256(w["model.safetensors"]).hexdigest() for w in (w0, w1))
    assert sorted(p.split("/")[2] for p in gets if p.startswith("/lfs/")) == weights

    # this process is offline (conftest): a pinned commit and a branch name both load from the cache alone
    import torch
    from huggingface_hub import constants
    from safetensors.torch import load
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert constants.HF_HUB_OFFLINE
    for revision, files in ((repo.branches["step0"], w0), ("step2", w1)):
        model = AutoModelForCausalLM.from_pretrained(
            "org/tiny", revision=revision, cache_dir=cache, local_files_only=True
        )
        state = model.state_dict()
        for key, tensor in load(files["model.safetensors"]).items():
            # transformers 5 loads the NeoX checkpoints' embed_out as lm_head
            assert torch.equal(state[key.replace("embed_out", "lm_head")], tensor), key
    tokenizer = AutoTokenizer.from_pretrained(
        "org/tiny", revision="step0", cache_dir=cache, local_files_only=True
    )
    assert len(tokenizer) == model.config.vocab_size == 300


TREES = """
api = HfApi()
out = {"refs": {b.name: b.target_commit for b in api.list_repo_refs("org/tiny").branches}}
for rev in revs:
    out[rev] = {}
    for f in api.list_repo_tree("org/tiny", revision=rev, recursive=True, expand=True):
        is_dir = hasattr(f, "tree_id")
        out[rev][f.path] = "dir" if is_dir else [f.blob_id, f.size, f.lfs and f.lfs.sha256, f.last_commit.oid]
out["top"] = [f.path for f in api.list_repo_tree("org/tiny", revision="step3")]
paths = api.get_paths_info("org/tiny", ["model.safetensors", "extra", "missing.bin"], revision="step3")
out["paths"] = {f.path: f.lfs.sha256 if hasattr(f, "lfs") else "dir" for f in paths}
info = api.model_info("org/tiny", revision="step1", files_metadata=True)
out["info"] = [info.sha, {s.rfilename: [s.size, s.blob_id, s.lfs and s.lfs.sha256] for s in info.siblings}]
out["repo_info"] = api.repo_info("org/tiny", revision="step2").sha
print(json.dumps(out))
"""


def test_tree_refs_and_info_report_lfs_sha256_per_branch():
    w0, w1 = tiny_neox_files(0), tiny_neox_files(1)
    sha0, sha1 = (hashlib.sha256(w["model.safetensors"]).hexdigest() for w in (w0, w1))
    with FakeHub(page_size=2) as hub:  # small pages: the client must follow the Link header
        repo = hub.add_repo("org/tiny", {"main": w1, "step0": w0, "step1": w0, "step2": w1, "step3": w0})
        old = repo.branches["step3"]
        new = hub.set_branch("org/tiny", "step3", {**w1, "extra/notes.txt": b"moved"})
        out = client_json(hub, TREES, revs=["step0", "step1", "step2", "step3", old])
    assert out["refs"] == repo.branches and len(set(repo.branches.values())) == 5  # distinct commits
    assert out["refs"]["step3"] == new != old
    assert (
        repo.files("step3") == repo.files(new) == {**w1, "extra/notes.txt": b"moved"}
        and repo.files(old) == w0
    )
    sha = {rev: out[rev]["model.safetensors"][2] for rev in ("step0", "step1", "step2", "step3", old)}
    assert sha == {"step0": sha0, "step1": sha0, old: sha0, "step2": sha1, "step3": sha1}
    config = w0["config.json"]
    assert out["step0"]["config.json"] == [git_blob_oid(config), len(config), None, repo.branches["step0"]]
    assert out["step0"]["model.safetensors"][1] == len(w0["model.safetensors"])  # the object's size
    assert set(out["step3"]) == set(w1) | {"extra", "extra/notes.txt"} and out["step3"]["extra"] == "dir"
    assert "extra" in out["top"] and "extra/notes.txt" not in out["top"]
    assert out["paths"] == {"model.safetensors": sha1, "extra": "dir"}
    assert out["info"][0] == repo.branches["step1"]
    weights = w0["model.safetensors"]
    assert out["info"][1]["model.safetensors"] == [len(weights), out["step1"]["model.safetensors"][0], sha0]
    assert out["repo_info"] == repo.branches["step2"]
    assert any("cursor=" in p for p in hub.paths("GET"))


ERRORS = """
calls = {
    "snapshot": lambda: snapshot_download("org/m", revision="step9", cache_dir=cache),
    "download": lambda: hf_hub_download("org/m", "config.json", revision="step9", cache_dir=cache),
    "tree": lambda: list(HfApi().list_repo_tree("org/m", revision="step9")),
    "file": lambda: hf_hub_download("org/m", "nope.bin", cache_dir=cache),
    "repo": lambda: HfApi().model_info("org/none"),
    "b503": lambda: snapshot_download("org/b", cache_dir=cache),
    "c503": lambda: snapshot_download("org/c", cache_dir=cache),
    "d503": lambda: hf_hub_download("org/d", "model.safetensors", cache_dir=cache),
    "e503": lambda: HfApi().list_repo_refs("org/e"),
    "f429": lambda: hf_hub_download("org/f", "model.safetensors", cache_dir=cache),
    "a503": lambda: hf_hub_download("org/a", "model.safetensors", cache_dir=cache),
    "g503": lambda: snapshot_download("org/g", cache_dir=cache, max_workers=1),
    "g_offline": lambda: snapshot_download("org/g", cache_dir=cache, local_files_only=True),
}
out = {}
for key, call in calls.items():
    try:
        call()
        out[key] = ["ok"]
    except Exception as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        status = getattr(getattr(cause, "response", None), "status_code", None)
        out[key] = [type(err).__name__, type(cause).__name__, status]
print(json.dumps(out))
"""


def test_errors_and_what_the_client_retries_by_itself(tmp_path):
    """huggingface_hub 2.4 retries HEAD /resolve and the tree listing on 5xx, a file body GET on 429 only, and
    neither model_info (hence snapshot_download of a branch) nor list_repo_refs."""
    files = {k: {"config.json": b"{}", "model.safetensors": k.encode() * 1000} for k in "abcdefgm"}
    lfs = {k: "/lfs/" + hashlib.sha256(f["model.safetensors"]).hexdigest() for k, f in files.items()}
    with FakeHub() as hub:
        repos = {k: hub.add_repo(f"org/{k}", {"main": f}) for k, f in files.items()}
        hub.fail_next("/org/a/resolve/", 503, method="HEAD")
        hub.fail_next("/api/models/org/b/revision/", 503)
        hub.fail_next("/api/models/org/c/tree/", 503)
        hub.fail_next(lfs["d"], 503, method="GET")
        hub.fail_next("/api/models/org/e/refs", 503)
        hub.fail_next(lfs["f"], 429, method="GET")
        hub.fail_next(lfs["g"], 503, method="GET")
        out = client_json(hub, ERRORS, cache=str(tmp_path))
    assert out.pop("snapshot")[0] == out.pop("download")[0] == out.pop("tree")[0] == "RevisionNotFoundError"
    assert out.pop("file")[0] == "RemoteEntryNotFoundError"
    assert out.pop("repo")[0] == "RepositoryNotFoundError"
    # the client remembers the missing file under the commit the 404 named
    assert (tmp_path / "models--org--m" / ".no_exist" / repos["m"].branches["main"] / "nope.bin").exists()

    def count(needle: str) -> int:
        return sum(needle in p for p in hub.paths())

    assert out == {
        "a503": ["ok"],  # HEAD 503, HEAD again at once (302 to the CDN), GET
        "b503": ["LocalEntryNotFoundError", "HfHubHTTPError", 503],  # not retried; an EntryNotFoundError!
        "c503": ["ok"],  # tree listing retried by http_backoff after 1 s
        "d503": ["HfHubHTTPError", "HTTPStatusError", 503],  # body GET: not retried
        "e503": ["HfHubHTTPError", "HTTPStatusError", 503],
        "f429": ["ok"],  # body GET retried on 408/429
        "g503": ["HfHubHTTPError", "HTTPStatusError", 503],
        # the ref was written before the files: only the cached tree listing tells the snapshot is incomplete
        "g_offline": ["IncompleteSnapshotError", "IncompleteSnapshotError", None],
    }
    assert [count("/org/a/resolve/"), count(lfs["a"])] == [2, 1]
    assert [count("/org/b/"), count("/api/models/org/c/tree/"), count(lfs["d"]), count(lfs["f"])] == [
        1,
        2,
        1,
        2,
    ]
    assert not list(tmp_path.rglob("*.incomplete"))
    assert not (tmp_path / "models--org--b" / "refs").exists()  # a failed lookup leaves no ref behind
    for key in "dg":  # a failed body download does: refs/main names a commit whose snapshot lacks the weights
        commit = (tmp_path / f"models--org--{key}" / "refs" / "main").read_text()
        assert commit == repos[key].branches["main"]
        assert not (tmp_path / f"models--org--{key}" / "snapshots" / commit / "model.safetensors").exists()


def test_allow_patterns_limit_what_is_fetched(tmp_path):
    files = {"config.json": b"{}", "model.safetensors": b"w" * 100, "pytorch_model.bin": b"b" * 100}
    with FakeHub() as hub:
        hub.add_repo("org/m", {"main": files})
        code = "print(json.dumps(snapshot_download('org/m', allow_patterns=patterns, cache_dir=c)))"
        snapshot = client_json(hub, code, c=str(tmp_path), patterns=["*.json", "*.safetensors"])
    assert sorted(p.name for p in (tmp_path / snapshot).iterdir()) == ["config.json", "model.safetensors"]
    assert not any("pytorch_model.bin" in p for p in hub.paths())


def test_a_cut_download_resumes_with_a_range_request_within_the_call(tmp_path):
    """http_get resumes from the bytes it has written, which arrive in DOWNLOAD_CHUNK_SIZE (10 MiB) chunks;
    once its 5 retries are spent the partial file is deleted, so the next call starts again from byte 0."""
    big, small = random.Random(0).randbytes(24 * MiB), random.Random(1).randbytes(12 * MiB)
    code = "print(json.dumps(hf_hub_download('org/m', name, cache_dir=cache)))"
    with FakeHub() as hub:
        hub.add_repo("org/m", {"main": {"big.bin": big, "small.bin": small}})
        hub.cut_after("big.bin", 15 * MiB)
        path = client_json(hub, code, name="big.bin", cache=str(tmp_path))
        assert open(path, "rb").read() == big
        gets = [h for m, p, h in hub.requests if m == "GET" and p.endswith("/big.bin")]
        assert [h.get("Range") for h in gets] == [None, f"bytes={10 * MiB}-"]
        cdn_url = hub.cdn + next(p for p in hub.paths("GET") if p.endswith("/big.bin"))
        with urllib.request.urlopen(
            urllib.request.Request(cdn_url, headers={"Range": "bytes=7-"})
        ) as response:
            assert (
                response.status == 206
                and response.headers["Content-Range"] == f"bytes 7-{len(big) - 1}/{len(big)}"
            )
            assert response.read() == big[7:]  # the server honours the range (the client also copes without)

        hub.cut_after("small.bin", 1000, times=6)  # no whole chunk arrives: 6 attempts, then it gives up
        proc = client(hub, code, check=False, name="small.bin", cache=str(tmp_path))
        assert proc.returncode != 0 and "httpx2.RemoteProtocolError" in proc.stderr.splitlines()[-1]
        assert not list(tmp_path.rglob("*.incomplete"))
        path = client_json(hub, code, name="small.bin", cache=str(tmp_path))
        assert open(path, "rb").read() == small
        ranges = [h.get("Range") for m, p, h in hub.requests if m == "GET" and p.endswith("/small.bin")]
        assert ranges == [None] * 7


def test_a_commit_revision_skips_the_branch_lookup(tmp_path):
    files = {"config.json": b"{}", "model.safetensors": b"w" * 100}
    with FakeHub() as hub:
        repo = hub.add_repo("org/m", {"main": files, "step0": files})
        code = "print(json.dumps(snapshot_download('org/m', revision=rev, cache_dir=cache)))"
        snapshot = client_json(hub, code, rev=repo.branches["step0"], cache=str(tmp_path))
    assert snapshot.endswith(repo.branches["step0"]) and not any("/revision/" in p for p in hub.paths())
    assert not (tmp_path / "models--org--m" / "refs").exists()  # no branch name, no ref
