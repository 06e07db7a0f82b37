"""Which runs next: valid candidate cells, the right count per group, deterministic for a seed, the
too-few-runs path, cost weighting, the ensemble and cell criteria's algebra, a repeat as a new seed,
candidates beyond the grid, the study's own interval and the promise in the message, and bad input named
before any fit (real fits on small tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import TABLE2

from transferlaw.cli import main
from transferlaw.law.advise import (
    ADVICE_COLUMNS,
    MIN_MEMBERS,
    PROMISE_BAND,
    PROMISE_INFLATE,
    PROMISE_SHARE,
    RIDGE,
    STATUS_OK,
    STATUS_SPACE_FILLING,
    CellInformation,
    EnsembleInformation,
    _narrower,
    advise,
    advise_table,
    candidate_costs,
    grid_candidates,
    space_filling,
    why_no_promise,
)
from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.fit import STATUS_NOT_FITTED
from transferlaw.law.forms import get_form

STEPS = [1000, 4000, 16000, 64000, 143000]
SIZES = [10, 50, 250, 1100]
FAST = dict(form="mikami", n_samples=40)  # a small ensemble: real refits, a fraction of a second


def runs_table(datasets=("enron_emails", "house_cat_genome"), seed=0, cells=None) -> pd.DataFrame:
    """Runs on a 5 x 4 grid (or at ``cells``) drawn from Table 2's parameters with 2% noise and an
    ``epochs`` column that falls with the fine-tune size, as the paper's Figure 8 does."""
    rng = np.random.default_rng(seed)
    law = get_form("mikami")
    grid = cells or [(p, f) for p in STEPS for f in SIZES]
    rows = []
    for ds in datasets:
        for p, f in grid:
            loss = float(law.predict(TABLE2[ds], p, f)) * float(np.exp(rng.normal(0, 0.02)))
            rows.append(
                {
                    "dataset": ds,
                    "pretrain_step": p,
                    "finetune_size": f,
                    "eval_loss": loss,
                    "epochs": int(40 / np.log10(f)),
                    "status": "ok",
                }
            )
    return pd.DataFrame(rows)


def candidates_grid(steps=STEPS, sizes=SIZES) -> pd.DataFrame:
    return pd.DataFrame([(p, f) for p in steps for f in sizes], columns=["pretrain_step", "finetune_size"])


def test_recommendations_are_candidate_cells_with_the_right_count_per_group():
    df = runs_table()
    cands = candidates_grid(steps=[*STEPS, 2000], sizes=[*SIZES, 20])  # cells not yet run, too
    out = advise_table(df, cands, 6, **FAST)
    assert list(out.columns[:3]) == ["dataset", "pretrain_step", "finetune_size"]
    assert set(ADVICE_COLUMNS) <= set(out.columns)
    allowed = set(map(tuple, cands.to_numpy()))
    for _, rows in out.groupby("dataset"):
        assert len(rows) == 6 and list(rows["rank"]) == list(range(1, 7))
        assert set(zip(rows["pretrain_step"], rows["finetune_size"], strict=True)) <= allowed
        assert (rows["status"] == STATUS_OK).all() and (rows["target"] == "G").all()
        # the path from the width now to the simulated studies' width after the batch is monotone: each
        # pick takes its share of the criterion's fall (the simulated width may exceed today's interval,
        # which 40 refits of a 20-run table can understate)
        widths = rows["expected_width"].to_numpy()
        steps = np.diff(widths)
        assert np.all(np.isfinite(widths)) and (np.all(steps <= 1e-12) or np.all(steps >= -1e-12))
        assert np.allclose(rows["width_reduction"].to_numpy()[1:], -steps)
        assert rows["replicate"].min() >= 0 and rows["promised"].nunique() == 1
    assert set(out["dataset"]) == {"enron_emails", "house_cat_genome"}


