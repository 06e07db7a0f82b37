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

Width: the ensemble's 95% percentile width w0 now; after picks, w0·exp(½·mean_b log(v_b'/v_b)). Where the
interval reaches the top of the search box (G = e^60: the runs bound it from neither side) there is no width
worth a number, and the message gives the expected shrinkage factor alone.
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
from transferlaw.law.bootstrap import bootstrap_fit
from transferlaw.law.diagnostics import describe
from transferlaw.law.fit import (
    DEFAULT_FORM,
    NO_LAW,
    STATUS_NOT_FITTED,
    Columns,
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
#: what :func:`advise_table` adds to each candidate's columns
ADVICE_COLUMNS = ["rank", "cost", "expected_width", "width_reduction", "target", "status", "message"]


@dataclass
class Advice:
    """The runs to do next: ``picks`` (indices into the candidates, in run order), their ``cost``, the
    ``expected_width`` of the target's 95% interval after each (NaN when no law could be fitted, or the
    interval reaches the top of the search box), the width now, the width the ensemble expects from as many
    random runs, and a status with its message."""

    status: str
    message: str
    target: str
    picks: np.ndarray
    cost: np.ndarray
    expected_width: np.ndarray
    width: float = float("nan")
    random_width: float = float("nan")

    @property
    def width_reduction(self) -> np.ndarray:
        """How much each run narrows the interval, given the runs before it."""
        return -np.diff(np.concatenate([[self.width], self.expected_width]))


# ----------------------------------------------------------------------------------------------------
# the ensemble's information
# ----------------------------------------------------------------------------------------------------
class EnsembleInformation:
    """Each member's M_b⁻¹ for the runs so far, and the candidates' Jacobians under each member: the
    variance of the target and what one more run at each candidate would remove from it."""

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
        self.target = target
        self.v0 = self.minv[:, target, target].copy()

    @property
    def n_members(self) -> int:
        return self.minv.shape[0]

    def relative_gain(self) -> np.ndarray:
        """(m,): the mean over members of the share of v_b one more run at each candidate removes."""
        a = np.einsum("bk,bmk->bm", self.minv[:, self.target, :], self.j_cand)
        q = np.einsum("bmk,bkl,bml->bm", self.j_cand, self.minv, self.j_cand)
        v = self.minv[:, self.target, self.target]
        return (a * a / (1.0 + q) / v[:, None]).mean(0)

    def add(self, j: int) -> None:
        """Count one more run at candidate ``j`` (rank-one update of every member)."""
        x = self.j_cand[:, j, :]
        mx = np.einsum("bkl,bl->bk", self.minv, x)
        self.minv -= np.einsum("bk,bl->bkl", mx, mx) / (1.0 + np.einsum("bk,bk->b", x, mx))[:, None, None]

    def log_ratio(self) -> float:
        """mean_b log(v_b now / v_b before any pick): the expected fall of log var(target), <= 0."""
        return float(np.mean(np.log(self.minv[:, self.target, self.target] / self.v0)))

    def copy(self) -> EnsembleInformation:
        """A copy to add runs to (the candidates' Jacobians are shared, never changed)."""
        new = copy.copy(self)
        new.minv = self.minv.copy()
        return new


def greedy_design(
    info: EnsembleInformation, n_runs: int, cost: np.ndarray, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Batch-greedy picks (relative gain per cost, ties to the first candidate) and the log-variance ratio
    after each. ``allowed`` (a multiset of candidate indices) restricts the picks to it."""
    left = None if allowed is None else np.bincount(allowed, minlength=cost.size)
    picks, ratios = [], []
    for _ in range(n_runs):
        score = info.relative_gain() / cost
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
    cheaper, then the first)."""
    runs_u, cand_u = _unit_coordinates(p, f, cand_p, cand_f)
    nearest = np.full(cand_u.shape[0], np.inf)
    if runs_u.size:
        nearest = np.sqrt(((cand_u[:, None, :] - runs_u[None, :, :]) ** 2).sum(-1)).min(1)
    picks = []
    for _ in range(n_runs):
        far = np.flatnonzero(nearest >= nearest.max() - 1e-12)
        j = int(far[np.argmin(cost[far])])
        picks.append(j)
        nearest = np.minimum(nearest, np.sqrt(((cand_u - cand_u[j]) ** 2).sum(-1)))
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
) -> Advice:
    """The ``n_runs`` candidates (cand_p, cand_f) to run next to shrink ``target``'s interval the most per
    unit of ``cost`` (one value per candidate; default all 1), given runs (p, f, loss)."""
    law = _checked_request(form, target, n_runs)
    cand_p, cand_f = (np.asarray(x, dtype=float).ravel() for x in (cand_p, cand_f))
    if cand_p.size == 0 or cand_p.size != cand_f.size:
        raise ValueError(f"candidates: {cand_p.size} p value(s) and {cand_f.size} f value(s)")
    cost = np.ones(cand_p.size) if cost is None else np.asarray(cost, dtype=float).ravel()
    if cost.size != cand_p.size or not (np.isfinite(cost) & (cost > 0)).all():
        raise ValueError("cost: one positive finite value per candidate")
    p, f, loss = check_fit_input(p, f, loss, law, names=names, count=False)
    reason = too_few_runs(p, f, law)
    if reason is None:
        base = fit_law(p, f, loss, law, names=names)
        if not np.isfinite(base.objective):
            reason = "the fit of the law to them failed (non-finite objective)"
    if reason is None:
        boot = bootstrap_fit(p, f, loss, law, n_samples=n_samples, seed=seed, base=base, names=names)
        ok = np.isfinite(boot.samples["objective"].to_numpy())
        members = np.array(
            [law.to_free(r) for r in boot.samples.loc[ok, list(law.param_names)].to_dict("records")]
        )
        info = None
        if ok.sum() >= MIN_MEMBERS:
            ti = law.param_names.index(target)
            info = EnsembleInformation(law, members, p, f, cand_p, cand_f, ti)
        if info is None or info.n_members < MIN_MEMBERS:
            reason = (
                f"only {0 if info is None else info.n_members} of {n_samples} bootstrap refits are usable"
            )
    if reason is not None:
        picks = space_filling(p, f, cand_p, cand_f, n_runs, cost)
        return Advice(
            STATUS_SPACE_FILLING,
            f"{p.size} runs: {reason}: too few to fit the law; "
            f"a space-filling first batch of {n_runs} run(s)",
            target,
            picks,
            cost[picks],
            np.full(n_runs, np.nan),
        )

    summary = boot.summary()[target]
    # an interval reaching the top of the search box (G = e^60) has no width worth a number
    width = np.nan if "high" in summary.get("bound", []) else float(summary["ci_high"] - summary["ci_low"])
    picks, ratios = greedy_design(info.copy(), n_runs, cost)

    # the guard: no worse than random runs under the same ensemble, per unit of cost
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
            "; the greedy design scored worse than a random one under the ensemble, so that one is advised"
        )
    shrink = np.exp(0.5 * ratios)  # the interval's expected share of its width now, after each pick
    shrink_random = float(np.exp(0.5 * np.median(random_ratios)))
    said = describe(target, summary)  # "0.55 [0.52, 0.6]", "G < 1.9" or "not identified (at bound)"
    state = said if said.startswith(f"{target} ") else f"{target} {said}"
    if np.isfinite(width):
        expects = f"a width of {width * shrink[-1]:.3g} (now {width:.3g}; {n_runs} random run(s): "
        expects += f"{width * shrink_random:.3g})"
    else:
        expects = f"{shrink[-1]:.3g}x its spread ({n_runs} random run(s): {shrink_random:.3g}x)"
    message = (
        f"{p.size} runs, {info.n_members} refits: {state}; after the {n_runs} advised run(s) the ensemble "
        f"expects {expects}{guard}"
    )
    expected, random_width = width * shrink, width * shrink_random
    return Advice(STATUS_OK, message, target, picks, cost[picks], expected, width, random_width)


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
) -> pd.DataFrame:
    """Advice for every group of a table of runs (:func:`transferlaw.law.fit.table_groups`): per group the
    ``n_runs`` recommended candidates in run order, with the candidates' own columns and
    :data:`ADVICE_COLUMNS`. ``candidates`` holds the p and f columns and, optionally, the group column
    (then each group gets its own rows; without it every group shares them). Every input is checked
    before the first fit.

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
            )
        logger.info("%s: %s", g.label, advice.message)
        rows = cands.iloc[advice.picks].reset_index(drop=True)
        if group is not None:
            rows = rows.drop(columns=[group], errors="ignore")
            rows.insert(0, group, g.key)
        rows["rank"] = np.arange(1, n_runs + 1)
        rows["cost"] = advice.cost
        rows["expected_width"] = advice.expected_width
        rows["width_reduction"] = advice.width_reduction
        rows["target"] = target
        rows["status"] = advice.status
        rows["message"] = advice.message
        frames.append(rows)
    out = pd.concat(frames, ignore_index=True)
    first = [c for c in (group, p, f) if c is not None]
    return out[first + [c for c in out.columns if c not in first]]


def grid_candidates(
    runs: pd.DataFrame, steps: Sequence[int], sizes: Sequence[int], p: str, f: str
) -> pd.DataFrame:
    """The study's grid as candidates: every configured checkpoint step x fine-tune size, with columns
    ``revision``, ``pretrain_step``, ``finetune_size`` and the law's ``p`` and ``f`` columns, these read
    from the runs where they are not the step or the size (tokens per step, sequences per size)."""
    cells = pd.DataFrame(
        [(f"step{s}", int(s), int(z)) for s in steps for z in sizes],
        columns=["revision", "pretrain_step", "finetune_size"],
    )
    for col, key in ((p, "pretrain_step"), (f, "finetune_size")):
        if col == key:
            continue
        pairs = runs[[key, col]].drop_duplicates(subset=[key])
        cells = cells.merge(pairs, on=key, how="left")
        if cells[col].isna().any():
            lacking = sorted(set(cells.loc[cells[col].isna(), key]))
            raise ValueError(f"no run tells the {col} of {key} {lacking}")
    return cells
