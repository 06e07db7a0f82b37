"""The scaling-law forms for transfer, defined once (Barnett 2024, eq. 2, eq. 7 and Table 5).

Every form is an instance of one family,

    L(p, f) = (A·(p + c_p)^-α + G)·(f + c_f)^-β [+ E],

where each shift c_p, c_f is either absent (0), fixed at 1 (eq. 7), or a free positive parameter.
Writing them as one family means one log-space prediction and one analytic Jacobian serve all six
forms, so the estimator in :mod:`transferlaw.law.fit` never special-cases a form.

Parameters live in two spaces. *Natural* parameters (``A, alpha, G, beta, E, c...``) are what users
read. *Free* parameters are what the optimiser moves: exponents as they are, positive coefficients
and shifts as their logarithm (A = e^a, G = e^g, E = e^e, c = e^s), so positivity needs no bounds.
The free vector is ordered like :attr:`LawForm.param_names`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# the compiled kernels (transferlaw.law.kernels, numba) are imported where a law is evaluated, not here: the
# Snakefile looks a form up by name in every Snakemake run (config checks), and numba's import would be a
# sixth of its time

#: Free log-parameters are clipped to this box before exponentiation: e^±60 is far beyond any
#: physical loss coefficient yet keeps every intermediate finite in float64.
LOG_CLIP = 60.0
#: exponents are clipped to this box during the search (an exponent of 50 on p already means
#: L̂ is constant in p, so the box never binds at an optimum a user would report).
EXPONENT_CLIP = 50.0

#: The paper's grid of initial guesses (appendix C.1), in free space.
GRID_A = np.arange(0.0, 8.0 + 1e-9, 2.0)  # a = log A: 0, 2, ..., 8
GRID_ALPHA = np.linspace(0.0, 1.0, 4)  # 0, 1/3, 2/3, 1
GRID_G = np.linspace(-5.0, 5.0, 7)  # g = log G
GRID_BETA = np.linspace(0.0, 1.0, 4)
GRID_E = np.arange(0.0, 3.0 + 1e-9, 1.0)  # e = log E: 0, 1, 2, 3
#: log-shift starts for a free shift (c = 1, e^2.5 ≈ 12, e^5 ≈ 150); the paper gives none.
GRID_SHIFT = np.array([0.0, 2.5, 5.0])
#: with two free shifts the grid would be 9x the paper's, so each shift gets two starts.
GRID_SHIFT_PAIR = np.array([0.0, 4.0])

_NONE, _ONE, _FREE = "none", "one", "free"


@dataclass(frozen=True)
class PointGrid:
    """Points (p, f) as their distinct values and indices into them: ``p == p_values[p_index]``."""

    p_values: np.ndarray
    p_index: np.ndarray
    f_values: np.ndarray
    f_index: np.ndarray

    @classmethod
    def of(cls, p: np.ndarray, f: np.ndarray) -> PointGrid:
        p_values, p_index = np.unique(np.asarray(p, dtype=float).ravel(), return_inverse=True)
        f_values, f_index = np.unique(np.asarray(f, dtype=float).ravel(), return_inverse=True)
        return cls(p_values, p_index.ravel(), f_values, f_index.ravel())


@dataclass(frozen=True)
class LawForm:
    """One functional form of the transfer law: its names, its prediction and its starting grid."""

    name: str
    formula: str
    p_shift: str = _NONE  # "none": p, "one": p + 1, "free": p + c
    f_shift: str = _NONE
    has_e: bool = True
    p_shift_name: str = "c"
    f_shift_name: str = "c"

    # ----- names -------------------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        names = ["A", "alpha", "G", "beta"] + (["E"] if self.has_e else [])
        if self.p_shift == _FREE:
            names.append(self.p_shift_name)
        if self.f_shift == _FREE:
            names.append(self.f_shift_name)
        return tuple(names)

    @property
    def exponent_names(self) -> tuple[str, ...]:
        """Parameters optimised as they are (the L2 'exponent' penalty applies to these)."""
        return ("alpha", "beta")

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        """Positive parameters optimised as their log (the L2 'coefficient' penalty applies to these)."""
        return tuple(n for n in self.param_names if n not in self.exponent_names)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    def needs_positive_p(self) -> bool:
        """p = 0 makes p^-α infinite unless p is shifted."""
        return self.p_shift == _NONE

    @property
    def needs_positive_f(self) -> bool:
        return self.f_shift == _NONE

    @property
    def is_log_param(self) -> np.ndarray:
        """Boolean mask over the free vector: True where the free parameter is a logarithm."""
        return _log_mask(self)

    # ----- parameter spaces ----------------------------------------------------------------------
    def to_free(self, params: Mapping[str, float]) -> np.ndarray:
        """Natural parameters -> free vector (log of coefficients); raises naming a missing or bad one."""
        out = np.empty(self.n_params)
        for i, name in enumerate(self.param_names):
            if name not in params:
                raise ValueError(f"form {self.name!r}: missing parameter {name!r}")
            value = float(params[name])
            if name in self.coefficient_names:
                if not value > 0:
                    raise ValueError(f"form {self.name!r}: parameter {name!r} must be positive, got {value}")
                value = np.log(value)
            out[i] = value
        return out

    def to_natural(self, free: np.ndarray) -> dict[str, float]:
        free = np.asarray(free, dtype=float)
        logs = self.is_log_param
        return {
            n: float(np.exp(np.clip(v, -LOG_CLIP, LOG_CLIP)) if lg else v)
            for n, v, lg in zip(self.param_names, free, logs, strict=True)
        }

    # ----- prediction ----------------------------------------------------------------------------
    def predict(self, params: Mapping[str, float], p: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Predicted loss in natural space; p and f broadcast like numpy arrays."""
        p = np.asarray(p, dtype=float)
        f = np.asarray(f, dtype=float)
        theta = self.to_free(params)
        shape = np.broadcast_shapes(p.shape, f.shape)
        pb, fb = np.broadcast_to(p, shape).ravel(), np.broadcast_to(f, shape).ravel()
        return np.exp(self.log_predict(theta[None, :], pb, fb)[0]).reshape(shape)

    def log_predict(
        self, theta: np.ndarray, p: np.ndarray, f: np.ndarray, *, jacobian: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """log L for free parameters ``theta`` (N, k) at points ``p``, ``f`` (n,): shape (N, n).

        Computed as eq. 12 does, with log-sum-exp at both sums, so that neither A·p^-α nor the
        product with f^-β is ever formed in natural space (no overflow for large A or p). With
        ``jacobian=True`` also returns d log L / d theta, shape (N, n, k).
        """
        out = self.log_predict_grid(theta, PointGrid.of(p, f), jacobian=jacobian)
        if not jacobian:
            return out
        return out[0], out[1].transpose(0, 2, 1)

    def log_predict_grid(
        self, theta: np.ndarray, grid: PointGrid, *, jacobian: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """:meth:`log_predict` at the points of ``grid``, with the Jacobian laid out (N, k, n).

        The bracket A·(p+c)^-α + G depends on p alone and (f+c)^-β on f alone, so both are computed
        at the distinct values of p and of f and combined per point (:func:`transferlaw.law.kernels.predict`).
        """
        theta = np.require(np.atleast_2d(theta), float, ["C", "W"])  # one array type for the kernel
        if theta.shape[1] != self.n_params:
            raise ValueError(f"form {self.name!r} has {self.n_params} parameters, got {theta.shape[1]}")
        out = np.empty((theta.shape[0], grid.p_index.size))
        jac = np.empty((theta.shape[0], self.n_params, grid.p_index.size) if jacobian else (0, 0, 0))
        from transferlaw.law import kernels

        p_values, f_values = self.kernel_values(grid)
        kernels.predict(
            theta, self.layout, p_values, grid.p_index, f_values, grid.f_index, LOG_CLIP, jacobian, out, jac
        )
        return (out, jac) if jacobian else out

    def kernel_values(self, grid: PointGrid) -> tuple[np.ndarray, np.ndarray]:
        """The distinct p and f of ``grid`` as :mod:`transferlaw.law.kernels` takes them for this form."""
        from transferlaw.law import kernels

        lay = self.layout
        return kernels.shift_values(lay[0], grid.p_values), kernels.shift_values(lay[1], grid.f_values)

    @property
    def layout(self) -> np.ndarray:
        """The form as :mod:`transferlaw.law.kernels` reads it: shift kinds of p and f, whether E is there,
        and the free-vector positions of the free shifts."""
        return _layout(self)

    # ----- starts --------------------------------------------------------------------------------
    def initial_grid(self) -> np.ndarray:
        """The paper's grid of starts in free space, shape (S, k); 2,240 starts for eq. 2."""
        axes = [GRID_A, GRID_ALPHA, GRID_G, GRID_BETA] + ([GRID_E] if self.has_e else [])
        n_free_shifts = (self.p_shift == _FREE) + (self.f_shift == _FREE)
        shift_grid = GRID_SHIFT if n_free_shifts == 1 else GRID_SHIFT_PAIR
        axes += [shift_grid] * n_free_shifts
        return np.array(list(itertools.product(*axes)), dtype=float)


@functools.cache
def _layout(form: LawForm) -> np.ndarray:
    from transferlaw.law import kernels

    shift_kind = {_NONE: kernels.SHIFT_NONE, _ONE: kernels.SHIFT_ONE, _FREE: kernels.SHIFT_FREE}
    names = form.param_names
    assert names[:4] == ("A", "alpha", "G", "beta") and (not form.has_e or names[4] == "E"), names
    i_cp = names.index(form.p_shift_name) if form.p_shift == _FREE else -1
    i_cf = names.index(form.f_shift_name) if form.f_shift == _FREE else -1
    lay = np.array(
        [shift_kind[form.p_shift], shift_kind[form.f_shift], int(form.has_e), i_cp, i_cf], np.int64
    )
    lay.setflags(write=False)
    return lay


@functools.cache
def _log_mask(form: LawForm) -> np.ndarray:
    mask = np.array([n in form.coefficient_names for n in form.param_names])
    mask.setflags(write=False)  # shared by every caller
    return mask


def _forms() -> dict[str, LawForm]:
    forms = [
        LawForm("mikami", "L = (A·p^-alpha + G)·f^-beta + E"),
        LawForm("mikami_shifted", "L = (A·(p+1)^-alpha + G)·(f+1)^-beta + E", p_shift=_ONE, f_shift=_ONE),
        LawForm("mikami_f_shift", "L = (A·p^-alpha + G)·(f+c)^-beta + E", f_shift=_FREE),
        LawForm("mikami_p_shift", "L = (A·(p+c)^-alpha + G)·f^-beta + E", p_shift=_FREE),
        LawForm(
            "mikami_pf_shift",
            "L = (A·(p+c1)^-alpha + G)·(f+c2)^-beta + E",
            p_shift=_FREE,
            f_shift=_FREE,
            p_shift_name="c1",
            f_shift_name="c2",
        ),
        LawForm("mikami_no_e", "L = (A·p^-alpha + G)·f^-beta", has_e=False),
    ]
    return {form.name: form for form in forms}


#: All forms by name: eq. 2, eq. 7 and the other rows of Table 5.
FORMS: dict[str, LawForm] = _forms()


def get_form(name: str | LawForm) -> LawForm:
    """The form called ``name`` (a :class:`LawForm` passes through); ValueError lists the valid names."""
    if isinstance(name, LawForm):
        return name
    try:
        return FORMS[name]
    except KeyError:
        raise ValueError(f"unknown law form {name!r}; valid forms: {', '.join(FORMS)}") from None
