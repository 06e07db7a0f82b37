"""Checkpoints that exist today: a suite whose early branches serve the final-era weights, as 86 of
pythia-2.8b's 154 do (EleutherAI/pythia issue 205), served by a stand-in for the hub (tests/fakehub.py, with
the real huggingface_hub client) and laid out in a cache filled by hand. A refusal lists the nearest
revisions that pass the gate; a rule for the revisions is resolved around the duplicates by `snakemake
prefetch`, written into the manifest, and the study is planned from it; re-running prefetch changes nothing,
and a changed rule re-resolves without rewriting any pin."""

import json
import shutil
import struct

import pytest
import yaml
from conftest import make_study_dir, planned_outputs, snakemake
from fakehub import FakeHub, tiny_neox_files, write_hub_cache

from transferlaw.config import planned_revisions, resolve
from transferlaw.train.checkpoints import (
    CheckpointError,
    cache_hashes,
    nearest_message,
    passing_revisions,
    pin_revision,
    prefetch,
)
from transferlaw.train.revisions import far_targets, nearest
from transferlaw.train.revisions import resolve as resolve_rule

REPO_ID = "EleutherAI/pythia-tiny"
#: like pythia-2.8b's: the early grid and `main` serve one final-era checkpoint (seed 0); the last branches
#: serve weights of their own (seeds 1-5), the final step's differing from main's, as on pythia-2.8b
EARLY = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 3000]
OWN = {4000: 1, 5000: 2, 6000: 3, 7000: 4, 8000: 5}
RULE = {"log_spaced": {"count": 3, "first": 64, "last": 8000}}  # targets 64, 716, 8000
RESOLVED = ["step4000", "step5000", "step8000"]
MODEL = "pythia-tiny"
MANIFEST = f"results/checkpoints/{MODEL}/manifest.json"
TARGET = "results/fits/devils-dictionary.json"
CONFIG = {
    "models": {
        MODEL: {
            "source": "hub",
            "repo_id": REPO_ID,
            "cache_dir": "hf",
            "tokens_per_step": 2048,
            "revisions": RULE,
        }
    },
    "finetune": {
        "unit": "sequences",
        "context_length": 32,
        "micro_batch": 8,
        "grad_accum": 1,
        "eval_sequences": 8,
    },
    "datasets": {
        "devils-dictionary": {"path": "resources/datasets/devils_dictionary.txt.xz", "sizes": [4, 8, 16]}
    },
}


def checkpoint(n: int) -> dict[str, bytes]:
    """A distinct real checkpoint per ``n``: one tiny GPT-NeoX (building one costs seconds) whose last
    weight, a float32 at the end of its safetensors file, is set to ``n``; it loads like any other."""
    files = tiny_neox_files(0)
    weights = files["model.safetensors"]
    return {**files, "model.safetensors": weights[:-4] + struct.pack("<f", float(n))}


def branches() -> dict[str, dict[str, bytes]]:
    out = {f"step{s}": checkpoint(0) for s in EARLY}
    out.update({f"step{s}": checkpoint(seed) for s, seed in OWN.items()})
    return {**out, "main": checkpoint(0)}


def study_dir(path, revisions=RULE):
    workdir = make_study_dir(path)
    cfg = json.loads(json.dumps(CONFIG))
    cfg["models"][MODEL]["revisions"] = revisions
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return workdir


def lfs_gets(hub):
    return [p for p in hub.paths("GET") if "/lfs/" in p]


def pins_planned(outs):
    return sorted(o.rsplit("/", 1)[1] for o in outs if o.startswith(f"results/checkpoints/{MODEL}/step"))


def runs_planned(outs):
    return sorted({o.split("/")[4] for o in outs if o.startswith(f"results/runs/devils-dictionary/{MODEL}/")})


@pytest.fixture(scope="module")
def hub():
    with FakeHub() as hub:
        hub.add_repo(REPO_ID, branches())
        yield hub


