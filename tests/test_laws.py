"""The law forms: names, predictions against the closed-form formulas, Jacobians, starting grids."""

from __future__ import annotations

import numpy as np
import pytest

from transferlaw.law.forms import FORMS, get_form

PARAMS = dict(A=284.8, alpha=0.73, G=2.57, beta=0.123, E=0.538, c=3.0, c1=5.0, c2=2.0)


def closed_form(name: str, q: dict[str, float], p: np.ndarray, f: np.ndarray) -> np.ndarray:
    """The formulas of eq. 2, eq. 7 and Table 5, written out directly in natural space."""
    A, a, G, b, E = q["A"], q["alpha"], q["G"], q["beta"], q["E"]
    return {
        "mikami": (A * p**-a + G) * f**-b + E,
        "mikami_shifted": (A * (p + 1) ** -a + G) * (f + 1) ** -b + E,
        "mikami_f_shift": (A * p**-a + G) * (f + q["c"]) ** -b + E,
        "mikami_p_shift": (A * (p + q["c"]) ** -a + G) * f**-b + E,
        "mikami_pf_shift": (A * (p + q["c1"]) ** -a + G) * (f + q["c2"]) ** -b + E,
        "mikami_no_e": (A * p**-a + G) * f**-b,
    }[name]


def test_form_keys_are_the_agreed_ones() -> None:
    assert set(FORMS) == {
        "mikami",
        "mikami_shifted",
        "mikami_f_shift",
        "mikami_p_shift",
        "mikami_pf_shift",
        "mikami_no_e",
    }


def test_get_form_lists_valid_names() -> None:
    assert get_form("mikami") is FORMS["mikami"]
    with pytest.raises(ValueError, match="mikami_shifted"):
        get_form("chinchilla")


def test_param_names() -> None:
    assert FORMS["mikami"].param_names == ("A", "alpha", "G", "beta", "E")
    assert FORMS["mikami_no_e"].param_names == ("A", "alpha", "G", "beta")
    assert FORMS["mikami_f_shift"].param_names[-1] == "c"
    assert FORMS["mikami_pf_shift"].param_names[-2:] == ("c1", "c2")
    for form in FORMS.values():
        assert set(form.exponent_names) | set(form.coefficient_names) == set(form.param_names)
        assert not set(form.exponent_names) & set(form.coefficient_names)
        assert form.formula.startswith("L = ")
    assert FORMS["mikami"].needs_positive_p and FORMS["mikami"].needs_positive_f
    assert not FORMS["mikami_shifted"].needs_positive_p and not FORMS["mikami_shifted"].needs_positive_f
    assert not FORMS["mikami_p_shift"].needs_positive_p and FORMS["mikami_p_shift"].needs_positive_f


@pytest.mark.parametrize("name", sorted(FORMS))
def test_predict_matches_closed_form(name: str) -> None:
    form = FORMS[name]
    p = np.array([[1.0], [10.0], [1000.0], [143_000.0]])  # broadcasts against f
    f = np.array([1.0, 10.0, 1100.0])
    q = {n: PARAMS[n] for n in form.param_names}
    got = form.predict(q, p, f)
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, closed_form(name, {**PARAMS, "E": q.get("E", 0.0)}, p, f), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_jacobian_matches_finite_differences(name: str) -> None:
    form = FORMS[name]
    rng = np.random.default_rng(1)
    p = rng.uniform(0.0 if not form.needs_positive_p else 1.0, 1e4, 25)
    f = rng.uniform(0.0 if not form.needs_positive_f else 1.0, 1e3, 25)
    theta = rng.normal(0.0, 1.0, (4, form.n_params))
    _, jac = form.log_predict(theta, p, f, jacobian=True)
    h = 1e-6
    for k in range(form.n_params):
        d = np.zeros(form.n_params)
        d[k] = h
        num = (form.log_predict(theta + d, p, f) - form.log_predict(theta - d, p, f)) / (2 * h)
        np.testing.assert_allclose(jac[..., k], num, atol=1e-7, rtol=1e-6)


def test_predict_is_finite_where_natural_space_overflows() -> None:
    form = FORMS["mikami"]
    q = dict(A=1e300, alpha=-10.0, G=1.0, beta=0.5, E=1.0)  # A·p^-α overflows float64 in natural space
    with np.errstate(over="ignore"):
        naive = q["A"] * np.float64(1e6) ** -q["alpha"]
    assert not np.isfinite(naive)
    log_l = form.log_predict(form.to_free(q)[None, :], np.array([1e6]), np.array([10.0]))
    assert np.isfinite(log_l).all()


def test_free_natural_round_trip() -> None:
    for form in FORMS.values():
        q = {n: PARAMS[n] for n in form.param_names}
        back = form.to_natural(form.to_free(q))
        assert back.keys() == q.keys()
        for n in q:
            assert back[n] == pytest.approx(q[n], rel=1e-12)
    with pytest.raises(ValueError, match="'G'"):
        FORMS["mikami"].to_free(dict(A=1.0, alpha=0.5, G=-1.0, beta=0.1, E=1.0))
    with pytest.raises(ValueError, match="'E'"):
        FORMS["mikami"].to_free(dict(A=1.0, alpha=0.5, G=1.0, beta=0.1))


def test_initial_grid_is_the_papers() -> None:
    grid = FORMS["mikami"].initial_grid()
    assert grid.shape == (2240, 5)
    cols = [np.unique(grid[:, i]) for i in range(5)]
    np.testing.assert_allclose(cols[0], [0, 2, 4, 6, 8])  # a = log A
    np.testing.assert_allclose(cols[1], [0, 1 / 3, 2 / 3, 1])  # alpha
    np.testing.assert_allclose(cols[2], np.linspace(-5, 5, 7))  # g = log G
    np.testing.assert_allclose(cols[3], [0, 1 / 3, 2 / 3, 1])  # beta
    np.testing.assert_allclose(cols[4], [0, 1, 2, 3])  # e = log E
    assert len(np.unique(grid, axis=0)) == 2240
    assert FORMS["mikami_no_e"].initial_grid().shape == (560, 4)
    for form in FORMS.values():
        assert form.initial_grid().shape[1] == form.n_params
