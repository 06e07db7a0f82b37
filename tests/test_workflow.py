"""The study end to end through the real Snakemake, exact reruns, and bad input on a finished study."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, assert_nothing_planned, edit_config, executed_outputs, planned_outputs, snakemake

from transferlaw.schema import RECORD_COLUMNS, read_records

DATASETS = ["devils-dictionary", "chloroplast-dna"]


def test_end_to_end_writes_valid_records_and_fits(small_study):
    for ds in DATASETS:
        runs = read_records(str(small_study / f"results/runs/{ds}.parquet"))
        assert list(runs.columns) == list(RECORD_COLUMNS)
        assert len(runs) == 3 * 3  # checkpoints x sizes
        assert set(runs["pretrain_step"]) == {0, 16, 256}
        assert set(runs["finetune_size"]) == {4, 8, 16}
        assert (runs["finetune_tokens"] == runs["finetune_sequences"] * runs["context_length"]).all()
        assert (runs["flops"] == 6.0 * runs["n_params"] * runs["finetune_tokens"] * runs["epochs"]).all()
        fit = json.loads((small_study / f"results/fits/{ds}.json").read_text())
        assert fit["dataset"] == ds and fit["n_points"] >= 1
        assert set(fit["params"]) >= {"A", "alpha", "G", "beta", "E"}
        assert (small_study / f"logs/finetune/{ds}/tiny-neox/step0/f4.full.s0.log").read_text().count(
            "epochs"
        ) > 0


def test_study_shows_transfer_on_english(small_study):
    runs = read_records(str(small_study / "results/runs/devils-dictionary.parquet"))
    by_step = runs.groupby("pretrain_step")["eval_loss"].mean()
    assert by_step[256] < by_step[0] - 0.3  # pre-training on English helps on English prose
    by_size = runs.groupby("finetune_size")["eval_loss"].mean()
    assert by_size[16] < by_size[4]  # more fine-tuning data helps


def test_nothing_to_do_after_a_complete_run(small_study):
    assert planned_outputs(small_study) == []


def test_editing_one_dataset_reruns_only_its_jobs(study_copy):
    edit_config(study_copy, lambda c: c["datasets"]["chloroplast-dna"].update(finetune={"lr": 0.005}))
    outs = planned_outputs(study_copy)
    runs = [o for o in outs if o.startswith("results/runs/") and o.count("/") > 2]
    assert len(runs) == 9 and all("/chloroplast-dna/" in o for o in runs)
    assert not any("devils-dictionary" in o for o in outs)
    assert "results/fits/chloroplast-dna.json" in outs
    assert not any("models" in o or "tokenizer" in o for o in outs)


def test_adding_a_checkpoint_adds_only_its_jobs(study_copy):
    edit_config(study_copy, lambda c: c["models"]["tiny-neox"]["revisions"].append("step64"))
    outs = planned_outputs(study_copy)
    runs = sorted(o for o in outs if o.startswith("results/runs/") and o.count("/") > 2)
    expected = sorted(
        f"results/runs/{ds}/tiny-neox/step64/f{s}.full.s0.parquet" for ds in DATASETS for s in (4, 8, 16)
    )
    assert runs == expected
    assert not any("/models/" in o or "results/data/" in o for o in outs)
    # the new revision gets its pin; no other pin is rewritten (every finished run depends on its pin)
    pins = sorted(o for o in outs if o.startswith("results/checkpoints/"))
    assert pins == [
        "results/checkpoints/tiny-neox/step64.json",
        "results/checkpoints/tiny-neox/verified.json",
    ]


def test_partial_reruns_leave_a_plan_the_next_run_carries_out_exactly(study_copy):
    """Stages re-run on their own (a new revision's gate, a new size's data check, one dataset's aggregate
    and fit), as a user's targeted runs or an interrupted study leave them: the next plan holds every job the
    study still needs, the run does exactly that plan, and nothing is left after it."""

    def edit(c):
        c["models"]["tiny-neox"]["revisions"].append("step64")
        c["datasets"]["devils-dictionary"]["sizes"].append(12)

    edit_config(study_copy, edit)
    for target in (
        "results/checkpoints/tiny-neox/step64.json",  # the gate of the new revision
        "results/data/devils-dictionary.f12.ok",  # the data check of the new size
        "results/fits/chloroplast-dna.json",  # one dataset's aggregate and fit, with its new runs
    ):
        snakemake(study_copy, "--cores", "2", target)
    planned = planned_outputs(study_copy)
    wanted = {
        f"results/runs/devils-dictionary/tiny-neox/{r}/f12.full.s0.parquet"
        for r in ("step0", "step16", "step256")
    }
    wanted |= {
        f"results/runs/devils-dictionary/tiny-neox/step64/f{s}.full.s0.parquet" for s in (4, 8, 12, 16)
    }
    assert {o for o in planned if o.startswith("results/runs/") and o.count("/") > 2} == wanted
    assert {"results/fits/devils-dictionary.json", "results/summary.md"} <= set(planned)
    proc = snakemake(study_copy, "--cores", "2")
    assert sorted(executed_outputs(proc)) == sorted(planned)
    assert_nothing_planned(study_copy)


def test_no_input_of_the_study_is_ancient():
    """`ancient()` inputs hide work from Snakemake's scheduler: when an ancient input's producer re-runs,
    every job downstream of it is left out of the plan unless something else reaches it
    (snakemake/snakemake#4166), and a resume exits 0 with work undone (issue 22). The workflow is built so
    that no input needs it: pins depend on their own revision only, a download's pin is no parameter."""
    sources = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]
    call = re.compile(r"(?<!`)\bancient\(")  # a call, not the word in `quotes`
    lines = [(p.name, n, line) for p in sources for n, line in enumerate(p.read_text().splitlines(), 1)]
    uses = [f"{name}:{n}" for name, n, line in lines if call.search(line.split("#")[0])]
    assert uses == []


