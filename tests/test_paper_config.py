"""The paper's protocol as a config (config/barnett2024.yaml), planned on a machine with none of its
checkpoints or data and no internet: exactly the 750 fine-tuning runs, plus the jobs that fetch them. Its
checkpoint grid is derived here from the paper's own evidence (Table 2's laws, Pythia's branch list). The
same protocol on Pythia-1.4B (config/barnett2024-pythia-1.4b.yaml) gives its grid as a rule, which
`snakemake prefetch` resolves against a stand-in for the hub before the study can be planned."""

import json
import math
import re
import shutil

import pytest
import yaml
from conftest import REPO, executed_outputs, snakemake
from fakehub import FakeHub
from synthetic import TABLE2

from transferlaw.cli import main as transferlaw
from transferlaw.config import resolve, without_resources
from transferlaw.law.forms import get_form
from transferlaw.plan import kind_line, kinds, make_plan, time_problems
from transferlaw.train.revisions import resolve as resolve_rule

PAPER_CONFIG = REPO / "config" / "barnett2024.yaml"
PYTHIA_14B_CONFIG = REPO / "config" / "barnett2024-pythia-1.4b.yaml"
PROFILE = REPO / "profiles" / "slurm"
FT_GROUP = "ft_{model}_{revision}"

#: Pythia's 154 checkpoint branches (Biderman et al. 2023): step0, 1, 2, 4, ..., 512, every 1000 to 143000
PYTHIA_STEPS = [0] + [2**k for k in range(10)] + list(range(1000, 143_001, 1000))
#: a uniform guess over Pythia's tokenizer: 50,277 tokens (50,254 BPE merges' tokens and 23 special ones).
#: Its embedding has 50,304 rows, padded for speed; the 27 extra never occur as targets, so a guess over
#: them is not the best uniform one. ln 50,277 is also the stricter bound (by 0.0005 nats; no step moves).
UNIFORM_NATS = math.log(50_277)


def table2_loss(step: int, size: int) -> dict[str, float]:
    """Table 2's laws as fitted (eq. 2, the paper's eq. 12 objective) at a checkpoint: p = step + 1, the
    paper's appendix A shift, and f the fine-tune size."""
    law = get_form("mikami")
    return {d: float(law.predict(params, step + 1, size)) for d, params in TABLE2.items()}


def test_paper_grid_predicts_less_than_a_uniform_guess_on_every_dataset():
    """No point of the paper's fit can have had a loss above a uniform guess over the vocabulary; under
    Table 2's laws, every configured checkpoint must predict less, on every dataset, at every size."""
    cfg = yaml.safe_load(PAPER_CONFIG.read_text())
    (model,) = cfg["models"].values()
    sizes = sorted({s for block in cfg["datasets"].values() for s in block["sizes"]})
    above = [
        f"{rev} f={size} {dataset}: {loss:.1f} nats"
        for rev in model["revisions"]
        for size in sizes
        for dataset, loss in table2_loss(int(rev.removeprefix("step")), size).items()
        if not loss < UNIFORM_NATS
    ]
    assert above == [], f"above a uniform guess ({UNIFORM_NATS:.2f} nats): {above}"


def test_paper_grid_is_derived_from_table2_and_pythia_s_branches():
    """The grid: from the lowest Pythia branch Table 2's laws allow (at the smallest size, where the loss is
    highest) to the final step, 15 log-spaced steps each mapped to the nearest branch not taken yet."""
    cfg = yaml.safe_load(PAPER_CONFIG.read_text())
    (model,) = cfg["models"].values()
    smallest = min(s for block in cfg["datasets"].values() for s in block["sizes"])
    allowed = [s for s in PYTHIA_STEPS if max(table2_loss(s, smallest).values()) < UNIFORM_NATS]
    lowest = allowed[0]
    # the bound itself: math arXiv, the slowest to fall, is above a uniform guess up to step 93
    assert lowest == 128 and max(table2_loss(93, smallest).values()) > UNIFORM_NATS
    assert min(table2_loss(94, smallest).values()) < UNIFORM_NATS
    rule = {"log_spaced": {"count": 15, "first": lowest, "last": PYTHIA_STEPS[-1]}}
    grid = [row["revision"] for row in resolve_rule(rule, [f"step{s}" for s in PYTHIA_STEPS])]
    assert model["revisions"] == sorted(grid, key=lambda r: int(r.removeprefix("step")))
    # the second config asks for the same grid, as a rule that the gate's verdicts resolve
    (other,) = yaml.safe_load(PYTHIA_14B_CONFIG.read_text())["models"].values()
    assert other["revisions"] == rule


