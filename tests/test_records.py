"""The typed hand-offs of the analyses (issue 19): one fit record type, one bootstrap summary type, each
reading and writing exactly the JSON the workflow has always written; one function that says which runs a law
uses; one type for a table's column names."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import synthetic as S

from transferlaw.io import write_json
from transferlaw.law.bootstrap import BootstrapSummary, bootstrap_table
from transferlaw.law.fit import (
    STATUS_NOT_FITTED,
    Columns,
    FitRecord,
    fit_table,
    fits_json,
    read_fits,
    table_groups,
)
from transferlaw.schema import fit_uses

#: the key order of results/fits/<dataset>.json (the first keys of a law's, then of a dataset without one)
FITTED_KEYS = ["dataset", "status", "form", "formula", "params", "free", "objective", "converged", "n_points",
               "fit_seconds", "n_starts", "n_iter", "huber_delta", "l2_exponents", "l2_coefficients",
               "diagnostics", "n_excluded", "p_column", "f_column", "loss_column", "f_unit"]  # fmt: skip
NOT_FITTED_KEYS = ["dataset", "form", "formula", "status", "cause", "reason", "keys", "n_points",
                   "n_excluded", "runs_by_status", "p_column", "f_column",
                   "loss_column"]  # fmt: skip
RUN_KEYS = ["model", "method", "n_seeds", "model_n_params"]
#: the key order of results/bootstrap/<dataset>.json
SUMMARY_KEYS = [
    "dataset",
    "form",
    "status",
    "n_samples",
    "seed",
    "n_points",
    "n_cells",
    "cells",
    "n_excluded",
]


def capped(df, rows):
    df.loc[rows, "status"] = "max_epochs"
    df.loc[rows, "epochs"] = 15


def table() -> pd.DataFrame:
    """Three datasets: one with a law, one with a law fitted without a third of its runs (a warning), one
    whose every run stopped at the epoch cap (no law)."""
    warned, unfitted = S.runs("warned", seed=1), S.runs("unfitted", seed=2)
    capped(warned, warned.index % 3 == 0)
    capped(unfitted, slice(None))
    return pd.concat([S.runs("good"), warned, unfitted], ignore_index=True)


def dumped(obj) -> str:
    """The text write_json writes."""
    return json.dumps(obj, indent=2, allow_nan=True)


def test_a_fit_record_writes_the_json_the_fit_always_wrote_and_reads_it_back(tmp_path):
    fits = fit_table(table(), record_unfitted=True)
    assert [fits[k].fitted for k in ("good", "warned", "unfitted")] == [True, True, False]
    good, warned, unfitted = (fits[k].to_json() for k in ("good", "warned", "unfitted"))
    assert list(good) == FITTED_KEYS and list(warned) == [*FITTED_KEYS, "warnings"]
    assert list(unfitted) == NOT_FITTED_KEYS and unfitted["status"] == STATUS_NOT_FITTED
    assert unfitted["runs_by_status"] == {"ok": 0, "max_epochs": 25} and unfitted["n_points"] == 0
    # the workflow's keys come last, and the record reads back to the same text, key for key
    for key, fit in fits.items():
        run = fit.with_runs(model="tiny-neox", method="full", n_seeds=1, model_n_params=15_000)
        assert list(run.to_json())[-4:] == RUN_KEYS
        write_json(run.to_json(), tmp_path / f"{key}.json")
        again = FitRecord.read(tmp_path / f"{key}.json")
        assert dumped(again.to_json()) == dumped(run.to_json()) == (tmp_path / f"{key}.json").read_text()[:-1]
        assert (again.fitted, again.reason, again.model) == (fit.fitted, fit.reason, "tiny-neox")
    # what readers ask of it, without guessing
    assert fits["good"].params == good["params"] and fits["good"].at_bound == tuple(
        good["diagnostics"]["at_bound"]
    )
    assert fits["unfitted"].params == {} and fits["unfitted"].reason == unfitted["reason"]
    assert fits["warned"].warnings == tuple(warned["warnings"])
    with pytest.raises(ValueError, match="unfitted: no law fitted: all 25 runs"):
        fits["unfitted"].predict(1.0, 4.0)
    p, f = np.array([0.0, 64.0]), np.array([4.0, 64.0])
    assert np.array_equal(fits["good"].predict(p, f), fits["good"].law.predict(good["params"], p, f))
    # transferlaw fit's file (fits keyed by group) reads back the same fits
    write_json(fits_json(fits), tmp_path / "all.json")
    assert {k: v.to_json() for k, v in read_fits(tmp_path / "all.json").items()} == fits_json(fits)


def test_a_bootstrap_summary_writes_the_json_it_always_wrote_and_reads_it_back(tmp_path):
    summaries, _ = bootstrap_table(table(), n_samples=20, record_unfitted=True)
    fitted_json, unfitted_json = summaries["good"].to_json(), summaries["unfitted"].to_json()
    assert list(fitted_json) == [*SUMMARY_KEYS, "n_converged", "params"]
    assert list(unfitted_json) == [*SUMMARY_KEYS, "cause", "reason", "keys", "n_converged", "params"]
    assert unfitted_json["status"] == STATUS_NOT_FITTED and unfitted_json["params"] == {}
    assert fitted_json["cells"] == [[p, f] for p in map(float, S.STEPS) for f in map(float, S.SIZES)]
    for key, summary in summaries.items():
        path = tmp_path / f"{key}.json"
        with_runs = BootstrapSummary(**{**summary.__dict__, "model": "m", "method": "full"})
        write_json(with_runs.to_json(), path)
        assert list(json.loads(path.read_text()))[-2:] == ["model", "method"]
        again = BootstrapSummary.read(path)
        assert dumped(again.to_json()) == path.read_text()[:-1]
        assert again.paired_with(summary) and again.fitted == summary.fitted
    assert summaries["unfitted"].names == ["A", "alpha", "G", "beta", "E"]  # its form's, without a law


def test_a_record_of_another_shape_is_refused_naming_its_file(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({**S.fit("a"), "G_low": 0.1}))
    with pytest.raises(ValueError, match=r"fit\.json: unknown key\(s\) 'G_low' in a fit record"):
        FitRecord.read(path)
    path.write_text(json.dumps({**S.fit("a"), "status": "maybe"}))
    with pytest.raises(ValueError, match="fit.json: status 'maybe'"):
        FitRecord.read(path)
    path.write_text(json.dumps({"params": {}}))
    with pytest.raises(ValueError, match="fit.json: not a bootstrap summary"):
        BootstrapSummary.read(path)
    # a record written before statuses and diagnostics existed holds a law, and reads as one
    old = FitRecord.from_json(S.fit("a"))
    assert old.fitted and old.at_bound == () and old.columns == Columns()


def test_one_function_says_which_runs_a_law_uses(tmp_path):
    """The fit, its bootstrap and figures, run noise, effective data and the record schema's reader all take
    the runs of a law from transferlaw.schema.fit_uses: its dataset's, model's and method's, status ok."""
    from transferlaw.law.noise import cell_noise
    from transferlaw.law.transfer import effective_data_table
    from transferlaw.report.plots import _ok
    from transferlaw.schema import read_model_runs, records_frame, write_records

    runs = pd.concat(
        [S.runs("d", seed=i).assign(model=m, method=me) for i, (m, me) in enumerate(
            [("m1", "full"), ("m1", "lora"), ("m2", "full")])],
        ignore_index=True,
    )  # fmt: skip
    capped(runs, runs.index % 4 == 0)
    mine = (runs["model"] == "m1") & (runs["method"] == "full")
    usable = mine & (runs["status"] == "ok")
    assert np.array_equal(fit_uses(runs, dataset="d", model="m1", method="full"), usable.to_numpy())
    assert np.array_equal(fit_uses(runs, model="m1", method="full", usable=False), mine.to_numpy())
    assert (
        fit_uses(runs, dataset="other").sum() == 0 and fit_uses(runs).sum() == (runs["status"] == "ok").sum()
    )
    # the record schema's reader of a model's runs: all of theirs, whatever their status
    from test_schema import record

    same = ("dataset", "model", "method", "status", "eval_loss")
    rows = [
        record(**{c: getattr(r, c) for c in same}, pretrain_step=int(r.pretrain_step),
               finetune_size=int(r.finetune_size), epochs=int(r.epochs))
        for r in runs.itertuples()
    ]  # fmt: skip
    write_records(records_frame(rows), str(tmp_path / "d.parquet"))
    read = read_model_runs(str(tmp_path / "d.parquet"), "m1", "full")
    assert read["status"].value_counts().to_dict() == runs.loc[mine, "status"].value_counts().to_dict()
    assert sorted(read["eval_loss"]) == sorted(runs.loc[mine, "eval_loss"])
    fit = fit_table(runs[mine], record_unfitted=True)["d"].with_runs(model="m1", method="full")
    assert fit.n_points == usable.sum() and fit.n_excluded == (mine & ~usable).sum()
    assert fit.runs(runs).index.equals(runs.index[usable])
    assert fit.runs(runs, usable=False).index.equals(runs.index[mine])
    (group,) = table_groups(runs[mine])
    assert group.runs.index.equals(runs.index[usable])  # the fit's own driver
    assert _ok(fit.runs(runs, usable=False)).index.equals(runs.index[usable])  # the figures
    assert (
        effective_data_table(runs, fit)["pretrain_step"].tolist() == runs.loc[mine, "pretrain_step"].tolist()
    )
    cells = cell_noise(runs)
    assert cells["n_runs"].sum() == (runs["status"] == "ok").sum()


def test_the_columns_are_named_once_for_every_table_driver():
    from transferlaw.cli import build_parser, table_columns

    default = Columns()
    assert (default.group, default.p, default.f, default.loss, default.status) == (
        "dataset", "pretrain_step", "finetune_size", "eval_loss", "status"
    )  # fmt: skip
    args = build_parser().parse_args(["fit", "runs.csv", "-o", "x.json", "--group", "", "--p", "step"])
    assert table_columns(args) == Columns(group=None, p="step")
    args = build_parser().parse_args(["advise", "runs.csv", "-o", "x.csv", "--candidates", "c.csv"])
    assert table_columns(args) == default
    df = S.runs("toy").rename(columns={"pretrain_step": "step", "eval_loss": "loss"})
    columns = Columns(group=None, p="step", loss="loss")
    (fit,) = fit_table(df, columns=columns).values()
    assert fit.dataset == "all" and fit.columns == columns
    assert (fit.to_json()["p_column"], fit.to_json()["loss_column"]) == ("step", "loss")
    with pytest.raises(ValueError, match="missing column"):
        fit_table(df)  # the defaults name columns this table does not have
