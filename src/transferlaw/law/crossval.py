"""Step-wise cross-validation of law forms and L2 penalties (Barnett 2024, appendix D, Table 5).

Thresholds are the sorted unique values of p and of f. For a combination (p_t, f_t) the *training*
set is the runs with p <= p_t and f <= f_t (the lower-left block of the grid); the *test* set is
every other run, i.e. the runs above at least one threshold. This tests extrapolation to more
pre-training, more fine-tuning data, or both, as the paper's Figure 7 shows. Combinations are
listed p-major and every ``skip``-th is used; a combination is skipped when its training set has
fewer runs than the form has parameters or its test set is empty.

Each (combination, penalty) pair is one weighted problem for :func:`transferlaw.law.fit.fit_batch`: a
0/1 training mask as its weight row and its penalties as (B,) arrays, so a form's whole grid is a
few batched calls. Starts: the full-data optimum plus the best few grid starts for the unpenalised
fits; the penalised fits then start from their combination's unpenalised optimum.
:func:`verify_crossval` compares a sample of these fits with full-grid fits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.defaults import default
from transferlaw.law.bootstrap import restart_starts
from transferlaw.law.fit import (
    DEFAULT_FORM,
    NO_LAW,
    STATUS_NOT_FITTED,
    Columns,
    fit_batch,
    fit_law,
    table_groups,
    why_no_law,
)
from transferlaw.law.forms import LawForm, get_form

logger = logging.getLogger(__name__)

#: appendix D's penalty grids (config ``analysis.l2_exponents`` and ``analysis.l2_coefficients``)
L2_EXPONENTS: tuple[float, ...] = tuple(default("analysis.l2_exponents"))
L2_COEFFICIENTS: tuple[float, ...] = tuple(default("analysis.l2_coefficients"))
#: the forms scored when none are named (config ``analysis.crossval_forms``: all of Table 5's)
CV_FORMS: tuple[str, ...] = tuple(default("analysis.crossval_forms"))
#: grid starts added to the full-data optimum for the unpenalised fits of each combination
N_GRID_STARTS = 4
#: convergence tolerance and iteration cap of the CV fits: scores are errors of the loss at 1e-3 or
#: coarser, so objective changes below 1e-8 relative are immaterial (checked by verify_crossval)
CV_FTOL = 1e-8
CV_MAX_ITER = 300
CV_COLUMNS = [
    "form",
    "l2_exponents",
    "l2_coefficients",
    "p_threshold",
    "f_threshold",
    "n_train",
    "n_test",
    "rmse",
    "mae",
]

BEST_COLUMNS = [
    "dataset",
    "form",
    "rmse",
    "rmse_l2_exponents",
    "rmse_l2_coefficients",
    "mae",
    "mae_l2_exponents",
    "mae_l2_coefficients",
]


def train_mask(p: np.ndarray, f: np.ndarray, p_threshold: float, f_threshold: float) -> np.ndarray:
    """The runs a split trains on: at or below both thresholds (the rest validate it)."""
    return (p <= p_threshold) & (f <= f_threshold)


def threshold_splits(
    p: np.ndarray, f: np.ndarray, min_train: int, skip: int = 1
) -> list[tuple[float, float, np.ndarray]]:
    """(p_t, f_t, train mask) for every ``skip``-th threshold combination with a usable split."""
    if skip < 1:
        raise ValueError(f"skip must be at least 1, got {skip}")
    combos = [(pt, ft) for pt in np.unique(p) for ft in np.unique(f)][::skip]
    out = []
    for pt, ft in combos:
        train = train_mask(p, f, pt, ft)
        if train.sum() >= min_train and (~train).any():
            out.append((float(pt), float(ft), train))
    return out


def _fit_form(
    p: np.ndarray,
    f: np.ndarray,
    loss: np.ndarray,
    law: LawForm,
    masks: np.ndarray,
    l2e: np.ndarray,
    l2c: np.ndarray,
) -> np.ndarray:
    """Free parameters (C*P, k) of every (combination, penalty) problem, combination-major.

    Combinations sharing a p threshold are solved together on the runs with p <= p_t only: the
    training mask is zero elsewhere, so those points would cost evaluations and change nothing.
    """
    n_combo, n_pen = masks.shape[0], l2e.size
    full = fit_law(p, f, loss, law)
    grid_starts = restart_starts(p, f, loss, law, full.free, N_GRID_STARTS)
    out = np.empty((n_combo * n_pen, law.n_params))
    # the largest p among each combination's training runs identifies its p threshold block
    p_top = np.array([p[m > 0].max() for m in masks])
    for pt in np.unique(p_top):
        rows = np.flatnonzero(p_top == pt)
        sub = p <= pt
        ps, fs, ls, ms = p[sub], f[sub], loss[sub], masks[rows][:, sub]
        plain = fit_batch(ps, fs, ls, law, ms, grid_starts, ftol=CV_FTOL, max_iter=CV_MAX_ITER)
        res = fit_batch(
            ps,
            fs,
            ls,
            law,
            np.repeat(ms, n_pen, axis=0),
            np.repeat(plain.free, n_pen, axis=0)[:, None, :],
            l2_exponents=np.tile(l2e, rows.size),
            l2_coefficients=np.tile(l2c, rows.size),
            ftol=CV_FTOL,
            max_iter=CV_MAX_ITER,
        )
        idx = (rows[:, None] * n_pen + np.arange(n_pen)).ravel()
        out[idx] = res.free
    return out


def _score_form(
    name: str, p: np.ndarray, f: np.ndarray, loss: np.ndarray, l2e: np.ndarray, l2c: np.ndarray, skip: int
) -> pd.DataFrame | None:
    """Every (penalty pair, threshold combination) row of one form; None if no combination is usable."""
    law = get_form(name)
    if (law.needs_positive_p and (p <= 0).any()) or (law.needs_positive_f and (f <= 0).any()):
        raise ValueError(f"form {law.name!r} needs positive p and f; drop the runs at 0 first")
    splits = threshold_splits(p, f, law.n_params, skip)
    if not splits:
        logger.warning("form %r: no threshold combination leaves >= %d training runs", law.name, law.n_params)
        return None
    masks = np.array([m for _, _, m in splits], float)
    free = _fit_form(p, f, loss, law, masks, l2e, l2c)
    pred = np.exp(law.log_predict(free, p, f))
    test = np.repeat(1.0 - masks, l2e.size, axis=0)
    err = np.where(test > 0, pred - loss, 0.0)
    n_test = test.sum(1)
    n_combo = len(splits)
    return pd.DataFrame(
        {
            "form": law.name,
            "l2_exponents": np.tile(l2e, n_combo),
            "l2_coefficients": np.tile(l2c, n_combo),
            "p_threshold": np.repeat([s[0] for s in splits], l2e.size),
            "f_threshold": np.repeat([s[1] for s in splits], l2e.size),
            "n_train": np.repeat(masks.sum(1).astype(np.int64), l2e.size),
            "n_test": n_test.astype(np.int64),
            "rmse": np.sqrt((err**2).sum(1) / n_test),
            "mae": np.abs(err).sum(1) / n_test,
        }
    )


def _score_forms(tasks: list[tuple], workers: int) -> list[pd.DataFrame | None]:
    """:func:`_score_form` over argument tuples, in order; in ``workers`` processes when > 1.

    The batched fits are single-threaded numpy and the (dataset, form) problems are independent, so a
    second core halves the wall time of a cross-validation.
    """
    if workers <= 1 or len(tasks) <= 1:
        return [_score_form(*t) for t in tasks]
    from concurrent.futures import ProcessPoolExecutor

    # costliest forms (most parameters) first, so the workers finish at about the same time
    order = sorted(range(len(tasks)), key=lambda i: -get_form(tasks[i][0]).n_params)
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = {i: pool.submit(_score_form, *tasks[i]) for i in order}
        return [futures[i].result() for i in range(len(tasks))]


def stepwise_cv(
    p: Any,
    f: Any,
    loss: Any,
    forms: Sequence[str] = CV_FORMS,
    *,
    l2_exponents: Sequence[float] = L2_EXPONENTS,
    l2_coefficients: Sequence[float] = L2_COEFFICIENTS,
    skip: int = 1,
    workers: int = 1,
) -> pd.DataFrame:
    """Step-wise cross-validation: one row per (form, penalty pair, threshold combination).

    ``rmse`` and ``mae`` are of the loss itself (natural space) on the test runs. Forms whose
    prediction needs p > 0 (or f > 0) raise ValueError when such runs are present; callers drop them.
    ``workers`` > 1 scores the forms in that many processes.
    """
    p_arr, f_arr, loss_arr = (np.asarray(x, float).ravel() for x in (p, f, loss))
    e_grid, c_grid = np.meshgrid(
        np.asarray(l2_exponents, float), np.asarray(l2_coefficients, float), indexing="ij"
    )
    args = [(name, p_arr, f_arr, loss_arr, e_grid.ravel(), c_grid.ravel(), skip) for name in forms]
    frames = [fr for fr in _score_forms(args, workers) if fr is not None]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in CV_COLUMNS}).astype({"form": object})
    return pd.concat(frames, ignore_index=True)[CV_COLUMNS]


#: the status of a (dataset, form)'s rows when some split was scored, when none could be, and when the form
#: cannot be fitted to the dataset's runs at all (:func:`transferlaw.law.fit.why_no_law`)
CV_SCORED, CV_NO_SPLIT = "ok", "no_split"


def crossval_table(
    df: pd.DataFrame,
    *,
    forms: Sequence[str] = CV_FORMS,
    columns: Columns = Columns(),
    drop_nonpositive: bool = True,
    l2_exponents: Sequence[float] = L2_EXPONENTS,
    l2_coefficients: Sequence[float] = L2_COEFFICIENTS,
    skip: int = 1,
    workers: int = 1,
    form: str = DEFAULT_FORM,
    keys: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """:func:`stepwise_cv` per group of a table of runs, with a ``dataset`` column (the group value).

    With ``drop_nonpositive`` a form that needs p > 0 (``mikami``, ``mikami_no_e``, ``mikami_f_shift``)
    is scored on the runs with p > 0 only (and likewise for f); the column ``n_dropped`` says how many
    runs that removed, so forms scored on different runs are visible as such. Runs whose status is not ok
    are left out as by the fit (:func:`transferlaw.law.fit.table_groups`), counted in ``n_excluded``.

    Columns ``status`` and ``message``: a group whose law (of ``form``, the one the study fits) cannot be
    fitted at all (:func:`transferlaw.law.fit.why_no_law`) gets one row per form of status ``not_fitted`` with
    the fit's reason, and a (group, form) with no usable split (too few runs to hold some out) one row of
    status ``no_split`` whose message says why and what runs would give one; their scores are NaN
    (:func:`scored` keeps the scored rows). ``keys`` names the settings to change, as for the fit.
    """
    l2e, l2c = np.meshgrid(np.asarray(l2_exponents, float), np.asarray(l2_coefficients, float), indexing="ij")
    p, f, loss = columns.names
    tasks, labels = [], []
    slots: list[int | pd.DataFrame] = []  # per (group, form) in order: its task's index, or its one row
    for g in table_groups(df, columns):
        sub = g.runs
        no_law = why_no_law(g, form, columns=columns, keys=keys)  # the fit's own verdict
        if no_law is not None:
            logger.warning("%s: %s, nothing to cross-validate: %s", g.label, NO_LAW, no_law.reason)
        for name in forms:
            law = get_form(name)
            if no_law is not None:
                slots.append(_unscored(g, law, len(sub), 0, STATUS_NOT_FITTED, no_law.reason))
                continue
            keep = np.ones(len(sub), bool)
            if drop_nonpositive:
                if law.needs_positive_p:
                    keep &= sub[p].to_numpy() > 0
                if law.needs_positive_f:
                    keep &= sub[f].to_numpy() > 0
            s = sub[keep]
            arrays = (np.asarray(s[c], float) for c in (p, f, loss))
            slots.append(len(tasks))
            tasks.append((law.name, *arrays, l2e.ravel(), l2c.ravel(), skip))
            labels.append((g, law, int((~keep).sum()), s))
    try:
        results = _score_forms(tasks, workers)
    except ValueError as err:
        raise ValueError(f"{columns.group or 'table'}: {err}") from None
    frames = []
    for slot in slots:
        if isinstance(slot, pd.DataFrame):
            frames.append(slot)
            continue
        (g, law, dropped, runs), cv = labels[slot], results[slot]
        if cv is None:
            message = _no_split(law, runs, p, f, dropped, keys)
            frames.append(_unscored(g, law, len(runs), dropped, CV_NO_SPLIT, message))
            continue
        cv.insert(0, "dataset", g.key)
        cv["n_dropped"] = dropped
        cv["n_excluded"] = g.n_excluded
        cv["status"] = CV_SCORED
        cv["message"] = ""
        frames.append(cv)
    if not frames:
        empty = pd.DataFrame({c: pd.Series(dtype=float) for c in CV_COLUMNS}).astype({"form": object})
        empty.insert(0, "dataset", pd.Series(dtype=object))
        empty["n_dropped"] = pd.Series(dtype="int64")
        empty["n_excluded"] = pd.Series(dtype="int64")
        empty["status"] = pd.Series(dtype=object)
        empty["message"] = pd.Series(dtype=object)
        return empty
    return pd.concat(frames, ignore_index=True)


def _unscored(g: Any, law: LawForm, n_runs: int, dropped: int, status: str, message: str) -> pd.DataFrame:
    """The one row of a (group, form) that no split scored: NaN scores, its status and message; its
    ``n_train`` counts the runs the form had (none held out), so that n_train + n_test + n_dropped counts
    the group's usable runs on every row."""
    row: dict[str, Any] = {"dataset": g.key, **{c: np.nan for c in CV_COLUMNS}}
    row.update(form=law.name, n_train=n_runs, n_test=0)
    row.update(n_dropped=dropped, n_excluded=g.n_excluded, status=status, message=message)
    return pd.DataFrame([row])


