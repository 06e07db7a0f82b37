"""Tables 2, 3 and 5: rows, columns and formatting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import transferlaw.report.tables as tables
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.report.tables import CV_ROW, interval_table, law_forms_table, parameter_table, to_markdown


def boot(params: dict, dataset: str = "x") -> BootstrapSummary:
    """A bootstrap summary of per-parameter entries (as :meth:`BootstrapResult.summary` makes them)."""
    return BootstrapSummary(dataset=dataset, form="mikami", params=params)


def summary(a: float, alpha: float) -> BootstrapSummary:
    return boot(
        {
            "A": {"estimate": a, "se": 0.1 * a, "ci_low": 0.8 * a, "ci_high": 1.2 * a},
            "alpha": {"estimate": alpha, "se": 0.02, "ci_low": alpha - 0.04, "ci_high": alpha + 0.04},
        }
    )


SUMMARIES = {"enc": summary(284.766, 0.730), "math": summary(317.966, 0.756), "cat": summary(43.556, 0.718)}


def test_parameter_table_rows_columns_and_cv():
    t = parameter_table(SUMMARIES)
    assert list(t.columns) == ["dataset", "A", "alpha"]
    assert list(t["dataset"]) == ["enc", "math", "cat", CV_ROW]
    assert t.loc[0, "A"] == "284.766 (28.477)"
    a = np.array([284.766, 317.966, 43.556])
    assert float(t.loc[3, "A"]) == pytest.approx(a.std(ddof=1) / a.mean(), abs=1e-3)


def test_cv_row_says_what_it_computes_and_claims_no_match_with_the_paper():
    """From Table 2's own estimates the row is the sample SD over |mean| (G 0.917), not the paper's printed
    row (G 0.851): the label names the formula and no paper."""
    import statistics

    from synthetic import TABLE2

    printed = {"A": 0.528, "G": 0.851, "alpha": 0.094, "beta": 0.432, "E": 0.490}  # the paper's Table 2
    summaries = {d: boot({n: {"estimate": v, "se": 0.0} for n, v in p.items()}, d) for d, p in TABLE2.items()}
    t = parameter_table(summaries)
    row = t.iloc[-1]
    for n in printed:
        est = [p[n] for p in TABLE2.values()]
        assert float(row[n]) == pytest.approx(statistics.stdev(est) / abs(statistics.fmean(est)), abs=5e-4)
    assert float(row["G"]) == pytest.approx(0.917, abs=5e-4) and abs(float(row["G"]) - printed["G"]) > 0.05
    assert row["dataset"] == CV_ROW and "sample SD" in CV_ROW and "paper" not in CV_ROW.lower()
    assert "reproduces the paper" not in parameter_table.__doc__


def test_parameter_table_accepts_bare_summaries_and_one_dataset():
    t = parameter_table({"only": boot(summary(1.0, 0.5).params, "only")})
    assert list(t["dataset"]) == ["only", CV_ROW] and t.loc[1, "A"] == ""


def test_huge_values_use_significant_digits():
    t = parameter_table({"x": boot({"A": {"estimate": 0.133, "se": 1.4e25, "ci_low": 0, "ci_high": 1}})})
    assert t.loc[0, "A"] == "0.133 (1.4e+25)"


def test_interval_table():
    t = interval_table(SUMMARIES)
    assert list(t.columns) == ["dataset", "A", "alpha"] and len(t) == 3
    assert t.loc[2, "alpha"] == "[0.678, 0.758]"


def test_law_forms_table_sorted_with_formula():
    best = pd.DataFrame(
        dict(
            dataset=["d", "d"],
            form=["mikami", "mikami_no_e"],
            rmse=[0.2, 0.1],
            rmse_l2_exponents=[0.0, 1.0],
            rmse_l2_coefficients=[0.0, 0.0],
            mae=[0.1, 0.05],
            mae_l2_exponents=[0.0, 1.0],
            mae_l2_coefficients=[0.0, 0.0],
        )
    )
    t = law_forms_table(best)
    assert list(t["form"]) == ["mikami_no_e", "mikami"] and "formula" in t.columns


@pytest.mark.parametrize("have_tabulate", [True, False])
def test_markdown(monkeypatch, have_tabulate):
    if not have_tabulate:
        import builtins

        real = builtins.__import__

        def fake(name, *a, **k):
            if name == "tabulate":
                raise ImportError
            return real(name, *a, **k)

        monkeypatch.setattr(builtins, "__import__", fake)
    md = tables.to_markdown(parameter_table(SUMMARIES))
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 4 and all(line.startswith("|") for line in lines)
    assert "284.766 (28.477)" in md and CV_ROW in md


def test_to_markdown_is_exported():
    assert to_markdown is tables.to_markdown


@pytest.mark.slow
def test_workflow_writes_the_analysis_outputs(small_study):
    import json

    datasets = ["chloroplast-dna", "devils-dictionary"]
    res = small_study / "results"
    for ds in datasets:
        rec = json.loads((res / f"bootstrap/{ds}.json").read_text())
        assert rec["n_samples"] == 200 and rec["n_points"] == 9 and rec["form"] == "mikami_shifted"
        assert len(pd.read_parquet(res / f"bootstrap/{ds}.parquet")) == 200
        cv = pd.read_csv(res / f"crossval/{ds}.csv")
        assert {"dataset", "form", "rmse", "mae", "n_dropped"} <= set(cv.columns)
        assert (cv.loc[cv["form"] == "mikami_no_e", "n_dropped"] == 3).all()
        assert (cv.loc[cv["form"] == "mikami_shifted", "n_dropped"] == 0).all()
        assert (cv["n_train"] + cv["n_test"] + cv["n_dropped"] == 9).all()
    params = pd.read_csv(res / "tables/parameters.csv")
    assert sorted(params["dataset"][:-1]) == datasets and params["dataset"].iloc[-1] == CV_ROW
    assert list(params.columns) == ["dataset", "A", "alpha", "G", "beta", "E"]
    assert len(pd.read_csv(res / "tables/intervals.csv")) == 2
    assert (res / "tables/parameters.md").read_text().startswith("|")
    eff = pd.read_csv(res / "tables/effective_data.csv")
    assert len(eff) == 18 and {"effective_f", "ratio"} <= set(eff.columns)
    pd.read_csv(res / "tables/law_forms.csv")


def test_tables_show_limits_not_meaningless_numbers():
    from transferlaw.report.tables import interval_table, parameter_table

    s = {
        "a": boot(
            {
                "G": {
                    "estimate": 8.8e-27,
                    "se": 1e-30,
                    "ci_low": 8.8e-27,
                    "ci_high": 0.03,
                    "identified": False,
                    "why": "estimate at the bound",
                    "bound": ["low"],
                }
            }
        ),
        "b": boot({"G": {"estimate": 0.5, "se": 0.1, "ci_low": 0.3, "ci_high": 0.7, "identified": True}}),
    }
    params, intervals = parameter_table(s), interval_table(s)
    assert params.loc[0, "G"] == intervals.loc[0, "G"] == "G < 0.03"
    assert params.loc[1, "G"] == "0.500 (0.100)" and intervals.loc[1, "G"] == "[0.300, 0.700]"
    assert params.loc[2, "G"] == ""  # one measured dataset: no coefficient of variation
