"""A dataset that cannot be analysed says why and what to change, and costs the others nothing (issue 18).

The library half: the one rule (transferlaw.law.fit.why_no_law) on synthetic tables, every analysis and every
reader of its results, the one-sided rule for every coefficient and the axis-aware sentences. The workflow
half: one real study with three datasets that cannot be fitted (every run capped, every run diverged, fewer
runs than parameters) next to two that are too small to cross-validate, run once by the real Snakemake.
"""

from __future__ import annotations

import json
import re
import shutil
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import synthetic as S
from conftest import edit_config, planned_outputs, snakemake

from transferlaw.config import remedy_keys, resolve
from transferlaw.law.advise import advise_table, grid_candidates
from transferlaw.law.bootstrap import bootstrap_table
from transferlaw.law.compare import gap_table, method_table
from transferlaw.law.crossval import best_by_form, crossval_table, scored, unscored
from transferlaw.law.diagnostics import describe, identification, needs_sentence
from transferlaw.law.fit import (
    STATUS_NOT_FITTED,
    Columns,
    FitRecord,
    fit_table,
    fitted,
    table_groups,
    why_no_law,
)
from transferlaw.law.forms import get_form
from transferlaw.law.noise import noise_vs_residuals
from transferlaw.report.plots import (
    plot_allocation_gap,
    plot_law_forms,
    plot_no_law,
    plot_parameters,
    plot_raw_data,
)
from transferlaw.report.summary import study_check, summary_markdown
from transferlaw.report.tables import interval_table, parameter_table

#: the settings as the workflow names them for dataset "mail" (transferlaw.config.remedy_keys)
KEYS = {
    "max_epochs": "datasets.mail.finetune.max_epochs (or finetune.max_epochs)",
    "lr": "datasets.mail.finetune.lr (or finetune.lr)",
    "sizes": "datasets.mail.sizes",
    "revisions": "models.tiny-neox.revisions",
}


def mail(change) -> pd.DataFrame:
    """The synthetic 5 x 5 runs of dataset "mail", changed by ``change(df)`` (in place)."""
    df = S.runs("mail")
    change(df)
    return df


def capped(df, rows=slice(None)):
    """Runs stopped at a cap of 15 epochs, still improving."""
    df.loc[rows, "status"] = "max_epochs"
    df.loc[rows, "epochs"] = 15


def diverged(df, rows=slice(None)):
    df.loc[rows, "status"] = "diverged"
    df.loc[rows, "eval_loss"] = np.nan


def flat(df):
    df["eval_loss"] = 2.5


def no_law(df):
    columns = Columns(group="dataset", p="pretrain_step", f="finetune_size", loss="eval_loss")
    return why_no_law(table_groups(df, columns)[0], "mikami_shifted", columns=columns, keys=KEYS)