def fresh_checkout(dest: Path, default_profile: bool = True) -> Path:
    """The workflow's code copied as a fresh clone writes it: every file newer than any result."""
    for part in ("Snakefile", "workflow", "envs", "config", "profiles"):
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, dest / part, copy_function=shutil.copyfile)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / part, dest / part)
    if not default_profile:
        shutil.rmtree(dest / "profiles" / "default")
    return dest / "Snakefile"


def test_a_fresh_checkout_of_the_code_reruns_no_finished_job(study_copy, tmp_path):
    """A finished study run with a fresh clone of the code (a new checkout path, a `git pull` that rewrites
    a script) redoes none of its jobs: the workflow profile (profiles/default) leaves out Snakemake's
    default trigger on a script newer than its outputs, which would redo the tokenizer and every fine-tune
    after it. Only the summary is redone: its description is read from the checkout, by path."""
    clone = fresh_checkout(tmp_path / "clone")
    planned = planned_outputs(study_copy, snakefile=clone)
    assert set(planned) <= {"results/summary.md", "results/report.rst", "results/study_check.txt"}, planned
    # the control: without the profile, Snakemake's default would redo the whole study
    bare = fresh_checkout(tmp_path / "bare", default_profile=False)
    redone = planned_outputs(study_copy, snakefile=bare)
    assert "results/tokenizer/tokenizer.json" in redone
    assert any(o.startswith("results/runs/devils-dictionary/") for o in redone)


def test_changing_resources_reruns_nothing(study_copy):
    def edit(c):
        c["finetune"].update(threads=2, mem_mb=3000)
        c["pretrain"]["threads"] = 2

    edit_config(study_copy, edit)
    assert planned_outputs(study_copy) == []


def test_adding_a_size_adds_only_its_jobs(study_copy):
    edit_config(study_copy, lambda c: c["datasets"]["devils-dictionary"]["sizes"].append(12))
    outs = planned_outputs(study_copy)
    runs = sorted(o for o in outs if o.startswith("results/runs/") and o.count("/") > 2)
    assert runs == sorted(
        f"results/runs/devils-dictionary/tiny-neox/{r}/f12.full.s0.parquet"
        for r in ("step0", "step16", "step256")
    )


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(folder)).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        (
            lambda c: c["datasets"]["devils-dictionary"].update(path="resources/none.txt"),
            "datasets.devils-dictionary.path: file not found",
        ),
        (lambda c: c["models"]["tiny-neox"]["revisions"].append("step5"), "step5 not saved"),
        (lambda c: c["finetune"].update(patience="three"), "patience"),
        (lambda c: c["datasets"]["chloroplast-dna"].update(sizes=[4, 100000]), "chloroplast-dna"),
        (lambda c: c["fit"].update(form="chinchilla"), "fit.form: unknown law form 'chinchilla'"),
        (lambda c: c.update(datasets={}), "datasets: the study has no datasets"),
        (lambda c: c["finetune"].update(device="gpu"), "device"),
    ],
)
def test_bad_input_stops_before_any_job_and_keeps_results(study_copy, edit, culprit):
    before = digest(study_copy / "results")
    edit_config(study_copy, edit)
    proc = snakemake(study_copy, "--cores", "2", check=False)
    assert proc.returncode != 0
    assert culprit in proc.stdout + proc.stderr
    assert digest(study_copy / "results") == before


