"""Budget allocation between pre-training and fine-tuning data (Barnett 2024, section 6.1, eq. 4).

    minimise L(p, f)  subject to  C_p·p + C_f·f <= B.

Every form in :mod:`transferlaw.law.forms` decreases in both p and f, so the optimum spends the whole budget
and the problem is one-dimensional: with the fine-tune share s in [0, 1], f = s·B/C_f and
p = (1 - s)·B/C_p. Along that line L need not be convex (the bracket A·p^-α + G flattens once p is
large), so we never trust one local search: a coarse grid that is dense near both ends (where a
power law changes fastest) picks the basin, a bounded scalar search refines it, and both endpoints
are compared explicitly, which makes the corners (all budget on one side) exact rather than
approximately reached.

The whole-budget argument needs L to decrease in p or in f. A fit with a negative exponent (the law
then *rises* along that axis, which small studies do produce) still gets the right answer, the corner
that spends nothing on that side; only a law rising in both would prefer to leave budget unspent, and
this module does not consider that case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from transferlaw.law.forms import LawForm, get_form

#: relative loss tolerance under which an endpoint beats the interior optimum (a corner solution)
CORNER_RTOL = 1e-12


@dataclass(frozen=True)
class Allocation:
    """The optimum of eq. 4: where the budget goes and the loss the fitted law predicts there."""

    p: float
    f: float
    share_pretrain: float
    share_finetune: float
    loss: float
    corner: str | None  # None (interior), 'pretrain' (everything on p) or 'finetune' (everything on f)

    def as_dict(self) -> dict:
        return asdict(self)


def _share_grid() -> np.ndarray:
    """Fine-tune shares to scan: uniform in the middle, geometric towards 0 and 1 (down to 1e-12)."""
    tail = np.logspace(-12, np.log10(0.5), 121)
    return np.unique(np.concatenate([[0.0, 1.0], np.linspace(0.0, 1.0, 201), tail, 1.0 - tail]))


def _check(budget: float, cost_pretrain: float, cost_finetune: float) -> None:
    for name, value in (
        ("budget", budget),
        ("cost_pretrain", cost_pretrain),
        ("cost_finetune", cost_finetune),
    ):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value}")


def loss_along_budget(
    params: Mapping[str, float],
    form: str | LawForm,
    budget: float,
    cost_pretrain: float,
    cost_finetune: float,
    shares: np.ndarray,
) -> np.ndarray:
    """L at fine-tune shares of a fully spent budget; +inf where the law is undefined (unshifted p=0)."""
    law = get_form(form)
    s = np.asarray(shares, dtype=float)
    p = (1.0 - s) * budget / cost_pretrain
    f = s * budget / cost_finetune
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        loss = law.predict(params, p, f)
    return np.where(np.isfinite(loss), loss, np.inf)


def allocate(
    params: Mapping[str, float],
    form: str | LawForm,
    budget: float,
    cost_pretrain: float,
    cost_finetune: float,
) -> Allocation:
    """The allocation of ``budget`` that minimises the fitted law (eq. 4)."""
    _check(budget, cost_pretrain, cost_finetune)
    law = get_form(form)
    grid = _share_grid()
    losses = loss_along_budget(params, law, budget, cost_pretrain, cost_finetune, grid)
    if not np.isfinite(losses).any():
        raise ValueError("the law is not finite anywhere on the budget line")

    def at(s: float) -> float:
        return float(loss_along_budget(params, law, budget, cost_pretrain, cost_finetune, np.array([s]))[0])

    # refine the best grid point within its neighbours; check every local minimum of the grid, not only
    # the lowest, so that a narrow basin between grid points still gets its chance
    candidates = {0.0: at(0.0), 1.0: at(1.0)}
    inner = (
        np.flatnonzero(
            (losses[1:-1] <= losses[:-2]) & (losses[1:-1] <= losses[2:]) & np.isfinite(losses[1:-1])
        )
        + 1
    )
    for i in sorted(inner, key=lambda k: losses[k])[:5]:
        lo, hi = grid[i - 1], grid[i + 1]
        res = minimize_scalar(at, bounds=(lo, hi), method="bounded", options={"xatol": 1e-14 + 1e-10 * hi})
        for s in (float(res.x), float(grid[i])):
            candidates[s] = at(s)
    s_best = min(candidates, key=lambda s: candidates[s])
    loss = candidates[s_best]
    # an endpoint within rounding of the best is the exact optimum: report it as the corner it is
    end = min((0.0, 1.0), key=lambda s: candidates[s])
    corner: str | None = None
    if np.isfinite(candidates[end]) and candidates[end] <= loss * (1.0 + CORNER_RTOL):
        s_best, loss, corner = end, candidates[end], ("pretrain" if end == 0.0 else "finetune")
    return Allocation(
        p=(1.0 - s_best) * budget / cost_pretrain,
        f=s_best * budget / cost_finetune,
        share_pretrain=1.0 - s_best,
        share_finetune=s_best,
        loss=float(loss),
        corner=corner,
    )


def allocate_samples(
    samples: pd.DataFrame,
    form: str | LawForm,
    budget: float,
    cost_pretrain: float,
    cost_finetune: float,
) -> pd.DataFrame:
    """The optimum for every bootstrap sample (rows of ``samples`` with one column per parameter).

    Non-converged samples (``converged`` False) are dropped: their parameters are not estimates.
    """
    law = get_form(form)
    missing = [n for n in law.param_names if n not in samples.columns]
    if missing:
        raise ValueError(
            f"bootstrap samples lack parameter column(s) {', '.join(missing)} of form {law.name!r}"
        )
    if "converged" in samples.columns:
        samples = samples[samples["converged"].astype(bool)]
    rows = []
    for i, row in enumerate(samples.itertuples(index=False)):
        values = row._asdict()
        params = {n: values[n] for n in law.param_names}
        try:
            alloc = allocate(params, law, budget, cost_pretrain, cost_finetune)
        except ValueError:
            continue
        rows.append({"sample": values.get("sample", i), **alloc.as_dict()})
    return pd.DataFrame(rows, columns=["sample", *Allocation.__dataclass_fields__])


def sweep_gap(
    params: Mapping[str, float],
    form: str | LawForm,
    budget: float,
    cost_pretrain: float,
    cost_finetune: float,
    gaps: Sequence[float],
) -> pd.DataFrame:
    """The optimum as the transfer gap G varies, the other parameters held at ``params`` (Fig. 2a)."""
    rows = [
        {"G": g, **allocate({**params, "G": float(g)}, form, budget, cost_pretrain, cost_finetune).as_dict()}
        for g in gaps
    ]
    return pd.DataFrame(rows)


def sweep_cost_ratio(
    params: Mapping[str, float],
    form: str | LawForm,
    budget: float,
    cost_pretrain: float,
    ratios: Sequence[float],
) -> pd.DataFrame:
    """The optimum as the cost ratio C_f/C_p varies at fixed C_p and law (Fig. 2b)."""
    rows = [
        {"cost_ratio": r, **allocate(params, form, budget, cost_pretrain, cost_pretrain * float(r)).as_dict()}
        for r in ratios
    ]
    return pd.DataFrame(rows)


def summarise_samples(allocs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Median and 2.5/97.5 percentiles of the optimum over bootstrap samples, per quantity."""
    out = {}
    for col in ("p", "f", "share_finetune", "loss"):
        v = allocs[col].to_numpy(dtype=float)
        if v.size:
            lo, med, hi = np.percentile(v, [2.5, 50, 97.5])
            out[col] = {"median": float(med), "ci_low": float(lo), "ci_high": float(hi)}
    return out