def test_candidates_with_a_group_column_are_per_group():
    df = runs_table()
    cands = pd.concat(
        [
            candidates_grid(steps=[143000]).assign(dataset="enron_emails"),
            candidates_grid(steps=[1000]).assign(dataset="house_cat_genome"),
        ]
    )
    out = advise_table(df, cands, 3, **FAST)
    assert set(out.loc[out["dataset"] == "enron_emails", "pretrain_step"]) == {143000}
    assert set(out.loc[out["dataset"] == "house_cat_genome", "pretrain_step"]) == {1000}
    assert len(out) == 6


def test_advice_is_deterministic_for_a_seed():
    df = runs_table(datasets=("math_arxiv",))
    cands = candidates_grid()
    a = advise_table(df, cands, 5, seed=3, **FAST)
    b = advise_table(df, cands, 5, seed=3, **FAST)
    pd.testing.assert_frame_equal(a, b)
    c = advise_table(df, cands, 5, seed=4, **FAST)
    assert c["message"].iloc[0] != a["message"].iloc[0]  # another ensemble: other intervals


@pytest.mark.parametrize(
    ("cells", "status", "reason"),
    [
        (
            [(1000, 10), (143000, 1100), (16000, 50), (4000, 250)],
            STATUS_NOT_FITTED,  # the fit's own rule: no law
            "no law fitted: only 4 usable runs for the 5 parameters",
        ),
        (
            [(p, f) for p in STEPS for f in (10, 1100)],
            STATUS_SPACE_FILLING,  # a law, too weak to design with
            "only 2 distinct value(s) of f (the law needs 3 to bend along it): too few to fit the law",
        ),
    ],
)
def test_too_few_runs_say_so_and_propose_a_space_filling_batch(cells, status, reason):
    df = runs_table(datasets=("enron_emails",), cells=cells)
    cands = candidates_grid()
    out = advise_table(df, cands, 4, **FAST)
    assert len(out) == 4 and (out["status"] == status).all()
    assert reason in out["message"].iloc[0] and "space-filling first batch" in out["message"].iloc[0]
    assert out["expected_width"].isna().all()
    picked = list(zip(out["pretrain_step"], out["finetune_size"], strict=True))
    assert len(set(picked)) == 4 and not set(picked) & set(cells)  # new cells, none repeated

    # the first pick is the candidate farthest from every run (log p, log f scaled to the candidates' range)
    def unit(x, ref):
        return (np.log(x) - np.log(ref).min()) / np.ptp(np.log(ref))

    cp, cf = cands["pretrain_step"].to_numpy(), cands["finetune_size"].to_numpy()
    rp, rf = (np.array([c[i] for c in cells]) for i in (0, 1))
    dist = np.hypot(unit(cp, cp)[:, None] - unit(rp, cp), unit(cf, cf)[:, None] - unit(rf, cf)).min(1)
    first = np.flatnonzero((cp == picked[0][0]) & (cf == picked[0][1]))[0]
    assert dist[first] == pytest.approx(dist.max())


def test_no_runs_at_all_still_get_a_first_batch():
    a = advise([], [], [], [1000, 1000, 143000, 143000], [10, 1100, 10, 1100], 4, "mikami")
    assert a.status == STATUS_SPACE_FILLING and sorted(a.picks.tolist()) == [0, 1, 2, 3]


def test_cost_weighting_changes_the_choice():
    df = runs_table(datasets=("enron_emails",))
    cands = candidates_grid()
    equal = advise_table(df, cands, 6, **FAST)
    by_size = advise_table(df, cands, 6, cost="finetune_size", **FAST)
    assert list(by_size["cost"]) == list(by_size["finetune_size"].astype(float))
    assert (equal["cost"] == 1).all()
    assert by_size["finetune_size"].sum() < equal["finetune_size"].sum()  # cheaper runs are preferred
    assert list(zip(by_size["pretrain_step"], by_size["finetune_size"], strict=True)) != list(
        zip(equal["pretrain_step"], equal["finetune_size"], strict=True)
    )