@pytest.mark.parametrize(
    ("change", "cause", "said", "keys"),
    [
        (
            capped,
            "max_epochs",
            "all 25 runs stopped at the epoch cap (15 epochs) while still improving; raise "
            "datasets.mail.finetune.max_epochs (or finetune.max_epochs)",
            ["max_epochs"],
        ),
        (
            diverged,
            "diverged",
            "all 25 runs diverged (their loss became non-finite); lower datasets.mail.finetune.lr",
            ["lr"],
        ),
        (
            lambda df: (capped(df, df.index < 20), diverged(df, df.index >= 20)),
            "no_usable_runs",
            "none of the 25 runs is usable (20 stopped at the epoch cap (15 epochs) while still improving; 5 "
            "diverged); raise datasets.mail.finetune.max_epochs (or finetune.max_epochs) or lower",
            ["max_epochs", "lr"],
        ),
        (
            lambda df: capped(df, df.index >= 4),
            "too_few_runs",
            "only 4 usable runs of 25 (21 stopped at the epoch cap (15 epochs) while still improving) for "
            "the 5 parameters of form 'mikami_shifted'; add fine-tune sizes to datasets.mail.sizes or "
            "checkpoints to models.tiny-neox.revisions or raise datasets.mail.finetune.max_epochs",
            ["sizes", "revisions", "max_epochs"],
        ),
        (
            lambda df: capped(df, df["pretrain_step"] != 256),
            "one_p",
            "every usable run of 25 (20 stopped at the epoch cap (15 epochs) while still improving) is at "
            "one checkpoint (pretrain_step = 256): the law cannot tell how the loss moves along "
            "pre-training; add checkpoints to models.tiny-neox.revisions or raise",
            ["revisions", "max_epochs"],
        ),
        (
            lambda df: diverged(df, df["finetune_size"] != 16),
            "one_f",
            "every usable run of 25 (20 diverged) is at one fine-tune size (finetune_size = 16): the law "
            "cannot tell how the loss moves along fine-tuning data; add fine-tune sizes to "
            "datasets.mail.sizes or lower datasets.mail.finetune.lr",
            ["sizes", "lr"],
        ),
        (
            flat,
            "flat",
            "the losses of all 25 usable runs are the same (2.5 to 2.5): they do not move with pre-training "
            "or fine-tuning data, so there is no law to fit",
            ["lr"],
        ),
    ],
)
def test_a_table_without_a_law_says_why_and_which_setting_would_change_it(change, cause, said, keys):
    found = no_law(mail(change))
    assert found is not None and found.cause == cause
    assert said in found.reason
    assert list(found.keys) == [KEYS[k] for k in keys]


def test_a_table_with_a_law_has_no_reason_not_to_fit_it():
    assert no_law(S.runs("mail")) is None
    assert no_law(mail(lambda df: capped(df, df.index < 6))) is None  # 19 runs, 5 x 5 cells but 6


def test_the_workflow_names_the_dataset_s_own_settings():
    raw = {"models": {"m": {"source": "pretrain", "revisions": ["step0"]}},
           "datasets": {"a": {"path": "x", "sizes": [1]}, "b": {"path": "x", "sizes": [1],
                                                               "finetune": {"max_epochs": 3}}},
           "methods": {"full": {}, "lora": {"method": "lora", "lr": 1e-3}}}  # fmt: skip
    cfg = resolve(raw)
    assert remedy_keys(cfg, "a", "m", "full") == {
        "max_epochs": "datasets.a.finetune.max_epochs (or finetune.max_epochs)",
        "lr": "datasets.a.finetune.lr (or finetune.lr)",
        "sizes": "datasets.a.sizes",
        "revisions": "models.m.revisions",
    }
    assert remedy_keys(cfg, "b", "m", "full")["max_epochs"] == "datasets.b.finetune.max_epochs"
    assert remedy_keys(cfg, "b", "m", "lora")["lr"] == "methods.lora.lr"