def test_pythia_1_4b_config_is_the_same_protocol():
    """The two configs differ in the model (and the study's name and resources) only."""
    paper, other = (
        without_resources(resolve(yaml.safe_load(p.read_text()))) for p in (PAPER_CONFIG, PYTHIA_14B_CONFIG)
    )
    for cfg in (paper, other):
        for key in ("models", "study"):
            cfg.pop(key)
        cfg["fit"].pop("model")
    assert paper == other


@pytest.fixture(scope="module")
def paper_plan():
    """The paper's study planned from nothing with the Slurm profile, as shipped (no option added)."""
    return make_plan(PAPER_CONFIG, PROFILE, snakefile=REPO / "Snakefile")


def job_counts(proc) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run, as {rule: count}."""
    table = (proc.stdout + proc.stderr).split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


@pytest.mark.slow
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


@pytest.mark.slow
def test_prefetch_target_plans_only_downloads(tmp_path):
    shutil.copy(PAPER_CONFIG, tmp_path / "config.yaml")
    counts = job_counts(snakemake(tmp_path, "-n", "prefetch"))
    assert counts == {"prefetch_model": 1, "fetch_dataset": 4, "prefetch": 1, "total": 6}


def test_paper_protocol_settings():
    cfg = yaml.safe_load(PAPER_CONFIG.read_text())
    (model,) = cfg["models"].values()
    assert model["repo_id"] == "EleutherAI/pythia-2.8b" and model["tokens_per_step"] == 2097152
    steps = [int(r.removeprefix("step")) for r in model["revisions"]]
    assert len(steps) == 15 and steps[0] == 128 and steps[-1] == 143000 and steps == sorted(steps)
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


@pytest.mark.slow
def test_paper_protocol_submits_a_few_dozen_slurm_jobs_with_the_profile(paper_plan):
    assert paper_plan.jobs["finetune"] == 750
    groups = [s for s in paper_plan.first if s.grouped]
    # one group per checkpoint (15), one per dataset's analyses (5), and the few data jobs
    assert len(groups) == 15 + 5
    assert len(paper_plan.first) <= 40
    assert "finetune" not in {s.kind for s in paper_plan.first if not s.grouped}


@pytest.mark.slow
def test_paper_protocol_no_submission_asks_for_more_than_one_run(paper_plan):
    print()
    for k in kinds(paper_plan.first):
        print(kind_line(k))
    run = yaml.safe_load(PAPER_CONFIG.read_text())["finetune"]
    for s in paper_plan.first:
        # what the plugin's sbatch options ask for is what the largest of its jobs needs, not their sum
        assert s.cpus == s.job_cpus and s.mem_mb == s.job_mem_mb, s
        assert not s.more_than_one_job
    finetune = [s for s in paper_plan.first if s.kind == FT_GROUP]
    assert len(finetune) == 15
    for s in finetune:
        # one run's threads, memory and GPU, for the sum of its 50 runs' minutes
        assert (s.runs, s.cpus, s.mem_mb, s.gpus) == (50, run["threads"], run["mem_mb"], run["gpus"])
        assert s.minutes == 50 * run["runtime"]
        assert f"--cpus-per-task={run['threads']}" in s.sbatch and f"--mem {run['mem_mb']}" in s.sbatch
    # a retry asks for its attempt times a run's memory and minutes: the last (attempt 3) 3 times
    for s in (s for s in paper_plan.last if s.kind == FT_GROUP):
        assert (s.attempt, s.cpus, s.mem_mb, s.minutes) == (3, 8, 3 * 64000, 3 * 50 * 10)


@pytest.mark.slow
def test_a_group_over_the_partition_s_time_limit_names_the_key_to_lower(paper_plan, capsys):
    # a 10-hour partition: a checkpoint's 50 runs at their last retry (30 min each) need 25 hours
    (problem,) = time_problems(paper_plan, {"*": 600}, "profiles/slurm")
    assert "1500 min, over the 600 min" in problem
    assert f"lower `group-components: {FT_GROUP}=N` in profiles/slurm to N <= 20" in problem
    # lowered as the message says, every submission fits: each checkpoint's runs in 3 submissions
    args = ["plan", "--configfile", str(PAPER_CONFIG), "--profile", str(PROFILE), "--time-limit", "10:00:00"]
    args += ["--snakefile", str(REPO / "Snakefile"), "--json"]
    assert transferlaw(args) == 1
    assert "N <= 20" in capsys.readouterr().err
    lowered = ["--", "--group-components", f"{FT_GROUP}=20", "analysis_{dataset}=3"]
    assert transferlaw(args + lowered) == 0
    out = capsys.readouterr()
    plan = json.loads(out.out)
    finetune = [s for s in plan["last_retry"] if s["kind"] == FT_GROUP]
    assert sorted(s["runs"] for s in finetune) == [10] * 15 + [20] * 30
    assert max(s["minutes"] for s in finetune) == 600 and plan["time_problems"] == []


@pytest.mark.slow  # runs Snakemake
def test_pythia_1_4b_study_is_planned_from_what_prefetch_resolved(tmp_path):
    """Before `snakemake prefetch`, the rule's study cannot be planned, and says what to run; prefetch can.
    Once prefetch has resolved the rule on a hub where every branch but step1 and step2 serves weights of
    its own (issues 83, 198: step0 = step1 = step2 on every Pythia), the study is the paper's grid, 750 runs.
    """
    shutil.copy(PYTHIA_14B_CONFIG, tmp_path / "config.yaml")
    proc = snakemake(tmp_path, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "models.pythia-1.4b.revisions is a rule (15 log-spaced steps from 128 to 143000)" in out
    assert "manifest.json does not exist yet. Run `snakemake prefetch`" in out
    weights = {s: f"weights at step {max(s, 2)}".encode() for s in PYTHIA_STEPS}  # 154 tiny stand-ins
    branches = {f"step{s}": {"model.safetensors": w, "config.json": b"{}"} for s, w in weights.items()}
    with FakeHub() as hub:
        hub.add_repo("EleutherAI/pythia-1.4b", {**branches, "main": branches["step143000"]})
        # what `snakemake prefetch` runs for the model (its datasets' downloads need the internet)
        snakemake(tmp_path, "--cores", "1", "results/checkpoints/pythia-1.4b/manifest.json", env=hub.env())
        fetched = {p for p in hub.paths("GET") if "/lfs/" in p}
    assert len(fetched) == 15  # 154 branches listed, the 15 resolved downloaded
    proc = snakemake(tmp_path, "-n")
    counts = job_counts(proc)
    assert counts["finetune"] == 750 and counts["pin_checkpoint"] == 15
    pins = sorted(
        o for o in executed_outputs(proc) if re.fullmatch(r"results/checkpoints/.*/step\d+\.json", o)
    )
    paper = yaml.safe_load(PAPER_CONFIG.read_text())["models"]["pythia-2.8b"]["revisions"]
    assert pins == sorted(f"results/checkpoints/pythia-1.4b/{r}.json" for r in paper)
