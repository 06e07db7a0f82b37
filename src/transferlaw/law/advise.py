"""Which runs next: the runs that shrink the 95% interval of G (or of another parameter) the most per unit
of cost.

Given a dataset's runs so far and the cells (p, f) that could be run, :func:`advise` returns ``n_runs``
of those cells in the order to run them (a cell may come back: a replicate), each with the expected width
of the target's interval once it has run.

**Method: Bayesian c-optimal design over the bootstrap ensemble, batch-greedy.**

* *Ensemble.* The law is fitted to the runs and refitted to bootstrap resamples of them
  (:func:`transferlaw.law.bootstrap.bootstrap_fit`, the procedure behind the interval to be shrunk).
  Each refit θ_b is a law the runs cannot rule out; their spread is the uncertainty the advice is to remove.
* *Per member.* Under θ_b the runs carry the information M_b = J_bᵀJ_b about the free parameters (J_b: the
  Jacobian of log L at the runs; the fit is in log space with one noise level for all runs), and the
  target's variance is v_b = cᵀM_b⁻¹c. A run at x adds j_x j_xᵀ and lowers v_b by
  (cᵀM_b⁻¹j_x)² / (1 + j_xᵀM_b⁻¹j_x) (Sherman-Morrison): closed form, for every candidate and member at
  once. Coefficients are free parameters as logarithms, so the relative reduction of v_b is that of G's
  variance itself, and the noise level cancels from it: no noise estimate is needed.
* *Criterion.* The mean over members of the **relative** reduction of v_b, per unit cost of x: to first
  order the expected fall of log var(target), the log utility of Bayesian c-optimality. Relative, so each
  plausible law counts alike; in absolute terms the few members with a wild G (G = 3 where the truth is
  0.17) would choose every run.
* *Batch-greedy.* After each pick every member's M_b⁻¹ gets the rank-one update of that run, so the next
  pick sees what the batch already measures; a replicate is chosen only where it still pays.
* *Guard.* The design is scored under the same ensemble against :data:`N_RANDOM` random designs of as
  many runs (per unit of their cost); where one scores better it is returned instead, ordered greedily,
  and the message says so. The message also gives the width the ensemble expects from random runs.
* *One-sided interval.* Where the target's interval now reaches its low bound (the study says "G < x") its
  width is its upper end, which the members with the largest G set; the criterion then counts only the
  members in the top :data:`UPPER_SHARE` of the ensemble's G.
* *Second guard: simulated studies.* The criterion is first order and cannot see an interval that ends far
  out in a tail. On Table 2's genome-like law G is not identified by 40-65 runs (the interval is one-sided,
  its upper end the ceiling G + E that E >= 0 allows, or a tail of resamples with a large G and a steep
  beta), and there a greedy design ended with an upper limit of 1,900 where random runs gave 12. So the
  design is simulated (the study's bootstrap on runs drawn from the ensemble's laws, see *Width*) beside
  two that hedge, space-filling runs and half the greedy batch completed by space-filling runs, with the
  same laws and noise draws; the one with the smallest mean log width over the paired studies is advised
  (one study far out in a tail counts, up to :data:`TAIL_CAP`), and the message says so.

Why not the alternatives (the issue's own trial, and what ``benchmarks/advise.py``-style simulations
measured while this was written, 20 random runs + 20 chosen, 8 seeds x 5 Table 2 datasets, median
advised/random ratio of G's interval width; per-dataset medians in brackets):

* a *local* c-optimal design at the point estimate: 1.5-7.5x worse than random on the datasets with small G
  or large E (the issue). With few runs the estimate can sit at G = 0, where its Jacobian says no run
  measures G, or in a wrong basin; averaging over the ensemble hedges over the laws the runs allow;
* the ensemble-Kalman variance reduction (regress G on the members' predictions at each candidate and
  take the linear-Gaussian update): 0.62, with worst tables 1.5-2.6x worse than random on three datasets;
  with a per-cell discrepancy term that spreads the picks over 20 cells: 0.60; half of it replaced by
  space-filling runs: 0.64 (0.98 on house cat genome);
* this criterion: 0.47 [0.36-0.76], worst tables 0.94-1.31x. ``benchmarks/RESULTS.md`` has the benchmark's
  own figures (0.62 [0.49-0.91] on its 6 seeds).

**Too few runs.** Where the fit itself cannot be made (:func:`transferlaw.law.fit.why_no_law`: fewer usable
runs than the form has parameters, one value of p or f, every run stopped at the epoch cap or diverged) the
advice says why and what to change (status ``not_fitted``); with no more runs than parameters, fewer than
:data:`MIN_LEVELS` distinct values of p or of f, or a fit that fails, the law cannot be trusted for a design
and the advice says so (status ``space_filling``). Both propose a space-filling first batch: greedy maximin
in (log p, log f), each axis scaled to the candidates' range, away from the runs and the earlier picks (ties
go to the cheaper cell).

**Cost.** By default every run costs the same. A cost is a column of the candidates or an expression over
their columns (:func:`candidate_costs`); columns the candidates lack are the runs' values at the nearest
run (the same cell where it has run), so ``finetune_size * epochs`` prices a cell by its size and the
epochs such runs took.

**Width.** The expected width after the batch is the median width of :data:`N_SIMS` simulated studies
(:func:`simulate_widths`): the runs plus the batch drawn from the ensemble's laws with the fit's noise,
bootstrapped as the study does; each pick takes its share of the way from the width now by the
criterion's path. Where most simulated intervals reach the top of the search box (G = e^60: the runs bound
it from neither side) there is no width worth a number. **Promise.** One study's width varies about its
expectation; the expected width is promised to within :data:`PROMISE_BAND` only where that spread, as the
simulated studies show it and widened by what the benchmark measured, keeps it there
(:func:`why_no_promise`); otherwise the message says it cannot promise it, and why.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.defaults import default
from transferlaw.law.bootstrap import BootstrapSummary, bootstrap_fit
from transferlaw.law.diagnostics import at_bound, describe
from transferlaw.law.fit import (
    DEFAULT_FORM,
    NO_LAW,
    STATUS_NOT_FITTED,
    Columns,
    FitResult,
    RunGroup,
    check_fit_input,
    fit_law,
    table_groups,
    why_no_law,
)
from transferlaw.law.forms import LawForm, get_form

logger = logging.getLogger(__name__)

STATUS_OK = "ok"
#: too few runs to fit the law: a space-filling first batch
STATUS_SPACE_FILLING = "space_filling"
#: runs recommended per group when none is given (config ``analysis.advice_runs``)
DEFAULT_RUNS: int = default("analysis.advice_runs")
DEFAULT_TARGET: str = default("analysis.advice_target")
DEFAULT_COST: str | None = default("analysis.advice_cost")
DEFAULT_SAMPLES: int = default("analysis.advice_samples")
DEFAULT_SEED: int = default("analysis.advice_seed")
#: random designs the advised one is checked against
N_RANDOM = 32
#: distinct values of p and of f below which the law's curvature along that axis cannot be fitted
MIN_LEVELS = 3
#: refits needed for an ensemble (fewer finite ones: the advice falls back to space-filling)
MIN_MEMBERS = 10
#: ridge, relative to the largest diagonal entry, that keeps M_b invertible for a member whose target is
#: at the bound (its term's Jacobian column is ~0: no run measures it under that law, and it counts 0)
RIDGE = 1e-10
#: the criteria :func:`advise` knows: ``cell``, the default (:class:`CellInformation`), and ``fisher``, the
#: replicate-blind one it replaced (:class:`EnsembleInformation`), kept to be measured against
CRITERIA = ("cell", "fisher")
#: ρ: the variance a cell's runs share (the law's misfit there; in a study, the fine-tune subset its seeds
#: share), in units of one run's own noise variance
DISCREPANCY = 1.0
#: leverage of a cell beyond which the criterion counts it as this (1 would be an infinite variance)
MAX_LEVERAGE = 0.98
#: simulated studies behind the expected width, and the resamples each is bootstrapped with
N_SIMS = 8
SIM_SAMPLES = 100
#: the width is promised when this share of the simulated studies come within this band of it, their log
#: distance from it widened by PROMISE_INFLATE (:func:`why_no_promise`)
PROMISE_BAND = 0.25
PROMISE_SHARE = 0.8
PROMISE_INFLATE = 1.5
#: where the target's interval is one-sided (an upper limit), the criterion counts the members whose target is
#: in this top share of the ensemble (None: all members)
UPPER_SHARE: float | None = 0.5
#: the largest factor one simulated study counts with when two designs are compared (:func:`_narrower`)
TAIL_CAP = 1e3
#: what :func:`advise_table` adds to each candidate's columns
ADVICE_COLUMNS = [
    "rank",
    "replicate",
    "cost",
    "expected_width",
    "width_reduction",
    "promised",
    "target",
    "status",
    "message",
]


@dataclass
class Advice:
    """The runs to do next: ``picks`` (indices into the candidates, in run order), their ``cost``, how many
    runs their cell has before each (``replicate``: 0 for a cell not yet run), the ``expected_width`` of
    the target's 95% interval after each (NaN when no law could be fitted, or the interval would reach the
    top of the search box), the width now, whether the last expected width is ``promised`` (to within
    :data:`PROMISE_BAND`: :func:`why_no_promise`), the simulated widths, the ``design`` advised, whether
    the target is ``identified`` now, and a status with its message."""

    status: str
    message: str
    target: str
    picks: np.ndarray
    cost: np.ndarray
    expected_width: np.ndarray
    width: float = float("nan")
    random_width: float = float("nan")
    replicate: np.ndarray | None = None
    promised: bool = False
    simulated: np.ndarray | None = None
    #: which design was advised: ``greedy``, ``random`` (the criterion's guard), ``space-filling`` or ``half
    #: greedy, half space-filling`` (the simulated studies' guard), or ``space-filling first batch``
    design: str = "greedy"
    #: whether the target's interval now (the one the message states) is identified, both ends inside the
    #: bounds (None where no law was fitted)
    identified: bool | None = None

    def __post_init__(self) -> None:
        if self.replicate is None:
            self.replicate = np.zeros(len(self.picks), dtype=int)

    @property
    def width_reduction(self) -> np.ndarray:
        """How much each run narrows the interval, given the runs before it."""
        return -np.diff(np.concatenate([[self.width], self.expected_width]))


# ----------------------------------------------------------------------------------------------------
# the ensemble's information
# ----------------------------------------------------------------------------------------------------
class EnsembleInformation:
    """Each member's M_b⁻¹ for the runs so far, and the candidates' Jacobians under each member: the
    variance of the target as if every run were an independent draw of a correct law (the Fisher
    information), and what one more run at each candidate would remove from it."""

    def __init__(
        self,
        law: LawForm,
        members: np.ndarray,
        p: np.ndarray,
        f: np.ndarray,
        cand_p: np.ndarray,
        cand_f: np.ndarray,
        target: int,
    ) -> None:
        _, j_runs = law.log_predict(members, p, f, jacobian=True)  # (B, n, k)
        _, j_cand = law.log_predict(members, cand_p, cand_f, jacobian=True)  # (B, m, k)
        ok = np.isfinite(j_runs).all((1, 2)) & np.isfinite(j_cand).all((1, 2))
        info = np.einsum("bni,bnj->bij", j_runs[ok], j_runs[ok])
        k = law.n_params
        ridge = RIDGE * np.diagonal(info, axis1=1, axis2=2).max(1) + 1e-300
        self.minv = np.linalg.inv(info + ridge[:, None, None] * np.eye(k))
        self.j_cand = j_cand[ok]
        self.kept = ok
        #: each member's weight in the criterion (uniform; :meth:`weigh` changes it)
        self.w = np.full(int(ok.sum()), 1.0 / max(int(ok.sum()), 1))
        self.target = target
        self.v0 = self.minv[:, target, target].copy()

    @property
    def n_members(self) -> int:
        return self.minv.shape[0]

    def weigh(self, members: np.ndarray, upper: float) -> None:
        """Count only the members whose target is in the top ``upper`` share of the ensemble (of the
        ``members`` the information was built from): where the interval is one-sided its width is its
        upper end, which the members with the largest target set."""
        value = members[self.kept, self.target]
        keep = value >= np.quantile(value, 1.0 - upper)
        self.w = keep / keep.sum()

    def relative_gain(self) -> np.ndarray:
        """(m,): the mean over members of the share of v_b one more run at each candidate removes."""
        a = np.einsum("bk,bmk->bm", self.minv[:, self.target, :], self.j_cand)
        q = np.einsum("bmk,bkl,bml->bm", self.j_cand, self.minv, self.j_cand)
        v = self.minv[:, self.target, self.target]
        return self.w @ (a * a / (1.0 + q) / v[:, None])

    def score(self) -> np.ndarray:
        """(m,): the criterion's value of one more run at each candidate (larger is better)."""
        return self.relative_gain()

    def add(self, j: int) -> None:
        """Count one more run at candidate ``j`` (rank-one update of every member)."""
        x = self.j_cand[:, j, :]
        mx = np.einsum("bkl,bl->bk", self.minv, x)
        self.minv -= np.einsum("bk,bl->bkl", mx, mx) / (1.0 + np.einsum("bk,bk->b", x, mx))[:, None, None]

    def log_ratio(self) -> float:
        """mean_b log(v_b now / v_b before any pick): the expected fall of log var(target), <= 0."""
        return float(self.w @ np.log(self.minv[:, self.target, self.target] / self.v0))

    def copy(self) -> EnsembleInformation:
        """A copy to add runs to (the Jacobians are shared, never changed)."""
        new = copy.copy(self)
        new.minv = self.minv.copy()
        return new


