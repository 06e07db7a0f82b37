"""The integrity gate on hub-layout caches of tiny random GPT-NeoX checkpoints built here: identical,
missing, incomplete, truncated and changed revisions are refused, naming them; good ones pinned and load."""

import json

import pytest
from fakehub import commit_of, tiny_neox_files, weight_blob, write_hub_cache

from transferlaw.train.checkpoints import (
    CheckpointError,
    cache_hashes,
    check_pin,
    identical_groups,
    load_pinned,
    pin,
    pin_revision,
    prefetch,
    scan_cache,
    stale_records,
    verify,
    verify_pins,
)

REPO_ID = "EleutherAI/pythia-tiny"


@pytest.fixture(scope="module")
def files():
    """Three distinct tiny checkpoints (seeds 0, 1, 2)."""
    return [tiny_neox_files(seed) for seed in range(3)]


def cache_with(tmp_path, branches):
    cache = tmp_path / "hf"
    return cache, write_hub_cache(cache, REPO_ID, branches)


def test_good_revisions_are_verified_pinned_and_load(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0], "step8": files[1], "step64": files[2]})
    manifest = scan_cache(REPO_ID, ["step0", "step8", "step64"], cache)
    # files from the hub are stored under their sha256: the cache itself says what each should hash to
    assert all(f["sha256"] for e in manifest["revisions"].values() for f in e["files"].values())
    verified = verify(manifest)
    assert {r: e["commit"] for r, e in verified["revisions"].items()} == commits
    assert verified["revisions"]["step8"]["format"] == "safetensors"
    p = pin(verified, "tiny", "step8")
    assert p["commit"] == commits["step8"] and p["revision"] == "step8"
    model = load_pinned(p)
    assert sum(t.numel() for t in model.parameters()) > 0
    # the pinned commit is loaded, not the branch: moving the branch later changes nothing for the pin
    (cache / f"models--{REPO_ID.replace('/', '--')}" / "refs" / "step8").write_text(commits["step0"])
    again = load_pinned(p)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert (a == b).all()


def test_identical_revisions_are_refused_naming_them(tmp_path, files):
    cache, _ = cache_with(
        tmp_path, {"step0": files[0], "step1": files[0], "step2": files[0], "step8": files[1]}
    )
    manifest = scan_cache(REPO_ID, ["step0", "step1", "step2", "step8"], cache)
    with pytest.raises(CheckpointError, match=r"step0, step1, step2 \(identical weights\)") as err:
        verify(manifest, key="models.pythia")
    assert "models.pythia.allow_identical" in str(err.value) and "step8" not in str(err.value)
    # accepted explicitly, they pass (and the verdict records it)
    verified = verify(manifest, allow_identical=[["step0", "step1", "step2"]])
    assert verified["accepted_identical"] == [["step0", "step1", "step2"]]
    # a subset accepted does not accept the whole group
    with pytest.raises(CheckpointError, match="step0, step1, step2"):
        verify(manifest, allow_identical=[["step0", "step1"]])


def test_one_revision_gate_refuses_a_duplicate_of_another_and_the_verdict_checks_them_all(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0], "step1": files[0], "step8": files[1]})
    source = {"model": "tiny", "source": "hub", "repo_id": REPO_ID, "cache_dir": str(cache), "key": "m.t"}
    # what the cache says the other revisions serve is read from the blob names: nothing is hashed
    others = cache_hashes(REPO_ID, cache, ["step0", "step8", "step512"])
    assert set(others) == {"step0", "step8"}  # step512 is not in the cache: nothing to compare with
    assert all(len(f["sha256"]) == 64 for e in others.values() for f in e["files"].values())
    with pytest.raises(CheckpointError, match=r"step0, step1 \(identical weights\)") as err:
        pin_revision(source, "step1", others=others, offline=True)
    assert "m.t.allow_identical" in str(err.value) and "step8" not in str(err.value)
    accepted = pin_revision(
        source, "step1", others=others, allow_identical=[["step0", "step1"]], offline=True
    )
    assert accepted["commit"] == commits["step1"] and accepted["revision"] == "step1"
    # a revision unlike the others passes whatever they are
    step8 = pin_revision(
        source, "step8", others=cache_hashes(REPO_ID, cache, ["step0", "step1"]), offline=True
    )
    assert step8["commit"] == commits["step8"]
    # the model-wide verdict, from the pins alone, refuses the pair unless the config accepts it
    pins = {"step0": pin_revision(source, "step0", offline=True), "step1": accepted, "step8": step8}
    model = {**source, "revisions": ["step0", "step1", "step8"], "allow_identical": []}
    with pytest.raises(CheckpointError, match=r"step0, step1 \(identical weights\)"):
        verify_pins(model, pins)
    verdict = verify_pins({**model, "allow_identical": [["step0", "step1"]]}, pins)
    assert verdict["accepted_identical"] == [["step0", "step1"]] and verdict["model"] == "tiny"
    assert {r: e["commit"] for r, e in verdict["revisions"].items()} == commits
    with pytest.raises(CheckpointError, match="step64 have no pin"):
        verify_pins({**model, "revisions": ["step0", "step64"]}, pins)