def test_a_cost_expression_takes_what_the_candidates_lack_from_the_nearest_run():
    runs = runs_table(datasets=("enron_emails",))
    cands = pd.DataFrame({"pretrain_step": [16000, 16000, 20000], "finetune_size": [250, 1100, 1000]})
    cost = candidate_costs(cands, runs, "finetune_size * epochs", "pretrain_step", "finetune_size")
    epochs = {f: int(40 / np.log10(f)) for f in SIZES}
    # the first two were run (their own epochs); (20000, 1000) is nearest to the run at (16000, 1100)
    assert cost.tolist() == [250 * epochs[250], 1100 * epochs[1100], 1000 * epochs[1100]]
    assert candidate_costs(cands, runs, None, "pretrain_step", "finetune_size").tolist() == [1, 1, 1]


def test_the_ensemble_update_is_the_exact_inverse_and_gain():
    """The rank-one update equals inverting M_b + j jᵀ afresh, and the relative gain it predicts for a
    candidate is what adding that run then removes from the target's variance."""
    law = get_form("mikami")
    p, f = np.array([1e3, 1e3, 2e4, 2e4, 1.4e5, 1.4e5, 5e3]), np.array([10, 1e3, 10, 1e3, 10, 1e3, 100])
    members = np.array([law.to_free(TABLE2[d]) for d in TABLE2])
    cp, cf = np.array([1e3, 1.4e5, 3e4]), np.array([500, 50, 1100])
    info = EnsembleInformation(law, members, p, f, cp, cf, law.param_names.index("G"))
    gain = info.relative_gain()
    before = info.minv[:, 2, 2].copy()
    info.add(1)
    _, j0 = law.log_predict(members, p, f, jacobian=True)
    ridge = RIDGE * np.einsum("bni,bni->bi", j0, j0).max(1)  # what keeps an unmeasured target invertible
    _, jr = law.log_predict(members, np.r_[p, cp[1]], np.r_[f, cf[1]], jacobian=True)
    fresh = np.linalg.inv(np.einsum("bni,bnj->bij", jr, jr) + ridge[:, None, None] * np.eye(law.n_params))
    np.testing.assert_allclose(info.minv, fresh, rtol=1e-6)
    assert gain[1] == pytest.approx(np.mean(1 - info.minv[:, 2, 2] / before), rel=1e-6)
    assert info.log_ratio() < 0


def test_the_cell_criterion_is_the_sandwich_variance_of_a_cell_bootstrap():
    """V_b = Σ_c a_c² (r_c + ρ r_c²) / (1 - h_c)² computed afresh equals the criterion's, a replicate counts
    less than a new cell of the same Jacobian (its discrepancy is shared), and the greedy update of one pick
    equals the variance recomputed with that run added."""
    law = get_form("mikami")
    p, f = np.array([1e3, 1e3, 2e4, 2e4, 1.4e5, 1.4e5, 5e3]), np.array([10, 1e3, 10, 1e3, 10, 1e3, 100])
    members = np.array([law.to_free(TABLE2[d]) for d in TABLE2])
    cp, cf = np.array([1e3, 1.4e5, 3e4]), np.array([10, 50, 1100])  # (1e3, 10) is a cell already run
    ti = law.param_names.index("G")
    info = CellInformation(law, members, p, f, cp, cf, ti, discrepancy=1.0)
    _, jac = law.log_predict(members, p, f, jacobian=True)
    ridge = RIDGE * np.einsum("bni,bni->bi", jac, jac).max(1)[:, None, None] * np.eye(law.n_params)
    m_inv = np.linalg.inv(np.einsum("bni,bnj->bij", jac, jac) + ridge)
    a = np.einsum("bk,bnk->bn", m_inv[:, ti, :], jac)
    h = np.einsum("bnk,bkl,bnl->bn", jac, m_inv, jac)
    fresh = (a**2 * 2.0 / (1 - np.minimum(h, 0.98)) ** 2).sum(1)  # one run per cell: r + ρr² = 2
    np.testing.assert_allclose(info.v0, fresh, rtol=1e-5)
    before = info.variance()
    info.add(2)
    _, j2 = law.log_predict(members, np.r_[p, cp[2]], np.r_[f, cf[2]], jacobian=True)
    m2 = np.linalg.inv(np.einsum("bni,bnj->bij", j2, j2) + ridge)  # the update keeps the first ridge
    a2, h2 = np.einsum("bk,bnk->bn", m2[:, ti, :], j2), np.einsum("bnk,bkl,bnl->bn", j2, m2, j2)
    np.testing.assert_allclose(
        info.variance(), (a2**2 * 2.0 / (1 - np.minimum(h2, 0.98)) ** 2).sum(1), rtol=1e-5
    )
    assert np.mean(np.log(info.variance() / before)) < 0


