"""The summary page: per dataset the fitted law, G with its interval, the cross-validation winner and
the runs to do next.

The one page a reader checks first; the figures and tables in the report say the rest. Everything but the
fit is optional, so the summary is useful before the bootstrap, cross-validation and advice have run.

The page tells its reader where the study's other results are, but the workflow's rules own its layout: they
pass those paths in (``where``, see :data:`WHERE`); a result without a path is named without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from transferlaw.law.advise import ADVICE_COLUMNS
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.crossval import scored, unscored
from transferlaw.law.diagnostics import describe, needs_sentence
from transferlaw.law.fit import NO_LAW, FitRecord

#: recommendations per dataset the summary shows (the advice table has them all)
TOP_ADVICE = 3

#: what the page points its reader to (the keys of ``where``): each a path, or a list of paths in one folder
WHERE = {
    "check": "the study's final check (README, *Exit status*)",
    "bootstrap": "a dataset's bootstrap summary: a pattern with `{dataset}`",
    "advice": "the folder of the advice tables",
    "tables": "the tables of the paper",
    "figures": "the folder of the figures",
    "methods": "the table of every method's parameters",
    "gap": "the tables of G against model size and its trend",
    "gap_figure": "the figure of G against model size",
    "noise": "the table of run noise per cell",
    "noise_figure": "the figure of run noise",
}


def _files(paths: str | list[str]) -> str:
    """Paths as the page names them: the first in full, the others in its folder by their names."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    folder = paths[0].rpartition("/")[0]
    names = [p.rpartition("/")[2] if p.rpartition("/")[0] == folder else p for p in paths[1:]]
    return ", ".join(f"`{p}`" for p in [paths[0], *names])


def _at(where: Mapping[str, Any] | None, key: str, **fields: str) -> str:
    """`` (`PATH`)`` for a result the page names, or nothing where the caller gave no path."""
    path = (where or {}).get(key)
    return f" ({_files(path.format(**fields) if isinstance(path, str) else path)})" if path else ""


def advice_sentences(advice: Mapping[str, pd.DataFrame], top: int = TOP_ADVICE) -> list[str]:
    """Per dataset its first ``top`` advised runs (their cells, and the width of the target's interval the
    advice expects after each), then the advice's message: what it started from and expects."""
    out = []
    for ds, rows in advice.items():
        if not len(rows):
            continue
        cell_columns = [c for c in rows.columns if c not in ADVICE_COLUMNS and c != "dataset"]
        cells = []
        for row in rows.head(top).to_dict("records"):
            cell = ", ".join(f"{c} {row[c]}" for c in cell_columns)
            width = row["expected_width"]
            cells.append(f"{cell} ({row['target']} width -> {width:.3g})" if width == width else cell)
        first = rows.iloc[0]
        kind = "" if first["status"] == "ok" else f" [{first['status']}]"
        out.append(f"{ds}{kind}: {'; '.join(cells)}. {first['message']}.")
    return out


def crossval_winner(crossval: pd.DataFrame) -> tuple[str, float]:
    """The form with the lowest mean held-out RMSE (each form at its best regularisation), among the rows
    that were scored (:func:`transferlaw.law.crossval.scored`)."""
    crossval = scored(crossval)
    mean = crossval.groupby(["form", "l2_exponents", "l2_coefficients"])["rmse"].mean()
    best = mean.groupby("form").min().sort_values()
    return str(best.index[0]), float(best.iloc[0])


def parameter_cells(fit: FitRecord, interval: BootstrapSummary | None) -> dict[str, str]:
    """Each parameter as a reader should read it: with the bootstrap, its interval, one-sided limit or "not
    identified" (:func:`transferlaw.law.diagnostics.describe`); without, the estimate, or "at bound" where
    the fit sits at the optimiser's bound; "no law fitted" (G) where the runs could not be fitted at all."""
    law = fit.law
    if not fit.fitted:
        return {name: NO_LAW if name == "G" else "" for name in law.param_names}
    cells = {}
    for name in law.param_names:
        entry = interval.params.get(name) if interval is not None else None
        if entry is not None:
            cells[name] = describe(name, entry)
        elif name in fit.at_bound:
            cells[name] = "not identified (at bound)"
        else:
            cells[name] = f"{fit.params[name]:.4g}"
    return cells


