"""Run noise: how far seed replicates of one cell disagree, against how far the fitted law misses.

The paper runs each (checkpoint, fine-tune size) cell once, so a residual of its fit mixes two things: the
run's own noise (data order, the initialisation of new parameters, early stopping on a noisy curve) and the
law's error. With ``seeds:`` a cell has replicates, and the classic lack-of-fit decomposition separates them
(in log loss, the space the law is fitted in). For n runs in c cells and a law of k parameters:

* pure error: the spread of runs about their cell's mean, SS_PE = sum (log L - mean_cell)^2 on n - c degrees
  of freedom; its RMS is the run noise;
* lack of fit: the spread of the cell means about the law, SS_LOF = sum n_cell (mean_cell - log L_hat)^2 on
  c - k degrees of freedom;
* F = (SS_LOF / (c - k)) / (SS_PE / (n - c)): near 1 when the law misses by no more than the noise, large
  when it misses by more (model error). Its p-value is that of an F distribution, which assumes Gaussian
  noise and a least-squares fit; the law is fitted with a Huber loss, so read it as a guide.

What the pure error leaves out: a cell's replicates share its fine-tune subset and eval split (the dataset's
one shuffle), so their spread is the optimisation's noise only. Which examples a subset holds moves a cell's
mean too, and that sampling noise is counted as lack of fit here: "model error" means the law misses by more
than seed-to-seed noise, not necessarily by more than a fresh draw of the data would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.law.fit import NO_LAW, Columns, FitRecord
from transferlaw.schema import fit_uses

#: the lack-of-fit test's level: below it the misfit is called model error
ALPHA = 0.05
GROUP = ("dataset", "model", "method")


def _finite(runs: pd.DataFrame, loss: str) -> pd.DataFrame:
    """The runs with a finite loss: a table from elsewhere, without statuses, may hold a diverged one."""
    return runs[np.isfinite(runs[loss].to_numpy(float))]


def cell_noise(
    runs: pd.DataFrame, *, columns: Columns = Columns(), group: Sequence[str] = GROUP
) -> pd.DataFrame:
    """Per cell (group, p, f): its usable runs' (those a law uses: :func:`transferlaw.schema.fit_uses`)
    count, seeds, mean, standard deviation (ddof 1; NaN with one run), range, and the standard deviation of
    log loss, the law's space."""
    p, f, loss = columns.names
    keys = [*group, p, f]
    runs = _finite(runs[fit_uses(runs, status=columns.status)], loss)
    runs = runs.assign(log_loss=lambda d: np.log(d[loss].to_numpy(float)))
    g = runs.groupby(keys, sort=True)
    out = g[loss].agg(n_runs="count", mean="mean", sd=lambda x: x.std(ddof=1), min="min", max="max")
    out["range"] = out["max"] - out["min"]
    out["sd_log"] = g["log_loss"].std(ddof=1)
    # replicates that agree to the last bit: the seed changed nothing (a full fine-tune whose subset is one
    # micro-batch has no data order to shuffle and no new parameters to draw), so they measure no noise
    out["identical"] = (out["n_runs"] > 1) & (out["range"] == 0)
    out["seeds"] = g["seed"].agg(lambda s: ",".join(str(v) for v in sorted(s))) if "seed" in runs else ""
    return out.reset_index()


