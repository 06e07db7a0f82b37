"""Shared fixtures: a tiny real tokenizer and model, and a real Snakemake run of the small test study."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transferlaw.train.hub import use_offline_mode

use_offline_mode(True)  # before transformers is imported anywhere in the test session

REPO = Path(__file__).resolve().parents[1]
SMALL_CONFIG = REPO / "tests" / "config" / "small.yaml"


def make_study_dir(path: Path, config: Path = SMALL_CONFIG) -> Path:
    """A working directory for a study: the repo's resources and a copy of ``config`` as config.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "resources").symlink_to(REPO / "resources")
    shutil.copy(config, path / "config.yaml")
    return path


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real Snakemake on the repo's Snakefile in ``workdir`` with its config.yaml, offline unless
    ``env`` says otherwise."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        "config.yaml",
        "--directory",
        str(workdir),
        *args,
    ]
    # the jobs import transferlaw from this checkout, not from whichever copy is installed
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": pythonpath, **(env or {})}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def planned_outputs(workdir: Path, *args: str) -> list[str]:
    """Outputs of the jobs a dry run would execute (parsed from Snakemake's job listing)."""
    return executed_outputs(snakemake(workdir, "-n", *args))


def executed_outputs(proc: subprocess.CompletedProcess) -> list[str]:
    """Outputs of the jobs a real run executed (the same job listing as a dry run prints)."""
    outs = []
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.strip()
        if line.startswith("output:"):
            outs += [o.strip() for o in line[len("output:") :].split(",")]
    return outs


def assert_nothing_planned(workdir: Path, *args: str) -> None:
    """A run that exited 0 left nothing undone: a dry run right after it plans no job."""
    left = planned_outputs(workdir, *args)
    assert left == [], f"a dry run after the run still plans {len(left)} output(s): {left[:12]}"


@pytest.fixture(scope="session")
def small_study(tmp_path_factory) -> Path:
    """The small test study, run end to end once per test session by the real Snakemake (once for all
    pytest-xdist workers: the first to get here builds it, the others wait for it). Tests that change it
    work on a copy."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder all workers' temporary folders are in
    workdir, done = shared / "small-study", shared / "small-study.done"
    with FileLock(str(shared / "small-study.lock")):
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            snakemake(make_study_dir(workdir), "--cores", "2")
            done.touch()
    return workdir


@pytest.fixture()
def study_copy(small_study, tmp_path):
    """A copy of the finished small study (results and Snakemake's metadata) that a test may change."""
    dest = tmp_path / "study"
    shutil.copytree(small_study, dest, symlinks=True)
    return dest


def edit_config(workdir: Path, edit) -> None:
    """Change a study's config.yaml in place: ``edit(cfg)`` mutates the loaded dict."""
    import yaml

    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    edit(cfg)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from transferlaw.data.prepare import read_text
    from transferlaw.train.pretrain import build_tokenizer

    text = read_text(REPO / "resources" / "datasets" / "devils_dictionary.txt.xz")
    return build_tokenizer(text[:100_000], 300)


@pytest.fixture()
def tiny_model(tiny_tokenizer):
    import torch

    from transferlaw.train.pretrain import _new_model

    torch.manual_seed(0)
    settings = {
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "context_length": 32,
    }
    return _new_model(settings, tiny_tokenizer)
