"""A study of a hub model, end to end through the real Snakemake, on a Hugging Face cache filled "by hand"
(laid out as `hf download` lays it out) with tiny random GPT-NeoX checkpoints, offline as on a compute node:
the gate runs before any fine-tuning job, refuses bad revisions, and its re-runs cost no finished run."""

import json

import pytest
import yaml
from conftest import build_once, copy_study, make_study_dir, planned_outputs, snakemake
from fakehub import tiny_neox_files, weight_blob, write_hub_cache

from transferlaw.schema import read_records

REPO_ID = "EleutherAI/pythia-tiny"
STEPS = {"step0": 0, "step8": 1, "step64": 2}  # revision -> seed of its weights
CONFIG = {
    "study": "hub test study",
    "models": {
        "pythia-tiny": {
            "source": "hub",
            "repo_id": REPO_ID,
            "cache_dir": "hf",  # relative to the study's folder, so a copy of the folder is self-contained
            "tokens_per_step": 2048,
            "revisions": list(STEPS),
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
        "threads": 1,
    },
    "datasets": {
        "devils-dictionary": {"path": "resources/datasets/devils_dictionary.txt.xz", "sizes": [4, 8, 16]}
    },
}
TARGET = "results/fits/devils-dictionary.json"

pytestmark = pytest.mark.slow  # every test runs Snakemake on checkpoints built with torch


def hub_study_dir(path, branches=None, **model_over):
    workdir = make_study_dir(path)
    commits = write_hub_cache(
        workdir / "hf",
        REPO_ID,
        branches or {rev: tiny_neox_files(seed) for rev, seed in STEPS.items()},
    )
    cfg = yaml.safe_load(yaml.safe_dump(CONFIG))
    cfg["models"]["pythia-tiny"].update(model_over)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return workdir, commits


@pytest.fixture(scope="session")
def hub_study(tmp_path_factory):
    """The hub model's study, built once per test session (for every pytest-xdist worker), and the commit of
    each revision in its cache."""

    def build(folder):
        workdir, commits = hub_study_dir(folder)
        snakemake(workdir, "--cores", "2", TARGET)
        (folder.parent / "hub-study.commits.json").write_text(json.dumps(commits))

    workdir = build_once(tmp_path_factory, "hub-study", build)
    return workdir, json.loads((workdir.parent / "hub-study.commits.json").read_text())


def test_records_carry_the_pinned_commit(hub_study):
    workdir, commits = hub_study
    runs = read_records(str(workdir / "results/runs/devils-dictionary.parquet"))
    assert len(runs) == len(STEPS) * 3
    assert dict(zip(runs["revision"], runs["revision_sha"], strict=True)) == commits
    assert (runs["pretrain_tokens"] == runs["pretrain_step"] * 2048).all()
    assert (workdir / TARGET).is_file()
    assert planned_outputs(workdir, TARGET) == []


def edit(workdir, change):
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    change(cfg["models"]["pythia-tiny"])
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


@pytest.fixture()
def study_copy(hub_study, tmp_path):
    return copy_study(hub_study[0], tmp_path / "copy")


def finetune_outputs(outs):
    return sorted(o for o in outs if o.startswith("results/runs/") and o.count("/") > 3)


def test_a_refused_revision_costs_no_finished_run(study_copy):
    """A revision that duplicates another stops the study before any fine-tuning, naming both; once it is
    dropped again there is nothing to redo: its gate wrote no pin, and no other pin was rewritten."""
    write_hub_cache(study_copy / "hf", REPO_ID, {"step1": tiny_neox_files(STEPS["step0"])})
    edit(study_copy, lambda m: m["revisions"].append("step1"))
    proc = snakemake(study_copy, "--cores", "2", TARGET, check=False)
    assert proc.returncode != 0
    assert "step0, step1 (identical weights)" in proc.stdout + proc.stderr
    assert not (study_copy / "results/runs/devils-dictionary/pythia-tiny/step1").exists()
    edit(study_copy, lambda m: m["revisions"].remove("step1"))
    assert planned_outputs(study_copy, TARGET) == []


def test_adding_a_revision_adds_only_its_runs(study_copy):
    write_hub_cache(study_copy / "hf", REPO_ID, {"step512": tiny_neox_files(7)})
    edit(study_copy, lambda m: m["revisions"].append("step512"))
    outs = planned_outputs(study_copy, TARGET)
    assert finetune_outputs(outs) == sorted(
        f"results/runs/devils-dictionary/pythia-tiny/step512/f{s}.full.s0.parquet" for s in (4, 8, 16)
    )


def test_truncated_checkpoint_stops_the_study_before_fine_tuning(tmp_path):
    workdir, commits = hub_study_dir(tmp_path / "study")
    blob = weight_blob(workdir / "hf", REPO_ID, commits["step8"])
    blob.write_bytes(blob.read_bytes()[: len(blob.read_bytes()) // 2])
    proc = snakemake(workdir, "--cores", "2", TARGET, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "step8" in out and "model.safetensors is incomplete or corrupt" in out
    assert not (workdir / "results/runs").exists() and not (workdir / "logs/finetune").exists()


def test_offline_missing_revision_fails_at_once_saying_to_prefetch(tmp_path):
    workdir, _ = hub_study_dir(tmp_path / "study")
    edit(workdir, lambda m: m["revisions"].append("step143000"))
    proc = snakemake(workdir, "--cores", "2", TARGET, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "step143000 not in the cache" in out and "run `snakemake prefetch`" in out
    assert not (workdir / "results/runs").exists()


def test_a_moved_branch_is_adopted_only_on_request(study_copy):
    """A branch moved in the cache (a later `snakemake prefetch` fetched it) is not followed: the pin holds
    and no run is redone. Re-pinning the revision (`--forcerun` its pin, as the README says) adopts the new
    commit, and only that revision's runs are redone."""
    moved = write_hub_cache(study_copy / "hf", REPO_ID, {"step8": tiny_neox_files(9)})["step8"]
    assert planned_outputs(study_copy, TARGET) == []
    snakemake(study_copy, "--cores", "2", "prefetch", "--forcerun", "prefetch_model")
    assert planned_outputs(study_copy, TARGET) == []  # re-fetching kept the pinned commit, and reruns nothing
    runs = read_records(str(study_copy / "results/runs/devils-dictionary.parquet"))
    assert moved not in set(runs["revision_sha"])
    before = runs.set_index(["revision", "finetune_size"])["wall_seconds"]
    repin = ("--forcerun", "results/checkpoints/pythia-tiny/step8.json")
    outs = planned_outputs(study_copy, TARGET, *repin)
    assert finetune_outputs(outs) == sorted(
        f"results/runs/devils-dictionary/pythia-tiny/step8/f{s}.full.s0.parquet" for s in (4, 8, 16)
    )
    snakemake(study_copy, "--cores", "2", TARGET, *repin)
    after = read_records(str(study_copy / "results/runs/devils-dictionary.parquet"))
    assert set(after.loc[after["revision"] == "step8", "revision_sha"]) == {moved}
    kept = after[after["revision"] != "step8"].set_index(["revision", "finetune_size"])["wall_seconds"]
    assert kept.equals(before.drop("step8", level="revision"))  # the others' runs are the same records
    assert planned_outputs(study_copy, TARGET) == []
