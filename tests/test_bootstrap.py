"""Bootstrap: intervals cover the truth, refits agree with the full grid, the table has its contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferlaw.law.bootstrap import bootstrap_fit, bootstrap_table, resample_weights, verify_refits
from transferlaw.law.forms import get_form

TRUE = dict(A=50.0, alpha=0.7, G=1.0, beta=0.15, E=1.5)


def synthetic(seed: int, noise: float = 0.02) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.geomspace(10, 10_000, 6)
    sizes = np.geomspace(10, 1000, 5)
    p, f = (a.ravel() for a in np.meshgrid(steps, sizes, indexing="ij"))
    loss = get_form("mikami").predict(TRUE, p, f) * np.exp(rng.normal(0, noise, p.size))
    return p, f, loss


def test_resample_weights_are_seeded_multiplicities():
    w = resample_weights(30, 50, seed=3)
    assert w.shape == (50, 30) and np.all(w.sum(1) == 30)
    assert np.array_equal(w, resample_weights(30, 50, seed=3))
    assert not np.array_equal(w, resample_weights(30, 50, seed=4))


def test_intervals_cover_the_truth():
    # 20 independent draws x 200 resamples. Observed while writing this test: the 95% intervals
    # covered the truth in 19/20 draws (alpha), 20/20 (beta), 19/20 (A), 20/20 (G), 20/20 (E):
    # alpha+beta pooled 39/40 = 97.5%.
    # With true coverage >= 0.8, 30 or fewer hits of 40 has probability < 0.05 (binomial), so the
    # bound below fails only if the intervals are badly too narrow (or biased).
    hits = 0
    total = 0
    for seed in range(20):
        p, f, loss = synthetic(seed)
        summary = bootstrap_fit(p, f, loss, "mikami", n_samples=200, seed=seed).summary()
        for name in ("alpha", "beta"):
            s = summary[name]
            assert s["ci_low"] <= s["estimate"] <= s["ci_high"] or np.isclose(s["estimate"], s["ci_low"])
            hits += s["ci_low"] <= TRUE[name] <= s["ci_high"]
            total += 1
    assert hits / total >= 0.75, f"coverage {hits}/{total}"


def test_cheap_refits_match_full_grid_refits():
    p, f, loss = synthetic(0)
    res = bootstrap_fit(p, f, loss, "mikami", n_samples=100, seed=0)
    check = verify_refits(res, p, f, loss, n_check=4)
    assert check["n_checked"] == 4
    assert check["agree_rate"] == 1.0


def test_samples_and_summary_contract():
    p, f, loss = synthetic(1)
    res = bootstrap_fit(p, f, loss, "mikami", n_samples=50, seed=7)
    assert list(res.samples.columns) == ["sample", "A", "alpha", "G", "beta", "E", "objective", "converged"]
    assert len(res.samples) == 50
    again = bootstrap_fit(p, f, loss, "mikami", n_samples=50, seed=7, base=res.base)
    pd.testing.assert_frame_equal(res.samples, again.samples)
    s = res.summary()
    assert set(s) == set(get_form("mikami").param_names)
    assert {"estimate", "se", "ci_low", "ci_high", "identified"} <= set(s["A"])
    assert s["alpha"]["se"] > 0


def test_bootstrap_table_groups_and_errors():
    p, f, loss = synthetic(2)
    df = pd.concat(
        [pd.DataFrame(dict(dataset=d, pretrain_step=p, finetune_size=f, eval_loss=loss)) for d in ("a", "b")]
    )
    summaries, samples = bootstrap_table(df, form="mikami", n_samples=20, seed=0)
    assert set(summaries) == {"a", "b"} and set(samples) == {"a", "b"}
    rec = summaries["a"].to_json()
    assert {"dataset", "form", "n_samples", "seed", "n_points", "params"} <= set(rec)
    assert rec["n_points"] == p.size and rec["n_samples"] == 20
    with pytest.raises(ValueError, match="missing column"):
        bootstrap_table(df.drop(columns="eval_loss"), form="mikami", n_samples=20)
    with pytest.raises(ValueError, match="dataset=a"):
        bootstrap_table(df.assign(pretrain_step=0.0), form="mikami", n_samples=20)


def test_cli_bootstrap_writes_summary_json_and_samples(tmp_path):
    import json

    from transferlaw.cli import main

    p, f, loss = synthetic(3)
    table = tmp_path / "runs.csv"
    pd.DataFrame(dict(dataset="enc", pretrain_step=p, finetune_size=f, eval_loss=loss)).to_csv(
        table, index=False
    )
    out = tmp_path / "boot.json"
    argv = [
        str(table),
        "-o",
        str(out),
        "--samples",
        "30",
        "--seed",
        "1",
        "--samples-dir",
        str(tmp_path / "s"),
    ]
    assert main(["bootstrap", *argv]) == 0
    rec = json.loads(out.read_text())["enc"]
    # the default form is the workflow's (eq. 7, defined at step 0)
    assert rec["n_samples"] == 30 and rec["seed"] == 1 and rec["form"] == "mikami_shifted"
    assert {"estimate", "se", "ci_low", "ci_high", "identified"} <= set(rec["params"]["alpha"])
    assert len(pd.read_parquet(tmp_path / "s" / "enc.parquet")) == 30
    assert main(["bootstrap", str(table), "-o", str(out), "--loss", "nope"]) == 2


def test_a_fit_at_the_bound_still_gets_an_interval_from_its_resamples():
    """40 of math arXiv's 150 runs (G = 0.166, 2% noise) put the full-data fit's G at the bound. A warm start
    there cannot leave it (the gradient in log G is ~e^-60), so before every refit got the restarts, each
    resample "converged" at the bound and the interval was the bound alone: width 0, however far the
    resamples' own optima are from it."""
    from synthetic import TABLE2, paper_grid

    from transferlaw.law.diagnostics import describe

    p, f, loss = paper_grid(TABLE2["math_arxiv"], seed=0)
    rng = np.random.default_rng(0)
    rng.choice(p.size, 20, replace=False)
    idx = rng.choice(p.size, 40, replace=False)
    res = bootstrap_fit(p[idx], f[idx], loss[idx], "mikami", n_samples=200, seed=0)
    assert res.base.diagnostics["at_bound"] == ["G"]
    g = res.summary()["G"]
    assert g["ci_high"] > 0.05 and g["bound"] == ["low"]  # an upper limit, as the resamples say
    assert describe("G", g) == f"G < {g['ci_high']:.3g}"
