"""Step-wise cross-validation: splits, the output contract, and that it picks the generating form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferlaw.law.crossval import (
    CV_COLUMNS,
    best_by_form,
    crossval_table,
    stepwise_cv,
    threshold_splits,
    verify_crossval,
)
from transferlaw.law.forms import get_form

GRID_P = np.geomspace(10, 100_000, 6)
GRID_F = np.geomspace(10, 1000, 5)


def data(form: str, params: dict, seed: int = 0, noise: float = 0.01):
    rng = np.random.default_rng(seed)
    p, f = (a.ravel() for a in np.meshgrid(GRID_P, GRID_F, indexing="ij"))
    return p, f, get_form(form).predict(params, p, f) * np.exp(rng.normal(0, noise, p.size))


def test_splits_are_lower_left_blocks_with_enough_training_runs():
    p, f, _ = data("mikami", dict(A=50, alpha=0.7, G=1, beta=0.15, E=1.5))
    splits = threshold_splits(p, f, min_train=5)
    for pt, ft, train in splits:
        assert np.array_equal(train, (p <= pt) & (f <= ft))
        assert train.sum() >= 5 and (~train).any()
    # 6 x 5 combinations; the last (everything in training) and those with < 5 runs are dropped
    assert len(splits) == sum(
        1 for pt in GRID_P for ft in GRID_F if 5 <= ((p <= pt) & (f <= ft)).sum() < p.size
    )
    assert len(threshold_splits(p, f, min_train=5, skip=3)) < len(splits)
    with pytest.raises(ValueError, match="skip"):
        threshold_splits(p, f, 5, skip=0)


def test_ranks_the_generating_form_first():
    # a large shift on p: at small p the unshifted law cannot bend, so it extrapolates badly
    truth = dict(A=20.0, alpha=0.8, G=1.0, beta=0.15, E=1.5, c=3000.0)
    p, f, loss = data("mikami_p_shift", truth)
    cv = stepwise_cv(
        p, f, loss, ["mikami", "mikami_p_shift"], l2_exponents=(0.0, 0.1), l2_coefficients=(0.0,)
    )
    assert list(cv.columns) == CV_COLUMNS
    best = best_by_form(cv).set_index("form")
    assert best.loc["mikami_p_shift", "rmse"] < best.loc["mikami", "rmse"]
    assert best.loc["mikami_p_shift", "mae"] < best.loc["mikami", "mae"]


def test_cheap_cv_fits_match_full_grid_fits():
    p, f, loss = data("mikami", dict(A=50, alpha=0.7, G=1, beta=0.15, E=1.5))
    check = verify_crossval(
        p, f, loss, "mikami", n_check=4, l2_exponents=(0.0, 1.0), l2_coefficients=(0.0, 0.01)
    )
    assert check["agree_rate"] == 1.0


def test_crossval_table_drops_step_zero_for_unshifted_forms():
    p, f, loss = data("mikami_shifted", dict(A=50, alpha=0.7, G=1, beta=0.15, E=1.5))
    p = np.where(p == p.min(), 0.0, p)
    df = pd.DataFrame(dict(dataset="d", pretrain_step=p, finetune_size=f, eval_loss=loss))
    cv = crossval_table(
        df, forms=["mikami", "mikami_shifted"], l2_exponents=(0.0,), l2_coefficients=(0.0,), skip=2
    )
    assert {"dataset", "n_dropped", *CV_COLUMNS} <= set(cv.columns)
    dropped = cv.groupby("form")["n_dropped"].first()
    assert dropped["mikami"] == 5 and dropped["mikami_shifted"] == 0
    assert (cv["n_train"] + cv["n_test"] + cv["n_dropped"] == p.size).all()
    best = best_by_form(cv)
    assert list(best.columns) == [
        "dataset",
        "form",
        "rmse",
        "rmse_l2_exponents",
        "rmse_l2_coefficients",
        "mae",
        "mae_l2_exponents",
        "mae_l2_coefficients",
    ]
    assert len(best) == 2
    with pytest.raises(ValueError, match="positive p"):
        stepwise_cv(p, f, loss, ["mikami"])


def test_cli_crossval_writes_csv(tmp_path):
    from transferlaw.cli import main

    p, f, loss = data("mikami", dict(A=50, alpha=0.7, G=1, beta=0.15, E=1.5))
    table = tmp_path / "runs.csv"
    pd.DataFrame(dict(dataset="enc", pretrain_step=p, finetune_size=f, eval_loss=loss)).to_csv(
        table, index=False
    )
    out = tmp_path / "cv.csv"
    argv = [
        "--forms",
        "mikami",
        "mikami_no_e",
        "--skip",
        "4",
        "--l2-exponents",
        "0",
        "--l2-coefficients",
        "0",
    ]
    assert main(["crossval", str(table), "-o", str(out), *argv]) == 0
    cv = pd.read_csv(out)
    assert {"dataset", *CV_COLUMNS} <= set(cv.columns)
    assert set(cv["form"]) == {"mikami", "mikami_no_e"} and (cv["dataset"] == "enc").all()


def test_parallel_workers_give_the_same_table():
    """Scoring forms in two processes changes the wall time, not a single number."""
    rng = np.random.default_rng(3)
    p = np.repeat([1.0, 4.0, 16.0, 64.0], 4)
    f = np.tile([2.0, 4.0, 8.0, 16.0], 4)
    loss = (3.0 * p**-0.3 + 0.5) * f**-0.2 + 1.0
    loss = loss * np.exp(rng.normal(0, 0.01, loss.size))
    kw = {"l2_exponents": (0.0, 0.1), "l2_coefficients": (0.0,)}
    serial = stepwise_cv(p, f, loss, ["mikami", "mikami_shifted"], **kw)
    parallel = stepwise_cv(p, f, loss, ["mikami", "mikami_shifted"], workers=2, **kw)
    pd.testing.assert_frame_equal(serial, parallel)
