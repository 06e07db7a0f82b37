"""Cross-dataset tables: fitted parameters with SEs (Table 2), 95% intervals (Table 3), law forms (Table 5).

Tables are DataFrames of display strings with a ``dataset`` column, written as CSV and markdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.diagnostics import describe
from transferlaw.law.fit import NO_LAW
from transferlaw.law.forms import get_form

#: the last row of the parameter table. It is the sample standard deviation (ddof=1) over |mean| of the
#: estimates as fitted. That is not the paper's row: from its own Table 2 estimates this computes A 0.536,
#: G 0.917, alpha 0.095, beta 0.443, E 0.502 where the paper prints 0.528, 0.851, 0.094, 0.432, 0.490 (and
#: the population deviation, ddof=0, gives 0.479, 0.820, ...: no convention we know reproduces it), so the
#: label says what is computed and claims no match (tests/test_tables.py)
CV_ROW = "coefficient of variation (sample SD / |mean|)"


def _num(x: float, digits: int) -> str:
    """Fixed decimals like the paper, switching to significant digits for very large or small values
    (a poorly identified parameter's SE can be astronomically large)."""
    if np.isfinite(x) and x != 0 and not 10.0 ** (-digits) <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def _names(summaries: Mapping[str, BootstrapSummary]) -> list[str]:
    """The parameters of every summary's law (of its form where no law was fitted)."""
    names: list[str] = []
    for s in summaries.values():
        names += s.names
    return list(dict.fromkeys(names))


def _no_law_row(dataset: str, s: BootstrapSummary, names: list[str]) -> dict[str, Any] | None:
    """The row of a dataset whose law could not be fitted (None where it was): "no law fitted" throughout."""
    if s.fitted:
        return None
    return {"dataset": dataset, **dict.fromkeys(names, NO_LAW)}


def coefficient_of_variation(values: Any) -> float:
    """Sample standard deviation (ddof=1) over |mean|; NaN with fewer than two values."""
    x = np.asarray(values, dtype=float)
    return float(np.std(x, ddof=1) / abs(np.mean(x))) if x.size >= 2 else float("nan")


def parameter_table(summaries: Mapping[str, BootstrapSummary], digits: int = 3) -> pd.DataFrame:
    """Table 2: one row per dataset, each parameter as "estimate (SE)" (or, where the bootstrap found it not
    identified, its one-sided limit or "not identified"), and a last row with each parameter's coefficient of
    variation across the datasets that measure it (sample std, ddof=1, over |mean|; blank with fewer than
    two). It does not reproduce the paper's row from the paper's estimates (:data:`CV_ROW`)."""
    names = _names(summaries)
    rows = []
    for dataset, s in summaries.items():
        if (no_law := _no_law_row(dataset, s, names)) is not None:
            rows.append(no_law)
            continue
        ps = s.params
        row: dict[str, Any] = {"dataset": dataset}
        for n in names:
            if n not in ps:
                row[n] = ""
            elif not ps[n].get("identified", True):
                row[n] = describe(n, ps[n], digits)  # "G < 0.03", "not identified (at bound)"
            else:
                row[n] = f"{_num(ps[n]['estimate'], digits)} ({_num(ps[n]['se'], digits)})"
        rows.append(row)
    last: dict[str, Any] = {"dataset": CV_ROW}
    for n in names:  # over the datasets where the parameter is measured
        est = np.array(
            [
                s.params[n]["estimate"]
                for s in summaries.values()
                if n in s.params and s.params[n].get("identified", True)
            ],
            float,
        )
        last[n] = f"{coefficient_of_variation(est):.{digits}f}" if est.size >= 2 else ""
    rows.append(last)
    return pd.DataFrame(rows, columns=["dataset", *names])


def interval_table(summaries: Mapping[str, BootstrapSummary], digits: int = 3) -> pd.DataFrame:
    """Table 3: one row per dataset, each parameter's 95% percentile interval as "[low, high]"."""
    names = _names(summaries)
    rows = []
    for dataset, s in summaries.items():
        if (no_law := _no_law_row(dataset, s, names)) is not None:
            rows.append(no_law)
            continue
        ps = s.params
        row: dict[str, Any] = {"dataset": dataset}
        for n in names:
            if n not in ps:
                row[n] = ""
            elif not ps[n].get("identified", True):
                row[n] = describe(n, ps[n], digits)
            else:
                row[n] = f"[{_num(ps[n]['ci_low'], digits)}, {_num(ps[n]['ci_high'], digits)}]"
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", *names])


def law_forms_table(best: pd.DataFrame, notes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 5: per dataset and form, the lowest RMSE and MAE and the penalties that gave them,
    with the form's formula; sorted by dataset then RMSE so the best form comes first. ``notes``
    (:func:`transferlaw.law.crossval.unscored`) adds the (dataset, form) pairs nothing scored, with NaN scores
    and their message in a ``note`` column."""
    out = best.copy()
    if notes is not None and len(notes):
        extra = notes.rename(columns={"message": "note"})[["dataset", "form", "note"]]
        out = pd.concat([out.assign(note=""), extra], ignore_index=True)
    out.insert(2, "formula", [get_form(f).formula for f in out["form"]])
    return out.sort_values(["dataset", "rmse"], kind="stable", na_position="last").reset_index(drop=True)


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (pandas' ``to_markdown`` when ``tabulate`` is importable, else our own)."""
    try:
        import tabulate  # noqa: F401
    except ImportError:
        cells = [[str(c) for c in df.columns]] + [
            [_cell(v) for v in row] for row in df.itertuples(index=False)
        ]
        widths = [max(len(r[i]) for r in cells) for i in range(len(df.columns))]
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines) + "\n"
    return df.to_markdown(index=False) + "\n"


def _cell(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)