def test_a_shared_shard_is_a_duplicate_too(files):
    a, b = {"sha256": "a" * 64, "size": 1}, {"sha256": "b" * 64, "size": 1}
    c = {"sha256": "c" * 64, "size": 1}
    entries = {
        "step50000": {"files": {"model-00001.safetensors": a, "model-00002.safetensors": b}},
        "step143000": {"files": {"model-00001.safetensors": a, "model-00002.safetensors": c}},
    }
    ((revs, why),) = identical_groups(entries)
    assert revs == ["step50000", "step143000"] and "aaaaaaaaaaaa" in why


def test_truncated_weight_file_is_refused(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0], "step8": files[1]})
    blob = weight_blob(cache, REPO_ID, commits["step8"])
    blob.write_bytes(blob.read_bytes()[:-100])
    with pytest.raises(
        CheckpointError, match=r"step8 \(commit [0-9a-f]{12}\): model.safetensors .*truncated"
    ):
        verify(scan_cache(REPO_ID, ["step0", "step8"], cache))


def test_changed_file_no_longer_matches_its_manifest(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0], "step8": files[1]})
    manifest = verify(scan_cache(REPO_ID, ["step0", "step8"], cache))  # hashes recorded
    blob = weight_blob(cache, REPO_ID, commits["step0"])
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # same size, same header: only the hash can tell
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="step0: model.safetensors does not match its manifest"):
        verify(manifest)


def test_missing_and_incomplete_revisions(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0], "step8": files[1]})
    with pytest.raises(CheckpointError, match=r"step64, step128 not in the cache .*snakemake prefetch"):
        scan_cache(REPO_ID, ["step0", "step64", "step8", "step128"], cache)
    snap = cache / f"models--{REPO_ID.replace('/', '--')}" / "snapshots" / commits["step8"]
    (snap / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"step8 .*incomplete, no config.json"):
        verify(scan_cache(REPO_ID, ["step0", "step8"], cache))


def test_missing_shard_of_a_sharded_checkpoint(tmp_path, files):
    shard = files[0]["model.safetensors"]
    sharded = {k: v for k, v in files[0].items() if k != "model.safetensors"}
    sharded["model-00001-of-00002.safetensors"] = shard
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    sharded["model.safetensors.index.json"] = json.dumps(index).encode()
    cache, _ = cache_with(tmp_path, {"step0": sharded, "step8": files[1]})
    with pytest.raises(CheckpointError, match="shard.s. model-00002-of-00002.safetensors .* missing"):
        verify(scan_cache(REPO_ID, ["step0", "step8"], cache))


def test_offline_prefetch_describes_the_cache_or_says_how_to_fetch(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0]})
    manifest = prefetch(REPO_ID, ["step0"], cache, offline=True)
    assert manifest["source"] == "cache" and manifest["revisions"]["step0"]["commit"] == commits["step0"]
    with pytest.raises(CheckpointError, match=r"step1000 not in the cache .* run `snakemake prefetch`"):
        prefetch(REPO_ID, ["step0", "step1000"], cache, offline=True)


def test_pin_check_catches_a_file_that_changed_after_the_gate(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0], "step8": files[1]})
    p = pin(verify(scan_cache(REPO_ID, ["step0", "step8"], cache)), "tiny", "step0")
    check_pin(p)
    blob = weight_blob(cache, REPO_ID, commits["step0"])
    blob.write_bytes(blob.read_bytes()[:10])
    with pytest.raises(CheckpointError, match="changed since the integrity check"):
        check_pin(p)
    gone = {**p, "commit": commit_of({"x": b"y"})}
    with pytest.raises(CheckpointError, match="snakemake prefetch"):
        check_pin(gone)


def test_a_pinned_revision_keeps_its_commit_when_its_branch_moves(tmp_path, files):
    cache, commits = cache_with(tmp_path, {"step0": files[0], "step8": files[1]})
    moved = write_hub_cache(cache, REPO_ID, {"step8": files[2]})["step8"]  # the branch was "fixed" later
    assert moved != commits["step8"]
    manifest = prefetch(REPO_ID, ["step0", "step8"], cache, offline=True, pinned={"step8": commits["step8"]})
    assert manifest["revisions"]["step8"]["commit"] == commits["step8"]
    assert scan_cache(REPO_ID, ["step8"], cache)["revisions"]["step8"]["commit"] == moved  # unpinned: the ref


def test_stale_records_are_named():
    import pandas as pd

    records = pd.DataFrame(
        {"model": ["m", "m", "m"], "revision": ["step0", "step0", "step8"], "revision_sha": ["a", "a", "b"]}
    )
    assert stale_records(records, {("m", "step0"): "a", ("m", "step8"): "b"}) == []
    (line,) = stale_records(records, {("m", "step0"): "a", ("m", "step8"): "c"})
    assert line == "m@step8: runs made with commit b, but step8 is now pinned to c"
