"""Fitting the transfer law: the estimator of section 3 and appendix C.1 of Barnett (2024).

Objective (eq. 12): the weighted **sum** of Huber losses (δ = 1e-3) of log-space residuals
log L̂(p, f) − log L, with the prediction computed by log-sum-exp and positive coefficients as exp of
free parameters, plus appendix D's optional L2 penalties on the exponents and on the log-coefficients.

The paper minimises it with BFGS from each of 2,240 grid starts. Looping scipy over those starts costs
minutes per dataset, and the bootstrap and cross-validation multiply that by thousands. Here the core
(:func:`fit_batch`) solves many independent weighted problems, each from many starts, *at once*:

* every start of every problem is one row; the prediction, residuals, gradient and curvature of a row
  are accumulated point by point in compiled code (:mod:`transferlaw.law.kernels`), with the p- and
  f-terms computed once per distinct p and f and points of weight zero skipped;
* the local method is a Levenberg–Marquardt on the IRLS majorisation of the Huber loss
  (weights min(1, δ/|r|)): its gradient is the exact gradient of the objective, its curvature
  J^T W J is a positive semi-definite Gauss–Newton matrix, and a step is kept only where it lowers
  the exact objective, so each row descends monotonically like a trust-region method;
* rows that have converged stop, and at a few checkpoints each problem keeps only its most promising
  starts (``prune``): the grid's starts fall into a handful of basins within a few iterations, and
  spending full convergence on 2,240 copies of the same basin is the waste the plain loop pays for.
  ``prune=()`` runs every start to convergence (the exhaustive grid).

``tests/test_fit.py`` and ``benchmarks/fit.py`` check that the result is no worse than a plain scipy
BFGS loop over the same grid.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.defaults import default
from transferlaw.law import kernels
from transferlaw.law.diagnostics import fit_diagnostics
from transferlaw.law.forms import EXPONENT_CLIP, LOG_CLIP, LawForm, PointGrid, get_form
from transferlaw.schema import STATUS_DIVERGED, STATUS_MAX_EPOCHS, STATUS_OK, fit_uses

logger = logging.getLogger(__name__)

HUBER_DELTA = 1e-3
#: the law form fitted when none is named: the study's default (config schema ``fit.form``), eq. 7, which
#: is defined at step 0 (the workflow's first checkpoint)
DEFAULT_FORM: str = default("fit.form")
#: (iteration, starts kept per problem): the default pruning schedule of :func:`fit_batch`.
DEFAULT_PRUNE: tuple[tuple[int, int], ...] = ((6, 160), (20, 24), (45, 4))


# ----------------------------------------------------------------------------------------------------
# objective
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Problem:
    """Data shared by all rows of a batch, plus per-problem weights and penalties."""

    form: LawForm
    p: np.ndarray
    f: np.ndarray
    log_loss: np.ndarray
    weights: np.ndarray  # (B, n)
    l2_exp: np.ndarray  # (B,)
    l2_coef: np.ndarray  # (B,)
    delta: float
    grid: PointGrid = field(init=False)
    pen_diag: np.ndarray = field(init=False)  # (B, k): the penalty's curvature 2·λ per free parameter
    scratch: np.ndarray = field(init=False)  # the kernels' work space
    kernel_values: tuple[np.ndarray, np.ndarray] = field(init=False)  # distinct p and f, for the kernels

    def __post_init__(self) -> None:
        names = self.form.param_names
        exp_mask = np.array([n in self.form.exponent_names for n in names], float)
        coef_mask = np.array([n in self.form.coefficient_names for n in names], float)
        pen = 2.0 * (self.l2_exp[:, None] * exp_mask + self.l2_coef[:, None] * coef_mask)
        object.__setattr__(self, "grid", PointGrid.of(self.p, self.f))
        object.__setattr__(self, "pen_diag", np.ascontiguousarray(pen))
        object.__setattr__(self, "scratch", kernels.scratch(self.grid.p_values, self.grid.f_values))
        object.__setattr__(self, "kernel_values", self.form.kernel_values(self.grid))

    @property
    def kernel_args(self) -> tuple:
        """The problem as :func:`transferlaw.law.kernels.objective` takes it, after the rows."""
        g, (p_values, f_values) = self.grid, self.kernel_values
        return (self.weights, self.pen_diag, self.form.layout, p_values, g.p_index, f_values, g.f_index,
                self.log_loss, self.delta, LOG_CLIP)  # fmt: skip

    def evaluate(
        self, theta: np.ndarray, prob: np.ndarray, derivs: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Objective (N,), gradient (N, k) and Gauss–Newton/IRLS curvature (N, k, k) for rows ``theta``
        belonging to problems ``prob`` (N,) (:func:`transferlaw.law.kernels.objective`)."""
        theta = np.require(theta, float, ["C", "W"])
        n, k = theta.shape
        obj = np.empty(n)
        grad = np.empty((n, k) if derivs else (0, 0))
        hess = np.empty((n, k, k) if derivs else (0, 0, 0))
        kernels.objective(
            theta, np.ascontiguousarray(prob, dtype=np.int64), *self.kernel_args, derivs, obj, grad, hess,
            self.scratch,
        )  # fmt: skip
        return (obj, grad, hess) if derivs else (obj, None, None)


def objective(
    free: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    loss: np.ndarray,
    form: str | LawForm = DEFAULT_FORM,
    *,
    weights: np.ndarray | None = None,
    l2_exponents: float = 0.0,
    l2_coefficients: float = 0.0,
    huber_delta: float = HUBER_DELTA,
) -> np.ndarray:
    """The fitting objective at free parameters ``free`` ((k,) -> scalar, or (N, k) -> (N,)).

    Exposed so that baselines, tests and model comparison score parameters exactly as the fit does.
    """
    problem = _make_problem(p, f, loss, get_form(form), weights, l2_exponents, l2_coefficients, huber_delta)
    theta = np.asarray(free, dtype=float)
    obj, _, _ = problem.evaluate(np.atleast_2d(theta), np.zeros(np.atleast_2d(theta).shape[0], int), False)
    return obj[0] if theta.ndim == 1 else obj