def test_every_analysis_and_reader_keeps_the_other_datasets_and_says_why_one_has_no_law():
    good = S.runs("good")
    table = pd.concat([good, mail(capped)], ignore_index=True)
    with pytest.raises(
        ValueError, match=r"dataset=mail: no law fitted: all 25 runs stopped at the epoch cap"
    ):
        fit_table(table, keys=KEYS)  # a table from elsewhere: an error, as any bad input
    fits = fit_table(table, keys=KEYS, record_unfitted=True)
    assert fits["good"].fitted and set(fits["good"].params) == {"A", "alpha", "G", "beta", "E"}
    rec = fits["mail"].to_json()  # as the workflow writes it
    assert (rec["status"], rec["cause"], rec["n_excluded"]) == (STATUS_NOT_FITTED, "max_epochs", 25)
    assert "params" not in rec and rec["keys"] == [KEYS["max_epochs"]]
    assert not fitted(rec) and not fits["mail"].fitted and fits["mail"].reason == rec["reason"]

    summaries, samples = bootstrap_table(table, n_samples=20, keys=KEYS, record_unfitted=True)
    assert summaries["mail"].params == {} and summaries["mail"].reason == rec["reason"]
    assert (
        summaries["mail"].to_json()["params"] == {} and summaries["mail"].to_json()["reason"] == rec["reason"]
    )
    assert samples["mail"].empty and list(samples["mail"].columns) == list(samples["good"].columns)
    assert set(summaries["good"].params) == set(fits["good"].params)

    cv = crossval_table(table, forms=["mikami_shifted", "mikami"], l2_exponents=[0.0], l2_coefficients=[0.0],
                        keys=KEYS)  # fmt: skip
    assert len(scored(cv)) and set(scored(cv)["dataset"]) == {"good"}
    why = unscored(cv)
    assert list(why["status"]) == [STATUS_NOT_FITTED] * 2 and (why["message"] == rec["reason"]).all()

    cands = grid_candidates(table, S.STEPS, S.SIZES, "pretrain_step", "finetune_size")
    advice = advise_table(table, cands, 3, n_samples=20, keys=KEYS)
    mail_advice = advice[advice["dataset"] == "mail"]
    assert (mail_advice["status"] == STATUS_NOT_FITTED).all() and len(mail_advice) == 3
    assert KEYS["max_epochs"] in mail_advice["message"].iloc[0]

    # every reader: tables, summary, the cross-model tables, run noise, figures, the final check
    assert parameter_table(summaries).set_index("dataset").loc["mail", "G"] == "no law fitted"
    assert interval_table(summaries).set_index("dataset").loc["mail", "A"] == "no law fitted"
    text = summary_markdown(fits, summaries, {"good": cv[cv["dataset"] == "good"], "mail": cv})
    assert text.split("\n")[2:5] == ["## Not analysed", "", f"- mail: no law fitted: {rec['reason']}"]
    assert "| mail | mikami_shifted | no law fitted |" in text
    keyed = {(ds, "tiny-neox", "full"): s for ds, s in summaries.items()}
    assert gap_table(keyed, {"tiny-neox": 100}).set_index("dataset").loc["mail", "G_text"] == "no law fitted"
    lora = ("mail", "tiny-neox", "lora")  # fitted, against a reference without a law
    boots = {k: samples[k[0]] for k in keyed} | {lora: samples["good"]}
    methods = method_table({**keyed, lora: summaries["good"]}, boots, reference="full")
    assert methods.iloc[-1]["G_diff_verdict"] == "not resolved: no law fitted for full"
    noise = noise_vs_residuals(
        table.assign(method="full", seed=0), {(ds, "tiny-neox", "full"): f for ds, f in fits.items()}
    )
    assert noise.set_index("dataset").loc["mail", "verdict"].startswith("no law fitted: all 25 runs")
    for fig in (
        plot_no_law(table[table["dataset"] == "mail"], fits["mail"], "fitted law", dataset="mail"),
        plot_raw_data(table[table["dataset"] == "mail"], dataset="mail"),
        plot_parameters(summaries),
        plot_law_forms(cv[cv["dataset"] == "mail"]),  # nothing scored at all
        plot_law_forms(cv),
        plot_allocation_gap({}, no_law=["mail"]),
    ):
        plt.close(fig)
    passed, said = study_check({(ds, "tiny-neox", "full"): f for ds, f in fits.items()})
    assert not passed and f"- mail: no law fitted: {rec['reason']}" in said
    assert study_check({("good", "tiny-neox", "full"): fits["good"]})[0]


def test_more_than_a_quarter_of_runs_at_the_cap_is_said_even_when_the_law_is_fitted():
    many = fit_table(mail(lambda df: capped(df, df.index % 5 == 0)), keys=KEYS)["mail"]  # 5 of 25: 20%
    assert many.fitted and "warnings" not in many.to_json()
    many = fit_table(mail(lambda df: capped(df, df.index % 3 == 0)), keys=KEYS)["mail"]  # 9 of 25: 36%
    assert many.fitted
    (warning,) = many.warnings
    assert many.to_json()["warnings"] == [warning]
    assert warning.startswith("9 of 25 runs (36%) stopped at the epoch cap (15 epochs) while still improving")
    assert warning.endswith(f"raise {KEYS['max_epochs']}")
    assert f"- mail: {warning}." in summary_markdown({"mail": many})


