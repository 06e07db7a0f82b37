"""results/summary.md: the law, G with its interval and the cross-validation winner, per dataset."""

import synthetic as S

from transferlaw.summary import crossval_winner, summary_markdown


def test_summary_lists_law_gap_interval_and_winner():
    samples = S.bootstrap_samples()
    fits = {"a": S.fit("a"), "b": S.fit("b")}
    text = summary_markdown(fits, {"a": S.bootstrap_summary("a", samples)}, {"a": S.crossval("a")})
    lines = {
        line.split(" | ")[0].strip("| "): line
        for line in text.splitlines()
        if line.startswith("| a") or line.startswith("| b")
    }
    ci = S.bootstrap_summary("a", samples)["params"]["G"]
    assert f"[{ci['ci_low']:.4g}, {ci['ci_high']:.4g}]" in lines["a"]
    assert "| 0.4 |" in lines["a"] and "A=3, alpha=0.35" in lines["a"]
    assert crossval_winner(S.crossval("a"))[0] == "mikami" and "mikami (" in lines["a"]
    assert "(no bootstrap)" in lines["b"] and "(no cross-validation)" in lines["b"]