@pytest.fixture(scope="module")
def resolved(hub, tmp_path_factory):
    """A study whose rule `snakemake prefetch` resolved on the hub, and whose gates then ran offline."""
    workdir = study_dir(tmp_path_factory.mktemp("rule") / "study")
    snakemake(workdir, "prefetch", "--cores", "1", env=hub.env())
    snakemake(workdir, "--cores", "1", f"results/checkpoints/{MODEL}/verified.json")
    return workdir


@pytest.mark.slow  # hub-layout checkpoints built with torch
def test_a_refusal_lists_the_nearest_revisions_that_pass(hub, tmp_path):
    """What `snakemake prefetch` says (tests/test_prefetch.py checks that its refusal reaches the user),
    run by prefetch itself in a process of its own: the client reads the hub's address when imported."""
    before, revisions = len(lfs_gets(hub)), ["step64", "step512", "step8000"]
    code = (
        "from transferlaw.train.checkpoints import CheckpointError, prefetch\n"
        "try:\n"
        f"    prefetch({REPO_ID!r}, {revisions!r}, {str(tmp_path / 'hf')!r}, key='models.m')\n"
        "except CheckpointError as err:\n"
        "    print(err)\n"
        "else:\n"
        "    raise SystemExit('not refused')\n"
    )
    out = hub.run_client(code).stdout
    assert len(lfs_gets(hub)) == before  # refused before a byte of weights was fetched
    assert "step64, step512 (identical weights)" in out
    assert "among the 19 step branches on the hub (5 serve weights of their own)" in out
    # for each refused revision, the nearest that pass, leaving out those already chosen (step8000)
    assert "  step64: below none; above step4000, step5000, step6000" in out
    assert "  step512: below none; above step4000, step5000, step6000" in out
    assert "models.m.revisions: {log_spaced: {count: 3, first: 64, last: 8000}}" in out


@pytest.mark.slow  # hub-layout checkpoints built with torch
def test_a_rule_is_resolved_around_the_duplicates_and_the_study_is_planned_from_it(resolved):
    manifest = json.loads((resolved / MANIFEST).read_text())
    assert manifest["rule"] == RULE
    assert [r["revision"] for r in manifest["resolution"]] == RESOLVED
    assert [r["target"] for r in manifest["resolution"]] == [64, 716, 8000]
    assert sorted(manifest["revisions"]) == RESOLVED
    log = (resolved / f"logs/checkpoints/{MODEL}.prefetch.log").read_text()
    assert "5 of the 19 step branches on the hub pass" in log and "step     716 -> step5000" in log
    # the gates ran for exactly the resolved revisions, and the study plans their runs and nothing else
    verdict = json.loads((resolved / f"results/checkpoints/{MODEL}/verified.json").read_text())
    assert sorted(verdict["revisions"]) == RESOLVED
    outs = planned_outputs(resolved, TARGET)
    assert runs_planned(outs) == RESOLVED and pins_planned(outs) == []


