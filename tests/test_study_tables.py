"""What the study ran, as the paper reports it (issue 20): Table 1, Table 4, eq. 3's compute and section 5.1's
check of the exponents, on tables built here and on the small study's own files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import synthetic as S

from transferlaw.config import describe_dataset
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.fit import NoLaw
from transferlaw.report.study import (
    coefficient_of_variation,
    compute_table,
    datasets_table,
    eq3_flop,
    exponent_variation_sentence,
    grid_table,
)


def runs_table() -> pd.DataFrame:
    rows = []
    for ds, steps, sizes in (("a", [1, 4, 16], [8, 24]), ("b", [4, 16], [8, 24, 72])):
        for step in steps:
            for size in sizes:
                rows.append(
                    dict(dataset=ds, model="m", pretrain_step=step, finetune_size=size,
                         finetune_unit="sequences", finetune_tokens=size * 32, epochs=3 + step % 5,
                         n_params=15_000, flops=0.0, wall_seconds=2.0, status="ok")
                )  # fmt: skip
    df = pd.DataFrame(rows)
    df["flops"] = 6.0 * df["n_params"] * df["epochs"] * df["finetune_tokens"]
    df.loc[1, "status"] = "max_epochs"
    return df


def test_eq3_is_six_epochs_params_tokens_summed_per_dataset_and_in_all():
    runs = runs_table()
    table = compute_table(runs).set_index("dataset")
    for ds, g in runs.groupby("dataset"):
        expected = float((6 * g["epochs"] * g["n_params"] * g["finetune_tokens"]).sum())
        assert table.loc[ds, "eq3_flop"] == pytest.approx(expected)
        assert table.loc[ds, "runs"] == len(g)
    assert table.loc["all", "eq3_flop"] == pytest.approx(eq3_flop(runs).sum())
    assert table.loc["all", "runs"] == len(runs)
    # a full fine-tune's records count what eq. 3 estimates
    assert table.loc["all", "record_flop"] == pytest.approx(table.loc["all", "eq3_flop"])


def test_grid_lists_what_was_run_and_what_a_law_cannot_use():
    grid = grid_table(runs_table()).set_index("dataset")
    assert grid.loc["a", "pretrain_steps"] == "1, 4, 16" and grid.loc["a", "checkpoints"] == 3
    assert grid.loc["b", "finetune_sizes"] == "8, 24, 72" and grid.loc["b", "sizes"] == 3
    assert (grid.loc["a", "runs"], grid.loc["a", "usable"]) == (6, 5)
    assert grid.loc["a", "not_used"] == "1 max_epochs" and grid.loc["b", "not_used"] == ""


def test_table1_takes_tokens_from_the_prepared_data_and_words_from_the_config():
    cfg = {
        "datasets": {
            "x": {"description": "some prose", "path": "data/x.txt", "licence": "CC BY 4.0", "sizes": [1]},
            "y": {"url": "https://example.org/y.fa", "sha256": "ab" * 32, "sizes": [1]},
        }
    }
    described = {ds: describe_dataset(cfg, ds) for ds in cfg["datasets"]}
    manifest = dict(tokens=1234, context_length=8, eval_sequences=10, train_pool_sequences=140)
    table = datasets_table({"x": manifest, "y": {**manifest, "tokens": 99}}, described).set_index("dataset")
    assert table.loc["x", "source"] == "some prose; data/x.txt" and table.loc["x", "licence"] == "CC BY 4.0"
    assert table.loc["y", "source"].startswith("https://example.org/y.fa (sha256 abab")
    assert table.loc["y", "licence"].startswith("not stated") and table.loc["y", "tokens"] == 99


def bootstrap_records(params: dict[str, dict[str, float]]) -> dict[str, BootstrapSummary]:
    def entry(v: float) -> dict:
        return {"estimate": v, "identified": True}

    return {
        ds: BootstrapSummary(dataset=ds, form="mikami", params={n: entry(v) for n, v in ps.items()})
        for ds, ps in params.items()
    }


def test_the_exponents_check_on_table2_says_what_the_paper_found():
    """Table 2's estimates: alpha's CV is about a fifth of beta's (the paper: below 25%)."""
    sentence = exponent_variation_sentence(bootstrap_records(S.TABLE2))
    cv = {}
    for n in ("alpha", "beta"):
        x = np.array([p[n] for p in S.TABLE2.values()])
        cv[n] = x.std(ddof=1) / abs(x.mean())
        assert coefficient_of_variation(x) == pytest.approx(cv[n])
        assert f"{cv[n]:.3f}" in sentence
    assert cv["alpha"] / cv["beta"] < 0.25
    assert "5 datasets" in sentence and "as the paper found" in sentence