def test_a_repeated_cell_is_a_new_seed_never_the_same_run_again():
    """Candidates that are all cells already run: every recommendation is a replicate, and its ``seed`` is
    one its cell has not run (the next after the cell's largest, then the next for a second pick there)."""
    cells = [(p, f) for p in STEPS for f in SIZES]
    df = runs_table(datasets=("enron_emails",), cells=cells).assign(seed=7)
    df.loc[df.index[:3], "seed"] = 9  # three cells have two replicates, seeds 7 and 9
    df = pd.concat([df, df.iloc[:3].assign(seed=7)], ignore_index=True)
    out = advise_table(df, candidates_grid(), 12, **FAST)
    assert (out["replicate"] >= 1).all()
    ran = set(zip(df["pretrain_step"], df["finetune_size"], df["seed"], strict=True))
    advised = list(zip(out["pretrain_step"], out["finetune_size"], out["seed"], strict=True))
    assert not ran & set(advised) and len(set(advised)) == len(advised)  # never a run already done
    for (p, f), rows in out.groupby(["pretrain_step", "finetune_size"]):
        done = df.loc[(df["pretrain_step"] == p) & (df["finetune_size"] == f), "seed"]
        assert list(rows["seed"]) == list(range(done.max() + 1, done.max() + 1 + len(rows)))
        assert list(rows["replicate"]) == list(range(len(done), len(done) + len(rows)))
    assert "repeat(s) of cells run" in out["message"].iloc[0]


def test_the_message_states_the_studys_own_interval_and_whether_it_promises():
    df = runs_table(datasets=("enron_emails",))
    study = {"estimate": 0.61, "ci_low": 0.5, "ci_high": 0.77, "identified": True, "bound": []}
    record = BootstrapSummary(
        dataset="enron_emails", form="mikami_shifted", params={"G": study}, n_samples=4000
    )
    intervals = {"enron_emails": record}
    out = advise_table(df, candidates_grid(), 4, intervals=intervals, n_sims=4, **FAST)
    message = out["message"].iloc[0]
    assert "G 0.61 [0.5, 0.77] (the study's bootstrap, 4,000 resamples)" in message
    assert message.count("[") == 1  # one interval: the ensemble's own is not stated beside it
    assert "(now 0.27)" in message or "wider than the 0.27 now" in message  # the width now, stated once
    promised = bool(out["promised"].iloc[0])
    if promised:
        assert f"it promises it within {PROMISE_BAND:.0%}: the 4 simulated studies gave" in message
    else:
        assert "it cannot promise it (" in message and "): 4 simulated studies gave" in message
    # without simulated studies the width is the criterion's own, and never promised
    a = advise(df["pretrain_step"], df["finetune_size"], df["eval_loss"], [1e3, 1.4e5], [10, 1100], 2,
               "mikami", n_samples=40, n_sims=0)  # fmt: skip
    assert not a.promised and "not simulated, so it cannot promise it" in a.message


def test_too_few_usable_refits_say_the_law_was_fitted_and_propose_a_space_filling_batch():
    """A law fitted, but an ensemble too small to weigh candidates by (fewer refits than MIN_MEMBERS): a
    space-filling batch whose message does not claim the runs are too few to fit the law."""
    df = runs_table(datasets=("enron_emails",))
    out = advise_table(df, candidates_grid(), 4, form="mikami", n_samples=MIN_MEMBERS - 1)
    message = out["message"].iloc[0]
    assert (out["status"] == STATUS_SPACE_FILLING).all() and "space-filling first batch of 4" in message
    assert f"the law was fitted, but only {MIN_MEMBERS - 1} of {MIN_MEMBERS - 1} bootstrap refits" in message
    assert "too few to fit the law" not in message


