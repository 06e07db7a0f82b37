"""Beyond the paper's one model and one method: full fine-tuning against LoRA, and the transfer gap G against
model size N.

Barnett (2024) fine-tunes every parameter of one model (LoRA is "a direction for future research", and a
law in three variables was "too costly"); it speculates that G shrinks with scale, as Hernandez et al.
(2021) found transfer to grow with N. These tables answer both from a study's bootstrap summaries and
samples, one per (dataset, model, method) (:func:`transferlaw.law.bootstrap.bootstrap_table`):

* :func:`method_table`: each method's parameters with intervals, side by side per (dataset, model), and the
  difference in G from a reference method with its bootstrap interval. Where the two bootstraps resampled
  the same cells in the same order (same seed, same runs) resample i of one is paired with resample i of the
  other, so the interval keeps what the two share (checkpoint, data); otherwise the draws are independent,
  which is also a valid bootstrap of a difference between independent estimates.
* :func:`gap_table` and :func:`gap_trend`: G with its interval against N per (dataset, method), and where
  at least three sizes measure G, the power law G(N) = c·N^-gamma fitted in log space, its exponent's
  interval from the bootstrap resamples refitted across sizes.

Nothing here reads a file: the workflow's scripts pass records and frames in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.diagnostics import describe
from transferlaw.law.fit import NO_LAW

#: percentile interval of the differences and trends (the bootstrap's)
LEVEL = 0.95
#: sizes with G identified needed for a trend G(N): two points fix any power law, so a third tests it
MIN_SIZES = 3

Key = tuple[str, str, str]  # (dataset, model, method)


def _interval(x: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if not x.size:
        return float("nan"), float("nan")
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return float(np.percentile(x, lo)), float(np.percentile(x, hi))


def _bounds(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    """What the runs say about a G: its interval where identified, [0, limit] where only an upper limit is
    measured ("G < x"), None where nothing is (at the bound, not identified)."""
    if entry.get("identified", True):
        return float(entry["ci_low"]), float(entry["ci_high"])
    if entry.get("bound") == ["low"]:
        return 0.0, float(entry["ci_high"])
    return None


def _difference_verdict(
    method: str, reference: str, g: Mapping[str, Any], g_ref: Mapping[str, Any], low: float, high: float
) -> str:
    """Whether G differs between two methods. Both identified: by the interval of the difference. Otherwise
    only where what each run measures cannot overlap (an interval above the other's upper limit); a G at
    the bound has no difference to speak of, however narrow the resampled one is (both are "zero")."""
    a, b = _bounds(g), _bounds(g_ref)
    if g.get("identified", True) and g_ref.get("identified", True):
        return _verdict(
            low, high, "difference", f"G larger than {reference}'s", f"G smaller than {reference}'s"
        )
    if a is not None and b is not None:
        if a[0] > b[1]:
            return f"G larger than {reference}'s (beyond its upper limit)"
        if a[1] < b[0]:
            return f"G smaller than {reference}'s (below it, with an upper limit only)"
    unmeasured = [m for m, e in ((method, g), (reference, g_ref)) if not e.get("identified", True)]
    return f"not resolved: G not identified for {' and '.join(unmeasured)}"


def _verdict(low: float, high: float, what: str, larger: str, smaller: str) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not measured"
    if low > 0:
        return larger
    if high < 0:
        return smaller
    return f"no {what} resolved (interval spans 0)"


def method_table(
    summaries: Mapping[Key, BootstrapSummary],
    samples: Mapping[Key, pd.DataFrame],
    reference: str,
) -> pd.DataFrame:
    """One row per (dataset, model, method): each parameter's estimate, interval and ``identified``, and for
    every method but ``reference`` the difference ``G_diff`` = G(method) - G(reference) of the same (dataset,
    model), with its 95% interval, the pairing of the resamples and a verdict."""
    rows = []
    for key in sorted(summaries):
        dataset, model, method = key
        s = summaries[key]
        row: dict[str, Any] = {
            "dataset": dataset,
            "model": model,
            "method": method,
            "n_points": s.n_points,
            "n_cells": s.n_cells,
        }
        if not s.fitted:  # no law: every parameter says so, and there is no difference to take
            row["status"], row["reason"] = s.status, s.reason
            for name in s.names:
                row[f"{name}_identified"], row[f"{name}_text"] = False, NO_LAW
        for name, entry in s.params.items():
            row[name] = entry["estimate"]
            row[f"{name}_low"], row[f"{name}_high"] = entry["ci_low"], entry["ci_high"]
            row[f"{name}_identified"] = bool(entry.get("identified", True))
            row[f"{name}_text"] = describe(name, entry)
        ref = (dataset, model, reference)
        if method != reference and ref in summaries and not (s.fitted and summaries[ref].fitted):
            unfitted = [m for m, rec in ((method, s), (reference, summaries[ref])) if not rec.fitted]
            row.update(
                G_diff_vs=reference,
                G_diff=float("nan"),
                G_diff_low=float("nan"),
                G_diff_high=float("nan"),
                pairing="",
                G_diff_verdict=f"not resolved: {NO_LAW} for {' and '.join(unfitted)}",
            )
        elif method != reference and ref in summaries:
            base = summaries[ref]
            paired = s.paired_with(base)
            a = samples[key]["G"].to_numpy(float)
            b = samples[ref]["G"].to_numpy(float)
            if paired:
                diff = a - b
            else:  # independent draws: pair them by index all the same, up to the shorter
                n = min(a.size, b.size)
                diff = a[:n] - b[:n]
            low, high = _interval(diff)
            row.update(
                G_diff_vs=reference,
                G_diff=s.params["G"]["estimate"] - base.params["G"]["estimate"],
                G_diff_low=low,
                G_diff_high=high,
                pairing="paired by cell" if paired else "independent",
                G_diff_verdict=_difference_verdict(
                    method, reference, s.params["G"], base.params["G"], low, high
                ),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def method_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """The methods table for a reader: per (dataset, model) each method's G and the other parameters as
    :func:`transferlaw.law.diagnostics.describe` writes them, and the difference in G with its interval."""
    names = [c[: -len("_text")] for c in table.columns if c.endswith("_text")]
    names.sort(key=lambda n: n != "G")
    header = ["dataset", "model", "method", *names, "G - reference [95%]", "verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        if isinstance(r.get("G_diff_vs"), str) and not np.isfinite(r["G_diff"]):
            diff, verdict = f"vs {r['G_diff_vs']}", str(r["G_diff_verdict"])
        elif isinstance(r.get("G_diff_vs"), str):
            low, high = f"{r['G_diff_low']:.{digits}g}", f"{r['G_diff_high']:.{digits}g}"
            diff = f"{r['G_diff']:.{digits}g} [{low}, {high}] vs {r['G_diff_vs']}"
            verdict = f"{r['G_diff_verdict']} ({r['pairing']})"
        else:
            diff, verdict = "(reference)", ""
        cells = [str(r["dataset"]), str(r["model"]), str(r["method"]), *(str(r[f"{n}_text"]) for n in names)]
        lines.append("| " + " | ".join([*cells, diff, verdict]) + " |")
    return "\n".join(lines) + "\n"


def gap_table(summaries: Mapping[Key, BootstrapSummary], n_params: Mapping[str, int]) -> pd.DataFrame:
    """G and its interval against the model's size: one row per (dataset, method, model), sorted by N.

    ``n_params`` maps each model to its N (parameters of the checkpoint, as the records say)."""
    rows = []
    for (dataset, model, method), s in summaries.items():
        if not s.fitted:  # no law: G is not measured at all, and the reason says why
            g = {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "identified": False}
            g |= {"text": NO_LAW, "why": f"{NO_LAW}: {s.reason}"}
        else:
            g = s.params["G"]
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "model": model,
                "n_params": int(n_params[model]),
                "G": g["estimate"],
                "G_low": g["ci_low"],
                "G_high": g["ci_high"],
                "G_identified": bool(g.get("identified", True)),
                # "G < x": what the runs bound it by, where that is all they measure
                "G_upper_limit": g["ci_high"] if g.get("bound") == ["low"] else float("nan"),
                "G_text": g["text"] if "text" in g else describe("G", g),
                "why": g.get("why", ""),
            }
        )
    columns = [
        "dataset",
        "method",
        "model",
        "n_params",
        "G",
        "G_low",
        "G_high",
        "G_identified",
        "G_upper_limit",
        "G_text",
        "why",
    ]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["dataset", "method", "n_params", "model"], kind="stable").reset_index(drop=True)


def _power_law(n: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(gamma, c) of log G = log c - gamma log N by least squares."""
    x = np.log(np.asarray(n, float))
    y = np.log(np.asarray(g, float))
    slope, intercept = np.polyfit(x, y, 1)
    return float(-slope), float(np.exp(intercept))


def gap_trend(
    table: pd.DataFrame, samples: Mapping[Key, pd.DataFrame], min_sizes: int = MIN_SIZES
) -> pd.DataFrame:
    """Per (dataset, method): the power law G(N) = c·N^-gamma through the sizes whose G is identified, where
    there are at least ``min_sizes``; its interval from refitting it to resample i of every size, for each i
    (the sizes' bootstraps are independent runs, so pairing them by index draws from the joint spread).
    ``status`` says why a trend was not fitted."""
    rows = []
    for (dataset, method), sub in table.groupby(["dataset", "method"], sort=True):
        known = sub[sub["G_identified"] & (sub["G"] > 0)]
        row: dict[str, Any] = {
            "dataset": dataset,
            "method": method,
            "n_sizes": int(sub["n_params"].nunique()),
            "n_identified": int(known["n_params"].nunique()),
            "gamma": float("nan"),
            "gamma_low": float("nan"),
            "gamma_high": float("nan"),
            "c": float("nan"),
        }
        if row["n_sizes"] < min_sizes:
            row["status"] = f"skipped: {row['n_sizes']} model size(s); a trend needs {min_sizes}"
        elif row["n_identified"] < min_sizes:
            row["status"] = (
                f"skipped: G identified at {row['n_identified']} of {row['n_sizes']} sizes; "
                f"a trend needs {min_sizes}"
            )
        else:
            gamma, c = _power_law(known["n_params"], known["G"])
            draws = [samples[(dataset, m, method)]["G"].to_numpy(float) for m in known["model"]]
            b = min(d.size for d in draws)
            stack = np.stack([d[:b] for d in draws])  # (sizes, resamples)
            ok = np.all(np.isfinite(stack) & (stack > 0), axis=0)
            x = np.log(known["n_params"].to_numpy(float))
            xc = x - x.mean()
            slopes = (xc @ np.log(stack[:, ok])) / (xc @ xc)  # least-squares slope of each resample
            low, high = _interval(-slopes)
            row.update(gamma=gamma, c=c, gamma_low=low, gamma_high=high, n_resamples=int(ok.sum()))
            row["status"] = "fitted: " + _verdict(
                low, high, "trend", "G shrinks with model size", "G grows with model size"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def gap_markdown(table: pd.DataFrame, trend: pd.DataFrame) -> str:
    lines = ["| dataset | method | model | N | G [95%] |", "|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['dataset']} | {r['method']} | {r['model']} | {r['n_params']:,} | {r['G_text']} |")
    lines += ["", "| dataset | method | trend G(N) = c N^-gamma | gamma [95%] |", "|---|---|---|---|"]
    for _, r in trend.iterrows():
        gamma = (
            f"{r['gamma']:.3g} [{r['gamma_low']:.3g}, {r['gamma_high']:.3g}]"
            if np.isfinite(r["gamma"])
            else ""
        )
        lines.append(f"| {r['dataset']} | {r['method']} | {r['status']} | {gamma} |")
    return "\n".join(lines) + "\n"


def keyed(keys: Sequence[Sequence[str]], items: Sequence[Any]) -> dict[Key, Any]:
    """Zip the (dataset, model, method) keys a rule lists with the files it read, in the same order."""
    if len(keys) != len(items):
        raise ValueError(f"{len(keys)} (dataset, model, method) keys for {len(items)} inputs")
    return {(str(k[0]), str(k[1]), str(k[2])): item for k, item in zip(keys, items, strict=True)}
