"""`snakemake prefetch` against a local stand-in for the hub (tests/fakehub.py), with the real
huggingface_hub client: revisions fetched by commit with their hub hashes, identical revisions refused
before a byte of weights is downloaded, transient failures retried, a cut download resumed; then the study
runs on what was fetched, and a revision missing from the cache is fetched by its own gate."""

import hashlib
import json
import shutil

import pytest
import yaml
from conftest import make_study_dir, snakemake
from fakehub import FakeHub, tiny_neox_files, weight_blob

from transferlaw.schema import read_records

REPO_ID = "EleutherAI/pythia-tiny"
CONFIG = {
    "models": {
        "pythia-tiny": {
            "source": "hub",
            "repo_id": REPO_ID,
            "cache_dir": "hf",
            "tokens_per_step": 2048,
            "revisions": ["step0", "step8", "step64"],
        }
    },
    "finetune": {
        "unit": "sequences",
        "context_length": 32,
        "lr": 1.0e-2,
        "micro_batch": 8,
        "grad_accum": 1,
        "patience": 2,
        "max_epochs": 60,
        "eval_sequences": 8,
    },
    "datasets": {
        "devils-dictionary": {"path": "resources/datasets/devils_dictionary.txt.xz", "sizes": [4, 8, 16]}
    },
}
MANIFEST = "results/checkpoints/pythia-tiny/manifest.json"

pytestmark = pytest.mark.slow  # Snakemake and the real client against the stand-in hub


@pytest.fixture()
def study(tmp_path):
    workdir = make_study_dir(tmp_path / "study")
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return workdir


def lfs_gets(hub):
    return [p for p in hub.paths("GET") if "/lfs/" in p]


def test_prefetch_fetches_by_commit_and_the_study_fetches_what_is_missing(study):
    with FakeHub() as hub:
        repo = hub.add_repo(REPO_ID, {"step0": tiny_neox_files(0), "step8": tiny_neox_files(1)})
        commit64 = repo.set_branch("step64", tiny_neox_files(2))
        hub.fail_next("/refs", status=503)  # the client does not retry this one: prefetch must
        hub.cut_after("/lfs/", 20_000)  # a weight download cut mid-file is fetched again
        snakemake(study, "prefetch", "--cores", "1", env=hub.env())
        assert len(lfs_gets(hub)) == len(set(lfs_gets(hub))) + 1  # the cut file was requested again
        assert hub.paths("GET").count(f"/api/models/{REPO_ID}/refs") == 2  # the 503 was retried
        # (the client resumes a cut file from its last whole 10 MiB, within its own retries: see
        # tests/test_fakehub.py; this tiny file restarts from byte 0)
        manifest = json.loads((study / MANIFEST).read_text())
        assert manifest["source"] == "hub"
        assert manifest["revisions"]["step64"]["commit"] == commit64
        hub_sha = manifest["revisions"]["step64"]["files"]["model.safetensors"]["sha256"]
        assert hub_sha == hashlib.sha256(tiny_neox_files(2)["model.safetensors"]).hexdigest()
        # refs are written as `hf download` writes them, so the cache serves hand tools too
        refs = study / "hf" / f"models--{REPO_ID.replace('/', '--')}" / "refs"
        assert (refs / "step64").read_text() == commit64
        # a revision lost from the cache is fetched again by its own gate when the hub can be reached (a
        # one-shot online study); the others are read from the cache
        weight_blob(study / "hf", REPO_ID, commit64).unlink()
        (refs / "step64").unlink()
        shutil.rmtree(refs.parent / "snapshots" / commit64)
        fetched = len(lfs_gets(hub))
        snakemake(study, "--cores", "2", "results/fits/devils-dictionary.json", env=hub.env())
        assert len(lfs_gets(hub)) == fetched + 1 and (refs / "step64").read_text() == commit64
    runs = read_records(str(study / "results/runs/devils-dictionary.parquet"))
    assert set(runs.loc[runs["revision"] == "step64", "revision_sha"]) == {commit64}
    assert len(runs) == 9


def test_identical_revisions_are_refused_before_downloading(study):
    with FakeHub() as hub:
        hub.add_repo(
            REPO_ID, {"step0": tiny_neox_files(0), "step8": tiny_neox_files(0), "step64": tiny_neox_files(2)}
        )
        proc = snakemake(study, "prefetch", "--cores", "1", env=hub.env(), check=False)
        assert lfs_gets(hub) == []  # not one weight file was fetched
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "step0, step8 (identical weights)" in out and "allow_identical" in out
    assert not (study / MANIFEST).exists()


def test_a_revision_the_hub_does_not_have_is_named(study):
    with FakeHub() as hub:
        hub.add_repo(REPO_ID, {"step0": tiny_neox_files(0), "step8": tiny_neox_files(1)})
        proc = snakemake(study, "prefetch", "--cores", "1", env=hub.env(), check=False)
    assert proc.returncode != 0
    assert "step64 are not branches or tags on the hub" in proc.stdout + proc.stderr