def test_an_expected_width_wider_than_the_interval_now_says_so():
    """The study's interval far narrower than its own refits' laws allow (as from a bootstrap of a few runs):
    the simulated studies give wider intervals, and the message says that the interval now is the one to
    doubt rather than promising that more runs widen it."""
    df = runs_table(datasets=("enron_emails",))
    narrow = {"estimate": 0.61, "ci_low": 0.6095, "ci_high": 0.6105, "identified": True, "bound": []}
    record = BootstrapSummary(dataset="enron_emails", form="mikami_shifted", params={"G": narrow})
    out = advise_table(df, candidates_grid(), 4, intervals={"enron_emails": record}, n_sims=4, **FAST)
    message = out["message"].iloc[0]
    end = float(message.split("expects a width of ")[1].split(",")[0])
    assert end > 0.001
    assert f"a width of {end:.3g}, wider than the 0.001 now" in message
    assert "the interval now is likely too narrow" in message and "(now 0.001)" not in message


def test_candidates_beyond_the_grid_are_priced_and_marked():
    runs = runs_table(datasets=("enron_emails",)).assign(pretrain_tokens=lambda d: d["pretrain_step"] * 512)
    cells = grid_candidates(runs, [1000], [10, 50], "pretrain_tokens", "finetune_size", [250000], [2000])
    assert len(cells) == 2 * 3
    beyond = cells[~cells["in_grid"]]
    assert set(zip(beyond["pretrain_step"], beyond["finetune_size"], strict=True)) == {
        (1000, 2000), (250000, 10), (250000, 50), (250000, 2000)
    }  # fmt: skip
    assert (cells["pretrain_tokens"] == cells["pretrain_step"] * 512).all()  # priced by the runs' ratio
    odd = runs.assign(pretrain_tokens=lambda d: d["pretrain_step"] * 512 + d["finetune_size"])
    with pytest.raises(ValueError, match=r"no run tells the pretrain_tokens of pretrain_step \[250000\]"):
        grid_candidates(odd, [1000], [10], "pretrain_tokens", "finetune_size", [250000])


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        (
            dict(candidates=pd.DataFrame({"pretrain_step": [1000]})),
            "candidates: missing column(s) 'finetune_size'",
        ),
        (
            dict(candidates=candidates_grid().assign(dataset="nope")),
            "candidates: dataset 'nope' not in the table of runs",
        ),
        (
            dict(candidates=pd.DataFrame({"pretrain_step": [0], "finetune_size": [10]})),
            "'pretrain_step' has 1",
        ),
        (dict(cost="finetune_size * nonsense"), "cost 'finetune_size * nonsense' is neither a column"),
        (
            dict(cost="finetune_size - 10"),
            "not a positive finite number for 5 candidate(s), e.g. pretrain_step=1000, finetune_size=10",
        ),
        (dict(target="Q"), "target 'Q' is not a parameter of form 'mikami'"),
        (dict(n_runs=0), "at least 1"),
    ],
)
def test_bad_input_is_named_before_any_fit(change, culprit):
    kw = {"candidates": candidates_grid(), "n_runs": 3, "form": "mikami", "n_samples": 40, **change}
    with pytest.raises(ValueError) as err:
        advise_table(runs_table(), kw.pop("candidates"), kw.pop("n_runs"), **kw)
    assert culprit in str(err.value)


def test_grid_candidates_read_tokens_from_the_runs():
    runs = runs_table(datasets=("enron_emails",)).assign(pretrain_tokens=lambda d: d["pretrain_step"] * 512)
    cells = grid_candidates(runs, [1000, 143000], [10, 1100], "pretrain_tokens", "finetune_size")
    assert list(cells["revision"]) == ["step1000", "step1000", "step143000", "step143000"]
    assert list(cells["pretrain_tokens"]) == [512_000, 512_000, 143000 * 512, 143000 * 512]
    with pytest.raises(ValueError, match=r"no run tells the pretrain_tokens of pretrain_step \[7\]"):
        grid_candidates(runs, [7], [10], "pretrain_tokens", "finetune_size")


