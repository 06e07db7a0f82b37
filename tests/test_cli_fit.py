"""``transferlaw fit``: the console command on CSV and parquet tables, and its error handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferlaw.cli import main
from transferlaw.law.forms import get_form

SRC = Path(__file__).resolve().parents[1] / "src"
TRUE = {
    "enc": dict(A=284.766, alpha=0.730, G=2.570, beta=0.123, E=0.538),
    "cat": dict(A=43.556, alpha=0.718, G=0.548, beta=0.228, E=2.677),
}


def write_runs(path: Path, *, step0: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    steps = np.unique(np.geomspace(1000, 143_000, 6).round())
    if step0:
        steps = np.r_[0, steps]
    sizes = np.unique(np.geomspace(10, 1100, 5).round())
    p, f = (a.ravel() for a in np.meshgrid(steps, sizes, indexing="ij"))
    law = get_form("mikami_shifted" if step0 else "mikami")
    frames = [
        pd.DataFrame(
            {
                "dataset": name,
                "pretrain_step": p.astype(int),
                "pretrain_tokens": (p * 2_097_152).astype(int),
                "finetune_size": f.astype(int),
                "eval_loss": law.predict(true, p, f) * np.exp(rng.normal(0, 0.005, p.size)),
                "status": "ok",
            }
        )
        for name, true in TRUE.items()
    ]
    df = pd.concat(frames, ignore_index=True)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return df


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_fit_writes_one_object_per_group(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture) -> None:
    table = tmp_path / f"runs{suffix}"
    write_runs(table)
    out = tmp_path / "fits" / "out.json"
    assert main(["fit", str(table), "-o", str(out)]) == 0
    fits = json.loads(out.read_text())
    assert set(fits) == {"enc", "cat"}
    for name, fit in fits.items():
        assert fit["dataset"] == name and fit["form"] == "mikami_shifted"  # the workflow's default
        assert isinstance(fit["diagnostics"]["at_bound"], list)
        assert (fit["p_column"], fit["f_column"], fit["loss_column"]) == (
            "pretrain_step",
            "finetune_size",
            "eval_loss",
        )
        assert set(fit["params"]) == {"A", "alpha", "G", "beta", "E"}
        assert fit["converged"] is True and fit["n_points"] == 30 and fit["fit_seconds"] > 0
    assert fits["enc"]["params"]["alpha"] == pytest.approx(TRUE["enc"]["alpha"], abs=0.1)
    assert "enc:" in capsys.readouterr().out


def test_options_choose_columns_group_and_form(tmp_path: Path) -> None:
    table = tmp_path / "runs.csv"
    df = write_runs(table, step0=True)
    df.rename(columns={"dataset": "task", "eval_loss": "loss"}).to_csv(table, index=False)
    out = tmp_path / "out.json"
    argv = ["fit", str(table), "-o", str(out), "--form", "mikami_shifted", "--group", "task"]
    argv += ["--p", "pretrain_tokens", "--f", "finetune_size", "--loss", "loss"]
    assert main(argv) == 0
    fits = json.loads(out.read_text())
    assert fits["cat"]["form"] == "mikami_shifted" and fits["cat"]["p_column"] == "pretrain_tokens"
    assert fits["cat"]["loss_column"] == "loss"
    # whole table as one group
    assert (
        main(["fit", str(table), "-o", str(out), "--group", "", "--form", "mikami_shifted", "--loss", "loss"])
        == 0
    )
    assert list(json.loads(out.read_text())) == ["all"]


def test_excluded_runs_are_counted_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    table = tmp_path / "runs.csv"
    df = write_runs(table)
    df.loc[[0, 5], "status"] = "diverged"
    df.to_csv(table, index=False)
    out = tmp_path / "out.json"
    assert main(["fit", str(table), "-o", str(out)]) == 0
    assert "excluding 2 run(s)" in capsys.readouterr().err
    assert json.loads(out.read_text())["enc"]["n_excluded"] == 2


@pytest.mark.parametrize(
    ("change", "extra", "culprit"),
    [
        (lambda df: df.drop(columns=["finetune_size"]), [], "'finetune_size'"),
        (lambda df: df, ["--loss", "val_loss"], "'val_loss'"),
        (lambda df: df.assign(eval_loss=df["eval_loss"].where(df.index != 3, -1.0)), [], "'eval_loss'"),
        (
            lambda df: df.assign(pretrain_step=df["pretrain_step"].where(df.index != 3, 0)),
            ["--form", "mikami"],  # p = 0 is a valid step-0 checkpoint for the default form, not for eq. 2
            "'pretrain_step'",
        ),
        (lambda df: df[df.index % 30 < 4], [], "dataset=cat: no law fitted: only 4 usable runs"),
    ],
)
def test_bad_input_exits_2_naming_the_culprit(
    tmp_path: Path, capsys: pytest.CaptureFixture, change, extra: list[str], culprit: str
) -> None:
    table = tmp_path / "runs.csv"
    change(write_runs(table)).to_csv(table, index=False)
    out = tmp_path / "out.json"
    assert main(["fit", str(table), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert culprit in err and "Traceback" not in err
    assert not out.exists()


def test_missing_table_and_bad_form(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fit", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "o.json")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(tmp_path / "nope.csv"), "-o", "o.json", "--form", "chinchilla"])
    assert exc.value.code == 2


@pytest.mark.slow  # a new Python process
def test_module_entry_point(tmp_path: Path) -> None:
    table = tmp_path / "runs.parquet"
    write_runs(table)
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    run = subprocess.run(
        [sys.executable, "-m", "transferlaw.cli", "fit", str(table), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert set(json.loads(out.read_text())) == {"enc", "cat"}
    bad = subprocess.run(
        [sys.executable, "-m", "transferlaw.cli", "fit", str(table), "-o", str(out), "--p", "steps"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "'steps'" in bad.stderr and "Traceback" not in bad.stderr