class CellInformation(EnsembleInformation):
    """The variance of the target as the study's bootstrap measures it: cells (p, f) are what it resamples,
    each with all its runs, and a cell's runs share a discrepancy no replicate averages away.

    Per member b, a cell c with r_c runs and Jacobian j_c (log L's) has a mean residual made of the runs'
    noise (variance σ²/r_c) and the cell's own discrepancy δ_c (variance ρσ²: the law's misfit there, and in
    a real study the fine-tune subset the cell's seeds share). The fit weighs the cell by r_c, so the
    target's variance is the sandwich

        V_b = Σ_c a_c² (r_c + ρ r_c²) σ² / (1 - h_c)²,   a_c = (M_b⁻¹ j_c)_target,  h_c = r_c j_cᵀM_b⁻¹j_c,

    with M_b = Σ_c r_c j_c j_cᵀ. The (1 - h_c)² is the leverage correction of a resampling variance (HC3,
    by cell): a design whose cells each carry much of the fit (a few corners with many replicates) is one
    whose resamples, missing one of them, wander far, and its interval is wide though its Fisher information
    is large. σ² cancels from V_b'/V_b; ρ (:data:`DISCREPANCY`) and the leverage cap (:data:`MAX_LEVERAGE`)
    are the criterion's two settings. One more run at candidate x is a rank-one update of M_b, so V_b after
    it is closed form for every candidate and member at once."""

    def __init__(
        self,
        law: LawForm,
        members: np.ndarray,
        p: np.ndarray,
        f: np.ndarray,
        cand_p: np.ndarray,
        cand_f: np.ndarray,
        target: int,
        discrepancy: float | None = None,
    ) -> None:
        super().__init__(law, members, p, f, cand_p, cand_f, target)
        self.rho = DISCREPANCY if discrepancy is None else float(discrepancy)
        # cells: the candidates, then the run cells that are not candidates; r counts runs per cell
        index = {(a, b): i for i, (a, b) in enumerate(zip(cand_p.tolist(), cand_f.tolist(), strict=True))}
        extra: list[tuple[float, float]] = []
        run_cell = np.empty(p.size, dtype=int)
        for i, key in enumerate(zip(p.tolist(), f.tolist(), strict=True)):
            if key not in index:
                index[key] = cand_p.size + len(extra)
                extra.append(key)
            run_cell[i] = index[key]
        self.r = np.bincount(run_cell, minlength=cand_p.size + len(extra)).astype(float)
        j_extra = np.zeros((self.n_members, 0, law.n_params))
        if extra:
            ep, ef = (np.array(v, dtype=float) for v in zip(*extra, strict=True))
            j_extra = law.log_predict(members[self.kept], ep, ef, jacobian=True)[1]
        self.j_cells = np.concatenate([self.j_cand, j_extra], axis=1)  # (B, N, k)
        v0 = self.variance()
        good = np.isfinite(v0) & (v0 > 0) & np.isfinite(self.j_cells).all((1, 2))
        self.minv, self.j_cand, self.j_cells = self.minv[good], self.j_cand[good], self.j_cells[good]
        self.kept[np.flatnonzero(self.kept)[~good]] = False
        self.w = np.full(int(good.sum()), 1.0 / max(int(good.sum()), 1))
        self.v0 = v0[good]

    def _weight(self, r: np.ndarray, h: np.ndarray) -> np.ndarray:
        return (r + self.rho * r * r) / (1.0 - np.minimum(h, MAX_LEVERAGE)) ** 2

    def variance(self) -> np.ndarray:
        """(B,): V_b / σ² for the runs and picks so far."""
        act = np.flatnonzero(self.r)
        j = self.j_cells[:, act, :]
        mj = np.einsum("bkl,bnl->bnk", self.minv, j)
        a = mj[:, :, self.target]
        h = self.r[act] * np.einsum("bnk,bnk->bn", j, mj)
        return (a * a * self._weight(self.r[act], h)).sum(1)

    def trial(self) -> np.ndarray:
        """(B, m): V_b / σ² after one more run at each candidate."""
        act = np.flatnonzero(self.r)
        j = self.j_cells[:, act, :]  # (B, A, k)
        u = np.einsum("bkl,bml->bmk", self.minv, self.j_cand)  # M⁻¹ j_x, (B, m, k)
        d = 1.0 + np.einsum("bmk,bmk->bm", self.j_cand, u)  # 1 + j_xᵀM⁻¹j_x
        mj = np.einsum("bkl,bnl->bnk", self.minv, j)
        a = mj[:, :, self.target]  # (B, A)
        hcc = np.einsum("bnk,bnk->bn", j, mj)  # j_cᵀM⁻¹j_c
        hcx = np.einsum("bnk,bmk->bnm", j, u)  # j_cᵀM⁻¹j_x, (B, A, m)
        ax = u[:, :, self.target]  # (B, m)
        a_new = a[:, :, None] - ax[:, None, :] * hcx / d[:, None, :]
        h_new = hcc[:, :, None] - hcx * hcx / d[:, None, :]
        r_new = np.broadcast_to(self.r[act][:, None], (act.size, d.shape[1])).copy()
        m = d.shape[1]
        here = act < m  # active cells that are candidates: one more run there
        r_new[np.flatnonzero(here), act[here]] += 1.0
        v = (a_new * a_new * self._weight(r_new[None], r_new[None] * h_new)).sum(1)
        fresh = self.r[:m] == 0  # a candidate not yet run adds a cell of its own
        own = (ax / d) ** 2 * self._weight(np.ones(1), (d - 1.0) / d)
        return v + np.where(fresh[None, :], own, 0.0)

    def score(self) -> np.ndarray:
        """(m,): the expected fall of log V (mean over members) from one more run at each candidate."""
        return -(self.w @ np.log(self.trial() / self.variance()[:, None]))

    def add(self, j: int) -> None:
        super().add(j)
        self.r = self.r.copy()
        self.r[j] += 1.0

    def log_ratio(self) -> float:
        """mean_b log(V_b now / V_b before any pick), <= 0 where the picks help."""
        return float(self.w @ np.log(self.variance() / self.v0))

    def copy(self) -> CellInformation:
        new = super().copy()
        new.r = self.r.copy()
        return new