def objective_and_gradient(
    free: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    loss: np.ndarray,
    form: str | LawForm = DEFAULT_FORM,
    **kw: Any,
) -> tuple[float, np.ndarray]:
    """Objective and its analytic gradient at one free vector (for scipy's ``jac=True``)."""
    problem = _make_problem(
        p,
        f,
        loss,
        get_form(form),
        kw.get("weights"),
        kw.get("l2_exponents", 0.0),
        kw.get("l2_coefficients", 0.0),
        kw.get("huber_delta", HUBER_DELTA),
    )
    obj, grad, _ = problem.evaluate(np.asarray(free, float)[None, :], np.zeros(1, int))
    return float(obj[0]), grad[0]


def _make_problem(
    p: Any,
    f: Any,
    loss: Any,
    form: LawForm,
    weights: Any,
    l2_exponents: Any,
    l2_coefficients: Any,
    delta: float,
    n_problems: int | None = None,
) -> _Problem:
    p = np.asarray(p, dtype=float).ravel()
    f = np.asarray(f, dtype=float).ravel()
    log_loss = np.log(np.asarray(loss, dtype=float).ravel())
    n = p.size
    w = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    if w.shape[1] != n:
        raise ValueError(f"weights have {w.shape[1]} columns but there are {n} points")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")
    b = n_problems or w.shape[0]
    if w.shape[0] not in (1, b):
        raise ValueError(f"weights have {w.shape[0]} rows for {b} problems")
    w = np.require(np.broadcast_to(w, (b, n)), float, ["C", "W"])  # one array type for the kernels
    l2e = np.broadcast_to(np.asarray(l2_exponents, dtype=float), (b,)).copy()
    l2c = np.broadcast_to(np.asarray(l2_coefficients, dtype=float), (b,)).copy()
    if np.any(l2e < 0) or np.any(l2c < 0):
        raise ValueError("L2 penalties must be non-negative")
    if not delta > 0:
        raise ValueError(f"huber_delta must be positive, got {delta}")
    return _Problem(form, p, f, log_loss, w, l2e, l2c, float(delta))


# ----------------------------------------------------------------------------------------------------
# batched engine
# ----------------------------------------------------------------------------------------------------
@dataclass
class BatchResult:
    """Best start of each of B problems: ``free`` (B, k), ``objective`` (B,), ``converged`` (B,),
    ``n_iter`` (B,) iterations of the winning start, ``start_index`` (B,) which start won, and of the starts
    still searched at the end (``n_final``), how many reached the best objective (``n_at_best``)."""

    form: LawForm
    free: np.ndarray
    objective: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    start_index: np.ndarray
    n_at_best: np.ndarray
    n_final: np.ndarray

    def params(self, b: int) -> dict[str, float]:
        return self.form.to_natural(self.free[b])


def fit_batch(
    p: Any,
    f: Any,
    loss: Any,
    form: str | LawForm = DEFAULT_FORM,
    weights: Any = None,
    starts: Any = None,
    *,
    l2_exponents: float | np.ndarray = 0.0,
    l2_coefficients: float | np.ndarray = 0.0,
    huber_delta: float = HUBER_DELTA,
    prune: Sequence[tuple[int, int]] | None = DEFAULT_PRUNE,
    max_iter: int = 500,
    ftol: float = 1e-10,
) -> BatchResult:
    """Solve B independent weighted fits of one form on shared points, each from its own starts.

    ``weights`` (B, n) (or (n,), or None for one unweighted problem) are per-point multiplicities:
    integer counts for a bootstrap resample, a 0/1 mask for a cross-validation training set.
    ``starts`` are free-parameter vectors, (S, k) shared by all problems or (B, S, k); default the
    form's grid. ``l2_exponents`` / ``l2_coefficients`` may be scalars or (B,) arrays, so one call can
    sweep a penalty grid. ``prune`` lists (iteration, keep) checkpoints at which each problem keeps its
    ``keep`` best starts; ``None`` or ``()`` runs every start to convergence. Inputs are not validated
    here (see :func:`check_fit_input`); points with zero weight may hold anything finite.
    """
    law = get_form(form)
    k = law.n_params
    w = None if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    st = law.initial_grid() if starts is None else np.asarray(starts, dtype=float)
    if st.ndim == 1:
        st = st[None, :]
    if st.shape[-1] != k:
        raise ValueError(f"starts have {st.shape[-1]} parameters but form {law.name!r} has {k}")
    n_prob = max(1 if w is None else w.shape[0], st.shape[0] if st.ndim == 3 else 1)
    if st.ndim == 2:
        st = np.broadcast_to(st, (n_prob,) + st.shape)
    if st.shape[0] != n_prob:
        raise ValueError(f"starts are given for {st.shape[0]} problems but weights for {n_prob}")
    problem = _make_problem(p, f, loss, law, w, l2_exponents, l2_coefficients, huber_delta, n_prob)
    n_starts = st.shape[1]

    theta = _clip(law, st.reshape(-1, k).copy())
    prob = np.repeat(np.arange(n_prob), n_starts)
    n_rows = theta.shape[0]
    obj, grad, hess = problem.evaluate(theta, prob)
    lam = np.full(n_rows, 1e-2)
    alive = np.isfinite(obj)
    done = ~alive
    converged = np.zeros(n_rows, bool)
    small_steps = np.zeros(n_rows, np.int64)
    iters = np.zeros(n_rows, np.int64)
    checkpoints = dict(prune or ())
    # the iterations run in segments between the pruning checkpoints, each row's in one compiled loop
    bounds = sorted({0, max_iter, *(it for it in checkpoints if 0 < it < max_iter)})
    for it0, it1 in zip(bounds[:-1], bounds[1:], strict=False):
        if it0 in checkpoints:
            alive &= _keep_best(obj, alive, n_prob, n_starts, checkpoints[it0])
        active = np.flatnonzero(alive & ~done)
        if active.size == 0:
            break
        kernels.levenberg_marquardt(
            active, it1 - it0, theta, obj, grad, hess, lam, small_steps, iters, done, converged,
            prob, *problem.kernel_args, _box(law), ftol, problem.scratch,
        )  # fmt: skip

    obj_b = np.where(alive, obj, np.inf).reshape(n_prob, n_starts)
    best = np.argmin(obj_b, axis=1)
    rows = np.arange(n_prob) * n_starts + best
    top = obj_b[np.arange(n_prob), best][:, None]
    return BatchResult(
        form=law,
        free=theta[rows],
        objective=obj[rows],
        converged=converged[rows] & np.isfinite(obj[rows]),
        n_iter=iters[rows],
        start_index=best,
        n_at_best=(np.isfinite(obj_b) & (obj_b - top <= 1e-6 * np.abs(top) + 1e-12)).sum(1),
        n_final=np.isfinite(obj_b).sum(1),
    )


