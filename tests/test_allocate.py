"""Budget allocation (eq. 4) against a brute-force search of the budget line: interior and both corners."""

import json

import numpy as np
import pandas as pd
import pytest

from transferlaw.cli import main
from transferlaw.law.allocate import (
    allocate,
    allocate_samples,
    loss_along_budget,
    sweep_cost_ratio,
    sweep_gap,
)

PARAMS = {"A": 3.0, "alpha": 0.5, "G": 0.3, "beta": 0.3, "E": 1.0}
BRUTE = np.linspace(0.0, 1.0, 2_000_001)  # fine-tune shares, step 5e-7


def brute_force(params, form, budget, cp, cf):
    """Exhaustive grid over every allocation that spends the budget, and over under-spending ones."""
    loss = loss_along_budget(params, form, budget, cp, cf, BRUTE)
    i = int(np.argmin(loss))
    return BRUTE[i], loss[i]


@pytest.mark.parametrize(
    ("form", "params", "budget", "cp", "cf"),
    [
        ("mikami_shifted", PARAMS, 1000.0, 1.0, 1.0),
        ("mikami_shifted", PARAMS, 1000.0, 1.0, 10.0),
        ("mikami_shifted", PARAMS, 1000.0, 1000.0, 1.0),
        ("mikami", PARAMS, 1e6, 1.0, 30.0),
        ("mikami_no_e", {k: v for k, v in PARAMS.items() if k != "E"}, 1e4, 2.0, 1.0),
        ("mikami_pf_shift", {**PARAMS, "c1": 5.0, "c2": 2.0}, 500.0, 1.0, 3.0),
    ],
)
def test_interior_optimum_matches_brute_force(form, params, budget, cp, cf):
    alloc = allocate(params, form, budget, cp, cf)
    s_bf, loss_bf = brute_force(params, form, budget, cp, cf)
    assert alloc.corner is None
    assert alloc.loss <= loss_bf + 1e-12  # never worse than the grid
    assert alloc.loss == pytest.approx(loss_bf, rel=1e-9)
    assert alloc.share_finetune == pytest.approx(s_bf, abs=1e-5)
    assert alloc.share_pretrain + alloc.share_finetune == pytest.approx(1.0)
    assert cp * alloc.p + cf * alloc.f == pytest.approx(budget)  # the whole budget is spent


def test_corner_all_on_pretraining_when_transfer_is_perfect():
    # G -> 0 and f barely matters (beta tiny): every unit should go to pre-training
    params = {"A": 5.0, "alpha": 0.6, "G": 1e-9, "beta": 1e-4, "E": 0.5}
    alloc = allocate(params, "mikami_shifted", 1000.0, 1.0, 1.0)
    s_bf, loss_bf = brute_force(params, "mikami_shifted", 1000.0, 1.0, 1.0)
    assert s_bf == 0.0
    assert alloc.corner == "pretrain"
    assert (alloc.share_finetune, alloc.f, alloc.p) == (0.0, 0.0, 1000.0)
    assert alloc.loss == pytest.approx(loss_bf, rel=1e-12)


def test_corner_all_on_finetuning_when_pretraining_does_not_help():
    # alpha ~ 0: pre-training does nothing, fine-tuning data always helps
    params = {"A": 0.5, "alpha": 1e-6, "G": 2.0, "beta": 0.4, "E": 0.5}
    alloc = allocate(params, "mikami_shifted", 1000.0, 1.0, 1.0)
    s_bf, loss_bf = brute_force(params, "mikami_shifted", 1000.0, 1.0, 1.0)
    assert s_bf == 1.0
    assert alloc.corner == "finetune"
    assert (alloc.share_finetune, alloc.p, alloc.f) == (1.0, 0.0, 1000.0)
    assert alloc.loss == pytest.approx(loss_bf, rel=1e-12)


def test_bad_budget_is_rejected():
    with pytest.raises(ValueError, match="budget"):
        allocate(PARAMS, "mikami", 0.0, 1.0, 1.0)


def test_fine_tune_share_grows_with_gap_and_falls_with_cost_ratio():
    """The qualitative claims of Fig. 2a and 2b."""
    gaps = sweep_gap(PARAMS, "mikami_shifted", 1000.0, 1.0, 1.0, np.logspace(-3, 1, 9))
    assert np.all(np.diff(gaps["share_finetune"]) >= -1e-9)
    assert gaps["share_finetune"].iloc[-1] > gaps["share_finetune"].iloc[0]
    costs = sweep_cost_ratio(PARAMS, "mikami_shifted", 1000.0, 1.0, np.logspace(-2, 2, 9))
    assert np.all(np.diff(costs["share_finetune"]) <= 1e-9)


def test_samples_drop_unconverged():
    samples = pd.DataFrame(
        [{"sample": i, **PARAMS, "G": 0.1 * (i + 1), "objective": 0.0, "converged": i != 2} for i in range(4)]
    )
    out = allocate_samples(samples, "mikami_shifted", 1000.0, 1.0, 1.0)
    assert list(out["sample"]) == [0, 1, 3]
    assert out["loss"].iloc[0] == pytest.approx(
        allocate({**PARAMS, "G": 0.1}, "mikami_shifted", 1000, 1, 1).loss
    )


def test_cli_prints_optimum_and_bootstrap_spread(tmp_path, capsys):
    fits = tmp_path / "results" / "fits"
    fits.mkdir(parents=True)
    fit = {
        "dataset": "toy",
        "form": "mikami_shifted",
        "params": PARAMS,
        "p_column": "pretrain_step",
        "f_column": "finetune_size",
    }
    (fits / "toy.json").write_text(json.dumps(fit))
    boot = tmp_path / "results" / "bootstrap"
    boot.mkdir()
    rows = [
        {"sample": i, **PARAMS, "G": 0.3 * (1 + 0.1 * i), "objective": 0.0, "converged": True}
        for i in range(5)
    ]
    pd.DataFrame(rows).to_parquet(boot / "toy.parquet")
    args = [
        "allocate",
        str(fits / "toy.json"),
        "--budget",
        "1000",
        "--cost-pretrain",
        "1",
        "--cost-finetune",
        "1",
    ]
    assert main([*args, "--samples", str(boot / "toy.parquet")]) == 0
    out = capsys.readouterr().out
    expected = allocate(PARAMS, "mikami_shifted", 1000, 1, 1)
    assert f"optimal pretrain_step: {expected.p:.6g}" in out
    assert "bootstrap (5 samples" in out and "fine-tune share" in out
    # the samples are the caller's to name: the command guesses no path from the workflow's layout
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"optimal pretrain_step: {expected.p:.6g}" in out and "bootstrap" not in out


def test_cli_multi_group_needs_dataset(tmp_path, capsys):
    path = tmp_path / "fits.json"
    fit = {"form": "mikami_shifted", "params": PARAMS}
    path.write_text(json.dumps({"a": fit, "b": {**fit, "params": {**PARAMS, "G": 5.0}}}))
    args = ["allocate", str(path), "--budget", "100", "--cost-pretrain", "1", "--cost-finetune", "1"]
    assert main(args) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main([*args, "--dataset", "b"]) == 0
    assert "dataset: b" in capsys.readouterr().out


def test_cli_names_missing_samples(tmp_path, capsys):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"dataset": "toy", "form": "mikami_shifted", "params": PARAMS}))
    args = ["allocate", str(path), "--budget", "100", "--cost-pretrain", "1", "--cost-finetune", "1"]
    assert main([*args, "--samples", str(tmp_path / "nope.parquet")]) == 2
    assert "bootstrap samples not found" in capsys.readouterr().err
