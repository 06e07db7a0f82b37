"""Bootstrap uncertainty of the fitted law (Barnett 2024, section 5, Tables 2 and 3).

The runs of a dataset are resampled with replacement and the law is refitted to each resample. A
resample is a vector of integer multiplicities over the original runs, so every resample is one row
of the (B, n) weight matrix of :func:`transferlaw.law.fit.fit_batch`: all B refits run together.

Refitting each resample from the paper's 2,240-start grid would cost thousands of full fits. A
resample is a small perturbation of the data, so its optimum lies near the full-data optimum: each
refit starts from that optimum (warm start). Refits that do not converge from there get a few
*restarts*: their own warm-start result plus the grid starts that score best on the full data (they
seed the other basins the full fit saw), and keep the best. Giving every refit the restarts costs
~1.5x the time and changed no answer in the agreement checks, so restarts go where they are needed.
They are needed by every refit when the full-data fit has a coefficient at the optimiser's bound
(:func:`transferlaw.law.diagnostics.at_bound`, G = e^-60 say): its term's gradient there is ~e^-60, so a warm
start can never leave the bound, every refit "converges" where it started, and the interval would be the
bound alone (width 0) even where many resamples' optima have the coefficient well above it.
:func:`verify_refits` refits a random subset of resamples from the full grid and reports how often
the cheap refit reached the same objective, so the shortcut is checked rather than assumed
(``tests/test_bootstrap.py`` and ``benchmarks/uncertainty.py`` run it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.defaults import default
from transferlaw.law.diagnostics import identification
from transferlaw.law.fit import (
    DEFAULT_FORM,
    NO_LAW,
    STATUS_FITTED,
    STATUS_NOT_FITTED,
    Columns,
    FitResult,
    NoLaw,
    _read_json,
    check_fit_input,
    fit_batch,
    fit_law,
    objective,
    table_groups,
    why_no_law,
)
from transferlaw.law.forms import LawForm, get_form

logger = logging.getLogger(__name__)

#: the confidence level of the percentile intervals (the paper's Table 3)
LEVEL = 0.95
#: number of grid starts added to the warm start of every refit
DEFAULT_RESTARTS = 3
#: resamples per dataset when none is given (config ``analysis.bootstrap_samples``, the paper's 4,000)
DEFAULT_SAMPLES: int = default("analysis.bootstrap_samples")


@dataclass
class BootstrapResult:
    """Refits of B resamples: ``samples`` (columns ``sample``, one per parameter, ``objective``,
    ``converged``) and the full-data fit ``base`` whose parameters are the point estimates."""

    form: str
    base: FitResult
    samples: pd.DataFrame
    weights: np.ndarray  # (B, n) multiplicities, kept for verify_refits
    seed: int
    p: np.ndarray  # the runs, for the identification of the parameters
    f: np.ndarray

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    def summary(self, level: float = LEVEL) -> dict[str, dict[str, float]]:
        """Per parameter: full-data ``estimate``, bootstrap ``se`` (sample std) and percentile interval.

        Resamples whose refit gave a non-finite objective are dropped (they carry no estimate);
        non-converged but finite refits are kept, as the paper's procedure keeps every refit.
        """
        ok = np.isfinite(self.samples["objective"].to_numpy())
        lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
        law = get_form(self.form)
        out = {}
        for name in law.param_names:
            x = self.samples[name].to_numpy()[ok]
            out[name] = {
                "estimate": float(self.base.params[name]),
                "se": float(np.std(x, ddof=1)) if x.size > 1 else float("nan"),
                "ci_low": float(np.percentile(x, lo)) if x.size else float("nan"),
                "ci_high": float(np.percentile(x, hi)) if x.size else float("nan"),
            }
        free = np.array(
            [law.to_free(r) for r in self.samples.loc[ok, list(law.param_names)].to_dict("records")]
        )
        if free.size:
            for name, verdict in identification(law, self.base.free, free, self.p, self.f, out).items():
                out[name].update(verdict)
        return out


def resample_weights(n: int, n_samples: int, seed: int, cells: Any = None) -> np.ndarray:
    """(n_samples, n) multiplicities of n runs drawn with replacement, seeded.

    With ``cells`` (a label per run: its cell, e.g. the (checkpoint, size) whose seed replicates it is one
    of), cells are drawn instead, each bringing all its runs: replicates of a cell share its checkpoint and
    data, so they are not independent draws, and resampling them one by one would understate the spread.
    Cells are numbered in order of first appearance, so with one run per cell the draws are exactly those of
    resampling runs.
    """
    rng = np.random.default_rng(seed)
    if cells is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_samples).astype(float)
    codes, uniques = pd.factorize(pd.Series(list(cells)))
    if codes.size != n:
        raise ValueError(f"cells label {codes.size} runs, not {n}")
    k = len(uniques)
    draws = rng.multinomial(k, np.full(k, 1.0 / k), size=n_samples).astype(float)
    return draws[:, codes]


def restart_starts(
    p: np.ndarray, f: np.ndarray, loss: np.ndarray, law: LawForm, base_free: np.ndarray, n_restarts: int
) -> np.ndarray:
    """The warm start followed by the ``n_restarts`` grid starts with the lowest full-data objective."""
    grid = law.initial_grid()
    if n_restarts <= 0:
        return base_free[None, :]
    scores = objective(grid, p, f, loss, law)
    best = grid[np.argsort(scores, kind="stable")[:n_restarts]]
    return np.vstack([base_free[None, :], best])


def bootstrap_fit(
    p: Any,
    f: Any,
    loss: Any,
    form: str | LawForm = DEFAULT_FORM,
    *,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    base: FitResult | None = None,
    n_restarts: int = DEFAULT_RESTARTS,
    prune: Any = None,
    names: tuple[str, str, str] = ("p", "f", "loss"),
    cells: Any = None,
) -> BootstrapResult:
    """Bootstrap the fit of ``form`` to (p, f, loss) with ``n_samples`` seeded resamples of the runs (of the
    ``cells``, each with all its runs, where given: :func:`resample_weights`).

    ``base`` is the full-data fit (computed with :func:`fit_law` when not given). Refits start from
    ``base.free``; those that do not converge (all of them, where ``base`` has a parameter at the bound)
    are refitted from their result and the ``n_restarts`` best grid starts. All resamples are solved in
    one batch.
    """
    law = get_form(form)
    p_arr, f_arr, loss_arr = check_fit_input(p, f, loss, law, names=names)
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    if base is None:
        base = fit_law(p_arr, f_arr, loss_arr, law, names=names)
    elif base.form != law.name:
        raise ValueError(f"base fit is of form {base.form!r}, not {law.name!r}")
    weights = resample_weights(p_arr.size, n_samples, seed, cells)
    base_free = np.asarray(base.free, float)
    res = fit_batch(p_arr, f_arr, loss_arr, law, weights, base_free[None, :], prune=prune)
    stuck = bool(base.diagnostics.get("at_bound"))  # a warm start at the bound cannot leave it
    redo = np.arange(n_samples) if stuck else np.flatnonzero(~res.converged)
    if redo.size and n_restarts > 0:
        grid_best = restart_starts(p_arr, f_arr, loss_arr, law, base_free, n_restarts)[1:]
        starts = np.concatenate(
            [res.free[redo][:, None, :], np.broadcast_to(grid_best, (redo.size,) + grid_best.shape)], axis=1
        )
        again = fit_batch(p_arr, f_arr, loss_arr, law, weights[redo], starts, prune=prune)
        better = again.objective <= res.objective[redo]
        for arr, new in (
            (res.free, again.free),
            (res.objective, again.objective),
            (res.converged, again.converged),
        ):
            arr[redo[better]] = new[better]
    natural = np.array([list(law.to_natural(x).values()) for x in res.free]) if n_samples else None
    samples = pd.DataFrame(natural, columns=list(law.param_names))
    samples.insert(0, "sample", np.arange(n_samples, dtype=np.int64))
    samples["objective"] = res.objective
    samples["converged"] = res.converged
    n_bad = int((~res.converged).sum())
    if n_bad:
        logger.info("%d of %d bootstrap refits did not converge", n_bad, n_samples)
    return BootstrapResult(law.name, base, samples, weights, seed, p_arr, f_arr)


def verify_refits(
    result: BootstrapResult,
    p: Any,
    f: Any,
    loss: Any,
    *,
    n_check: int = 20,
    seed: int = 1,
    rtol: float = 1e-6,
) -> dict[str, float]:
    """Refit ``n_check`` random resamples from the form's full grid (the exhaustive multi-start fit)
    and compare with the cheap refits.

    Returns ``n_checked``, ``agree_rate`` (share whose cheap objective is within ``rtol`` relative
    — or 1e-12 absolute — of, or below, the full refit's), ``max_rel_objective_gap`` and
    ``max_abs_param_diff`` over the free parameters of the agreeing ones.
    """
    law = get_form(result.form)
    p_arr, f_arr, loss_arr = (np.asarray(x, float).ravel() for x in (p, f, loss))
    rng = np.random.default_rng(seed)
    idx = rng.choice(result.n_samples, size=min(n_check, result.n_samples), replace=False)
    full = fit_batch(p_arr, f_arr, loss_arr, law, result.weights[idx], None)
    cheap_obj = result.samples["objective"].to_numpy()[idx]
    gap = (cheap_obj - full.objective) / np.maximum(np.abs(full.objective), 1e-300)
    agree = (gap <= rtol) | (cheap_obj - full.objective <= 1e-12)
    cheap_free = np.array(
        [law.to_free(r) for r in result.samples.iloc[idx][list(law.param_names)].to_dict("records")]
    )
    diff = np.abs(cheap_free - full.free)[agree]
    return {
        "n_checked": int(idx.size),
        "agree_rate": float(agree.mean()),
        "max_rel_objective_gap": float(np.max(gap)),
        "max_abs_param_diff": float(diff.max()) if diff.size else float("nan"),
    }


#: every key a bootstrap summary's JSON may hold (:meth:`BootstrapSummary.to_json`)
SUMMARY_KEYS = frozenset(
    ["dataset", "form", "status", "n_samples", "seed", "n_points", "n_cells", "cells", "n_excluded", "cause",
     "reason", "keys", "n_converged", "params", "model", "method"]
)  # fmt: skip


@dataclass(frozen=True)
class BootstrapSummary:
    """A group's bootstrap as :func:`bootstrap_table` makes it and the tables, figures, summary and method
    comparisons read it: per parameter of the law its ``estimate``, ``se``, 95% interval (``ci_low``,
    ``ci_high``) and ``identified`` (with ``why`` and ``bound`` where not: the entries
    :meth:`BootstrapResult.summary` makes, which :func:`transferlaw.law.diagnostics.describe` reads), and how
    the resamples were drawn; or, where the group has no law (``no_law``), why, and no parameters.

    Its JSON (``results/bootstrap/<dataset>.json``) is :meth:`to_json`, key for key and in the order the
    bootstrap has always written it; :meth:`from_json` and :meth:`read` read it back."""

    dataset: Any  # the group's value
    form: str
    params: Mapping[str, Mapping[str, Any]]  # {} without a law
    no_law: NoLaw | None = None  # why there is no law (None: there is one)
    n_samples: int | None = None  # resamples asked for
    seed: int | None = None  # their seed
    n_points: int | None = None  # usable runs
    n_cells: int | None = None  # distinct (p, f) cells, each resampled with all its runs
    cells: tuple[tuple[float, float], ...] | None = None  # the cells, in the order resampled
    n_excluded: int | None = None  # runs left out for their status
    n_converged: int | None = None  # refits that converged
    model: str | None = None  # the workflow's: whose runs
    method: str | None = None

    @property
    def fitted(self) -> bool:
        """Whether the group has a law (and so intervals)."""
        return self.no_law is None

    @property
    def status(self) -> str:
        return STATUS_FITTED if self.fitted else STATUS_NOT_FITTED

    @property
    def reason(self) -> str:
        """Why there is no law ("" where there is one)."""
        return self.no_law.reason if self.no_law is not None else ""

    @property
    def names(self) -> list[str]:
        """The parameters of the law (of its form, where there is none)."""
        return list(self.params) or list(get_form(self.form).param_names)

    def paired_with(self, other: BootstrapSummary) -> bool:
        """Whether resample i of this bootstrap drew the same cells as resample i of ``other``: same seed,
        same count, same cells in the same order."""
        return (
            self.seed == other.seed
            and self.n_samples == other.n_samples
            and self.cells is not None
            and self.cells == other.cells
        )

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data, in the order :func:`bootstrap_table` writes it."""
        out: dict[str, Any] = {"dataset": self.dataset, "form": self.form, "status": self.status}
        cells = None if self.cells is None else [list(c) for c in self.cells]
        for key, value in (
            ("n_samples", self.n_samples),
            ("seed", self.seed),
            ("n_points", self.n_points),
            ("n_cells", self.n_cells),
            ("cells", cells),
            ("n_excluded", self.n_excluded),
        ):
            if value is not None:
                out[key] = value
        if self.no_law is not None:
            out.update({k: v for k, v in self.no_law.record().items() if k != "status"})
        if self.n_converged is not None:
            out["n_converged"] = self.n_converged
        out["params"] = {name: dict(entry) for name, entry in self.params.items()}
        for key in ("model", "method"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any], source: str = "bootstrap summary") -> BootstrapSummary:
        """A summary from its JSON (:meth:`to_json`); ValueError names ``source`` and what is wrong."""
        if not isinstance(d, Mapping) or "form" not in d or "params" not in d:
            raise ValueError(f"{source}: not a bootstrap summary (no 'form' or 'params')")
        if unknown := [k for k in d if k not in SUMMARY_KEYS]:
            raise ValueError(
                f"{source}: unknown key(s) {', '.join(map(repr, unknown))} in a bootstrap summary"
            )
        status = d.get("status", STATUS_FITTED)
        if status not in (STATUS_FITTED, STATUS_NOT_FITTED):
            raise ValueError(
                f"{source}: status {status!r} is neither {STATUS_FITTED!r} nor {STATUS_NOT_FITTED!r}"
            )
        no_law = None
        if status == STATUS_NOT_FITTED:
            no_law = NoLaw(str(d.get("cause", "")), str(d.get("reason", "")), tuple(d.get("keys", ())))
        cells = d.get("cells")
        return cls(
            dataset=d.get("dataset"),
            form=get_form(d["form"]).name,
            params={str(name): dict(entry) for name, entry in d["params"].items()},
            no_law=no_law,
            cells=None if cells is None else tuple(tuple(c) for c in cells),
            **{
                k: d.get(k) for k in ("n_samples", "seed", "n_points", "n_cells", "n_excluded", "n_converged")
            },
            **{k: d.get(k) for k in ("model", "method")},
        )

    @classmethod
    def read(cls, path: str | Path) -> BootstrapSummary:
        """The summary of one law's bootstrap from its JSON file (``results/bootstrap/<dataset>.json``)."""
        return cls.from_json(_read_json(path), str(path))