#: chloroplast DNA of the embedded study, whose summary printed A as 1.45e-05 [1.48e-22, 0.0163]
DNA = {"A": 1.4531e-05, "alpha": -1.0407, "G": 0.07705, "beta": 0.5902, "E": 1.3978}


@pytest.mark.parametrize(("name", "low", "one_sided"), [("A", 1.48e-22, True), ("A", 1e-6, False),
                                                        ("G", 1e-12, True), ("G", 0.035, False)])  # fmt: skip
def test_every_coefficient_whose_interval_reaches_zero_is_an_upper_limit(name, low, one_sided):
    """The one-sided rule of G and E holds for A too: at the low end of its interval (the other parameters at
    their estimates) the term is below 1e-6 of the loss at every run, so the interval reaches zero, even
    where fewer than 2.5% of the resamples sit at the bound (here: none)."""
    law = get_form("mikami_shifted")
    p, f = (a.ravel() for a in np.meshgrid([64, 128, 256, 512, 1024, 2048], [8, 24, 72, 216]))
    base = law.to_free(DNA)
    samples = base + np.random.default_rng(0).normal(0, 0.05, (200, base.size))  # none at the bound
    summary = {n: {"estimate": v, "ci_low": v / 2, "ci_high": v * 2} for n, v in DNA.items()}
    summary["alpha"].update(ci_low=-4.2, ci_high=-0.21)
    summary[name].update(ci_low=low, ci_high={"A": 0.0163, "G": 0.138}[name])
    verdict = identification(law, base, samples, p, f, summary)[name]
    entry = summary[name] | verdict
    if one_sided:
        assert not verdict["identified"] and verdict["bound"] == ["low"]
        assert describe(name, entry) == f"{name} < {entry['ci_high']:.3g}"
    else:
        assert verdict["identified"] and describe(name, entry).startswith(f"{DNA[name]:.3g} [")
    others = {n: v for n, v in identification(law, base, samples, p, f, summary).items() if n != name}
    assert all(v["identified"] for v in others.values())


@pytest.mark.parametrize(
    ("p", "f", "unit", "words", "not_words"),
    [
        (
            "pretrain_step",
            "finetune_size",
            "sequences",
            ["earlier checkpoints", "more sequences"],
            ["models"],
        ),
        ("pretrain_tokens", "finetune_size", None, ["checkpoints that have seen fewer tokens"], ["models"]),
        (
            "n_params",
            "finetune_tokens",
            None,
            ["smaller models, where model size", "(more tokens)"],
            ["checkpoint", "pre-training"],
        ),  # fmt: skip
    ],
)
def test_what_would_measure_a_parameter_is_said_in_the_words_of_the_table_s_axes(
    p, f, unit, words, not_words
):
    unknown = {n: {"identified": False} for n in ("A", "alpha", "G", "E")}
    sentence = needs_sentence("mail", unknown, p, f, unit)
    assert all(w in sentence for w in words), sentence
    assert not any(w in sentence for w in not_words), sentence
    # through the summary: the fit record says what its axes are
    fit = {**S.fit("mail"), "p_column": p, "f_column": f, "f_unit": unit}
    fit["diagnostics"] = {"at_bound": ["A"]}
    fit = FitRecord.from_json(fit)
    assert needs_sentence("mail", {"A": {"identified": False}}, p, f, unit) in summary_markdown({"mail": fit})