def test_cli_writes_next_csv_and_names_bad_input(tmp_path, capsys):
    table, cands, out = tmp_path / "runs.csv", tmp_path / "cands.csv", tmp_path / "next.csv"
    runs_table().to_csv(table, index=False)
    candidates_grid().to_csv(cands, index=False)
    args = [
        "advise",
        str(table),
        "--candidates",
        str(cands),
        "--runs",
        "3",
        "--form",
        "mikami",
        "-o",
        str(out),
    ]
    assert main([*args, "--samples", "40", "--cost", "finetune_size"]) == 0
    next_runs = pd.read_csv(out)
    assert list(next_runs.columns[:3]) == ["dataset", "pretrain_step", "finetune_size"]
    assert next_runs.groupby("dataset").size().to_dict() == {"enron_emails": 3, "house_cat_genome": 3}
    printed = capsys.readouterr().out
    assert "enron_emails: " in printed and "1. pretrain_step " in printed and "G width -> " in printed
    assert main([*args, "--target", "Q"]) == 2
    assert "transferlaw advise: error: target 'Q'" in capsys.readouterr().err
    # with `transferlaw bootstrap`'s record the message states that interval: one per group
    boot = tmp_path / "boot.json"
    assert main(["bootstrap", str(table), "--form", "mikami", "--samples", "30", "-o", str(boot)]) == 0
    assert main([*args, "--samples", "40", "--intervals", str(boot)]) == 0
    said = pd.read_csv(out).groupby("dataset")["message"].first()
    assert said.str.contains("(the study's bootstrap, 30 resamples)", regex=False).all()


def test_config_names_a_target_that_is_not_a_parameter():
    import yaml
    from conftest import REPO, SMALL_CONFIG

    from transferlaw.config import ConfigError, check_study, resolve

    cfg = resolve(yaml.safe_load(SMALL_CONFIG.read_text()))
    cfg["analysis"]["advice_target"] = "gap"
    with pytest.raises(ConfigError, match=r"analysis.advice_target: 'gap' is not a parameter of fit.form"):
        check_study(cfg, root=REPO)


