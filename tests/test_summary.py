"""results/summary.md: the law, G with its interval, the cross-validation winner and the next runs."""

import pandas as pd
import synthetic as S

from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.report.summary import crossval_winner, summary_markdown, summary_rst


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
    text = summary_markdown(fits, advice={"a": advice, "b": sparse})
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