def _no_split(
    law: LawForm, runs: pd.DataFrame, p: str, f: str, dropped: int, keys: Mapping[str, str] | None
) -> str:
    """Why a form's cross-validation has no split, in words, and what would give it one."""
    from transferlaw.law.diagnostics import axis_words

    unit = str(runs["finetune_unit"].iloc[0]) if f == "finetune_size" and "finetune_unit" in runs else None
    w = axis_words(p, f, unit)
    keys = keys or {}
    n_p, n_f = runs[p].nunique(), runs[f].nunique()
    to = {k: f" to {keys[k]}" if k in keys else "" for k in ("sizes", "revisions")}
    without = f", without the {dropped} run(s) at {p} or {f} = 0 it cannot predict" if dropped else ""
    return (
        f"form {law.name!r}: no split leaves {law.n_params} or more training runs (the form's parameters) "
        f"below a threshold in both p and f and a run above it to test: {len(runs)} usable run(s) on "
        f"{n_p} {w['p_nouns']} x {n_f} {w['f_nouns']}{without}; add {w['f_nouns']}{to['sizes']} or "
        f"{w['p_nouns']}{to['revisions']}"
    )


def scored(cv: pd.DataFrame) -> pd.DataFrame:
    """The rows of a cross-validation table that hold scores (tables written before ``status`` existed hold
    nothing else)."""
    if "status" not in cv.columns:
        return cv
    return cv[cv["status"] == CV_SCORED]