@pytest.mark.slow
def test_the_workflow_rule_advises_from_the_study_grid(tmp_path):
    """The real Snakemake runs the bootstrap and advise rules alone (--allowed-rules) on record tables
    written here, every configured cell run: one CSV per dataset, analysis.advice_runs rows drawn from the
    model's saved checkpoints x the sizes and analysis.advice_sizes, each naming the config change that
    runs it (a repeat: a new seed), and the message stating the study's own interval of G."""
    import json

    from conftest import edit_config, make_study_dir, snakemake

    from transferlaw.law.diagnostics import describe
    from transferlaw.schema import LATER_COLUMNS, RECORD_COLUMNS, write_records

    study = make_study_dir(tmp_path / "study")
    law, rng = get_form("mikami_shifted"), np.random.default_rng(0)
    params = {**TABLE2["enron_emails"], "A": 3.0}
    for ds in ("devils-dictionary", "chloroplast-dna"):
        rows = []
        for step in (0, 16, 256):
            for size in (4, 8, 16):
                loss = float(law.predict(params, step, size)) * float(np.exp(rng.normal(0, 0.02)))
                row = dict.fromkeys(RECORD_COLUMNS, 0)
                row.update({k: v for k, v in LATER_COLUMNS.items() if k != "trainable_params"})
                row.update(
                    dataset=ds, model="tiny-neox", revision=f"step{step}", revision_sha=f"{step:040x}",
                    pretrain_step=step, pretrain_tokens=step * 512, finetune_unit="sequences",
                    finetune_size=size, finetune_sequences=size, finetune_tokens=size * 32, context_length=32,
                    eval_loss=loss, initial_eval_loss=5.0, train_loss=loss, wall_seconds=1.0, flops=1.0,
                    device_name="cpu", precision="fp32", weights_dtype="float32", attention="sdpa",
                    optimizer="adamw", tf32=False, gradient_checkpointing=False, versions="-", status="ok",
                    eval_curve=[loss],
                )  # fmt: skip
                rows.append(row)
        write_records(pd.DataFrame(rows), str(study / f"results/runs/{ds}.parquet"))
    edit_config(study, lambda cfg: cfg["analysis"].update(advice_sizes=[32]))
    targets = ["results/advice/devils-dictionary.csv", "results/advice/chloroplast-dna.csv"]
    snakemake(study, *targets, "--allowed-rules", "bootstrap", "advise", "--cores", "1")
    saved = {f"step{s}" for s in (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)}  # the pretrained model's revisions
    for target in targets:
        advice = pd.read_csv(study / target)
        assert len(advice) == 10 and (advice["status"] == STATUS_OK).all()
        assert set(advice["revision"]) <= saved and set(advice["finetune_size"]) <= {4, 8, 16, 32}
        assert (advice["revision"] == "step" + advice["pretrain_step"].astype(str)).all()
        # every configured cell has run: each row says the config change that runs it
        for row in advice.to_dict("records"):
            change = row["config_change"]
            assert (row["revision"] not in {"step0", "step16", "step256"}) == (
                f"add {row['revision']} to models.tiny-neox.revisions" in change
            )
            assert (row["finetune_size"] == 32) == ("datasets." in change and ".sizes" in change)
            if row["replicate"] > 0:  # a repeat is a new seed of its cell (the records ran seed 0)
                assert (
                    row["seed"] >= 1
                    and f"seeds: {row['seed'] + 1} (seed {row['seed']} of every cell)" in change
                )
            assert change != "none: configured, not yet run"
        # the interval stated is the study's own (results/bootstrap), one per dataset
        boot = json.loads(
            (study / target.replace("advice", "bootstrap").replace(".csv", ".json")).read_text()
        )
        said = describe("G", boot["params"]["G"])
        assert (
            said in advice["message"].iloc[0]
            and "the study's bootstrap, 200 resamples" in advice["message"].iloc[0]
        )
    assert (study / "logs/advise/devils-dictionary.log").exists()


def test_a_design_is_narrower_by_the_mean_log_ratio_so_one_tail_counts():
    """Paired simulated widths: narrower in most studies is not enough where one study runs far into a tail;
    an interval that reaches the bound (NaN) is wider than any other; a design is not narrower than itself."""
    base = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    assert _narrower(base * 0.9, base) and not _narrower(base, base * 0.9)
    tail = np.array([0.9, 0.9, 0.9, 0.9, 1e4])  # narrower in 4 of 5, 10,000 times wider in one
    assert not _narrower(tail, base) and _narrower(base, tail)
    assert _narrower(base, np.r_[base[:4], np.nan]) and not _narrower(np.r_[base[:4], np.nan], base)
    assert not _narrower(base, base) and not _narrower(np.full(5, np.nan), np.full(5, np.nan))


def test_a_width_is_promised_only_where_one_study_would_keep_it():
    """The promise needs the interval identified now, every simulated interval bounded, and the simulated
    widths, their spread widened by PROMISE_INFLATE, within the band in PROMISE_SHARE of the studies."""
    end = 2.0
    tight = end * np.exp(np.linspace(-0.5, 0.5, 10) * np.log(1 + PROMISE_BAND) / PROMISE_INFLATE)
    assert why_no_promise(tight, end, identified=True) is None
    assert "not identified" in why_no_promise(tight, end, identified=False)
    assert "reach the bound" in why_no_promise(np.r_[tight[:-1], np.nan], end, identified=True)
    assert why_no_promise(np.full(0, np.nan), end, identified=True) == "not simulated"
    # within the band as simulated, but not once widened: too many of them fall outside
    n_out = int(np.ceil((1 - PROMISE_SHARE) * 10)) + 1
    spread = np.r_[
        np.full(10 - n_out, end), np.full(n_out, end * (1 + PROMISE_BAND) ** (1.5 / PROMISE_INFLATE))
    ]
    assert np.all(np.abs(spread / end - 1) <= PROMISE_BAND + 1e-12)
    assert "varies more" in why_no_promise(spread, end, identified=True)