def test_exact_size_check_runs_before_fine_tuning(study_copy):
    """A size that passes the parse-time byte bound but not the exact token count fails in the cheap
    in-process check, and no fine-tune job of it is started."""
    manifest = json.loads((study_copy / "results/data/devils-dictionary.json").read_text())
    too_big = manifest["train_pool_sequences"] + 1
    edit_config(study_copy, lambda c: c["datasets"]["devils-dictionary"]["sizes"].append(too_big))
    proc = snakemake(study_copy, "--cores", "2", check=False)
    assert proc.returncode != 0
    assert f"largest size {too_big} sequences" in proc.stdout + proc.stderr
    assert not list((study_copy / "results/runs/devils-dictionary").rglob(f"f{too_big}.*parquet"))
    assert np.isfinite(
        read_records(str(study_copy / "results/runs/devils-dictionary.parquet"))["eval_loss"]
    ).all()


def test_slurm_profile_parses_and_plans_the_study(study_copy):
    """The cluster profile loads (executor plugin, options) and plans the same jobs as a local run."""
    profile = Path(__file__).resolve().parents[1] / "profiles" / "slurm"
    assert yaml.safe_load((profile / "config.yaml").read_text())["executor"] == "slurm"
    edit_config(study_copy, lambda c: c["models"]["tiny-neox"]["revisions"].append("step64"))
    local = planned_outputs(study_copy)
    assert local  # the new checkpoint's jobs
    assert sorted(planned_outputs(study_copy, "--profile", str(profile))) == sorted(local)


def test_outputs_follow_the_umask(small_study):
    """Teammates on a shared project folder can read the results: files get 0666 less the umask (and
    folders 0777 less it), not a temporary file's private 0600."""
    from transferlaw.io import umask

    mask = umask()
    files = [f for f in (small_study / "results").rglob("*") if f.is_file() and not f.is_symlink()]
    assert len(files) > 50
    wrong = [
        f"{f.relative_to(small_study)} {oct(f.stat().st_mode & 0o777)}"
        for f in files
        if f.stat().st_mode & 0o777 != 0o666 & ~mask
    ]
    assert wrong == []
    folders = [d for d in (small_study / "results").rglob("*") if d.is_dir()]
    assert all(d.stat().st_mode & 0o777 == 0o777 & ~mask for d in folders)


def test_atomic_writes_follow_the_umask(tmp_path):
    import os

    from transferlaw.io import write_text

    old = os.umask(0o002)
    try:
        write_text("x", tmp_path / "shared.txt")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o664


def test_fits_and_intervals_say_what_they_cannot_tell_through_the_workflow(small_study):
    """Diagnostics flow through the real workflow: every fit lists the parameters at the bound, every
    bootstrap parameter says whether it is identified, and the summary and the report's landing page show
    "not identified" or a one-sided limit instead of the number where it is not."""
    from transferlaw.law.diagnostics import describe

    summary = (small_study / "results/summary.md").read_text()
    landing = (small_study / "results/report.rst").read_text()
    assert "csv-table" in landing and "G (transfer gap)" in landing
    for ds in DATASETS:
        fit = json.loads((small_study / f"results/fits/{ds}.json").read_text())
        assert isinstance(fit["diagnostics"]["at_bound"], list)
        assert {"residual_rms", "starts_at_optimum", "flat"} <= set(fit["diagnostics"])
        boot = json.loads((small_study / f"results/bootstrap/{ds}.json").read_text())
        for name, entry in boot["params"].items():
            assert isinstance(entry["identified"], bool)
            assert entry["identified"] or entry["why"]
            assert describe(name, entry) in summary and describe(name, entry) in landing
        if not boot["params"]["G"]["identified"]:
            assert f"- {ds}: " in summary  # what the runs would need to measure it


def test_advice_for_every_dataset_reaches_the_summary(small_study):
    """results/advice/<dataset>.csv holds analysis.advice_runs cells of the study's grid, in run order, and
    the summary and the landing page show the first of them."""
    import pandas as pd

    summary = (small_study / "results/summary.md").read_text()
    landing = (small_study / "results/report.rst").read_text()
    assert "## Next runs (advice" in summary and "Next runs (advice)" in landing
    for ds in DATASETS:
        advice = pd.read_csv(small_study / f"results/advice/{ds}.csv")
        assert len(advice) == 10 and list(advice["rank"]) == list(range(1, 11))
        # the configured checkpoints, or the pretrained model's other saved steps (a config change away)
        assert set(advice["revision"]) <= {f"step{s}" for s in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)}
        assert set(advice["finetune_size"]) <= {4, 8, 16} and advice["config_change"].notna().all()
        assert f"- {ds}" in summary and advice["message"].iloc[0] in summary
