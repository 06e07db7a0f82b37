"""``results/summary.md``: per dataset the fitted law, G with its interval and the cross-validation winner.

The one page a reader checks first; the figures and tables in the report say the rest. Everything but the
fit is optional, so the summary is useful before the bootstrap and cross-validation have run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from transferlaw.laws import get_form


def crossval_winner(crossval: pd.DataFrame) -> tuple[str, float]:
    """The form with the lowest mean held-out RMSE (each form at its best regularisation)."""
    mean = crossval.groupby(["form", "l2_exponents", "l2_coefficients"])["rmse"].mean()
    best = mean.groupby("form").min().sort_values()
    return str(best.index[0]), float(best.iloc[0])


def summary_markdown(
    fits: Mapping[str, Mapping[str, Any]],
    intervals: Mapping[str, Mapping[str, Any]] | None = None,
    crossval: Mapping[str, pd.DataFrame] | None = None,
    title: str = "transferlaw study",
) -> str:
    intervals, crossval = intervals or {}, crossval or {}
    lines = [
        f"# {title}: summary",
        "",
        "L(p, f) = (A·p^-alpha + G)·f^-beta + E (Barnett 2024, eq. 2) or the form named per dataset; "
        "G is the transfer gap. Intervals are bootstrap 95% percentile intervals.",
        "",
        "| dataset | form | fitted law | G | G 95% interval | CV winner (RMSE) |",
        "|---|---|---|---|---|---|",
    ]
    for ds, fit in fits.items():
        params = fit["params"]
        law = get_form(fit["form"])
        coef = ", ".join(f"{n}={params[n]:.4g}" for n in law.param_names)
        interval = intervals.get(ds, {}).get("params", {}).get("G")
        g_ci = f"[{interval['ci_low']:.4g}, {interval['ci_high']:.4g}]" if interval else "(no bootstrap)"
        if ds in crossval and len(crossval[ds]):
            form, rmse = crossval_winner(crossval[ds])
            winner = f"{form} ({rmse:.4g})"
        else:
            winner = "(no cross-validation)"
        row = [ds, fit["form"], f"{law.formula}; {coef}", f"{params['G']:.4g}", g_ci, winner]
        lines.append("| " + " | ".join(row) + " |")
    tables = "`results/tables/parameters.md`, `intervals.md`, `law_forms.md`, `effective_data.csv`"
    lines += ["", f"Tables: {tables} (where the analyses have run). Figures: `results/figures/`.", ""]
    return "\n".join(lines)
