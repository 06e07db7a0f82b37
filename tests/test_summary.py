"""results/summary.md: the law, G with its interval, the cross-validation winner and the next runs."""

import pandas as pd
import synthetic as S

from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.fit import STATUS_NOT_FITTED, FitRecord
from transferlaw.report.summary import (
    WHERE,
    beyond_markdown,
    crossval_winner,
    study_check,
    summary_markdown,
    summary_rst,
)


def test_summary_lists_law_gap_interval_and_winner():
    samples = S.bootstrap_samples()
    fits = {"a": S.fit_record("a"), "b": S.fit_record("b")}
    text = summary_markdown(fits, {"a": S.bootstrap_record("a", samples)}, {"a": S.crossval("a")})
    lines = {
        line.split(" | ")[0].strip("| "): line
        for line in text.splitlines()
        if line.startswith("| a") or line.startswith("| b")
    }
    ci = S.bootstrap_summary("a", samples)["params"]["G"]
    assert f"| {ci['estimate']:.3g} [{ci['ci_low']:.3g}, {ci['ci_high']:.3g}] |" in lines["a"]  # G first
    assert "| 0.4 |" in lines["b"] and "| 3 |" in lines["b"]  # no bootstrap: the estimates
    assert crossval_winner(S.crossval("a"))[0] == "mikami" and "mikami (" in lines["a"]
    assert "(no cross-validation)" in lines["b"]
    assert "- b: no bootstrap yet, so no intervals" in text


def test_summary_shows_an_upper_limit_or_not_identified_and_what_would_measure_it():
    samples = S.bootstrap_samples()
    summary = S.bootstrap_summary("a", samples)
    g = summary["params"]["G"]
    g.update(ci_low=8.8e-27, identified=False, why="30% of resamples at the bound", bound=["low"])
    summary["params"]["E"].update(identified=False, why="estimate at the bound", bound=["low", "high"])
    text = summary_markdown({"a": S.fit_record("a")}, {"a": BootstrapSummary.from_json(summary)})
    row = next(line for line in text.splitlines() if line.startswith("| a "))
    assert f"| G < {g['ci_high']:.3g} |" in row and "not identified (at bound)" in row
    assert "8.8e-27" not in text and f"{g['estimate']:.3g} [" not in row
    assert "## What these runs cannot tell" in text
    assert "- a: G, E not identified; measuring them needs checkpoints further into pre-training" in text


def test_summary_shows_the_first_advised_runs_and_what_the_advice_expects():
    advice = pd.DataFrame(
        {
            "dataset": "a",
            "pretrain_step": [1024, 0, 1024, 16],
            "finetune_size": [64, 64, 4, 4],
            "rank": [1, 2, 3, 4],
            "cost": 1.0,
            "expected_width": [0.5, 0.4, 0.35, 0.3],
            "width_reduction": [0.1, 0.1, 0.05, 0.05],
            "target": "G",
            "status": "ok",
            "message": "25 runs, 200 refits: G 0.4 [0.2, 0.8]",
        }
    )
    sparse = advice.assign(
        dataset="b", status="space_filling", expected_width=float("nan"), message="too few"
    )
    fits = {"a": S.fit_record("a"), "b": S.fit_record("b")}
    text = summary_markdown(fits, advice={"a": advice, "b": sparse}, where={"advice": "results/advice/"})
    assert "## Next runs (advice, `results/advice/`)" in text
    section = text.split("## Next runs")[1].splitlines()
    line = next(line for line in section if line.startswith("- a: "))
    assert "pretrain_step 1024, finetune_size 64 (G width -> 0.5); pretrain_step 0, finetune_size 64" in line
    assert "16" not in line.split(". 25 runs")[0]  # the top 3 only
    assert line.endswith("25 runs, 200 refits: G 0.4 [0.2, 0.8].")
    b_line = next(line for line in section if line.startswith("- b "))
    assert (
        b_line.startswith("- b [space_filling]: pretrain_step 1024, finetune_size 64; ")
        and "width" not in b_line
    )
    assert "Next runs (advice)" in summary_rst(fits, advice={"a": advice})
    assert "Next runs" not in summary_markdown(fits)


def test_the_page_names_the_paths_the_workflow_gives_it_and_none_of_its_own():
    """The rules own the study's layout: the page names where a result is only where it is told."""
    law_of_b = {k: v for k, v in S.fit("b").items() if k not in ("params", "free")}
    no_law = FitRecord.from_json({**law_of_b, "status": STATUS_NOT_FITTED, "reason": "all runs at the cap"})
    fits = {"a": S.fit_record("a"), "b": no_law}
    gap = pd.DataFrame(
        {"dataset": ["a"], "method": ["full"], "model": ["m"], "n_params": [10], "G_text": ["0.4"]}
    )
    noise = pd.DataFrame(
        [{"dataset": "a", "model": "m", "method": "full", "noise_rms_log": 0.1, "residual_rms_log": 0.2}]
    ).assign(lack_of_fit_rms_log=0.1, verdict="ok")
    said = [
        summary_markdown(fits),
        summary_rst(fits),
        beyond_markdown(gap=gap, noise=noise),
        study_check({("b", "m", "full"): fits["b"]})[1],
    ]
    assert not any("results/" in text for text in said)
    where = {
        "check": "out/check.txt",
        "bootstrap": "out/boot/{dataset}.json",
        "tables": ["out/tables/p.md", "out/tables/i.md", "elsewhere/e.csv"],
        "figures": "out/figures/",
        "gap": ["out/tables/gap.csv", "out/tables/trend.csv"],
        "noise_figure": "out/noise.png",
    }
    assert set(where) <= set(WHERE)
    text = summary_markdown(fits, where=where)
    assert "the study's final check (`out/check.txt`) fails" in text
    assert "- a: no bootstrap yet, so no intervals (`out/boot/a.json`)." in text
    assert (
        "Tables: `out/tables/p.md`, `i.md`, `elsewhere/e.csv` (where the analyses have run). "
        "Figures: `out/figures/`." in text
    )
    assert "(`out/check.txt`)" in summary_rst(fits, where=where)
    beyond = beyond_markdown(gap=gap, noise=noise, where=where)
    assert "`out/tables/gap.csv`, `trend.csv`." in beyond and "\nfigure `out/noise.png`.\n" in beyond
    assert (
        "(out/summary.md lists them first)"
        in study_check({("b", "m", "full"): fits["b"]}, "out/summary.md")[1]
    )