def test_a_one_sided_interval_weighs_the_members_that_set_its_upper_end():
    """With the upper share, the criterion is exactly the one of an ensemble of those members alone."""
    law = get_form("mikami")
    rng = np.random.default_rng(0)
    members = np.array([law.to_free(TABLE2[d]) for d in TABLE2])
    members = np.repeat(members, 4, axis=0) + rng.normal(0, 0.05, (20, law.n_params))
    p, f = np.array([1e3, 1e3, 2e4, 2e4, 1.4e5, 1.4e5, 5e3]), np.array([10, 1e3, 10, 1e3, 10, 1e3, 100])
    cp, cf = np.array([1e3, 1.4e5, 3e4, 3e3]), np.array([10, 50, 1100, 300])
    ti = law.param_names.index("G")
    for kind in (EnsembleInformation, CellInformation):
        info = kind(law, members, p, f, cp, cf, ti)
        info.weigh(members, 0.5)
        top = members[:, ti] >= np.quantile(members[:, ti], 0.5)
        alone = kind(law, members[top], p, f, cp, cf, ti)
        assert 0 < (info.w > 0).sum() == top.sum() < len(members)
        np.testing.assert_allclose(info.score(), alone.score(), rtol=1e-9)
        info.add(1), alone.add(1)
        np.testing.assert_allclose(info.log_ratio(), alone.log_ratio(), rtol=1e-9)


def test_space_filling_spreads_replicates_where_every_candidate_has_run():
    """Where every candidate cell has run, the space-filling batch (the first batch, and a hedge the advice
    simulates) spreads its replicates over the cells: never a second one on a cell before every cell has
    one more, and the first picks far apart (corners before the middle)."""
    cp, cf = (np.array(v, float) for v in zip(*[(p, f) for p in STEPS for f in SIZES], strict=True))
    twice = [5, 6, 7]  # three cells inside the grid have two runs
    p, f = np.r_[cp, cp[twice]], np.r_[cf, cf[twice]]
    cost = np.ones(cp.size)
    for n in (6, cp.size + 5):
        picks = space_filling(p, f, cp, cf, n, cost)
        runs = np.bincount(picks, minlength=cp.size) + np.bincount(np.r_[np.arange(cp.size), twice])
        assert runs.max() - runs.min() <= 1
    corners = {(STEPS[0], SIZES[0]), (STEPS[0], SIZES[-1]), (STEPS[-1], SIZES[0]), (STEPS[-1], SIZES[-1])}
    first = space_filling(p, f, cp, cf, 4, cost)
    assert {(cp[j], cf[j]) for j in first} == corners


def test_a_cell_whose_runs_the_fit_left_out_is_repeated_under_a_new_seed_and_said_so():
    """A run stopped at the epoch cap exists though the fit leaves it out: advice to run its cell is a repeat
    (replicate >= 1) under a seed the cell has not run, never that run again, and the message says why."""
    df = runs_table(datasets=("enron_emails",)).assign(seed=0)
    capped = {"dataset": "enron_emails", "pretrain_step": 1000, "finetune_size": 5, "eval_loss": 3.9}
    df = pd.concat([df, pd.DataFrame([{**capped, "epochs": 150, "status": "max_epochs", "seed": 0}])])
    cands = pd.DataFrame({"pretrain_step": [1000], "finetune_size": [5]})  # only the capped run's cell
    out = advise_table(df, cands, 2, **FAST)
    assert out["seed"].tolist() == [1, 2] and out["replicate"].tolist() == [1, 2]
    note = "2 advised run(s) repeat 1 cell(s) whose run(s) so far the fit left out (status max_epochs: 1)"
    assert note in out["message"].iloc[0]
    ok = advise_table(df[df["status"] == "ok"], candidates_grid(), 4, **FAST)  # no capped run: no such note
    assert "left out" not in ok["message"].iloc[0]