def not_fitted_sentences(fits: Mapping[str, FitRecord]) -> list[str]:
    """Per dataset whose law could not be fitted: "<dataset>: no law fitted: <why, and what to change>"."""
    return [
        f"{ds}: {NO_LAW}: {fit.reason or '(no reason recorded)'}"
        for ds, fit in fits.items()
        if not fit.fitted
    ]


def study_check(
    fits: Mapping[tuple[str, str, str], FitRecord], summary: str | None = None
) -> tuple[bool, str]:
    """The study's final check over every fitted law, keyed (dataset, model, method): whether each has one,
    and the text that says so, or names each that has none with why and the setting to change (the first
    line sums it up; ``summary``, the summary page's path, lists them first)."""
    several = len({(m, me) for _, m, me in fits}) > 1
    missing = []
    for (dataset, model, method), fit in sorted(fits.items()):
        if not fit.fitted:
            which = f"{dataset} (model {model}, method {method})" if several else dataset
            missing.append(f"- {which}: {NO_LAW}: {fit.reason}")
    if missing:
        head = (
            f"study check failed: {len(missing)} of {len(fits)} law(s) could not be fitted; every other "
            f"result is written{f' ({summary} lists them first)' if summary else ''}. Change what is named "
            "and run again:"
        )
        return False, "\n".join([head, *missing])
    warnings = [f"- {ds}: {w}" for (ds, _, _), fit in sorted(fits.items()) for w in fit.warnings]
    text = f"study check passed: all {len(fits)} law(s) fitted."
    return True, "\n".join([text, *(["Warnings:", *warnings] if warnings else [])])


def check_note(where: Mapping[str, Any] | None = None) -> str:
    """How the summary says what the study's final check does (rule check_study, README "Exit status")."""
    return (
        f"The other datasets' results are complete; the study's final check{_at(where, 'check')} fails, "
        "and with it the workflow's exit status, until every dataset is analysed: change what is named and "
        "run the workflow again."
    )


def _winner(ds: str, fit: FitRecord, crossval: Mapping[str, pd.DataFrame]) -> tuple[str, str | None]:
    """The cross-validation cell of a dataset's row, and why it is empty where it is (None otherwise)."""
    cv = crossval.get(ds)
    if cv is None or not len(cv):
        return "(no cross-validation)", None
    if len(scored(cv)):
        form, rmse = crossval_winner(cv)
        return f"{form} ({rmse:.4g})", None
    if not fit.fitted:
        return "(no cross-validation)", None  # the reason is the fit's, said already
    why = unscored(cv)
    main = why[why["form"] == fit.form]
    message = str((main if len(main) else why)["message"].iloc[0])
    return "(no cross-validation split)", f"{ds}: no cross-validation: {message}."


def _rows(
    fits: Mapping[str, FitRecord],
    intervals: Mapping[str, BootstrapSummary],
    crossval: Mapping[str, pd.DataFrame],
    where: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[list[str]], list[str]]:
    """The summary table (parameter names, G first; one row per dataset, those without a law first) and the
    sentences of what the runs cannot tell."""
    names = list(dict.fromkeys(n for fit in fits.values() for n in fit.law.param_names))
    names.sort(key=lambda n: n != "G")
    rows, needs = [], []
    for ds, fit in sorted(fits.items(), key=lambda item: item[1].fitted):  # stable: unfitted first
        interval = intervals.get(ds)
        if interval is not None and not interval.fitted:
            interval = None
        cells = parameter_cells(fit, interval)
        winner, why_no_cv = _winner(ds, fit, crossval)
        rows.append([ds, fit.form, *(cells.get(n, "") for n in names), winner])
        if not fit.fitted:
            continue
        needs += [f"{ds}: {w}." for w in fit.warnings]  # e.g. runs stopped at the epoch cap
        axes = {"p": fit.columns.p, "f": fit.columns.f, "f_unit": fit.f_unit}
        if interval is not None:
            sentence = needs_sentence(ds, interval.params, **axes)
        else:
            sentence = needs_sentence(ds, {n: {"identified": False} for n in fit.at_bound}, **axes)
        if sentence:
            needs.append(sentence)
        if why_no_cv:
            needs.append(why_no_cv)
        if ds not in intervals:
            needs.append(f"{ds}: no bootstrap yet, so no intervals{_at(where, 'bootstrap', dataset=ds)}.")
    return names, rows, needs