def _clip(law: LawForm, theta: np.ndarray) -> np.ndarray:
    """Keep the search inside a box where every exp and product is finite (in place)."""
    box = _box(law)
    return np.clip(theta, -box, box, out=theta)


@functools.cache
def _box(law: LawForm) -> np.ndarray:
    """Half-widths of the search box per free parameter: LOG_CLIP for logarithms, EXPONENT_CLIP else."""
    return np.where(law.is_log_param, LOG_CLIP, EXPONENT_CLIP)


def _keep_best(obj: np.ndarray, alive: np.ndarray, n_prob: int, n_starts: int, keep: int) -> np.ndarray:
    """Mask of the ``keep`` lowest-objective live starts of each problem."""
    if keep >= n_starts:
        return np.ones_like(alive)
    scores = np.where(alive, obj, np.inf).reshape(n_prob, n_starts)
    order = np.argsort(scores, axis=1, kind="stable")[:, :keep]
    mask = np.zeros((n_prob, n_starts), bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask.ravel()


# ----------------------------------------------------------------------------------------------------
# one fit
# ----------------------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """A fitted law: natural ``params``, the ``free`` vector, the objective reached and how."""

    form: str
    params: dict[str, float]
    free: np.ndarray
    objective: float
    converged: bool
    n_points: int
    fit_seconds: float
    n_starts: int = 0
    n_iter: int = 0
    huber_delta: float = HUBER_DELTA
    l2_exponents: float = 0.0
    l2_coefficients: float = 0.0
    #: what the fit cannot tell (:func:`transferlaw.law.diagnostics.fit_diagnostics`)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def law(self) -> LawForm:
        return get_form(self.form)

    def predict(self, p: Any, f: Any) -> np.ndarray:
        """The fitted law's predicted loss at (p, f)."""
        return self.law.predict(self.params, p, f)

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "formula": self.law.formula,
            "params": dict(self.params),
            "free": [float(x) for x in self.free],
            "objective": float(self.objective),
            "converged": bool(self.converged),
            "n_points": int(self.n_points),
            "fit_seconds": float(self.fit_seconds),
            "n_starts": int(self.n_starts),
            "n_iter": int(self.n_iter),
            "huber_delta": float(self.huber_delta),
            "l2_exponents": float(self.l2_exponents),
            "l2_coefficients": float(self.l2_coefficients),
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitResult:
        """The fit of a record :meth:`to_dict` wrote (keys it lacks, in records older than them, get the
        values such a fit had: no diagnostics, no penalties)."""
        law = get_form(d["form"])
        params = {str(name): float(value) for name, value in d["params"].items()}
        if missing := [n for n in law.param_names if n not in params]:
            raise ValueError(f"fit of form {law.name!r}: missing parameter(s) {', '.join(missing)}")
        free = np.asarray(d["free"], float) if "free" in d else law.to_free(params)
        return cls(
            form=law.name,
            params=params,
            free=free,
            objective=float(d.get("objective", np.nan)),
            converged=bool(d.get("converged", True)),
            n_points=int(d.get("n_points", 0)),
            fit_seconds=float(d.get("fit_seconds", 0.0)),
            n_starts=int(d.get("n_starts", 0)),
            n_iter=int(d.get("n_iter", 0)),
            huber_delta=float(d.get("huber_delta", HUBER_DELTA)),
            l2_exponents=float(d.get("l2_exponents", 0.0)),
            l2_coefficients=float(d.get("l2_coefficients", 0.0)),
            diagnostics=dict(d.get("diagnostics", {})),
        )


def check_fit_input(
    p: Any,
    f: Any,
    loss: Any,
    form: str | LawForm = DEFAULT_FORM,
    names: Sequence[str] = ("p", "f", "loss"),
    weights: Any = None,
    count: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate fit data and return it as float arrays; ValueError names the culprit column.

    ``names`` are the column names used in messages (e.g. ``pretrain_step, finetune_size, eval_loss``).
    ``count=False`` skips the check that there are at least as many points as parameters (for callers that
    handle too few runs themselves).
    """
    law = get_form(form)
    p_name, f_name, loss_name = names
    arrays = []
    for values, name in ((p, p_name), (f, f_name), (loss, loss_name)):
        try:
            arr = np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError):
            raise ValueError(f"column {name!r} is not numeric") from None
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"column {name!r} has {int(bad.sum())} non-finite value(s)")
        arrays.append(arr)
    p_arr, f_arr, loss_arr = arrays
    if not (p_arr.size == f_arr.size == loss_arr.size):
        raise ValueError(
            f"columns {p_name!r}, {f_name!r}, {loss_name!r} differ in length "
            f"({p_arr.size}, {f_arr.size}, {loss_arr.size})"
        )
    if (loss_arr <= 0).any():
        raise ValueError(f"column {loss_name!r} has {int((loss_arr <= 0).sum())} non-positive loss value(s)")
    for arr, name, positive in ((p_arr, p_name, law.needs_positive_p), (f_arr, f_name, law.needs_positive_f)):
        bad = arr <= 0 if positive else arr < 0
        if bad.any():
            need = "positive" if positive else "non-negative"
            hint = (
                " (use form 'mikami_shifted' for step-0 checkpoints)" if positive and (arr == 0).any() else ""
            )
            raise ValueError(
                f"column {name!r} has {int(bad.sum())} value(s) that are not {need}, "
                f"as form {law.name!r} requires{hint}"
            )
    n_eff = p_arr.size if weights is None else int((np.asarray(weights, float).ravel() > 0).sum())
    if count and n_eff < law.n_params:
        raise ValueError(
            f"only {n_eff} point(s) to fit but form {law.name!r} has {law.n_params} parameters "
            f"({', '.join(law.param_names)})"
        )
    return p_arr, f_arr, loss_arr


def fit_law(
    p: Any,
    f: Any,
    loss: Any,
    form: str | LawForm = DEFAULT_FORM,
    *,
    weights: Any = None,
    l2_exponents: float = 0.0,
    l2_coefficients: float = 0.0,
    huber_delta: float = HUBER_DELTA,
    starts: Any = None,
    prune: Sequence[tuple[int, int]] | None = DEFAULT_PRUNE,
    max_iter: int = 500,
    names: Sequence[str] = ("p", "f", "loss"),
) -> FitResult:
    """Fit one law to points (p, f, loss): multi-start from the form's grid (or ``starts``), keep the best."""
    law = get_form(form)
    t0 = time.perf_counter()
    p_arr, f_arr, loss_arr = check_fit_input(p, f, loss, law, names=names, weights=weights)
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    st = law.initial_grid() if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    res = fit_batch(
        p_arr,
        f_arr,
        loss_arr,
        law,
        None if w is None else w[None, :],
        st,
        l2_exponents=l2_exponents,
        l2_coefficients=l2_coefficients,
        huber_delta=huber_delta,
        prune=prune,
        max_iter=max_iter,
    )
    n_points = p_arr.size if w is None else int((w > 0).sum())
    diagnostics = fit_diagnostics(
        law,
        res.free[0],
        p_arr,
        f_arr,
        loss_arr,
        w,
        n_at_optimum=int(res.n_at_best[0]),
        n_final_starts=int(res.n_final[0]),
    )
    return FitResult(
        form=law.name,
        params=res.params(0),
        free=res.free[0],
        objective=float(res.objective[0]),
        converged=bool(res.converged[0]),
        n_points=n_points,
        fit_seconds=time.perf_counter() - t0,
        n_starts=int(st.shape[0]),
        n_iter=int(res.n_iter[0]),
        huber_delta=float(huber_delta),
        l2_exponents=float(l2_exponents),
        l2_coefficients=float(l2_coefficients),
        diagnostics=diagnostics,
    )


def compile_kernels() -> float:
    """Compile the estimator's kernels now, as a first fit would, and return the seconds it took: numba
    caches them beside the package (or in ``NUMBA_CACHE_DIR``) for every later process on this machine.
    ``make setup`` runs it (``transferlaw compile-kernels``), so that the first fit of a study, or of each of
    a cluster's first jobs at once, does not pay it. One small fit calls every kernel with the argument
    types every fit, bootstrap and cross-validation passes, so nothing is left to compile after it."""
    t0 = time.perf_counter()
    law = get_form(DEFAULT_FORM)
    p, f = np.meshgrid([64.0, 256.0, 1024.0, 4096.0], [8.0, 32.0, 128.0], indexing="ij")
    truth = {"A": 5.0, "alpha": 0.5, "G": 0.5, "beta": 0.3, "E": 1.5, "c_p": 1.0, "c_f": 1.0}
    loss = law.predict({k: truth[k] for k in law.param_names}, p.ravel(), f.ravel())
    fit_law(p.ravel(), f.ravel(), loss * np.exp(0.01 * np.sin(np.arange(loss.size))), law)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------------
# tables of runs
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Columns:
    """The columns of a table of runs that every analysis of it reads, named once (by the command line's
    options, :func:`transferlaw.cli.table_columns`, or a workflow script) and passed to every table driver
    (:func:`fit_table`, :func:`transferlaw.law.bootstrap.bootstrap_table`, ...)."""

    #: one law per value of this column; None: the whole table is one group (keyed "all")
    group: str | None = "dataset"
    #: the law's p and f: the config's ``fit.p`` and ``fit.f`` (pre-training steps, fine-tune size)
    p: str = default("fit.p")
    f: str = default("fit.f")
    #: the loss the law predicts: the record's eval loss (the minimum over epochs)
    loss: str = "eval_loss"
    #: runs whose status here is not "ok" are left out (:func:`transferlaw.schema.fit_uses`); None, or a
    #: table without the column: every run is used
    status: str | None = "status"

    @property
    def names(self) -> tuple[str, str, str]:
        """(p, f, loss): how error messages name the law's inputs (:func:`fit_law`'s ``names``)."""
        return (self.p, self.f, self.loss)


@dataclass(frozen=True)
class RunGroup:
    """One group of a table of runs, as every analysis of a table sees it (:func:`table_groups`)."""

    key: Any  # the group's value (a plain Python scalar); "all" without a group column
    label: str  # "dataset=foo", or "table": how errors and warnings name it
    runs: pd.DataFrame  # its usable runs
    every: pd.DataFrame  # all its runs, whatever their status (a repeat of a cell is numbered after them)
    n_excluded: int  # its runs left out because their status is not "ok"
    #: every run of the group counted by status (usable ones under "ok")
    statuses: dict[str, int] = field(default_factory=dict)
    #: the epochs the runs stopped at the cap had trained (the cap), where the table says
    cap: int | None = None

    @property
    def n_runs(self) -> int:
        return len(self.runs) + self.n_excluded


def table_groups(df: pd.DataFrame, columns: Columns = Columns()) -> list[RunGroup]:
    """The one driver of the fit, bootstrap, cross-validation and advice of a table: checks that the columns
    exist, leaves out the runs a law does not use (:func:`transferlaw.schema.fit_uses`: those whose status,
    where the table has one, is not ``"ok"``) with one warning that counts them by status, and splits the
    rest by ``columns.group`` (``None``: the whole table, keyed ``"all"``). Whether a group's usable runs
    can be fitted at all is :func:`why_no_law`'s to say."""
    group, status = columns.group, columns.status
    needed = [c for c in (group, columns.p, columns.f, columns.loss) if c is not None]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise ValueError(
            f"missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"table has {', '.join(map(str, df.columns))}"
        )
    if group is not None and pd.isna(df[group]).any():
        raise ValueError(f"column {group!r} has missing values")
    has_status = status is not None and status in df.columns
    ok = fit_uses(df, status=status)
    if (~ok).any():
        counts = df.loc[~ok, status].value_counts()
        detail = ", ".join(f"{n} {s}" for s, n in counts.items())
        logger.warning(
            "excluding %d run(s) whose %r is not %r (%s)", int((~ok).sum()), status, STATUS_OK, detail
        )
    keys = df[group].to_numpy() if group is not None else np.full(len(df), "all", dtype=object)
    out = []
    for key in sorted(pd.unique(keys), key=str):
        in_group = keys == key
        sub = df.loc[in_group]
        statuses = {STATUS_OK: int(ok[in_group].sum())}
        if has_status:
            statuses.update(sub.loc[~ok[in_group], status].astype(str).value_counts().to_dict())
        capped = sub.loc[~ok[in_group] & (sub[status] == STATUS_MAX_EPOCHS)] if has_status else sub.iloc[:0]
        cap = int(capped["epochs"].max()) if len(capped) and "epochs" in capped.columns else None
        out.append(
            RunGroup(
                key=key.item() if isinstance(key, np.generic) else key,
                label=f"{group}={key!s}" if group is not None else "table",
                runs=df.loc[in_group & ok],
                every=sub,
                n_excluded=int((in_group & ~ok).sum()),
                statuses={s: int(n) for s, n in statuses.items()},
                cap=cap,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------------
# can a table be fitted at all?
# ----------------------------------------------------------------------------------------------------
#: the status of every analysis of a group whose law was fitted, and of one whose law could not be
STATUS_FITTED = "ok"
STATUS_NOT_FITTED = "not_fitted"
#: how every result of a group without a law says so, before the reason
NO_LAW = "no law fitted"
#: what to change, in words, where the caller does not name its settings (the workflow passes config keys:
#: :func:`transferlaw.config.remedy_keys`)
DEFAULT_KEYS: dict[str, str] = {
    "max_epochs": "the epoch cap (max_epochs)",
    "lr": "the learning rate (lr)",
}
#: where more than this share of a group's runs stopped at the epoch cap, its fit says so even when made
CAPPED_SHARE = 0.25
#: usable losses whose whole spread (in log loss) is below this do not move: there is no trend to fit
FLAT_LOG_SPREAD = 1e-6


@dataclass(frozen=True)
class NoLaw:
    """Why a group's runs cannot be fitted: ``cause`` (one word, for programs), ``reason`` (a sentence that
    counts the runs, says which were left out and why, and what to change) and ``keys``, the settings that
    would change it."""

    cause: str
    reason: str
    keys: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        """The fields every analysis of the group writes instead of a result."""
        return {
            "status": STATUS_NOT_FITTED,
            "cause": self.cause,
            "reason": self.reason,
            "keys": list(self.keys),
        }


def fitted(record: Mapping[str, Any]) -> bool:
    """Whether the JSON of a fit or bootstrap record holds a law; records written before statuses existed
    always do. Typed records say it themselves (:attr:`FitRecord.fitted`,
    :attr:`transferlaw.law.bootstrap.BootstrapSummary.fitted`)."""
    return record.get("status", STATUS_FITTED) == STATUS_FITTED


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def _at_cap(g: RunGroup) -> str:
    """The cap the group's capped runs stopped at, as " (15 epochs)", where the table says ("" if not)."""
    return f" ({g.cap} epoch{'s' if g.cap != 1 else ''})" if g.cap else ""


def _left_out(g: RunGroup, keys: Mapping[str, str]) -> tuple[list[str], list[str], list[str]]:
    """What happened to a group's excluded runs, in words, the changes that would make them usable, and
    the keys of those changes."""
    said, fixes, named = [], [], []
    capped = g.statuses.get(STATUS_MAX_EPOCHS, 0)
    if capped:
        said.append(f"{capped} stopped at the epoch cap{_at_cap(g)} while still improving")
        fixes.append(f"raise {keys['max_epochs']}")
        named.append(keys["max_epochs"])
    diverged = g.statuses.get(STATUS_DIVERGED, 0)
    if diverged:
        said.append(f"{diverged} diverged")
        fixes.append(f"lower {keys['lr']}")
        named.append(keys["lr"])
    other = {s: n for s, n in g.statuses.items() if s not in (STATUS_OK, STATUS_MAX_EPOCHS, STATUS_DIVERGED)}
    said += [f"{n} with status {s!r}" for s, n in other.items()]
    return said, fixes, named


def why_no_law(
    g: RunGroup,
    form: str | LawForm = DEFAULT_FORM,
    *,
    columns: Columns = Columns(),
    keys: Mapping[str, str] | None = None,
) -> NoLaw | None:
    """Whether a group's usable runs can be fitted with ``form``, and if not why (None when they can): the
    one place every analysis of a table (fit, bootstrap, cross-validation, advice) asks.

    A law cannot be fitted to no usable run (every run stopped at the epoch cap, or diverged), to fewer
    usable runs than the form has parameters, to runs at a single value of p or of f (the law's bend along
    that axis is unmeasured), or to losses that do not move. ``keys`` names what would change each
    (``max_epochs``, ``lr``, ``sizes``, ``revisions``: the workflow's config keys; default
    :data:`DEFAULT_KEYS`)."""
    from transferlaw.law.diagnostics import axis_words

    law = get_form(form)
    p, f, loss = columns.names
    keys = {**DEFAULT_KEYS, **(keys or {})}
    words = axis_words(p, f, _f_unit(g.runs, f))
    n, usable = g.n_runs, len(g.runs)
    said, fixes, named = _left_out(g, keys)
    of = f" of {n} ({'; '.join(said)})" if said else ""  # which runs were left out, and why
    to = {k: f" to {keys[k]}" if k in keys else "" for k in ("sizes", "revisions")}
    grid = tuple(keys[k] for k in ("sizes", "revisions") if k in keys)  # the keys that add runs
    more = f"add {words['f_nouns']}{to['sizes']} or {words['p_nouns']}{to['revisions']}"
    if usable == 0:
        if n == 0:
            return NoLaw("no_runs", f"no runs; {more}", grid)
        if g.statuses.get(STATUS_MAX_EPOCHS) == n:
            reason = f"all {_runs(n)} stopped at the epoch cap{_at_cap(g)} while still improving; {fixes[0]}"
            return NoLaw("max_epochs", reason, (keys["max_epochs"],))
        if g.statuses.get(STATUS_DIVERGED) == n:
            reason = f"all {_runs(n)} diverged (their loss became non-finite); {fixes[0]}"
            return NoLaw("diverged", reason, (keys["lr"],))
        reason = f"none of the {_runs(n)} is usable ({'; '.join(said)})"
        reason += f"; {' or '.join(fixes)}" if fixes else ""
        return NoLaw("no_usable_runs", reason, tuple(named))
    if usable < law.n_params:
        reason = (
            f"only {usable} usable run{'s' if usable != 1 else ''}{of} for the {law.n_params} parameters "
            f"of form {law.name!r}; {' or '.join([more, *fixes])}"
        )
        return NoLaw("too_few_runs", reason, (*grid, *named))
    for column, axis, key, cause in ((p, "p", "revisions", "one_p"), (f, "f", "sizes", "one_f")):
        values = pd.unique(g.runs[column])
        if len(values) < 2:
            reason = (
                f"every usable run{of} is at one {words[axis + '_noun']} ({column} = {values[0]}): the law "
                f"cannot tell how the loss moves along {words[axis + '_axis']}; "
                + " or ".join([f"add {words[axis + '_nouns']}{to[key]}", *fixes])
            )
            return NoLaw(cause, reason, (*([keys[key]] if key in keys else []), *named))
    values = pd.to_numeric(g.runs[loss], errors="coerce").to_numpy(float)
    if np.all(np.isfinite(values)) and np.all(values > 0) and np.ptp(np.log(values)) < FLAT_LOG_SPREAD:
        reason = (
            f"the losses of all {usable} usable runs{of} are the same ({values.min():.6g} to "
            f"{values.max():.6g}): they do not move with {words['p_axis']} or {words['f_axis']}, so there is "
            f"no law to fit; check that the runs train ({keys['lr']})"
        )
        return NoLaw("flat", reason, (keys["lr"],))
    return None


def capped_warning(g: RunGroup, keys: Mapping[str, str] | None = None) -> str | None:
    """A sentence where more than :data:`CAPPED_SHARE` of a group's runs stopped at the epoch cap (None
    otherwise): they are left out, so the law is fitted without the runs that learn slowest."""
    keys = {**DEFAULT_KEYS, **(keys or {})}
    capped, n = g.statuses.get(STATUS_MAX_EPOCHS, 0), g.n_runs
    if not n or capped <= CAPPED_SHARE * n:
        return None
    return (
        f"{capped} of {_runs(n)} ({capped / n:.0%}) stopped at the epoch cap{_at_cap(g)} while still "
        f"improving: their losses are not converged (upper bounds) and are left out, so the law is fitted "
        f"without the cells that learn slowest; raise {keys['max_epochs']}"
    )


def _f_unit(runs: pd.DataFrame, f: str) -> str | None:
    """The fine-tune size's unit where the table says (its ``finetune_unit`` column)."""
    if f == "finetune_size" and "finetune_unit" in runs.columns and len(runs):
        return str(runs["finetune_unit"].iloc[0])
    return None


#: every key a fit record's JSON may hold (:meth:`FitRecord.to_json`)
FIT_KEYS = frozenset(
    ["dataset", "group_column", "status", "form", "formula", "params", "free", "objective", "converged",
     "n_points", "fit_seconds", "n_starts", "n_iter", "huber_delta", "l2_exponents", "l2_coefficients",
     "diagnostics", "n_excluded", "p_column", "f_column", "loss_column", "f_unit", "warnings", "cause",
     "reason", "keys", "runs_by_status", "model", "method", "n_seeds", "model_n_params"]
)  # fmt: skip
#: what the workflow adds to a fit record: which model's and method's runs, how many seeds, the model's N
RUN_KEYS = ("model", "method", "n_seeds", "model_n_params")


@dataclass(frozen=True)
class FitRecord:
    """A group's law as :func:`fit_table` makes it and every analysis downstream reads it (figures, tables,
    summary, effective data, allocation, run noise, the command line): the law (``result``), or why there is
    none (``no_law``), with the columns it was fitted on and the runs it left out.

    Its JSON (``results/fits/<dataset>.json``, one group of ``transferlaw fit``'s output) is :meth:`to_json`,
    key for key and in the order the fit has always written it; :meth:`from_json` and :meth:`read` read it
    back (a record written before statuses existed holds a law)."""

    dataset: Any  # the group's value: the dataset's name; "all" for a whole table
    form: str  # the law's form (:mod:`transferlaw.law.forms`)
    columns: Columns = Columns()  # p, f and loss the law was fitted on; the group column
    result: FitResult | None = None  # the law; None where the runs cannot be fitted
    no_law: NoLaw | None = None  # why they cannot, and what to change (exactly one of the two is set)
    n_points: int = 0  # the usable runs the law was (or would have been) fitted to
    n_excluded: int = 0  # runs left out for their status
    runs_by_status: Mapping[str, int] = field(default_factory=dict)  # without a law: every run, by status
    f_unit: str | None = None  # the unit of the fine-tune size, where the table says
    warnings: tuple[str, ...] = ()  # what a reader of the law should know (:func:`capped_warning`)
    model: str | None = None  # the workflow's: the model and method whose runs these are,
    method: str | None = None
    n_seeds: int | None = None  # their seeds,
    model_n_params: int | None = None  # and the model's size N

    def __post_init__(self) -> None:
        if (self.result is None) == (self.no_law is None):
            raise ValueError(f"fit of {self.dataset!r}: give either the law or why there is none, not both")

    # ----- what readers ask -----
    @property
    def fitted(self) -> bool:
        """Whether the group has a law."""
        return self.result is not None

    @property
    def status(self) -> str:
        return STATUS_FITTED if self.fitted else STATUS_NOT_FITTED

    @property
    def law(self) -> LawForm:
        return get_form(self.form)

    @property
    def params(self) -> dict[str, float]:
        """The law's natural parameters ({} without a law)."""
        return dict(self.result.params) if self.result is not None else {}

    @property
    def diagnostics(self) -> dict[str, Any]:
        """What the fit cannot tell (:func:`transferlaw.law.diagnostics.fit_diagnostics`; {} without a law,
        or in a record older than diagnostics)."""
        return self.result.diagnostics if self.result is not None else {}

    @property
    def at_bound(self) -> tuple[str, ...]:
        """The parameters at the optimiser's bound: the runs cannot tell them from zero."""
        return tuple(self.diagnostics.get("at_bound", ()))

    @property
    def reason(self) -> str:
        """Why there is no law, and what to change ("" where there is one)."""
        return self.no_law.reason if self.no_law is not None else ""

    def predict(self, p: Any, f: Any) -> np.ndarray:
        """The law's predicted loss at (p, f)."""
        if self.result is None:
            raise ValueError(f"{self.dataset}: {NO_LAW}: {self.reason}")
        return self.law.predict(self.result.params, p, f)

    def runs(self, table: pd.DataFrame, *, usable: bool = True) -> pd.DataFrame:
        """The runs of ``table`` this law is fitted to (:func:`transferlaw.schema.fit_uses`): its dataset's
        (where it is grouped by dataset), model's and method's usable runs; ``usable=False``: every run of
        theirs, whatever its status (what figures draw and messages count)."""
        mask = fit_uses(
            table,
            dataset=self.dataset if self.columns.group == "dataset" else None,
            model=self.model,
            method=self.method,
            status=self.columns.status,
            usable=usable,
        )
        return table[mask]

    # ----- the JSON -----
    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data, in the order :func:`fit_table` writes it."""
        out: dict[str, Any] = {"dataset": self.dataset}
        if self.columns.group not in (None, "dataset"):
            out["group_column"] = self.columns.group
        columns: dict[str, Any] = {
            "p_column": self.columns.p,
            "f_column": self.columns.f,
            "loss_column": self.columns.loss,
        }
        if self.f_unit is not None:
            columns["f_unit"] = self.f_unit
        if self.result is not None:
            out["status"] = STATUS_FITTED
            out.update(self.result.to_dict())
            out.update(n_excluded=self.n_excluded, **columns)
        else:
            assert self.no_law is not None
            out.update(form=self.form, formula=self.law.formula, **self.no_law.record())
            out.update(n_points=self.n_points, n_excluded=self.n_excluded)
            out.update(runs_by_status=dict(self.runs_by_status), **columns)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        for key in RUN_KEYS:
            if (value := getattr(self, key)) is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any], source: str = "fit") -> FitRecord:
        """A record from its JSON (:meth:`to_json`); ValueError names ``source`` and what is wrong."""
        if not isinstance(d, Mapping) or "form" not in d:
            raise ValueError(f"{source}: not a fit record (no 'form')")
        if unknown := [k for k in d if k not in FIT_KEYS]:
            raise ValueError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in a fit record")
        status = d.get("status", STATUS_FITTED)
        if status not in (STATUS_FITTED, STATUS_NOT_FITTED):
            raise ValueError(
                f"{source}: status {status!r} is neither {STATUS_FITTED!r} nor {STATUS_NOT_FITTED!r}"
            )
        try:
            result = FitResult.from_dict(d) if status == STATUS_FITTED else None
        except (KeyError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None
        no_law = None
        if result is None:
            no_law = NoLaw(str(d.get("cause", "")), str(d.get("reason", "")), tuple(d.get("keys", ())))
        default = Columns()  # a record older than its columns was fitted on the defaults
        columns = Columns(
            group=d.get("group_column", "dataset"),
            p=d.get("p_column", default.p),
            f=d.get("f_column", default.f),
            loss=d.get("loss_column", default.loss),
        )
        return cls(
            dataset=d.get("dataset"),
            form=get_form(d["form"]).name,
            columns=columns,
            result=result,
            no_law=no_law,
            n_points=int(d.get("n_points", result.n_points if result is not None else 0)),
            n_excluded=int(d.get("n_excluded", 0)),
            runs_by_status={str(k): int(v) for k, v in d.get("runs_by_status", {}).items()},
            f_unit=d.get("f_unit"),
            warnings=tuple(d.get("warnings", ())),
            **{key: d.get(key) for key in RUN_KEYS},
        )

    @classmethod
    def read(cls, path: str | Path) -> FitRecord:
        """The record of one law from its JSON file (the workflow's ``results/fits/<dataset>.json``)."""
        return cls.from_json(_read_json(path), str(path))

    def with_runs(self, **run: Any) -> FitRecord:
        """The record with the workflow's :data:`RUN_KEYS` (model, method, n_seeds, model_n_params) set."""
        if unknown := [k for k in run if k not in RUN_KEYS]:
            raise TypeError(
                f"unknown run key(s) {', '.join(unknown)}; a fit record has {', '.join(RUN_KEYS)}"
            )
        return dataclasses.replace(self, **run)


def _read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None


def read_fits(path: str | Path) -> dict[str, FitRecord]:
    """Every law of a JSON file, keyed by group: one fit (the workflow's ``results/fits/<dataset>.json``)
    or one per group (``transferlaw fit``'s output, keyed by group value)."""
    obj = _read_json(path)
    if isinstance(obj, Mapping) and "form" in obj:  # one fit (the workflow's)
        record = FitRecord.from_json(obj, str(path))
        return {str(record.dataset): record}
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: not a fit record nor fits keyed by group")
    # a group's record names its group; one that does not is the group its key says
    return {
        str(key): FitRecord.from_json(
            {"dataset": key, **rec} if isinstance(rec, Mapping) else rec, f"{path}: {key}"
        )
        for key, rec in obj.items()
    }


def fits_json(fits: Mapping[str, FitRecord]) -> dict[str, dict[str, Any]]:
    """Fits keyed by group as JSON-ready data (what ``transferlaw fit`` writes)."""
    return {key: fit.to_json() for key, fit in fits.items()}


def fit_table(
    df: pd.DataFrame,
    *,
    form: str = DEFAULT_FORM,
    columns: Columns = Columns(),
    keys: Mapping[str, str] | None = None,
    record_unfitted: bool = False,
    **fit_kwargs: Any,
) -> dict[str, FitRecord]:
    """Fit one law per group of a table of runs (:func:`table_groups`), keyed by group value. Extra keyword
    arguments go to :func:`fit_law`.

    A group whose runs cannot be fitted (:func:`why_no_law`) raises ValueError naming it, or with
    ``record_unfitted`` gets a record that says so (``no_law``: its cause, reason and keys) so that the
    other groups keep their fits. ``warnings`` lists what a reader of a fitted law should know
    (:func:`capped_warning`)."""
    law = get_form(form)
    p, f, loss = columns.names
    out: dict[str, FitRecord] = {}
    for g in table_groups(df, columns):
        base = dict(dataset=g.key, form=law.name, columns=columns, n_excluded=g.n_excluded)
        base["f_unit"] = _f_unit(g.runs, f)
        if (no_law := why_no_law(g, law, columns=columns, keys=keys)) is not None:
            if not record_unfitted:
                raise ValueError(f"{g.label}: {NO_LAW}: {no_law.reason}")
            logger.warning("%s: %s: %s", g.label, NO_LAW, no_law.reason)
            out[str(g.key)] = FitRecord(
                **base, no_law=no_law, n_points=len(g.runs), runs_by_status=g.statuses
            )
            continue
        try:
            result = fit_law(g.runs[p], g.runs[f], g.runs[loss], law, names=columns.names, **fit_kwargs)
        except ValueError as err:
            extra = f" after excluding {g.n_excluded} run(s)" if g.n_excluded else ""
            raise ValueError(f"{g.label}{extra}: {err}") from None
        if not result.converged:
            logger.warning(
                "%s: fit of form %r did not converge (objective %.6g after %d iterations)",
                g.label,
                law.name,
                result.objective,
                result.n_iter,
            )
        if result.diagnostics["at_bound"]:
            logger.warning(
                "%s: %s at the optimiser's bound: the runs cannot tell %s from %s",
                g.label,
                ", ".join(result.diagnostics["at_bound"]),
                "it" if len(result.diagnostics["at_bound"]) == 1 else "them",
                "zero (or the search box)",
            )
        warning = capped_warning(g, keys)
        if warning:
            logger.warning("%s: %s", g.label, warning)
        out[str(g.key)] = FitRecord(
            **base, result=result, n_points=result.n_points, warnings=(warning,) if warning else ()
        )
    return out