def test_a_study_too_small_to_hold_runs_out_is_fitted_and_says_why_it_is_not_cross_validated():
    runs = S.runs("pilot")
    runs = runs[runs["pretrain_step"].isin([0, 64, 1024]) & runs["finetune_size"].isin([4, 16])]
    fit = fit_table(runs, keys=KEYS)["pilot"]
    assert fit.fitted and fit.n_points == 6 and fit.to_json()["n_points"] == 6
    cv = crossval_table(runs, l2_exponents=[0.0], l2_coefficients=[0.0], keys=KEYS)
    assert scored(cv).empty and best_by_form(cv).empty
    assert (cv["n_train"] + cv["n_test"] + cv["n_dropped"] == 6).all()  # every row counts the runs it had
    main = cv.set_index("form").loc["mikami_shifted"]
    assert main["status"] == "no_split" and "3 checkpoints x 2 fine-tune sizes" in main["message"]
    assert KEYS["sizes"] in main["message"] and KEYS["revisions"] in main["message"]
    text = summary_markdown({"pilot": fit}, crossval={"pilot": cv})
    assert (
        "(no cross-validation split)" in text
        and "- pilot: no cross-validation: form 'mikami_shifted'" in text
    )
    plt.close(plot_law_forms(cv))


# ----------------------------------------------------------------------------------------------------
# through the real workflow: one study, run once
# ----------------------------------------------------------------------------------------------------
GOOD = ["chloroplast-dna", "devils-dictionary"]
#: dataset -> (cause, words of its reason, the config key it names)
BAD = {
    "office-mail": ("max_epochs", "all 6 runs stopped at the epoch cap (1 epoch) while still improving",
                    "datasets.office-mail.finetune.max_epochs"),
    "blown-up": ("diverged", "all 6 runs diverged", "datasets.blown-up.finetune.lr"),
    "one-size": ("too_few_runs", "only 3 usable runs for the 5 parameters of form 'mikami_shifted'",
                 "datasets.one-size.sizes"),
}  # fmt: skip


def add_bad_datasets(cfg: dict) -> None:
    """Three checkpoints x two sizes everywhere (no cross-validation split), and three datasets without a
    law: every run stopped at a cap of one epoch, every run diverged (lr 100), one size (3 runs)."""
    for ds in GOOD:
        cfg["datasets"][ds]["sizes"] = [4, 8]
    cfg["datasets"]["office-mail"] = {"path": "resources/datasets/python_stdlib.txt.xz", "sizes": [4, 8],
                                      "finetune": {"max_epochs": 1}}  # fmt: skip
    cfg["datasets"]["blown-up"] = {"path": "resources/datasets/devils_dictionary.txt.xz", "sizes": [4, 8],
                                   "finetune": {"lr": 100.0}}  # fmt: skip
    cfg["datasets"]["one-size"] = {"path": "resources/datasets/chloroplast_dna.txt.xz", "sizes": [4]}


@pytest.fixture(scope="module")
def bad_study(small_study, tmp_path_factory):
    """The small study with the bad datasets, run once to its end: (folder, the run's process, seconds)."""
    workdir = tmp_path_factory.mktemp("bad") / "study"
    shutil.copytree(small_study, workdir, symlinks=True)
    edit_config(workdir, add_bad_datasets)
    start = time.perf_counter()
    proc = snakemake(workdir, "--cores", "2", check=False)
    return workdir, proc, time.perf_counter() - start


def test_the_other_datasets_are_analysed_and_the_study_fails_last(bad_study):
    workdir, proc, seconds = bad_study
    print(f"bad study: {seconds:.0f} s")
    assert proc.returncode != 0  # README, "Exit status"
    for ds in GOOD:
        fit = json.loads((workdir / f"results/fits/{ds}.json").read_text())
        assert fitted(fit) and fit["n_points"] == 6
        assert fitted(json.loads((workdir / f"results/bootstrap/{ds}.json").read_text()))
    for ds in [*GOOD, *BAD]:
        for name in ("raw_data", "cross_section", "iso_loss", "surface", "epochs", "bootstrap"):
            assert (workdir / f"results/figures/{ds}/{name}.png").stat().st_size > 0
    for path in ("tables/parameters.md", "tables/law_forms.md", "tables/effective_data.csv", "summary.md",
                 "report.rst", "figures/law_forms.png", "figures/parameters.png",
                 "figures/allocation_gap.png"):  # fmt: skip
        assert (workdir / "results" / path).stat().st_size > 0
    # the check was the last job, failed, and left nothing: a dry run plans it alone, so a rerun checks again
    assert not (workdir / "results/study_check.txt").exists()
    assert planned_outputs(workdir) == ["results/study_check.txt"]