def summary_markdown(
    fits: Mapping[str, FitRecord],
    intervals: Mapping[str, BootstrapSummary] | None = None,
    crossval: Mapping[str, pd.DataFrame] | None = None,
    title: str = "transferlaw study",
    advice: Mapping[str, pd.DataFrame] | None = None,
    where: Mapping[str, Any] | None = None,
) -> str:
    """The landing page: first the datasets whose law could not be fitted, each with why and the setting
    to change; then per dataset the form, G first, then the other parameters (each with its 95% interval,
    its one-sided limit, or "not identified"), the cross-validation winner, one sentence per dataset saying
    what runs would measure what these runs do not (and where over a quarter stopped at the epoch cap), and
    the first advised runs; ``where`` names the study's other results (:data:`WHERE`)."""
    intervals, crossval, where = intervals or {}, crossval or {}, where or {}
    names, rows, needs = _rows(fits, intervals, crossval, where)
    lines = [f"# {title}: summary", ""]
    if unfitted := not_fitted_sentences(fits):
        lines += ["## Not analysed", "", *(f"- {s}" for s in unfitted), "", check_note(where), ""]
    lines += [
        "L(p, f) = (A·p^-alpha + G)·f^-beta + E (Barnett 2024, eq. 2), or the form named per dataset; "
        "**G is the transfer gap**. Each parameter shows its estimate and bootstrap 95% percentile interval; "
        '"G < x" when the runs bound it only from above (its interval reaches the optimiser\'s bound, zero), '
        'and "not identified" when the runs cannot measure it.',
        "",
        "| dataset | form | "
        + " | ".join("G (transfer gap)" if n == "G" else n for n in names)
        + " | CV winner (RMSE) |",
        "|---|---|" + "---|" * len(names) + "---|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if needs:
        lines += ["", "## What these runs cannot tell", "", *(f"- {s}" for s in needs)]
    if next_runs := advice_sentences(advice or {}):
        folder = f", {_files(where['advice'])}" if where.get("advice") else ""
        lines += ["", f"## Next runs (advice{folder})", "", *(f"- {s}" for s in next_runs)]
    pointers = (
        [f"Tables: {_files(where['tables'])} (where the analyses have run)."] if where.get("tables") else []
    )
    pointers += [f"Figures: {_files(where['figures'])}."] if where.get("figures") else []
    lines += ["", " ".join(pointers), ""] if pointers else [""]
    return "\n".join(lines)


def beyond_markdown(
    methods: pd.DataFrame | None = None,
    gap: pd.DataFrame | None = None,
    trend: pd.DataFrame | None = None,
    noise: pd.DataFrame | None = None,
    where: Mapping[str, Any] | None = None,
) -> str:
    """What a study with several methods, models or seeds adds to the summary: G per method with the
    difference from the reference method, G against model size with its trend, and run noise against the
    law's residuals (the tables of :mod:`transferlaw.law.compare` and :mod:`transferlaw.law.noise`); ``where``
    names the files they come from (:data:`WHERE`)."""
    where = where or {}
    lines: list[str] = []
    if methods is not None and len(methods):
        lines += [
            "## Fine-tuning methods",
            "",
            "| dataset | model | method | G (transfer gap) | G - reference [95%] |",
            "|---|---|---|---|---|",
        ]
        for _, r in methods.iterrows():
            diff = "(reference)"
            if isinstance(r.get("G_diff_vs"), str):
                diff = (
                    f"{r['G_diff']:.3g} [{r['G_diff_low']:.3g}, {r['G_diff_high']:.3g}] vs {r['G_diff_vs']}: "
                    f"{r['G_diff_verdict']}"
                )
            lines.append(f"| {r['dataset']} | {r['model']} | {r['method']} | {r['G_text']} | {diff} |")
        lines += (
            ["", f"Every parameter of every method: {_files(where['methods'])}.", ""]
            if where.get("methods")
            else [""]
        )
    if gap is not None and len(gap):
        lines += [
            "## Transfer gap against model size",
            "",
            "| dataset | method | "
            + " | ".join(f"{m} (N = {n:,})" for m, n in _sizes(gap))
            + " | trend G(N) |",
            "|---|---|" + "---|" * len(_sizes(gap)) + "---|",
        ]
        for (ds, method), sub in gap.groupby(["dataset", "method"], sort=True):
            by_model = dict(zip(sub["model"], sub["G_text"], strict=True))
            status = ""
            if trend is not None and len(trend):
                row = trend[(trend["dataset"] == ds) & (trend["method"] == method)]
                if len(row):
                    status = str(row["status"].iloc[0])
                    if pd.notna(row["gamma"].iloc[0]):
                        status += (
                            f"; gamma = {row['gamma'].iloc[0]:.3g} "
                            f"[{row['gamma_low'].iloc[0]:.3g}, {row['gamma_high'].iloc[0]:.3g}]"
                        )
            cells = [by_model.get(m, "") for m, _ in _sizes(gap)]
            lines.append(f"| {ds} | {method} | " + " | ".join(cells) + f" | {status} |")
        files = [_files(where["gap"])] if where.get("gap") else []
        files += [f"figure {_files(where['gap_figure'])}"] if where.get("gap_figure") else []
        lines += ["", "; ".join(files) + ".", ""] if files else [""]
    if noise is not None and len(noise):
        lines += [
            "## Run noise against the law's residuals",
            "",
            "RMS of log eval loss: run noise is the spread of seed replicates about their cell's mean (they "
            "share the cell's fine-tune subset, so it is the optimisation's noise, not the data's); lack of "
            "fit is the spread of the cell means about the law.",
            "",
            "| dataset | model | method | run noise | law residual | lack of fit | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for _, r in noise.iterrows():
            lines.append(
                f"| {r['dataset']} | {r['model']} | {r['method']} | {r['noise_rms_log']:.3g} | "
                f"{r['residual_rms_log']:.3g} | {r['lack_of_fit_rms_log']:.3g} | {r['verdict']} |"
            )
        files = [f"Per cell: {_files(where['noise'])}"] if where.get("noise") else []
        files += [f"figure {_files(where['noise_figure'])}"] if where.get("noise_figure") else []
        lines += ["", "; ".join(files) + ".", ""] if files else [""]
    return "\n".join(lines)


def _sizes(gap: pd.DataFrame) -> list[tuple[str, int]]:
    """The models of a gap table, smallest first, with their N."""
    sizes = gap.drop_duplicates("model").sort_values("n_params", kind="stable")
    return [(str(m), int(n)) for m, n in zip(sizes["model"], sizes["n_params"], strict=True)]


def summary_rst(
    fits: Mapping[str, FitRecord],
    intervals: Mapping[str, BootstrapSummary] | None = None,
    crossval: Mapping[str, pd.DataFrame] | None = None,
    description: str = "",
    advice: Mapping[str, pd.DataFrame] | None = None,
    where: Mapping[str, Any] | None = None,
) -> str:
    """The report's landing page: the datasets that could not be analysed, then ``description`` (the
    workflow's own text) after the summary table, what the runs cannot tell and the first advised runs, as
    reStructuredText (a csv-table); ``where`` names the study's other results (:data:`WHERE`)."""
    intervals, crossval = intervals or {}, crossval or {}
    names, rows, needs = _rows(fits, intervals, crossval, where)
    header = ["dataset", "form", *("G (transfer gap)" if n == "G" else n for n in names), "CV winner (RMSE)"]

    def quote(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"'

    lines = ["Summary", "=======", ""]
    if unfitted := not_fitted_sentences(fits):
        lines += ["**Not analysed.**", "", *(f"- {s}" for s in unfitted), "", check_note(where), ""]
    lines += [
        ".. csv-table:: G, the transfer gap, and the other parameters, with bootstrap 95% intervals",
        "   :header: " + ", ".join(quote(h) for h in header),
        "",
        *("   " + ", ".join(quote(c) for c in row) for row in rows),
        "",
    ]
    if needs:
        lines += ["**What these runs cannot tell.**", "", *(f"- {s}" for s in needs), ""]
    if next_runs := advice_sentences(advice or {}):
        lines += ["**Next runs (advice).**", "", *(f"- {s}" for s in next_runs), ""]
    lines += ["About this report", "-----------------", "", description.strip(), ""]
    return "\n".join(lines)