def noise_vs_residuals(
    runs: pd.DataFrame, fits: Mapping[tuple[str, str, str], FitRecord], *, alpha: float = ALPHA
) -> pd.DataFrame:
    """Per (dataset, model, method) with a fit: over the runs its law uses (:func:`fit_uses`), the pooled
    run noise (pure-error RMS of log loss, and the pooled standard deviation in nats), the law's residual
    RMS over every run, the lack-of-fit RMS of the cell means, the F test between them, and a verdict: is
    the misfit noise or model error?"""
    from scipy import stats

    rows = []
    for key, fit in sorted(fits.items()):
        dataset, model, method = key
        p_col, f_col, loss = fit.columns.names
        mine = fit_uses(runs, dataset=dataset, model=model, method=method, status=fit.columns.status)
        sub = _finite(runs[mine], loss)
        law = fit.law
        y = np.log(sub[loss].to_numpy(float))
        if fit.fitted:
            y_hat = np.log(fit.predict(sub[p_col].to_numpy(float), sub[f_col].to_numpy(float)))
        else:  # no law to miss the runs by: the run noise alone
            y_hat = np.full(y.size, np.nan)
        cell = sub.groupby([p_col, f_col], sort=False).ngroup().to_numpy().astype(np.int64)
        n, c, k = y.size, int(cell.max() + 1) if y.size else 0, law.n_params
        means = np.bincount(cell, weights=y, minlength=c) / np.maximum(np.bincount(cell, minlength=c), 1)
        counts = np.bincount(cell, minlength=c)
        ss_pe = float(((y - means[cell]) ** 2).sum())
        ss_lof = float(
            (
                counts * (means - np.bincount(cell, weights=y_hat, minlength=c) / np.maximum(counts, 1)) ** 2
            ).sum()
        )
        df_pe, df_lof = n - c, c - k
        nats = sub[loss].to_numpy(float)
        nats_means = np.bincount(cell, weights=nats, minlength=c) / np.maximum(counts, 1)
        row: dict[str, Any] = {
            "dataset": dataset,
            "model": model,
            "method": method,
            "n_runs": n,
            "n_cells": c,
            "n_replicated_cells": int((counts > 1).sum()),
            "n_identical_cells": int(sum(1 for i in range(c) if counts[i] > 1 and np.ptp(y[cell == i]) == 0)),
            "noise_rms_log": float(np.sqrt(ss_pe / df_pe)) if df_pe > 0 else float("nan"),
            "noise_sd_nats": float(np.sqrt(((nats - nats_means[cell]) ** 2).sum() / df_pe))
            if df_pe > 0
            else float("nan"),
            "residual_rms_log": float(np.sqrt(np.mean((y - y_hat) ** 2))) if n else float("nan"),
            "lack_of_fit_rms_log": float(np.sqrt(ss_lof / df_lof)) if df_lof > 0 else float("nan"),
            "F": float("nan"),
            "p_value": float("nan"),
        }
        if row["n_identical_cells"]:
            row["note"] = (
                f"{row['n_identical_cells']} of {row['n_replicated_cells']} replicated cells gave identical "
                "losses: their seeds changed nothing, so they add no noise"
            )
        if not fit.fitted:
            row["verdict"] = f"{NO_LAW}: {fit.reason}"
        elif df_pe <= 0:
            row["verdict"] = "no replicates: run noise not measured"
        elif df_lof <= 0:
            row["verdict"] = f"{c} cells for {k} parameters: no lack of fit to test"
        elif ss_pe == 0:
            row["verdict"] = "replicates identical: run noise is zero, any misfit is model error"
        else:
            F = (ss_lof / df_lof) / (ss_pe / df_pe)
            pv = float(stats.f.sf(F, df_lof, df_pe))
            row.update(F=float(F), p_value=pv)
            row["verdict"] = (
                f"model error: the law misses the cell means by more than run noise "
                f"(F = {F:.3g}, p = {pv:.2g})"
                if pv < alpha
                else f"within run noise: the misfit is no larger than seed-to-seed spread "
                f"(F = {F:.3g}, p = {pv:.2g})"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def noise_markdown(cells: pd.DataFrame, summary: pd.DataFrame) -> str:
    """The run-noise summary for a reader, with the median seed-to-seed spread per (dataset, model,
    method)."""
    spread = cells.groupby(list(GROUP))["sd"].median()
    lines = [
        "| dataset | model | method | runs (cells) | median seed sd (nats) | noise RMS (log) "
        "| residual RMS (log) "
        "| lack-of-fit RMS (log) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        sd = spread.get((r["dataset"], r["model"], r["method"]), float("nan"))
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['method']} | {r['n_runs']} ({r['n_cells']}) | {sd:.3g} | "
            f"{r['noise_rms_log']:.3g} | {r['residual_rms_log']:.3g} | {r['lack_of_fit_rms_log']:.3g} "
            f"| {r['verdict']} |"
        )
    return "\n".join(lines) + "\n"