def bootstrap_table(
    df: pd.DataFrame,
    *,
    form: str = DEFAULT_FORM,
    columns: Columns = Columns(),
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    keys: Mapping[str, str] | None = None,
    record_unfitted: bool = False,
    **kwargs: Any,
) -> tuple[dict[str, BootstrapSummary], dict[str, pd.DataFrame]]:
    """Bootstrap one law per group of a table of runs (:func:`transferlaw.law.fit.table_groups`).

    Resamples draw cells, the distinct (p, f) of the runs, each with all its runs (its seed replicates).

    Returns (summaries, samples), keyed by group value: a :class:`BootstrapSummary` per group (``cells``:
    the (p, f) of each cell in the order resampled), and the resample refits per group. A group whose law
    cannot be fitted (:func:`transferlaw.law.fit.why_no_law`) raises ValueError naming it, or with
    ``record_unfitted`` gets a summary that says why (``no_law``) with empty ``params``, and no resamples (a
    frame with the columns alone).
    """
    law = get_form(form)
    p, f, loss = columns.names
    summaries: dict[str, BootstrapSummary] = {}
    samples: dict[str, pd.DataFrame] = {}
    for g in table_groups(df, columns):
        sub = g.runs
        cells = sub.groupby([p, f], sort=False).ngroup().to_numpy()  # numbered in order of first appearance
        record: dict[str, Any] = {
            "dataset": g.key,
            "form": law.name,
            "n_samples": int(n_samples),
            "seed": int(seed),
            "n_points": int(len(sub)),
            "n_cells": int(cells.max() + 1) if cells.size else 0,
            "cells": tuple(tuple(c) for c in sub[[p, f]].drop_duplicates().to_numpy(float).tolist()),
            "n_excluded": g.n_excluded,
        }
        if (no_law := why_no_law(g, law, columns=columns, keys=keys)) is not None:
            if not record_unfitted:
                raise ValueError(f"{g.label}: {NO_LAW}: {no_law.reason}")
            logger.warning("%s: no law fitted, nothing to bootstrap: %s", g.label, no_law.reason)
            summaries[str(g.key)] = BootstrapSummary(**record, no_law=no_law, n_converged=0, params={})
            samples[str(g.key)] = empty_samples(law)
            continue
        try:
            res = bootstrap_fit(
                sub[p], sub[f], sub[loss], law, n_samples=n_samples, seed=seed, names=columns.names,
                cells=cells, **kwargs,
            )  # fmt: skip
        except ValueError as err:
            raise ValueError(f"{g.label}: {err}") from None
        params = res.summary()
        missing = [n for n, e in params.items() if not e["identified"]]
        if missing:
            logger.warning(
                "%s: %s not identified (%s)",
                g.label,
                ", ".join(missing),
                "; ".join(f"{n}: {params[n]['why']}" for n in missing),
            )
        n_converged = int(res.samples["converged"].sum())
        summaries[str(g.key)] = BootstrapSummary(**record, n_converged=n_converged, params=params)
        samples[str(g.key)] = res.samples
    return summaries, samples


def empty_samples(form: str | LawForm) -> pd.DataFrame:
    """The resamples of a law that could not be fitted: the columns of :func:`bootstrap_fit`'s, no rows."""
    law = get_form(form)
    columns = {"sample": "int64", **dict.fromkeys(law.param_names, "float64")}
    columns |= {"objective": "float64", "converged": "bool"}
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