@pytest.mark.parametrize("dataset", list(BAD))
def test_each_dataset_without_a_law_says_why_and_what_to_change_everywhere(bad_study, dataset):
    workdir, proc, _ = bad_study
    cause, said, key = BAD[dataset]
    fit = json.loads((workdir / f"results/fits/{dataset}.json").read_text())
    assert (fit["status"], fit["cause"]) == (STATUS_NOT_FITTED, cause)
    assert said in fit["reason"] and key in fit["reason"] and key in fit["keys"]
    boot = json.loads((workdir / f"results/bootstrap/{dataset}.json").read_text())
    assert boot["status"] == STATUS_NOT_FITTED and boot["reason"] == fit["reason"] and boot["params"] == {}
    assert pd.read_parquet(workdir / f"results/bootstrap/{dataset}.parquet").empty
    cv = pd.read_csv(workdir / f"results/crossval/{dataset}.csv")
    assert (cv["status"] == STATUS_NOT_FITTED).all() and key in cv["message"].iloc[0]
    advice = pd.read_csv(workdir / f"results/advice/{dataset}.csv")
    assert (advice["status"] == STATUS_NOT_FITTED).all() and key in advice["message"].iloc[0]
    sentence = f"- {dataset}: no law fitted: {fit['reason']}"
    summary = (workdir / "results/summary.md").read_text()
    assert sentence in summary.split("L(p, f) =")[0]  # listed first, before the table
    assert sentence in (workdir / "results/report.rst").read_text()
    table = (workdir / "results/tables/parameters.md").read_text()
    assert re.search(rf"\| {dataset} +\| no law fitted +\|", table)
    assert dataset in proc.stderr and key in proc.stderr  # on the terminal that ran the study


def test_a_study_too_small_for_any_split_writes_its_law_forms_and_says_why(bad_study):
    workdir, _, _ = bad_study
    summary = (workdir / "results/summary.md").read_text()
    for ds in GOOD:
        cv = pd.read_csv(workdir / f"results/crossval/{ds}.csv")
        assert scored(cv).empty and set(cv["status"]) == {"no_split"}
        assert f"datasets.{ds}.sizes" in cv["message"].iloc[0]
        assert f"- {ds}: no cross-validation: form 'mikami_shifted': no split" in summary
    assert (workdir / "results/figures/law_forms.pdf").stat().st_size > 0


def test_fixing_the_cause_reruns_what_it_touches_and_the_check_passes(bad_study, tmp_path):
    workdir = tmp_path / "study"
    shutil.copytree(bad_study[0], workdir, symlinks=True)
    # raising the cap reruns the capped dataset's runs and what lies downstream, nothing of the others'
    edit_config(workdir, lambda c: c["datasets"]["office-mail"].pop("finetune"))
    runs = [o for o in planned_outputs(workdir) if o.startswith("results/runs/") and o.count("/") > 2]
    assert len(runs) == 6 and all("/office-mail/" in o for o in runs)

    # the cheapest fix to run here: leave the three datasets out; the study then passes its check
    def leave_out(cfg):
        for ds in BAD:
            del cfg["datasets"][ds]

    edit_config(workdir, leave_out)
    proc = snakemake(workdir, "--cores", "2", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workdir / "results/study_check.txt").read_text().startswith("study check passed: all 2 law(s)")
    assert "Not analysed" not in (workdir / "results/summary.md").read_text()
    assert planned_outputs(workdir) == []
