"""The estimator: parameter recovery, agreement with a plain scipy multi-start, weights, bad input."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from synthetic import TABLE2

from transferlaw.law.fit import (
    Columns,
    check_fit_input,
    fit_batch,
    fit_law,
    fit_table,
    fits_json,
    objective,
    objective_and_gradient,
)
from transferlaw.law.forms import FORMS, get_form

TOKENS_PER_STEP = 2_097_152  # Pythia's batch size in tokens
PAPER = dict(A=284.766, alpha=0.730, G=2.570, beta=0.123, E=0.538)


def grid_points(n_p: int = 10, n_f: int = 8, step0: bool = False) -> tuple[np.ndarray, np.ndarray]:
    steps = np.unique(np.geomspace(1000, 143_000, n_p).round())
    if step0:
        steps = np.r_[0.0, steps]
    sizes = np.unique(np.geomspace(10, 1100, n_f).round())
    p, f = np.meshgrid(steps, sizes, indexing="ij")
    return p.ravel(), f.ravel()


def synth(form: str, params: dict, p: np.ndarray, f: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return get_form(form).predict(params, p, f) * np.exp(rng.normal(0.0, noise, p.size))


# ----------------------------------------------------------------------------------------------------
# recovery
# ----------------------------------------------------------------------------------------------------
RECOVERY = {
    "paper_encyclopedia": PAPER,
    "paper_genome": dict(A=43.556, alpha=0.718, G=0.548, beta=0.228, E=2.677),
    "g_near_zero": dict(A=300.0, alpha=0.75, G=1e-3, beta=0.2, E=1.5),
    "e_near_zero": dict(A=200.0, alpha=0.6, G=1.0, beta=0.3, E=1e-3),
}


@pytest.mark.parametrize("case", sorted(RECOVERY))
def test_recovers_known_parameters(case: str) -> None:
    true = RECOVERY[case]
    p, f = grid_points()
    loss = synth("mikami", true, p, f, noise=0.002, seed=3)
    fit = fit_law(p, f, loss, "mikami")
    assert fit.converged
    got = fit.params
    for name in ("alpha", "beta"):
        assert got[name] == pytest.approx(true[name], abs=0.05), name
    for name in ("G", "E"):  # absolute: the near-zero cases must come out near zero, not just positive
        assert got[name] == pytest.approx(true[name], abs=0.06 * max(true[name], 1.0)), name
    assert got["A"] == pytest.approx(true["A"], rel=0.5)
    # the fitted surface matches the noiseless one much closer than the noise
    clean = get_form("mikami").predict(true, p, f)
    assert np.max(np.abs(np.log(fit.predict(p, f) / clean))) < 0.004
    # and the fit is at least as good as the truth on the objective it minimises
    assert fit.objective <= objective(get_form("mikami").to_free(true), p, f, loss) + 1e-12


def test_p_in_tokens_rescales_only_a() -> None:
    p, f = grid_points()
    loss = synth("mikami", PAPER, p, f, noise=0.002, seed=5)
    by_steps = fit_law(p, f, loss, "mikami")
    by_tokens = fit_law(p * TOKENS_PER_STEP, f, loss, "mikami")
    assert by_tokens.converged
    # p -> k p is exactly A -> A k^alpha, so the optimum and all other parameters are unchanged
    assert by_tokens.objective == pytest.approx(by_steps.objective, rel=1e-6)
    for name in ("alpha", "G", "beta", "E"):
        assert by_tokens.params[name] == pytest.approx(by_steps.params[name], rel=1e-3, abs=1e-4)
    a_expected = by_steps.params["A"] * TOKENS_PER_STEP ** by_steps.params["alpha"]
    assert by_tokens.params["A"] == pytest.approx(a_expected, rel=0.02)
    assert by_tokens.params["A"] > 1e4 * by_steps.params["A"]  # 2^21^0.73 ≈ 4e4


def test_step_zero_under_shifted_form() -> None:
    true = dict(A=50.0, alpha=0.5, G=1.2, beta=0.2, E=0.8)
    p, f = grid_points(step0=True)
    assert (p == 0).any()
    loss = synth("mikami_shifted", true, p, f, noise=0.002, seed=7)
    fit = fit_law(p, f, loss, "mikami_shifted")
    assert fit.converged and fit.n_points == p.size
    for name in ("alpha", "G", "beta", "E"):
        assert fit.params[name] == pytest.approx(true[name], rel=0.1), name
    step0 = p == 0
    np.testing.assert_allclose(fit.predict(p[step0], f[step0]), loss[step0], rtol=0.01)
    with pytest.raises(ValueError, match=r"'p'.*positive.*mikami_shifted"):
        fit_law(p, f, loss, "mikami")


# ----------------------------------------------------------------------------------------------------
# agreement with a plain scipy multi-start
# ----------------------------------------------------------------------------------------------------
def scipy_multistart(p, f, loss, form, starts, **kw) -> float:
    best = np.inf
    for s in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                lambda x: objective_and_gradient(x, p, f, loss, form, **kw), s, jac=True, method="BFGS"
            )
        best = min(best, float(res.fun)) if np.isfinite(res.fun) else best
    return best


@pytest.mark.slow  # a plain scipy multistart: seconds per case
@pytest.mark.parametrize(
    ("form", "seed"), [("mikami", 0), ("mikami", 1), ("mikami_shifted", 2), ("mikami_no_e", 3)]
)
def test_fast_no_worse_than_plain_scipy_multistart(form: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, f = grid_points(6, 5, step0=form == "mikami_shifted")
    loss = synth("mikami", PAPER, np.maximum(p, 1), f, noise=0.03, seed=seed)  # noisy, small: rugged
    law = get_form(form)
    grid = law.initial_grid()
    subset = grid[rng.choice(len(grid), size=60, replace=False)]
    plain = scipy_multistart(p, f, loss, form, subset)
    fast = fit_law(p, f, loss, form)  # full grid, pruned
    same_starts = fit_law(p, f, loss, form, starts=subset, prune=())  # same starts, every one converged
    tol = 1e-7 * plain + 1e-12
    assert fast.objective <= plain + tol
    assert same_starts.objective <= plain + tol


@pytest.mark.slow  # an exhaustive search: seconds per case
@pytest.mark.parametrize(("form", "seed"), [("mikami", 0), ("mikami", 1), ("mikami_p_shift", 0)])
def test_pruning_finds_the_exhaustive_optimum(form: str, seed: int) -> None:
    p, f = grid_points(7, 6)
    loss = synth("mikami", RECOVERY["paper_genome"], p, f, noise=0.03, seed=seed)
    pruned = fit_law(p, f, loss, form)
    exhaustive = fit_law(p, f, loss, form, prune=())  # every grid start run to convergence
    assert pruned.objective <= exhaustive.objective * (1 + 1e-9) + 1e-15


def test_analytic_gradient_matches_finite_differences() -> None:
    p, f = grid_points(5, 4)
    loss = synth("mikami", PAPER, p, f, noise=0.05, seed=0)
    w = np.random.default_rng(0).integers(0, 3, p.size).astype(float)
    theta = np.array([5.0, 0.6, 1.0, 0.2, -0.5])
    kw = dict(weights=w, l2_exponents=0.3, l2_coefficients=0.01, huber_delta=0.05)  # smooth enough for FD
    _, grad = objective_and_gradient(theta, p, f, loss, "mikami", **kw)
    num = np.array(
        [
            (
                objective(theta + d, p, f, loss, "mikami", **kw)
                - objective(theta - d, p, f, loss, "mikami", **kw)
            )
            / 2e-6
            for d in np.eye(5) * 1e-6
        ]
    )
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_compiled_objective_equals_its_numpy_definition(name: str) -> None:
    """The fit's compiled objective, gradient and IRLS curvature (transferlaw.law.kernels) against eq. 12
    written out in numpy from log_predict: Huber of the log residuals, weighted, plus the L2 penalties."""
    from transferlaw.law.fit import _make_problem

    law = get_form(name)
    rng = np.random.default_rng(7)
    p, f = grid_points(6, 5, step0=not law.needs_positive_p)
    loss = synth("mikami", PAPER, np.maximum(p, 1.0), f, noise=0.05, seed=3)
    n_rows, delta, l2e, l2c = 9, 0.02, np.array([0.0, 0.3, 5.0]), np.array([0.1, 0.0, 1e-3])
    weights = rng.integers(0, 3, (3, p.size)).astype(float)  # zeros included: they must cost nothing
    theta = law.initial_grid()[rng.choice(len(law.initial_grid()), n_rows)] + rng.normal(
        0, 0.1, (n_rows, law.n_params)
    )
    prob = np.arange(n_rows) % 3
    obj, grad, hess = _make_problem(p, f, loss, law, weights, l2e, l2c, delta).evaluate(theta, prob)

    out, jac = law.log_predict(theta, p, f, jacobian=True)  # (N, n), (N, n, k)
    r = out - np.log(loss)
    w = weights[prob]
    rho = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    psi, omega = np.clip(r, -delta, delta), np.minimum(1.0, delta / np.abs(r))
    pen = 2 * np.array(
        [[l2e[b] if n in law.exponent_names else l2c[b] for n in law.param_names] for b in prob]
    )
    np.testing.assert_allclose(obj, (w * rho).sum(1) + 0.5 * (pen * theta**2).sum(1), rtol=1e-10)
    np.testing.assert_allclose(
        grad, np.einsum("rn,rnk->rk", w * psi, jac) + pen * theta, rtol=1e-9, atol=1e-12
    )
    want = np.einsum("rn,rnk,rnl->rkl", w * omega, jac, jac) + pen[:, :, None] * np.eye(law.n_params)
    np.testing.assert_allclose(hess, want, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# weights, batches, penalties
# ----------------------------------------------------------------------------------------------------
def test_integer_weights_equal_duplicated_rows() -> None:
    p, f = grid_points(6, 5)
    loss = synth("mikami", PAPER, p, f, noise=0.01, seed=11)
    counts = np.random.default_rng(2).integers(0, 3, p.size)
    weighted = fit_law(p, f, loss, "mikami", weights=counts)
    idx = np.repeat(np.arange(p.size), counts)
    duplicated = fit_law(p[idx], f[idx], loss[idx], "mikami")
    assert weighted.objective == pytest.approx(duplicated.objective, rel=1e-8)
    assert weighted.n_points == int((counts > 0).sum())


def test_mask_weights_equal_subset_fit() -> None:
    p, f = grid_points(6, 5)
    loss = synth("mikami", PAPER, p, f, noise=0.01, seed=12)
    mask = (p <= np.median(p)).astype(float)
    masked = fit_law(p, f, loss, "mikami", weights=mask)
    subset = fit_law(p[mask > 0], f[mask > 0], loss[mask > 0], "mikami")
    assert masked.objective == pytest.approx(subset.objective, rel=1e-8)
    np.testing.assert_allclose(masked.predict(p, f), subset.predict(p, f), rtol=1e-3)


def test_fit_batch_solves_problems_independently() -> None:
    p, f = grid_points(6, 5)
    loss = synth("mikami", PAPER, p, f, noise=0.01, seed=13)
    rng = np.random.default_rng(4)
    weights = rng.integers(0, 3, (5, p.size)).astype(float)
    l2 = np.array([0.0, 0.0, 0.1, 1.0, 10.0])
    start = fit_law(p, f, loss, "mikami").free
    starts = start + rng.normal(0.0, 0.3, (8, 5))  # near the full-data optimum, like a bootstrap
    batch = fit_batch(p, f, loss, "mikami", weights, starts, l2_exponents=l2, prune=None)
    assert batch.free.shape == (5, 5) and batch.converged.all()
    for b in range(5):
        single = fit_law(
            p, f, loss, "mikami", weights=weights[b], starts=starts, l2_exponents=l2[b], prune=None
        )
        assert batch.objective[b] == pytest.approx(single.objective, rel=1e-9)
        expected = objective(batch.free[b], p, f, loss, "mikami", weights=weights[b], l2_exponents=l2[b])
        assert batch.objective[b] == pytest.approx(expected, rel=1e-12)


def test_l2_penalty_shrinks_exponents() -> None:
    p, f = grid_points(6, 5)
    loss = synth("mikami", PAPER, p, f, noise=0.01, seed=14)
    free_fit = fit_law(p, f, loss, "mikami")
    shrunk = fit_law(p, f, loss, "mikami", l2_exponents=1.0)
    exps = ["alpha", "beta"]
    assert sum(shrunk.params[n] ** 2 for n in exps) < sum(free_fit.params[n] ** 2 for n in exps)
    unpenalised_at_shrunk = objective(shrunk.free, p, f, loss, "mikami")
    assert shrunk.objective == pytest.approx(
        unpenalised_at_shrunk + sum(shrunk.params[n] ** 2 for n in exps), rel=1e-10
    )


def test_non_convergence_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    p, f = grid_points(6, 5)
    loss = synth("mikami", PAPER, p, f, noise=0.01, seed=15)
    assert not fit_law(p, f, loss, "mikami", max_iter=2).converged
    df = pd.DataFrame({"dataset": "d", "pretrain_step": p, "finetune_size": f, "eval_loss": loss})
    with caplog.at_level(logging.WARNING, logger="transferlaw.law.fit"):
        out = fits_json(fit_table(df, form="mikami", max_iter=2))
    assert out["d"]["converged"] is False
    assert "did not converge" in caplog.text


# ----------------------------------------------------------------------------------------------------
# tables and bad input
# ----------------------------------------------------------------------------------------------------
def runs_table() -> pd.DataFrame:
    p, f = grid_points(6, 5)
    frames = []
    for i, (name, true) in enumerate([("enc", PAPER), ("cat", RECOVERY["paper_genome"])]):
        loss = synth("mikami", true, p, f, noise=0.005, seed=20 + i)
        frames.append(
            pd.DataFrame(
                {
                    "dataset": name,
                    "pretrain_step": p.astype(int),
                    "pretrain_tokens": (p * TOKENS_PER_STEP).astype(int),
                    "finetune_size": f.astype(int),
                    "eval_loss": loss,
                    "status": "ok",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_fit_table_fits_each_group_and_excludes_bad_status(caplog: pytest.LogCaptureFixture) -> None:
    df = runs_table()
    df.loc[[0, 1, 40], "status"] = ["diverged", "max_epochs", "diverged"]
    df.loc[[0, 1, 40], "eval_loss"] = [np.nan, -1.0, np.inf]  # would be rejected if not excluded
    with caplog.at_level(logging.WARNING, logger="transferlaw.law.fit"):
        out = fits_json(fit_table(df, form="mikami", columns=Columns(p="pretrain_tokens")))
    assert "excluding 3 run(s)" in caplog.text
    assert set(out) == {"enc", "cat"}
    enc = out["enc"]
    for key in ("dataset", "form", "formula", "params", "objective", "n_points", "n_excluded", "p_column",
                "f_column", "loss_column", "converged", "fit_seconds"):  # fmt: skip
        assert key in enc, key
    assert enc["dataset"] == "enc" and enc["p_column"] == "pretrain_tokens"
    assert set(enc["params"]) == {"A", "alpha", "G", "beta", "E"}
    n_enc = int((df["dataset"] == "enc").sum())
    assert (enc["n_points"], enc["n_excluded"]) == (n_enc - 2, 2)
    assert (out["cat"]["n_points"], out["cat"]["n_excluded"]) == (n_enc - 1, 1)
    assert enc["params"]["alpha"] == pytest.approx(PAPER["alpha"], abs=0.1)


def test_fit_table_missing_column_is_named() -> None:
    df = runs_table().drop(columns=["eval_loss"])
    with pytest.raises(ValueError, match="'eval_loss'"):
        fit_table(df, form="mikami")
    with pytest.raises(ValueError, match="'model'"):
        fit_table(runs_table(), form="mikami", columns=Columns(group="model"))


def test_fit_table_too_few_points_names_group() -> None:
    df = runs_table()
    df.loc[(df["dataset"] == "cat") & (df.index % 30 > 3), "status"] = "diverged"
    pattern = r"dataset=cat: no law fitted: only 4 usable runs of 30 \(26 diverged\) for the 5 parameters"
    with pytest.raises(ValueError, match=pattern):
        fit_table(df, form="mikami")


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda p, f, y: (p, f, np.r_[y[:-1], 0.0]), r"'eval_loss'.*non-positive"),
        (lambda p, f, y: (p, f, np.r_[y[:-1], -2.0]), r"'eval_loss'.*non-positive"),
        (lambda p, f, y: (p, f, np.r_[y[:-1], np.nan]), r"'eval_loss'.*non-finite"),
        (lambda p, f, y: (p, f, np.r_[y[:-1], np.inf]), r"'eval_loss'.*non-finite"),
        (lambda p, f, y: (np.r_[p[:-1], 0.0], f, y), r"'pretrain_step'.*not positive"),
        (lambda p, f, y: (np.r_[p[:-1], -5.0], f, y), r"'pretrain_step'.*not positive"),
        (lambda p, f, y: (p, np.r_[f[:-1], 0.0], y), r"'finetune_size'.*not positive"),
        (lambda p, f, y: (p, np.r_[f[:-1], np.nan], y), r"'finetune_size'.*non-finite"),
        (lambda p, f, y: (p[:4], f[:4], y[:4]), r"only 4 point.*5 parameters"),
        (lambda p, f, y: (p, f[:-1], y), r"differ in length"),
        (lambda p, f, y: (p, f, np.array(["x"] * len(y))), r"'eval_loss' is not numeric"),
    ],
)
def test_bad_input_names_the_culprit(mutate, pattern: str) -> None:
    p, f = grid_points(4, 4)
    loss = synth("mikami", PAPER, p, f, noise=0.01, seed=0)
    names = ("pretrain_step", "finetune_size", "eval_loss")
    with pytest.raises(ValueError, match=pattern):
        check_fit_input(*mutate(p, f, loss), "mikami", names=names)
    with pytest.raises(ValueError, match=pattern):
        fit_law(*mutate(p, f, loss), "mikami", names=names)


def test_shifted_forms_accept_zero_but_not_negative() -> None:
    p, f = grid_points(4, 4, step0=True)
    loss = synth("mikami_shifted", PAPER, p, f, noise=0.01, seed=0)
    check_fit_input(p, f, loss, "mikami_shifted")
    check_fit_input(p, f, loss, "mikami_p_shift")
    with pytest.raises(ValueError, match="'f'.*non-negative"):
        check_fit_input(p, np.r_[f[:-1], -1.0], loss, "mikami_shifted")
    with pytest.raises(ValueError, match="'p'.*positive"):
        check_fit_input(p, f, loss, "mikami_f_shift")  # p^-alpha is unshifted in that form


def test_every_form_fits() -> None:
    p, f = grid_points(5, 4, step0=True)
    loss = synth("mikami_shifted", PAPER, p, f, noise=0.01, seed=9)
    for name, form in FORMS.items():
        keep = p > 0 if form.needs_positive_p else np.ones(p.size, bool)
        fit = fit_law(p[keep], f[keep], loss[keep], name)
        assert set(fit.params) == set(form.param_names)
        assert np.isfinite(fit.objective) and fit.converged, name
        assert fit.to_dict()["form"] == name


@pytest.mark.slow  # compiles the kernels from nothing, in processes of their own: ~15 s
def test_compile_kernels_leaves_nothing_for_a_fit_or_bootstrap_to_compile(tmp_path) -> None:
    """`transferlaw compile-kernels` (run by `make setup`) compiles every kernel for the argument types the
    fits pass: afterwards a fit, a bootstrap and a cross-validation, in a new process, add nothing to the
    cache."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-m", "transferlaw.cli", "compile-kernels"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "compiled and cached" in done.stdout, done.stderr
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert len([p for p in before if p.suffix == ".nbc"]) >= 6  # every kernel the fit calls
    law, rng = get_form("mikami"), np.random.default_rng(0)
    p, f = (a.ravel() for a in np.meshgrid([1e3, 4e3, 16e3, 64e3, 143e3], [10.0, 50, 250, 1100]))
    loss = law.predict(TABLE2["enron_emails"], p, f) * np.exp(rng.normal(0, 0.02, p.size))
    table = pd.DataFrame({"dataset": "enron", "pretrain_step": p, "finetune_size": f, "eval_loss": loss})
    table.to_csv(tmp_path / "runs.csv", index=False)
    commands = [
        ["fit", "runs.csv", "-o", "fit.json", "--form", "mikami"],
        ["bootstrap", "runs.csv", "-o", "boot.json", "--form", "mikami", "--samples", "20"],
        ["crossval", "runs.csv", "-o", "cv.csv", "--forms", "mikami", "--workers", "1"],
    ]
    script = "from transferlaw.cli import main\n" + "".join(f"assert main({c!r}) == 0\n" for c in commands)
    used = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert used.returncode == 0, used.stderr
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == before