@pytest.mark.slow  # hub-layout checkpoints built with torch
def test_resolution_is_stable_and_a_new_rule_rewrites_no_pin(hub, resolved, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(resolved, workdir, symlinks=True)
    assert planned_outputs(workdir, "prefetch") == []  # re-running prefetch plans nothing
    pins = {r: workdir / f"results/checkpoints/{MODEL}/{r}.json" for r in RESOLVED}
    stamps = {r: p.stat().st_mtime_ns for r, p in pins.items()}
    # the hub fixes step512: resolved afresh, target 64 would now take it, but the resolution is kept
    hub.set_branch(REPO_ID, "step512", checkpoint(6))
    snakemake(workdir, "prefetch", "--cores", "1", "--forcerun", "prefetch_model", env=hub.env())
    manifest = json.loads((workdir / MANIFEST).read_text())
    assert [r["revision"] for r in manifest["resolution"]] == RESOLVED
    # a new rule is resolved again: the revisions that have a pin keep it, and only the new one is added
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["models"][MODEL]["revisions"] = {"log_spaced": {**RULE["log_spaced"], "count": 4}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert planned_revisions(resolve(cfg), MODEL, workdir / MANIFEST) is None  # until prefetch has run
    snakemake(workdir, "prefetch", "--cores", "1", env=hub.env())
    outs = planned_outputs(workdir, TARGET)
    assert pins_planned(outs) == ["step512.json"] and runs_planned(outs) == sorted(["step512", *RESOLVED])
    assert {r: p.stat().st_mtime_ns for r, p in pins.items()} == stamps


@pytest.mark.slow  # hub-layout checkpoints built with torch
def test_offline_a_rule_is_resolved_from_the_cache_s_own_hashes(tmp_path):
    cache = tmp_path / "hf"
    write_hub_cache(cache, REPO_ID, branches())
    manifest = prefetch(REPO_ID, RULE, cache, offline=True)
    assert [r["revision"] for r in manifest["resolution"]] == RESOLVED and manifest["source"] == "cache"
    # an earlier resolution of the same rule is kept, whatever the cache holds now
    write_hub_cache(cache, REPO_ID, {"step512": checkpoint(6)})
    assert (
        prefetch(REPO_ID, RULE, cache, offline=True, previous=manifest)["resolution"]
        == manifest["resolution"]
    )
    fresh = prefetch(REPO_ID, RULE, cache, offline=True)["resolution"]  # target 64 now takes step512
    assert [r["revision"] for r in fresh] == ["step512", "step4000", "step8000"]
    # the gate of a refused revision lists the nearest ones the cache holds that pass
    source = {"model": MODEL, "source": "hub", "repo_id": REPO_ID, "cache_dir": str(cache), "key": "m.t"}
    others = cache_hashes(REPO_ID, cache, ["step64", "step4000"])
    with pytest.raises(CheckpointError, match="step64, step1000 .identical weights.") as err:
        pin_revision(source, "step1000", others=others, offline=True)
    assert "  step1000: below step512; above step5000, step6000, step7000" in str(err.value)
    # too few pass within the bounds: named, with what passes
    with pytest.raises(
        CheckpointError, match=r"only 2 revision\(s\) between step 1 and step 4000 pass the gate"
    ):
        prefetch(REPO_ID, {"log_spaced": {"count": 3, "first": 1, "last": 4000}}, cache, offline=True)


# pythia-2.8b as issue 205 reports it: 76 step branches serve main's weights, 10 a second blob, 68 their own
PYTHIA = [0] + [2**k for k in range(10)] + list(range(1000, 143_001, 1000))
MAIN_BLOB = [0, *[2**k for k in range(10)], *range(1000, 53_001, 1000), 55000, 60000, 65000, 70000, 80000]
MAIN_BLOB += [90000, 100000, 103000, 110000, 120000, 130000, 140000]
SECOND_BLOB = [54000, 56000, 57000, 58000, 59000, 61000, 62000, 63000, 64000, 143000]


def test_pythia_2_8b_as_reported_passes_only_late_branches_and_a_rule_says_how_far_it_moved():
    def sha(step):
        return "a" * 64 if step in MAIN_BLOB else "b" * 64 if step in SECOND_BLOB else f"{step:064x}"

    listed = {f"step{s}": {"files": {"model.safetensors": {"sha256": sha(s)}}} for s in PYTHIA}
    passing = passing_revisions(listed)
    assert len(MAIN_BLOB) == 76 and len(passing) == 68
    assert passing[0] == "step66000" and passing[-1] == "step142000" and "step70000" not in passing
    rule = {"log_spaced": {"count": 15, "first": 128, "last": 143000}}
    rows = resolve_rule(rule, passing)
    assert [r["revision"] for r in rows][-2:] == ["step87000", "step142000"]
    assert len(far_targets(rule, rows)) == 11  # the grid asked for from 128 cannot be had
    assert nearest("step1000", passing) == ([], ["step66000", "step67000", "step68000"])
    assert nearest("step143000", passing) == (["step142000", "step141000", "step139000"], [])
    message = nearest_message(["step1000", "step143000"], listed, ["step66000"], "models.p", "on the hub")
    assert "among the 154 step branches on the hub (68 serve weights of their own)" in message
    assert "  step1000: below none; above step67000, step68000, step69000" in message
