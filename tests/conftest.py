"""Shared fixtures: a tiny real tokenizer and model, and real Snakemake runs of the test studies, each built
once per test session and shared by every test (and every pytest-xdist worker) that only reads it.

Two tiers (README, "Tests"): `make test-fast` runs the pure tests (`-m "not slow"`: estimator, config,
schema, sources, tables, figures on fixtures); `make test` runs everything, Snakemake, the small model, the
real Slurm and the browser included. A test is `slow` when it builds or runs a study, runs Snakemake, trains
or loads a model, starts Slurm, a browser or another Python process, or checks the estimator against a
reference that takes seconds (a plain scipy multistart, an exhaustive search): marked by hand, or
automatically when it uses a fixture of ``SLOW_FIXTURES``. A test that is not marked and still runs
Snakemake through this module, or imports one of ``HEAVY_MODULES``, fails with a message saying to mark it,
so that nothing slow lands in the fast tier.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from transferlaw.train.hub import use_offline_mode

use_offline_mode(True)  # before transformers is imported anywhere in the test session

REPO = Path(__file__).resolve().parents[1]
SMALL_CONFIG = REPO / "tests" / "config" / "small.yaml"

#: fixtures that build or run a study, Slurm or a model: a test that uses one (or a fixture built on one) is
#: `slow`, in the full suite only
SLOW_FIXTURES = {
    "small_study",  # the small study (and study_copy, a copy of it)
    "multi_study",  # test_beyond: two model sizes x two methods x two seeds
    "hub_study",  # test_hub_study: a hub model's study on a hand-filled cache
    "tiny_tokenizer",  # a real tokenizer (tokenizers, transformers)
    "tiny_model",  # a real GPT-NeoX (torch)
    "slurm",  # a real single-node Slurm
}
#: what only slow tests may import: seconds of start-up each (torch, transformers). Snakemake's validator
#: (under a second) is how the config is checked, so the config's tests import it; running Snakemake is
#: slow (:func:`snakemake` requires the mark)
HEAVY_MODULES = ("torch", "transformers", "peft", "datasets")


# ---- tiers ------------------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    schedule(config, items)


#: the test running now (set before its fixtures, so that a session fixture built for it is checked too)
_current: list[pytest.Item] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _current[:] = [item]
    item.stash[_heavy_before] = {m for m in HEAVY_MODULES if m in sys.modules}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    yield
    _current.clear()
    if is_slow(item):
        return
    imported = sorted({m for m in HEAVY_MODULES if m in sys.modules} - item.stash.get(_heavy_before, set()))
    if imported:
        pytest.fail(
            f"{item.nodeid} imports {', '.join(imported)} but is not marked slow: mark it "
            "@pytest.mark.slow (or use a fixture of SLOW_FIXTURES), or leave the import out of it",
            pytrace=False,
        )


_heavy_before = pytest.StashKey[set]()


def is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


def require_slow(what: str) -> None:
    """Fail the running test if it is not marked slow: it is about to do ``what``."""
    if _current and not is_slow(_current[0]):
        pytest.fail(
            f"{_current[0].nodeid} {what} but is not marked slow: mark it @pytest.mark.slow (or use a "
            "fixture of SLOW_FIXTURES in tests/conftest.py)",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Importing a test module imports none of HEAVY_MODULES: every process of the fast tier would pay for
    them, and the tier's check of its tests could not see them."""
    before = {m for m in HEAVY_MODULES if m in sys.modules}
    report = yield
    imported = sorted({m for m in HEAVY_MODULES if m in sys.modules} - before)
    if isinstance(collector, pytest.Module) and imported and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.nodeid} imports {', '.join(imported)} when it is imported: import it inside the "
            "tests (or fixtures) that need it (tests/conftest.py, HEAVY_MODULES)"
        )
    return report


# ---- scheduling under pytest-xdist -----------------------------------------------------------------------
#: modules to start first, in this order: each heads a long chain (a study built, then the tests reading
#: it), so that the two workers build different studies at once. The rest keep the order they were
#: collected in.
FIRST = [
    "test_slurm.py",  # the small study, then its runs again through Slurm: the longest chain
    "multi_study",  # test_beyond's study of two models x two methods x two seeds
    "test_faults.py",  # the interrupted study and the half-rewritten pins: the longest tests on a copy
    "adaptive_study",  # test_adaptive: rounds of advised runs on a copy of the small study, then copies
    "test_prefetch.py",
    "hub_study",
    "small_study",
]


def rank(item: pytest.Item) -> int:
    names = {item.path.name, *item.fixturenames}
    return next((i for i, name in enumerate(FIRST) if name in names), len(FIRST))


def schedule(config, items: list[pytest.Item]) -> None:
    """Order the items: long chains first (``FIRST``), the rest in the order they were collected. `make test`
    runs ``--dist loadfile --no-loadscope-reorder``: a module is a work unit (its module-scoped fixtures, a
    Slurm cluster or the plan of the paper's study, are set up once) and the units start in this order.
    (Not ``--dist loadgroup``: pytest-xdist 3.8 groups by a node id suffix that pytest 9.2 no longer reads,
    so its groups are silently split.)"""
    first = {}
    for i, item in enumerate(items):
        first.setdefault(item.path.name, i)
    items.sort(key=lambda item: (rank(item), first[item.path.name]))


# ---- studies built once ------------------------------------------------------------------------------------
def shared_root(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this session sees: the session's base temporary folder."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


def build_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` once per test session, for every pytest-xdist worker: the first to get here builds
    (under a file lock), the others wait and share the folder. Tests only read it (a test that changes it
    works on a copy, :func:`copy_study`). A build that failed is not tried again: the next test that needs
    it fails at once with the first one's error."""
    from filelock import FileLock

    require_slow(f"builds the shared study {name!r}")
    root = shared_root(tmp_path_factory)
    folder, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    with FileLock(str(root / f"{name}.lock")):
        if failed.exists():
            pytest.fail(f"building the shared study {name!r} failed:\n{failed.read_text()}", pytrace=False)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            try:
                build(folder)
            except BaseException as err:
                failed.write_text(str(err)[-8000:])
                raise
            done.touch()
    return folder


def copy_study(study: Path, dest: Path) -> Path:
    """A copy of a finished study (results and Snakemake's metadata) that a test may change."""
    shutil.copytree(study, dest, symlinks=True)
    return dest


def make_study_dir(path: Path, config: Path = SMALL_CONFIG) -> Path:
    """A working directory for a study: the repo's resources and a copy of ``config`` as config.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "resources").symlink_to(REPO / "resources")
    shutil.copy(config, path / "config.yaml")
    return path


def snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    snakefile: Path = REPO / "Snakefile",
) -> subprocess.CompletedProcess:
    """Run the real Snakemake on the repo's Snakefile (or ``snakefile``) in ``workdir`` with its config.yaml,
    offline unless ``env`` says otherwise."""
    require_slow("runs Snakemake")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(snakefile),
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


def planned_outputs(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> list[str]:
    """Outputs of the jobs a dry run would execute (parsed from Snakemake's job listing)."""
    return executed_outputs(snakemake(workdir, "-n", *args, snakefile=snakefile))


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
    pytest-xdist workers). Tests that change it work on a copy (``study_copy``)."""
    return build_once(
        tmp_path_factory, "small-study", lambda folder: snakemake(make_study_dir(folder), "--cores", "2")
    )


@pytest.fixture()
def study_copy(small_study, tmp_path):
    """A copy of the finished small study (results and Snakemake's metadata) that a test may change."""
    return copy_study(small_study, tmp_path / "study")


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