def test_the_exponents_check_leaves_out_what_is_not_measured_and_says_when_it_differs():
    params = {f"d{i}": dict(alpha=a, beta=0.2) for i, a in enumerate([0.2, 0.9, 0.5])}
    params["d1"]["beta"] = 0.3
    records = bootstrap_records(params)
    no_law = NoLaw(cause="no_runs", reason="no runs", keys=())
    records["d3"] = BootstrapSummary(dataset="d3", form="mikami", params={}, no_law=no_law)
    records["d2"].params["alpha"]["identified"] = False
    sentence = exponent_variation_sentence(records)
    assert "2 datasets" in sentence and "d0, d1" in sentence and "unlike the paper" in sentence
    assert exponent_variation_sentence({"d0": records["d0"]}) is None
    assert np.isnan(coefficient_of_variation([1.0]))


def test_the_small_study_writes_tables_1_and_4_and_its_compute(small_study):
    tables = small_study / "results" / "tables"
    runs = pd.read_parquet(small_study / "results" / "runs" / "devils-dictionary.parquet")
    grid = pd.read_csv(tables / "grid.csv").set_index("dataset")
    steps = ", ".join(str(s) for s in sorted(runs["pretrain_step"].unique()))
    assert grid.loc["devils-dictionary", "pretrain_steps"] == steps
    compute = pd.read_csv(tables / "compute.csv").set_index("dataset")
    assert compute.loc["devils-dictionary", "eq3_flop"] == pytest.approx(float(eq3_flop(runs).sum()))
    manifest = json.loads((small_study / "results" / "data" / "devils-dictionary.json").read_text())
    assert (
        pd.read_csv(tables / "datasets.csv").set_index("dataset").loc["devils-dictionary", "tokens"]
        == (manifest["tokens"])
    )
    summary = (small_study / "results" / "summary.md").read_text()
    assert "## The study" in summary and "eq. 3" in summary


def test_fig2_costs_come_from_the_config_and_changing_them_redraws_only_fig2(study_copy):
    """`allocation:` holds the budget-allocation figures' costs: editing one plans those two figures (the
    study's config, a report item, and its final check) and nothing else."""
    from conftest import edit_config, planned_outputs

    edit_config(study_copy, lambda c: c.setdefault("allocation", {}).update(cost_pretrain=4.0))
    planned = planned_outputs(study_copy)
    figures = {f"results/figures/allocation_{k}.{e}" for k in ("gap", "cost") for e in ("png", "pdf")}
    assert figures <= set(planned)
    assert set(planned) - figures <= {"results/config.yaml", "results/study_check.txt"}, planned


def test_a_zero_cost_is_refused_naming_the_key(tmp_path):
    import yaml
    from conftest import SMALL_CONFIG

    from transferlaw.config import load_config

    cfg = yaml.safe_load(SMALL_CONFIG.read_text())
    cfg.setdefault("allocation", {})["cost_finetune"] = 0
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(Exception, match="cost_finetune") as err:  # Snakemake's validator
        load_config(tmp_path / "c.yaml", root=SMALL_CONFIG.parents[2])
    assert "exclusiveMinimum" in str(err.value)