def unscored(cv: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, form) that nothing scored, its status and message."""
    if "status" not in cv.columns:
        return pd.DataFrame(columns=["dataset", "form", "status", "message"])
    return cv.loc[cv["status"] != CV_SCORED, ["dataset", "form", "status", "message"]].reset_index(drop=True)


def best_by_form(cv: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and form, the lowest RMSE and the lowest MAE over penalty settings (Table 5).

    A penalty setting is scored by its *mean* RMSE (MAE) over all threshold combinations, so the
    penalty chosen is the one that extrapolates best on average rather than on one lucky split.
    """
    if "dataset" not in cv.columns:
        cv = cv.assign(dataset="all")
    cv = scored(cv)
    if cv.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in ("dataset", "form") else float) for c in BEST_COLUMNS}
        )
    agg = cv.groupby(["dataset", "form", "l2_exponents", "l2_coefficients"], as_index=False, sort=False)[
        ["rmse", "mae"]
    ].mean()
    rows = []
    for (dataset, form), g in agg.groupby(["dataset", "form"], sort=False):
        r, m = g.loc[g["rmse"].idxmin()], g.loc[g["mae"].idxmin()]
        rows.append(
            {
                "dataset": dataset,
                "form": form,
                "rmse": float(r["rmse"]),
                "rmse_l2_exponents": float(r["l2_exponents"]),
                "rmse_l2_coefficients": float(r["l2_coefficients"]),
                "mae": float(m["mae"]),
                "mae_l2_exponents": float(m["l2_exponents"]),
                "mae_l2_coefficients": float(m["l2_coefficients"]),
            }
        )
    return pd.DataFrame(rows, columns=BEST_COLUMNS)


