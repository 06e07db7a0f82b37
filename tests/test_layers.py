"""The package's stages import in one direction, without circles, and the estimator runs without the
training stack: what `pip install transferlaw` (no extras) gives a researcher with a table of losses.

    foundation (io, runlog, schema, defaults, warm)
      <- law (the estimator: numpy, scipy, numba, pandas)      <- report (figures, tables, summary)
      <- data (sources, prepared data)  <- train (torch, transformers, peft)
    config (the study's config) and plan (Slurm) read the stages; cli reads them all, each command lazily.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

PKG = REPO / "src" / "transferlaw"
FOUNDATION = {"io", "runlog", "schema", "defaults", "warm"}
#: stage -> the stages it may import from
ALLOWED = {
    "foundation": {"foundation"},
    "law": {"foundation", "law"},
    "data": {"foundation", "data"},
    "train": {"foundation", "data", "train"},
    "report": {"foundation", "law", "report"},
    "config": {"foundation", "law", "data", "train"},
    "plan": {"foundation", "config"},
    "cli": {"foundation", "law", "data", "train", "report", "config", "plan"},
}
#: what only training and the workflow need (the extras `train` and `workflow`)
HEAVY = {
    "torch",
    "transformers",
    "peft",
    "snakemake",
    "tokenizers",
    "datasets",
    "huggingface_hub",
    "safetensors",
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "foundation"  # the package itself
    name = parts[1]
    if name in FOUNDATION:
        return "foundation"
    return name


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module imported anywhere in a file (function-level imports too), with its line."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "transferlaw":
                out += [(f"transferlaw.{a.name}", node.lineno) for a in node.names]
            else:
                out.append((node.module, node.lineno))
    return out


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def own_imports(path: Path) -> set[str]:
    mods = package_modules()
    found = set()
    for name, _ in imports(path):
        if name.startswith("transferlaw"):
            while name not in mods and "." in name:  # `from transferlaw.law.fit import X`: the module
                name = name.rsplit(".", 1)[0]
            found.add(name)
    return found


def test_every_module_belongs_to_a_stage():
    for mod in package_modules():
        assert stage(mod) in ALLOWED, f"{mod}: not in any stage of tests/test_layers.py"


def test_stages_import_in_one_direction():
    wrong = []
    for mod, path in package_modules().items():
        for other in own_imports(path) - {mod}:
            if stage(other) != stage(mod) and stage(other) not in ALLOWED[stage(mod)]:
                wrong.append(f"{mod} ({stage(mod)}) imports {other} ({stage(other)})")
    assert wrong == []


def test_no_import_circles():
    graph = {mod: own_imports(path) - {mod} for mod, path in package_modules().items()}
    graph = {m: {o for o in deps if o in graph and graph[m] is not None} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # a package's __init__ is a parent, not a circle
    cycles = [c for c in cycles if len(set(c.split(" -> "))) > 1]
    assert cycles == []


def test_the_estimator_and_reports_never_import_the_training_stack():
    wrong = []
    for mod, path in package_modules().items():
        if stage(mod) not in {"foundation", "law", "report"}:
            continue
        for name, line in imports(path):
            if name.split(".")[0] in HEAVY:
                wrong.append(f"{mod}:{line} imports {name}")
    assert wrong == []


BLOCKER = """
import importlib.abc, sys
HEAVY = set({heavy!r})
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError(f"No module named {{name!r}} (pip install transferlaw, no extras)")
sys.meta_path.insert(0, NotInstalled())
from transferlaw.cli import main
codes = [main(args) for args in {commands!r}]
sys.exit(max(codes) if codes else 0)
"""


@pytest.mark.slow  # new Python processes
def test_the_command_line_estimator_runs_without_torch_transformers_peft_or_snakemake(tmp_path):
    """Every estimator command of the CLI on a table of runs, with the training stack made uninstallable."""
    rng = np.random.default_rng(0)
    p, f = (a.ravel() for a in np.meshgrid([1, 8, 64, 512, 4096], [4, 16, 64, 256], indexing="ij"))
    loss = (80.0 * p**-0.6 + 0.6) * f**-0.2 + 1.4
    table = tmp_path / "runs.csv"
    pd.DataFrame({"step": p, "size": f, "loss": loss * np.exp(rng.normal(0, 0.01, p.size))}).to_csv(table)
    cols = ["--group", "", "--p", "step", "--f", "size", "--loss", "loss"]
    commands = [
        ["fit", str(table), "-o", str(tmp_path / "fit.json"), *cols],
        ["bootstrap", str(table), "-o", str(tmp_path / "boot.json"), "--samples", "50", *cols],
        ["crossval", str(table), "-o", str(tmp_path / "cv.csv"), "--forms", "mikami_shifted", *cols],
    ]  # fmt: skip
    code = BLOCKER.format(heavy=sorted(HEAVY), commands=commands)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(PKG.parent)}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit  # a fitted law was written
    assert (tmp_path / "boot.json").is_file() and (tmp_path / "cv.csv").stat().st_size > 0


def script_modules(name: str) -> list[str]:
    """The package's modules a workflow script imports (its own lines, function-level ones too)."""
    script = PKG.parents[1] / "workflow" / "scripts" / name
    return sorted(n for n, _ in imports(script) if n.split(".")[0] == "transferlaw" and n != "transferlaw")


#: what is imported once per job or per Snakemake run, and what it must leave out: every fine-tuning job
#: starts a client (workflow/scripts/finetune.py) that hands its run to a worker, and pandas was most of its
#: start-up (0.4-0.6 s of CPU a job); every Snakemake run checks the config and looks law forms up by name
#: (Snakefile), and numba was a sixth of a dry run
LIGHT_IMPORTS = {
    "the fine-tuning client": (script_modules("finetune.py"), {"pandas", "numba"}),
    "the Snakefile's config checks": (["transferlaw.config", "transferlaw.law.forms"], {"pandas", "numba"}),
}


@pytest.mark.slow  # a new Python process
@pytest.mark.parametrize("what", list(LIGHT_IMPORTS))
def test_what_every_job_or_snakemake_run_imports_is_light(what):
    modules, left_out = LIGHT_IMPORTS[what]
    assert "transferlaw.config" in modules
    code = "import importlib, json, sys\n"
    code += f"for m in {modules!r}: importlib.import_module(m)\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(PKG.parent)}
    )
    assert proc.returncode == 0, proc.stderr
    loaded = {name.split(".")[0] for name in json.loads(proc.stdout)}
    assert loaded & (left_out | HEAVY) == set()


def test_the_readme_s_layout_lists_every_module_and_what_it_holds():
    """README, "Layout": one row per module of the package, each saying what it holds."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("| module | what it holds |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    modules = {
        ".".join(p.relative_to(PKG).with_suffix("").parts)
        for p in PKG.rglob("*.py")
        if p.name != "__init__.py"
    }
    assert modules - set(rows) == set(), "modules the README's layout does not list"
    assert set(rows) - modules == set(), "the README's layout lists modules that do not exist"
    assert all(len(what) > 20 for what in rows.values()), "a row that does not say what its module holds"