def greedy_design(
    info: EnsembleInformation, n_runs: int, cost: np.ndarray, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Batch-greedy picks (the criterion's gain per cost, ties to the first candidate) and the log-variance
    ratio after each. ``allowed`` (a multiset of candidate indices) restricts the picks to it."""
    left = None if allowed is None else np.bincount(allowed, minlength=cost.size)
    picks, ratios = [], []
    for _ in range(n_runs):
        score = info.score() / cost
        if left is not None:
            score = np.where(left > 0, score, -np.inf)
        j = int(np.argmax(score))
        info.add(j)
        if left is not None:
            left[j] -= 1
        picks.append(j)
        ratios.append(info.log_ratio())
    return np.array(picks, dtype=int), np.array(ratios)


def design_log_ratio(info: EnsembleInformation, design: Sequence[int]) -> float:
    """The expected fall of log var(target) from a whole design, under the ensemble."""
    trial = info.copy()
    for j in design:
        trial.add(int(j))
    return trial.log_ratio()


# ----------------------------------------------------------------------------------------------------
# too few runs: a space-filling batch
# ----------------------------------------------------------------------------------------------------
def _unit_coordinates(
    p: np.ndarray, f: np.ndarray, cand_p: np.ndarray, cand_f: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(log p, log f) of runs and candidates scaled to the candidates' range (log1p where a value is 0)."""
    runs_u, cands_u = [], []
    for runs, cands in ((p, cand_p), (f, cand_f)):
        lg = np.log1p if (np.concatenate([runs, cands]) <= 0).any() else np.log
        lo, span = lg(cands).min(), np.ptp(lg(cands)) or 1.0
        runs_u.append((lg(runs) - lo) / span)
        cands_u.append((lg(cands) - lo) / span)
    return np.column_stack(runs_u), np.column_stack(cands_u)


def space_filling(
    p: np.ndarray, f: np.ndarray, cand_p: np.ndarray, cand_f: np.ndarray, n_runs: int, cost: np.ndarray
) -> np.ndarray:
    """Greedy maximin picks: each the candidate farthest from the runs and the earlier picks (ties: the
    cheaper, then the first). Where every candidate has run or been picked (all at distance 0), the cell with
    the fewest runs and picks so far, then the one farthest from the batch's earlier picks: the batch spreads
    its replicates over the grid instead of piling them on one cell."""
    runs_u, cand_u = _unit_coordinates(p, f, cand_p, cand_f)
    nearest = np.full(cand_u.shape[0], np.inf)
    if runs_u.size:
        nearest = np.sqrt(((cand_u[:, None, :] - runs_u[None, :, :]) ** 2).sum(-1)).min(1)
    labels = _cells(np.r_[p, cand_p], np.r_[f, cand_f])
    run_labels, labels = labels[: p.size], labels[p.size :]
    count = np.bincount(run_labels, minlength=labels.max() + 1)[labels].astype(float)
    from_picks = np.full(cand_u.shape[0], np.inf)
    picks = []
    for _ in range(n_runs):
        tie = np.flatnonzero(nearest >= nearest.max() - 1e-12)
        if nearest.max() <= 1e-12:  # every candidate has run or been picked: spread the replicates
            tie = tie[count[tie] <= count[tie].min()]
            tie = tie[from_picks[tie] >= from_picks[tie].max() - 1e-12]
        j = int(tie[np.argmin(cost[tie])])
        picks.append(j)
        count[labels == labels[j]] += 1
        step = np.sqrt(((cand_u - cand_u[j]) ** 2).sum(-1))
        nearest, from_picks = np.minimum(nearest, step), np.minimum(from_picks, step)
    return np.array(picks, dtype=int)


def too_few_runs(p: np.ndarray, f: np.ndarray, form: str | LawForm) -> str | None:
    """Why the runs cannot fit the law (None when they can)."""
    law = get_form(form)
    if p.size <= law.n_params:
        return f"only {p.size} run(s) for the {law.n_params} parameters of form {law.name!r}"
    for values, axis in ((p, "p"), (f, "f")):
        levels = np.unique(values).size
        if levels < MIN_LEVELS:
            return f"only {levels} distinct value(s) of {axis} (the law needs {MIN_LEVELS} to bend along it)"
    return None


# ----------------------------------------------------------------------------------------------------
# advice for one set of runs
# ----------------------------------------------------------------------------------------------------
def _checked_request(form: str | LawForm, target: str, n_runs: int) -> LawForm:
    """The form, once the target is one of its parameters and at least one run is asked for."""
    law = get_form(form)
    if target not in law.param_names:
        raise ValueError(
            f"target {target!r} is not a parameter of form {law.name!r} ({', '.join(law.param_names)})"
        )
    if n_runs < 1:
        raise ValueError(f"the number of runs to advise must be at least 1, got {n_runs}")
    return law


def _cells(p: np.ndarray, f: np.ndarray) -> np.ndarray:
    """A label per run: its cell (p, f), numbered in order of first appearance, as the study's bootstrap
    numbers them (:func:`transferlaw.law.bootstrap.bootstrap_table`)."""
    return pd.factorize(pd.Series(list(zip(p.tolist(), f.tolist(), strict=True))))[0]


def simulate_widths(
    law: LawForm,
    base: FitResult,
    members: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    loss: np.ndarray,
    new_p: np.ndarray,
    new_f: np.ndarray,
    target: str,
    *,
    n_sims: int = N_SIMS,
    n_samples: int = SIM_SAMPLES,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """The width of ``target``'s interval in ``n_sims`` simulated studies: the runs (p, f, loss) plus new
    runs at (new_p, new_f), each drawn from a member of the ensemble (a law the runs allow) with the fit's
    noise (the RMS log residual, corrected for the parameters fitted), then bootstrapped as the study does
    (cells resampled, ``n_samples`` resamples). NaN where a simulated interval reaches the top of the
    search box. This is the advice's own procedure run forward, so it needs no correction measured on
    other data; what it cannot see is a law outside the form, whose misfit it treats as noise."""
    resid = np.log(loss) - law.log_predict(np.asarray(base.free)[None, :], p, f)[0]
    sigma = float(np.sqrt(np.mean(resid**2) * p.size / max(p.size - law.n_params, 1)))
    rng = np.random.default_rng([seed, 21])
    all_p, all_f = np.r_[p, new_p], np.r_[f, new_f]
    cells = _cells(all_p, all_f)
    widths = np.full(n_sims, np.nan)
    for s in range(n_sims):
        member = members[rng.integers(len(members))]
        mean = law.log_predict(member[None, :], new_p, new_f)[0]
        new_loss = np.exp(mean + rng.normal(0.0, sigma, new_p.size))
        boot = bootstrap_fit(
            all_p,
            all_f,
            np.r_[loss, new_loss],
            law,
            n_samples=n_samples,
            seed=seed + s,
            base=base,
            cells=cells,
        )
        entry = boot.summary()[target]
        if "high" not in entry.get("bound", []):
            widths[s] = entry["ci_high"] - entry["ci_low"]
    return widths


def _hedges(
    p: np.ndarray, f: np.ndarray, cand_p: np.ndarray, cand_f: np.ndarray, picks: np.ndarray, cost: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """The designs the greedy one is simulated against: all space-filling, and its first half completed by
    space-filling runs (away from the runs and that half)."""
    n = picks.size
    spread = space_filling(p, f, cand_p, cand_f, n, cost)
    half = picks[: n // 2]
    rest = space_filling(np.r_[p, cand_p[half]], np.r_[f, cand_f[half]], cand_p, cand_f, n - half.size, cost)
    out = [("space-filling", spread), ("half greedy, half space-filling", np.r_[half, rest])]
    return [(label, d) for label, d in out if sorted(d.tolist()) != sorted(picks.tolist())]


def _narrower(widths: np.ndarray, than: np.ndarray) -> bool:
    """Whether ``widths`` are narrower than ``than`` over the paired simulated studies (same laws and noise
    draws): the mean of log(width / than) is below 0, each pair's log ratio capped at ±log :data:`TAIL_CAP`;
    a NaN width (the interval reaches the top of the search box) is wider than any other. The mean of logs,
    not a count of wins: one simulated study in which an interval runs far out into a tail is what a design
    must be kept from, and a count would not see it."""
    a = np.where(np.isfinite(widths), widths, np.inf)
    b = np.where(np.isfinite(than), than, np.inf)
    cap = np.log(TAIL_CAP)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(a == b, 0.0, np.clip(np.log(a / b), -cap, cap))
    log_ratio = np.where(np.isnan(log_ratio), 0.0, log_ratio)
    return bool(log_ratio.mean() < 0)


def why_no_promise(simulated: np.ndarray, end: float, identified: bool) -> str | None:
    """Why the expected width ``end`` cannot be promised to within :data:`PROMISE_BAND` (None: it can).

    A promise is a claim about one study, and one study's width varies: the simulated studies give that
    spread, and the benchmark (``benchmarks/advise_robust.py``) measured that achieved widths spread about
    1.2-1.4 times as far (in log) from the expected one as the simulated ones do, and far more where the
    interval now is one-sided or unbounded (its width an upper limit that may fall to a fraction, or a
    ceiling set by another parameter's bound). So it promises only where the interval now is identified,
    every simulated interval is bounded, and :data:`PROMISE_SHARE` of the simulated widths stay within the
    band once their log distance from ``end`` is widened by :data:`PROMISE_INFLATE`."""
    if simulated.size == 0:
        return "not simulated"
    if not np.isfinite(end) or not np.isfinite(simulated).all():
        return "some simulated intervals reach the bound"
    if not identified:
        return "the interval now is not identified, so its width is no measure of what the runs tell"
    dev = PROMISE_INFLATE * np.log(simulated / end)
    near = (dev >= np.log(1.0 - PROMISE_BAND)) & (dev <= np.log(1.0 + PROMISE_BAND))
    if near.mean() < PROMISE_SHARE:
        return "one study's width varies more than that"
    return None


def _interval_width(entry: Mapping[str, Any]) -> float:
    """The width of an interval as a summary gives it; NaN where it reaches the top of the search box."""
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if "high" in (entry.get("bound") or []) or lo is None or hi is None:  # JSON writes NaN as null
        return float("nan")
    return float(hi) - float(lo)


def advise(
    p: Any,
    f: Any,
    loss: Any,
    cand_p: Any,
    cand_f: Any,
    n_runs: int = DEFAULT_RUNS,
    form: str | LawForm = DEFAULT_FORM,
    *,
    target: str = DEFAULT_TARGET,
    cost: Any = None,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    names: tuple[str, str, str] = ("p", "f", "loss"),
    interval: Mapping[str, Any] | None = None,
    criterion: str = "cell",
    n_sims: int = N_SIMS,
    sim_samples: int = SIM_SAMPLES,
    upper_share: float | None = UPPER_SHARE,
) -> Advice:
    """The ``n_runs`` candidates (cand_p, cand_f) to run next to shrink ``target``'s interval the most per
    unit of ``cost`` (one value per candidate; default all 1), given runs (p, f, loss); a candidate may
    come back (a replicate of its cell: ``Advice.replicate`` counts the runs it has before).

    ``interval``: the study's own summary of the target (``ci_low``, ``ci_high`` and, as the bootstrap
    writes them, ``estimate``, ``identified``, ``bound``, ``why``; ``n_samples``), which the message then
    gives instead of the ensemble's, so that the reader sees one interval. ``n_sims`` simulated studies
    (:func:`simulate_widths`) give the expected width and whether it is promised; 0 skips them (the
    widths are then the criterion's own, uncalibrated, and never promised). Runs so far in, next batch out:
    an adaptive study calls it once per round."""
    law = _checked_request(form, target, n_runs)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion {criterion!r}: one of {', '.join(CRITERIA)}")
    cand_p, cand_f = (np.asarray(x, dtype=float).ravel() for x in (cand_p, cand_f))
    if cand_p.size == 0 or cand_p.size != cand_f.size:
        raise ValueError(f"candidates: {cand_p.size} p value(s) and {cand_f.size} f value(s)")
    cost = np.ones(cand_p.size) if cost is None else np.asarray(cost, dtype=float).ravel()
    if cost.size != cand_p.size or not (np.isfinite(cost) & (cost > 0)).all():
        raise ValueError("cost: one positive finite value per candidate")
    p, f, loss = check_fit_input(p, f, loss, law, names=names, count=False)

    def replicates(picks: np.ndarray) -> np.ndarray:
        return _replicates(p, f, cand_p, cand_f, picks)

    reason = too_few_runs(p, f, law)
    if reason is None:
        base = fit_law(p, f, loss, law, names=names)
        if not np.isfinite(base.objective):
            reason = "the fit of the law to them failed (non-finite objective)"
    if reason is not None:
        reason += ": too few to fit the law"
    else:
        # resampled as the study's interval is: by cell, each with all its runs (its seed replicates)
        boot = bootstrap_fit(
            p, f, loss, law, n_samples=n_samples, seed=seed, base=base, names=names, cells=_cells(p, f)
        )
        ok = np.isfinite(boot.samples["objective"].to_numpy())
        members = np.array(
            [law.to_free(r) for r in boot.samples.loc[ok, list(law.param_names)].to_dict("records")]
        )
        info = None
        if ok.sum() >= MIN_MEMBERS:
            ti = law.param_names.index(target)
            kind = CellInformation if criterion == "cell" else EnsembleInformation
            info = kind(law, members, p, f, cand_p, cand_f, ti)
        if info is None or info.n_members < MIN_MEMBERS:
            # the law was fitted: what is missing is an ensemble to weigh candidates by, not a fit
            usable = int(ok.sum()) if info is None else info.n_members
            # typically a target at its bound (G = e^-60): the runs say nothing of it there
            stuck = (
                int(at_bound(law, members, p, f)[:, law.param_names.index(target)].sum()) if ok.any() else 0
            )
            reason = (
                f"the law was fitted, but only {usable} of {n_samples} bootstrap refits are usable (a "
                f"finite, positive variance of {target}; {stuck} have {target} at a bound of the search, "
                "where the runs say nothing of it): too few to weigh candidate runs by"
            )
    if reason is not None:
        picks = space_filling(p, f, cand_p, cand_f, n_runs, cost)
        return Advice(
            STATUS_SPACE_FILLING,
            f"{p.size} runs: {reason}; a space-filling first batch of {n_runs} run(s)",
            target,
            picks,
            cost[picks],
            np.full(n_runs, np.nan),
            replicate=replicates(picks),
            design="space-filling first batch",
        )

    own = boot.summary()[target]
    summary = own if interval is None else interval
    width = _interval_width(summary)
    if upper_share is not None and (summary.get("bound") or []) == ["low"]:
        info.weigh(members, upper_share)
    picks, ratios = greedy_design(info.copy(), n_runs, cost)

    # the guard: no worse than random runs under the same criterion, per unit of cost
    rng = np.random.default_rng(seed)
    replace = n_runs > cand_p.size
    randoms = [rng.choice(cand_p.size, n_runs, replace=replace) for _ in range(N_RANDOM)]
    random_ratios = np.array([design_log_ratio(info, d) for d in randoms])
    efficiency = [-ratios[-1] / cost[picks].sum()] + [
        -r / cost[d].sum() for r, d in zip(random_ratios, randoms, strict=True)
    ]
    best = int(np.argmax(efficiency))
    guard = ""
    if best > 0:
        picks, ratios = greedy_design(info.copy(), n_runs, cost, allowed=randoms[best - 1])
        guard = (
            "; the greedy design scored worse than a random one under the criterion, so that one is advised"
        )

    # the expected width: the study's procedure run forward on simulated runs. The simulated studies are
    # also the second guard: the criterion is a first-order one and cannot see an interval that ends far
    # out in a tail (a weakly identified G, e.g. Table 2's genome), so the design is simulated beside two
    # that hedge (space-filling runs, and half the greedy batch completed by space-filling runs) with the
    # same laws and noise draws, and the one whose widths are narrower in most simulated studies is advised
    simulated = np.full(0, np.nan)
    hedge = ""
    design_kind = "random" if guard else "greedy"
    if n_sims > 0:

        def simulate(design: np.ndarray) -> np.ndarray:
            return simulate_widths(
                law, base, members, p, f, loss, cand_p[design], cand_f[design], target,
                n_sims=n_sims, n_samples=sim_samples, seed=seed,
            )  # fmt: skip

        simulated = simulate(picks)
        for label, design in _hedges(p, f, cand_p, cand_f, picks, cost):
            if cost[design].sum() > cost[picks].sum() * (1 + 1e-9):
                continue
            widths = simulate(design)
            if _narrower(widths, simulated):
                picks, ratios = greedy_design(info.copy(), n_runs, cost, allowed=design)
                simulated, guard = widths, ""
                design_kind = label
                hedge = f"; {label} runs gave narrower intervals in most simulated studies: they are advised"
    finite = simulated[np.isfinite(simulated)]
    if n_sims > 0:
        # most simulated intervals reach the top of the search box: no width worth a number
        end = float(np.median(finite)) if finite.size * 2 > simulated.size else float("nan")
    else:
        own_width = _interval_width(own)
        end = width * np.exp(0.5 * ratios[-1]) if np.isfinite(width) else own_width * np.exp(0.5 * ratios[-1])
    if np.isfinite(width) and np.isfinite(end) and ratios[-1] < 0:
        # from the width now to the simulated one, each pick taking its share of the criterion's fall
        expected = width * (end / width) ** np.clip(ratios / ratios[-1], 0.0, 1.0)
    else:
        expected = end * np.exp(0.5 * (ratios - ratios[-1]))
    shrink_random = float(np.exp(0.5 * np.median(random_ratios)))
    identified = bool(summary.get("identified", True)) and not summary.get("bound")
    why_not = why_no_promise(simulated, end, identified)
    promised = n_sims > 0 and why_not is None
    said = describe(target, summary)  # "0.55 [0.52, 0.6]", "G < 1.9" or "not identified (at bound)"
    state = said if said.startswith(f"{target} ") else f"{target} {said}"
    if interval is not None:
        state += f" (the study's bootstrap{_resamples(interval)})"
    rep = replicates(picks)
    n_new = len({(cand_p[j], cand_f[j]) for j, r in zip(picks, rep, strict=True) if r == 0})
    runs_said = f"{n_runs} advised run(s): {n_new} new cell(s), {int((rep > 0).sum())} repeat(s) of cells run"
    now = f"now {width:.3g}" if np.isfinite(width) else "now unbounded above"
    if not np.isfinite(end):
        expects = f"no width: in {simulated.size} simulated studies most intervals still reach the bound"
    else:
        expects = f"a width of {end:.3g} ({now})"
        if np.isfinite(width) and end > width:
            # more runs rarely widen an interval: the study's own, from few runs, is the one to doubt
            expects = (
                f"a width of {end:.3g}, wider than the {width:.3g} now: studies simulated from the refits' "
                "laws with the study's noise give wider intervals than its own bootstrap did, so the "
                "interval now is likely too narrow"
            )
        if n_sims == 0:
            expects += "; not simulated, so it cannot promise it"
        elif promised:
            expects += f"; it promises it within {PROMISE_BAND:.0%}: the {simulated.size} simulated studies "
            expects += f"gave {np.min(simulated):.3g} to {np.max(simulated):.3g}"
        else:
            lo, hi = np.nanmin(simulated), np.nanmax(simulated)
            expects += f"; it cannot promise it ({why_not}): {simulated.size} simulated studies gave "
            expects += f"{lo:.3g} to {hi:.3g}"
    message = (
        f"{p.size} runs in {np.unique(_cells(p, f)).size} cells, {info.n_members} refits: {state}; "
        f"after the {runs_said} the advice expects {expects}{guard}{hedge}"
    )
    return Advice(
        STATUS_OK, message, target, picks, cost[picks], expected, width,
        width * shrink_random if np.isfinite(width) else float("nan"),
        replicate=rep, promised=promised, simulated=simulated, design=design_kind, identified=identified,
    )  # fmt: skip


def _resamples(entry: Mapping[str, Any]) -> str:
    n = entry.get("n_samples")
    return f", {int(n):,} resamples" if n else ""


# ----------------------------------------------------------------------------------------------------
# tables: candidates, costs, one advice per group
# ----------------------------------------------------------------------------------------------------
def candidate_costs(
    candidates: pd.DataFrame, runs: pd.DataFrame, cost: str | None, p: str, f: str
) -> np.ndarray:
    """One positive cost per candidate: all 1 (``cost`` None or empty), the candidates' column ``cost``,
    or the expression ``cost`` over the candidates' columns, where a column they lack is the value of the
    nearest run (in scaled log p, log f; the mean over runs at the same distance, replicates of a cell)."""
    if not cost:
        return np.ones(len(candidates))
    if cost in candidates.columns:
        values = pd.to_numeric(candidates[cost], errors="coerce").to_numpy(dtype=float)
    else:
        frame = candidates.reset_index(drop=True).copy()
        extra = [
            c
            for c in runs.columns
            if c not in frame.columns
            and pd.api.types.is_numeric_dtype(runs[c])
            and not pd.api.types.is_bool_dtype(runs[c])
        ]
        if extra and len(runs):
            runs_u, cand_u = _unit_coordinates(
                runs[p].to_numpy(float),
                runs[f].to_numpy(float),
                frame[p].to_numpy(float),
                frame[f].to_numpy(float),
            )
            d = np.sqrt(((cand_u[:, None, :] - runs_u[None, :, :]) ** 2).sum(-1))
            near = d <= d.min(1, keepdims=True) + 1e-12
            values_of = runs[extra].to_numpy(dtype=float)
            filled = (near[:, :, None] * values_of[None, :, :]).sum(1) / near.sum(1)[:, None]
            frame[extra] = filled
        try:
            result = frame.eval(cost, engine="python")
        except Exception as err:  # pandas raises many kinds for a bad expression
            raise ValueError(
                f"cost {cost!r} is neither a column nor an expression over the columns "
                f"{', '.join(map(str, frame.columns))} ({type(err).__name__}: {err})"
            ) from None
        values = np.broadcast_to(np.asarray(result, dtype=float), (len(frame),)).copy()
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = candidates.iloc[i]
        raise ValueError(
            f"cost {cost!r} is not a positive finite number for {int(bad.sum())} candidate(s), "
            f"e.g. {p}={row[p]}, {f}={row[f]} ({values[i]})"
        )
    return values


def _check_candidates(candidates: pd.DataFrame, law: LawForm, p: str, f: str) -> None:
    missing = [c for c in (p, f) if c not in candidates.columns]
    if missing:
        raise ValueError(
            f"candidates: missing column(s) {', '.join(map(repr, missing))} (named like the table's p and f "
            f"columns); candidates have {', '.join(map(str, candidates.columns))}"
        )
    if candidates.empty:
        raise ValueError("candidates: no rows")
    for col, positive in ((p, law.needs_positive_p), (f, law.needs_positive_f)):
        values = pd.to_numeric(candidates[col], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise ValueError(
                f"candidates: column {col!r} has {int((~np.isfinite(values)).sum())} non-numeric or "
                "non-finite value(s)"
            )
        bad = values <= 0 if positive else values < 0
        if bad.any():
            need = "positive" if positive else "non-negative"
            raise ValueError(
                f"candidates: column {col!r} has {int(bad.sum())} value(s) that are not {need}, "
                f"as form {law.name!r} requires"
            )


def advise_table(
    df: pd.DataFrame,
    candidates: pd.DataFrame,
    n_runs: int = DEFAULT_RUNS,
    *,
    form: str = DEFAULT_FORM,
    columns: Columns = Columns(),
    target: str = DEFAULT_TARGET,
    cost: str | None = DEFAULT_COST,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    keys: Mapping[str, str] | None = None,
    intervals: Mapping[str, Mapping[str, Any]] | None = None,
    n_sims: int = N_SIMS,
) -> pd.DataFrame:
    """Advice for every group of a table of runs (:func:`transferlaw.law.fit.table_groups`): per group the
    ``n_runs`` recommended candidates in run order, with the candidates' own columns and
    :data:`ADVICE_COLUMNS`. ``candidates`` holds the p and f columns and, optionally, the group column
    (then each group gets its own rows; without it every group shares them). Every input is checked
    before the first fit.

    A recommendation to repeat a cell is a new replicate, never the same run again: ``replicate`` counts
    the runs its cell has before it, and where the table has a ``seed`` column the row's ``seed`` is one
    the cell has not run (the next after its largest; a cell not yet run gets the table's first seed).

    ``intervals`` maps a group to the study's bootstrap summary of it (``transferlaw bootstrap``'s record:
    ``params`` per parameter, ``n_samples``): the message then states that interval, not the advice's own
    ensemble's, so that one interval per dataset is what the user reads.

    A group whose law cannot be fitted (:func:`transferlaw.law.fit.why_no_law`, the fit's own rule) gets a
    space-filling first batch of status ``not_fitted`` whose message says why no law was fitted and what to
    change (``keys`` names the settings, as the fit's)."""
    law = _checked_request(form, target, n_runs)
    group, (p, f, loss) = columns.group, columns.names
    _check_candidates(candidates, law, p, f)
    groups = table_groups(df, columns)
    per_group = group is not None and group in candidates.columns
    if per_group:
        unknown = sorted(set(map(str, candidates[group])) - {str(g.key) for g in groups})
        if unknown:
            raise ValueError(f"candidates: {group} {', '.join(map(repr, unknown))} not in the table of runs")
    plans = []
    for g in groups:
        cands = candidates[candidates[group].astype(str) == str(g.key)] if per_group else candidates
        if cands.empty:
            raise ValueError(f"candidates: none for {g.label}")
        cands = cands.drop_duplicates(subset=[p, f]).reset_index(drop=True)
        no_law = why_no_law(g, law, columns=columns, keys=keys)
        try:
            # with no usable run there is no nearest run to price a cell by: every cell costs the same
            costs = candidate_costs(cands, g.runs, cost, p, f) if len(g.runs) else np.ones(len(cands))
            check_fit_input(g.runs[p], g.runs[f], g.runs[loss], law, names=columns.names, count=False)
        except ValueError as err:
            raise ValueError(f"{g.label}: {err}") from None
        plans.append((g, cands, costs, no_law))

    frames = []
    for g, cands, costs, no_law in plans:
        if no_law is not None:  # the fix comes first; then a first batch that covers the grid
            runs_pf = [g.runs[c].to_numpy(float) for c in (p, f)]
            picks = space_filling(*runs_pf, cands[p].to_numpy(float), cands[f].to_numpy(float), n_runs, costs)
            advice = Advice(
                STATUS_NOT_FITTED,
                f"{NO_LAW}: {no_law.reason}; a space-filling first batch of {n_runs} run(s)",
                target,
                picks,
                costs[picks],
                np.full(n_runs, np.nan),
                replicate=_replicates(g.runs[p], g.runs[f], cands[p], cands[f], picks),
                design="space-filling first batch",
            )
        else:
            advice = advise(
                g.runs[p],
                g.runs[f],
                g.runs[loss],
                cands[p],
                cands[f],
                n_runs,
                law,
                target=target,
                cost=costs,
                n_samples=n_samples,
                seed=seed,
                names=columns.names,
                interval=_study_interval(intervals, g.key, target),
                n_sims=n_sims,
            )
        logger.info("%s: %s", g.label, advice.message)
        rows = cands.iloc[advice.picks].reset_index(drop=True)
        if group is not None:
            rows = rows.drop(columns=[group], errors="ignore")
            rows.insert(0, group, g.key)
        rows["rank"] = np.arange(1, n_runs + 1)
        # a repeat is numbered, and seeded, after every run its cell has, those the fit leaves out included (a
        # run stopped at the epoch cap exists: its seed run again is the same run)
        rows["replicate"] = _replicates(g.every[p], g.every[f], cands[p], cands[f], advice.picks)
        if "seed" in g.every.columns:
            rows["seed"] = new_seeds(g.every, rows, p, f)
        message = advice.message + _excluded_note(g, rows, p, f, columns.status)
        rows["cost"] = advice.cost
        rows["expected_width"] = advice.expected_width
        rows["width_reduction"] = advice.width_reduction
        rows["promised"] = advice.promised
        rows["target"] = target
        rows["status"] = advice.status
        rows["message"] = message
        frames.append(rows)
    out = pd.concat(frames, ignore_index=True)
    first = [c for c in (group, p, f) if c is not None]
    return out[first + [c for c in out.columns if c not in first]]


def _excluded_note(g: RunGroup, rows: pd.DataFrame, p: str, f: str, status: str | None) -> str:
    """What the message adds where advised runs repeat cells whose every run so far the fit left out: the
    same settings may end the same way (an epoch cap reached again), so the user should know."""

    def cells(t: pd.DataFrame) -> list[tuple[float, float]]:
        return list(zip(t[p].astype(float), t[f].astype(float), strict=True))

    left_out = set(cells(g.every)) - set(cells(g.runs))
    hit = [c for c in cells(rows) if c in left_out]
    if not hit:
        return ""
    why = ""
    if status is not None and status in g.every.columns:
        counts = g.every[[c in hit for c in cells(g.every)]][status].astype(str).value_counts()
        why = f" (status {', '.join(f'{k}: {n}' for k, n in counts.items())})"
    return (
        f"; {len(hit)} advised run(s) repeat {len(set(hit))} cell(s) whose run(s) so far the fit left "
        f"out{why}: at the same settings they may end the same way"
    )


def _replicates(p: Any, f: Any, cand_p: Any, cand_f: Any, picks: np.ndarray) -> np.ndarray:
    """Per pick, the runs its cell has before it: the runs (p, f) there, then the earlier picks."""
    seen: dict[tuple[float, float], int] = {}
    for key in zip(np.asarray(p, float).tolist(), np.asarray(f, float).tolist(), strict=True):
        seen[key] = seen.get(key, 0) + 1
    cp, cf = np.asarray(cand_p, float), np.asarray(cand_f, float)
    out = []
    for j in picks:
        key = (float(cp[j]), float(cf[j]))
        out.append(seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
    return np.array(out, dtype=int)


def new_seeds(runs: pd.DataFrame, rows: pd.DataFrame, p: str, f: str, first: int | None = None) -> np.ndarray:
    """A seed per recommended row that its cell has not run, whatever that run's status (a capped run is not
    redone under its own seed): the next after the cell's largest (and after the batch's earlier picks
    there); ``first`` (default: the runs' first seed) for a cell not yet run. The advice and the adaptive
    study's rounds both number repeats with it."""
    seeds = pd.to_numeric(runs["seed"], errors="coerce")
    if first is None:
        first = int(seeds.min()) if seeds.notna().any() else 0
    last: dict[tuple[float, float], int] = {}
    for key, s in zip(zip(runs[p].astype(float), runs[f].astype(float), strict=True), seeds, strict=True):
        if s == s:
            last[key] = max(last.get(key, int(s)), int(s))
    out = []
    for key in zip(rows[p].astype(float), rows[f].astype(float), strict=True):
        seed = last[key] + 1 if key in last else first
        last[key] = seed
        out.append(seed)
    return np.array(out, dtype=np.int64)


def _study_interval(
    intervals: Mapping[str, BootstrapSummary] | None, key: Any, target: str
) -> Mapping[str, Any] | None:
    """The study's own summary of ``target`` for group ``key`` (with its resample count), if it has one;
    one that is not identified is still the one stated (as "not identified", never beside another)."""
    record = (intervals or {}).get(str(key))
    entry = record.params.get(target) if record is not None else None
    if not entry:
        return None
    return {**entry, "n_samples": record.n_samples}


def grid_candidates(
    runs: pd.DataFrame,
    steps: Sequence[int],
    sizes: Sequence[int],
    p: str,
    f: str,
    extra_steps: Sequence[int] = (),
    extra_sizes: Sequence[int] = (),
) -> pd.DataFrame:
    """The study's grid as candidates: every configured checkpoint step x fine-tune size, with columns
    ``revision``, ``pretrain_step``, ``finetune_size`` and the law's ``p`` and ``f`` columns, these read
    from the runs where they are not the step or the size (tokens per step, sequences per size).

    ``extra_steps`` and ``extra_sizes`` are checkpoints and sizes beyond the grid the advice may propose
    (crossed with the grid's and with each other); column ``in_grid`` tells them apart. Where no run has
    their p or f column, it is the step or size times the runs' constant ratio (tokens per step); a ratio
    that is not constant over the runs cannot price them, and the error names them."""
    all_steps = list(dict.fromkeys([*map(int, steps), *map(int, extra_steps)]))
    all_sizes = list(dict.fromkeys([*map(int, sizes), *map(int, extra_sizes)]))
    grid_steps, grid_sizes = set(map(int, steps)), set(map(int, sizes))
    cells = pd.DataFrame(
        [(f"step{s}", s, z, s in grid_steps and z in grid_sizes) for s in all_steps for z in all_sizes],
        columns=["revision", "pretrain_step", "finetune_size", "in_grid"],
    )
    extras = {"pretrain_step": set(map(int, extra_steps)), "finetune_size": set(map(int, extra_sizes))}
    for col, key in ((p, "pretrain_step"), (f, "finetune_size")):
        if col == key:
            continue
        pairs = runs[[key, col]].drop_duplicates(subset=[key])
        cells = cells.merge(pairs, on=key, how="left")
        beyond = cells[col].isna() & cells[key].isin(extras[key])
        if beyond.any():
            ratio = (runs[col].astype(float) / runs[key].astype(float)).replace([np.inf, -np.inf], np.nan)
            ratio = ratio.dropna()
            if ratio.size and np.allclose(ratio, ratio.iloc[0], rtol=1e-9):
                cells.loc[beyond, col] = cells.loc[beyond, key] * float(ratio.iloc[0])
        if cells[col].isna().any():
            lacking = sorted(set(cells.loc[cells[col].isna(), key]))
            raise ValueError(f"no run tells the {col} of {key} {lacking}")
    return cells