def verify_crossval(
    p: Any,
    f: Any,
    loss: Any,
    form: str,
    *,
    n_check: int = 10,
    seed: int = 0,
    l2_exponents: Sequence[float] = L2_EXPONENTS,
    l2_coefficients: Sequence[float] = L2_COEFFICIENTS,
    rtol: float = 1e-6,
) -> dict[str, float]:
    """Refit ``n_check`` random (combination, penalty) problems from the form's full grid and report the
    share whose cheap fit reached the full grid's objective (``agree_rate``) and the largest gap."""
    from transferlaw.law.fit import objective

    p_arr, f_arr, loss_arr = (np.asarray(x, float).ravel() for x in (p, f, loss))
    law = get_form(form)
    e_grid, c_grid = np.meshgrid(
        np.asarray(l2_exponents, float), np.asarray(l2_coefficients, float), indexing="ij"
    )
    l2e, l2c = e_grid.ravel(), c_grid.ravel()
    splits = threshold_splits(p_arr, f_arr, law.n_params)
    masks = np.array([m for _, _, m in splits], float)
    free = _fit_form(p_arr, f_arr, loss_arr, law, masks, l2e, l2c)
    rng = np.random.default_rng(seed)
    idx = rng.choice(free.shape[0], size=min(n_check, free.shape[0]), replace=False)
    combo, pen = idx // l2e.size, idx % l2e.size
    full = fit_batch(
        p_arr, f_arr, loss_arr, law, masks[combo], None, l2_exponents=l2e[pen], l2_coefficients=l2c[pen]
    )
    cheap = np.array(
        [
            objective(
                free[i],
                p_arr,
                f_arr,
                loss_arr,
                law,
                weights=masks[c],
                l2_exponents=l2e[q],
                l2_coefficients=l2c[q],
            )
            for i, c, q in zip(idx, combo, pen, strict=True)
        ]
    )
    gap = (cheap - full.objective) / np.maximum(np.abs(full.objective), 1e-300)
    agree = (gap <= rtol) | (cheap - full.objective <= 1e-12)
    return {
        "n_checked": int(idx.size),
        "agree_rate": float(agree.mean()),
        "max_rel_objective_gap": float(gap.max()),
    }
