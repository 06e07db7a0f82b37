"""The scaling-law forms for transfer, defined once (Barnett 2024, eq. 2, eq. 7 and Table 5).

Every form is an instance of one family,

    L(p, f) = (A·(p + c_p)^-α + G)·(f + c_f)^-β [+ E],

where each shift c_p, c_f is either absent (0), fixed at 1 (eq. 7), or a free positive parameter.
Writing them as one family means one log-space prediction and one analytic Jacobian serve all six
forms, so the estimator in :mod:`transferlaw.fit` never special-cases a form.

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
from scipy.special import expit

#: Free log-parameters are clipped to this box before exponentiation: e^±60 is far beyond any
#: physical loss coefficient yet keeps every intermediate finite in float64.
LOG_CLIP = 60.0

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

    def _shift_terms(self, kind: str, s: np.ndarray | None, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log(x + c) and d log(x + c) / d log c, for the shift kind (``s`` is log c, shape (N, 1))."""
        if kind == _NONE:
            with np.errstate(divide="ignore"):
                return np.log(x)[None, :], np.zeros((1, x.size))
        if kind == _ONE:
            return np.log1p(x)[None, :], np.zeros((1, x.size))
        c = np.exp(np.clip(s, -LOG_CLIP, LOG_CLIP))
        xc = x[None, :] + c
        return np.log(xc), c / xc

    def log_predict(
        self, theta: np.ndarray, p: np.ndarray, f: np.ndarray, *, jacobian: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """log L for free parameters ``theta`` (N, k) at points ``p``, ``f`` (n,): shape (N, n).

        Computed as eq. 12 does, with log-sum-exp at both sums, so that neither A·p^-α nor the
        product with f^-β is ever formed in natural space (no overflow for large A or p). With
        ``jacobian=True`` also returns d log L / d theta, shape (N, n, k).
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        names = self.param_names
        col = {n: theta[:, i : i + 1] for i, n in enumerate(names)}
        a = np.clip(col["A"], -LOG_CLIP, LOG_CLIP)
        g = np.clip(col["G"], -LOG_CLIP, LOG_CLIP)
        alpha, beta = col["alpha"], col["beta"]
        lp, dlp = self._shift_terms(self.p_shift, col.get(self.p_shift_name), p)
        f_key = self.f_shift_name if self.f_shift == _FREE else None
        lf, dlf = self._shift_terms(self.f_shift, col.get(f_key) if f_key else None, f)

        u = a - alpha * lp  # log(A (p+c)^-α)
        m = np.logaddexp(u, g)  # log(A (p+c)^-α + G)
        t = m - beta * lf  # log((A (p+c)^-α + G)(f+c)^-β)
        if self.has_e:
            e = np.clip(col["E"], -LOG_CLIP, LOG_CLIP)
            out = np.logaddexp(t, e)
        else:
            out = t
        if not jacobian:
            return out

        sig = expit(u - g)  # share of the pre-training term inside the bracket
        tau = expit(t - e) if self.has_e else np.ones_like(t)  # share of the product in L
        ts = tau * sig
        jac = np.empty(out.shape + (len(names),))
        jac[..., names.index("A")] = ts
        jac[..., names.index("alpha")] = -ts * lp
        jac[..., names.index("G")] = tau - ts
        jac[..., names.index("beta")] = -tau * lf
        if self.has_e:
            jac[..., names.index("E")] = 1.0 - tau
        if self.p_shift == _FREE:
            jac[..., names.index(self.p_shift_name)] = -ts * alpha * dlp
        if self.f_shift == _FREE:
            jac[..., names.index(self.f_shift_name)] = -tau * beta * dlf
        return out, jac

    # ----- starts --------------------------------------------------------------------------------
    def initial_grid(self) -> np.ndarray:
        """The paper's grid of starts in free space, shape (S, k); 2,240 starts for eq. 2."""
        axes = [GRID_A, GRID_ALPHA, GRID_G, GRID_BETA] + ([GRID_E] if self.has_e else [])
        n_free_shifts = (self.p_shift == _FREE) + (self.f_shift == _FREE)
        shift_grid = GRID_SHIFT if n_free_shifts == 1 else GRID_SHIFT_PAIR
        axes += [shift_grid] * n_free_shifts
        return np.array(list(itertools.product(*axes)), dtype=float)


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
