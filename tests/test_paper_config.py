"""The paper's protocol as a config (config/barnett2024.yaml), planned on a machine with none of its
checkpoints or data and no internet: exactly the 750 fine-tuning runs, plus the jobs that fetch them."""

import re
import shutil

import yaml
from conftest import REPO, snakemake

PAPER_CONFIG = REPO / "config" / "barnett2024.yaml"


def job_counts(proc) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run, as {rule: count}."""
    table = (proc.stdout + proc.stderr).split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def test_paper_protocol_plans_750_fine_tunes_from_nothing(tmp_path):
    shutil.copy(PAPER_CONFIG, tmp_path / "config.yaml")  # an empty folder: no resources, no cache, no data
    counts = job_counts(snakemake(tmp_path, "-n"))
    assert counts["finetune"] == 750 == 15 * 5 * 10
    # each revision's gate reads the cache (`snakemake prefetch` fills it where the internet is)
    assert counts["pin_checkpoint"] == 15 and counts["verify_checkpoints"] == 1
    assert "prefetch_model" not in counts
    assert counts["fetch_dataset"] + counts["generate_encyclopedia"] == 5
    # a --configfile describes the whole study: none of the embedded toy's datasets or model is added
    cfg = yaml.safe_load(PAPER_CONFIG.read_text())
    assert counts["prepare_data"] == len(cfg["datasets"]) == 5
    assert "pretrain" not in counts


def test_prefetch_target_plans_only_downloads(tmp_path):
    shutil.copy(PAPER_CONFIG, tmp_path / "config.yaml")
    counts = job_counts(snakemake(tmp_path, "-n", "prefetch"))
    assert counts == {"prefetch_model": 1, "fetch_dataset": 4, "prefetch": 1, "total": 6}


def test_paper_protocol_settings():
    cfg = yaml.safe_load(PAPER_CONFIG.read_text())
    (model,) = cfg["models"].values()
    assert model["repo_id"] == "EleutherAI/pythia-2.8b" and model["tokens_per_step"] == 2097152
    steps = [int(r.removeprefix("step")) for r in model["revisions"]]
    assert len(steps) == 15 and steps[0] == 0 and steps[-1] == 143000 and steps == sorted(steps)
    ft = cfg["finetune"]
    assert (ft["lr"], ft["micro_batch"], ft["grad_accum"], ft["patience"], ft["context_length"]) == (
        1e-5,
        10,
        25,
        3,
        256,
    )
    for block in cfg["datasets"].values():
        assert len(block["sizes"]) == 10 and min(block["sizes"]) == 10 and max(block["sizes"]) == 1100


def test_paper_protocol_submits_a_few_dozen_slurm_jobs_with_the_profile():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from submissions import count

    c = count(PAPER_CONFIG, REPO / "profiles" / "slurm")
    assert c["finetune_jobs"] == 750
    # one group per checkpoint (15), one per dataset's analyses (5), and the few data jobs
    assert c["group_jobs"] == 15 + 5
    assert c["submissions"] <= 40
    assert "finetune" not in c["ungrouped_submissions"]
