"""Issue 11, beyond the paper: LoRA against full fine-tuning, model size as a third axis, seed replicates and
run noise. Config and tables on their own; a LoRA run in a worker's checkpoint cache; and the real workflow on
a tiny study of two model sizes x two methods x two seeds (tests/config/multi.yaml)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import (
    REPO,
    assert_nothing_planned,
    build_once,
    copy_study,
    executed_outputs,
    make_study_dir,
    planned_outputs,
    snakemake,
)

from transferlaw.config import (
    LORA_KEYS,
    RESOURCE_KEYS,
    finetune_defaults,
    job_params,
    load_config,
    run_seeds,
    run_settings,
)

MULTI = REPO / "tests" / "config" / "multi.yaml"
DS = "devils-dictionary"
MODELS = ["neox-m", "neox-s"]
METHODS = ["full", "lora"]


def multi_config(tmp_path, edit=lambda c: None):
    cfg = yaml.safe_load(MULTI.read_text())
    edit(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ---- config ---------------------------------------------------------------------------------------------
def test_methods_seeds_and_model_sizes_resolve(tmp_path):
    cfg = load_config(multi_config(tmp_path), root=REPO)
    assert list(cfg["methods"]) == METHODS and cfg["fit"]["method"] == "full"
    assert run_seeds(cfg, DS) == [0, 1]
    lora = run_settings(cfg, DS, "lora", seed=1)
    assert (lora["method"], lora["lora_rank"], lora["lr"], lora["seed"]) == ("lora", 4, 0.1, 1)
    assert run_settings(cfg, DS, "full")["lr"] == 0.01  # the method's override does not leak
    from transferlaw.config import model_settings, pretrain_settings

    assert pretrain_settings(cfg, "neox-m")["hidden_size"] == 32
    assert pretrain_settings(cfg, "neox-s")["hidden_size"] == 16
    assert model_settings(cfg, "neox-m")["tokens_per_step"] == 8 * 32


def test_a_full_fine_tune_keeps_the_params_it_had_before_methods(tmp_path):
    """A full run's job params hold exactly the keys of the fine-tune settings before methods existed, so a
    finished study's runs are not rerun by this code; a LoRA run's hold its method and LoRA settings."""
    cfg = load_config(multi_config(tmp_path), root=REPO)
    before = set(finetune_defaults()) - {"method", *LORA_KEYS} - RESOURCE_KEYS
    assert set(job_params(run_settings(cfg, DS, "full"))) == before
    assert set(job_params(run_settings(cfg, DS, "lora"))) == before | {"method", *LORA_KEYS}
    assert run_seeds(load_config(multi_config(tmp_path, lambda c: c.pop("seeds")), root=REPO), DS) == [0]
    listed = load_config(multi_config(tmp_path, lambda c: c.update(seeds=[5, 3])), root=REPO)
    assert run_seeds(listed, DS) == [3, 5]


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        (lambda c: c["methods"].update(full={"method": "lora"}), "methods.full.method: the name `full`"),
        (lambda c: c["methods"]["lora"].update(context_length=16), "methods.lora.context_length"),
        (lambda c: c["methods"]["lora"].update(seed=3), "methods.lora.seed"),
        (lambda c: c["fit"].update(method="qlora"), "fit.method: 'qlora'"),
        (
            lambda c: c["methods"]["lora"].update(lora_target_modules=["q_proj"]),
            "lora_target_modules: q_proj",
        ),
        (lambda c: c["datasets"][DS].update(finetune={"method": "lora"}), f"datasets.{DS}.finetune.method"),
        (lambda c: c["models"]["neox-m"]["pretrain"].update(num_attention_heads=3), "models.neox-m.pretrain"),
        (
            lambda c: c["models"]["neox-m"]["pretrain"].update(hidden_size=4),
            "models.neox-m.pretrain.hidden_size",
        ),
        (lambda c: c["models"]["neox-m"]["pretrain"].update(vocab_size=999), "vocab_size"),
        (lambda c: c.update(seeds=0), "seeds"),
        (lambda c: c["methods"]["lora"].update(method="adapter"), "adapter"),
    ],
)
def test_bad_methods_models_and_seeds_are_refused_naming_the_culprit(tmp_path, edit, culprit):
    with pytest.raises(Exception) as err:  # ConfigError, or the schema validator's error
        load_config(multi_config(tmp_path, edit), root=REPO)
    assert culprit in str(err.value)


# ---- records, resampling --------------------------------------------------------------------------------
def test_records_written_before_methods_read_as_full_fine_tunes(tmp_path):
    from test_schema import record

    from transferlaw.schema import LATER_COLUMNS, read_records

    old = {k: v for k, v in record(n_params=1234).items() if k not in LATER_COLUMNS}
    pd.DataFrame([old]).to_parquet(tmp_path / "old.parquet")
    runs = read_records(str(tmp_path / "old.parquet"))
    assert runs.loc[0, "method"] == "full" and runs.loc[0, "finetune_method"] == "full"
    assert runs.loc[0, "trainable_params"] == 1234 and runs.loc[0, "lora_rank"] == 0


def test_resampling_cells_keeps_replicates_together_and_one_run_cells_as_before():
    from transferlaw.law.bootstrap import resample_weights

    plain = resample_weights(6, 50, seed=3)
    assert np.array_equal(resample_weights(6, 50, seed=3, cells=np.arange(6)), plain)
    cells = np.repeat([0, 1, 2], 2)  # three cells, two seeds each
    w = resample_weights(6, 200, seed=3, cells=cells)
    assert np.array_equal(w[:, 0::2], w[:, 1::2])  # a cell's replicates are drawn together
    assert (w.sum(axis=1) == 6).all() and set(np.unique(w)) <= {0.0, 1.0, 2.0, 3.0}


# ---- tables ---------------------------------------------------------------------------------------------
def _summary(g, lo, hi, identified=True, cells=((0, 4), (8, 4))):
    from transferlaw.law.bootstrap import BootstrapSummary

    params = {
        n: {"estimate": 1.0, "se": 0.1, "ci_low": 0.9, "ci_high": 1.1, "identified": True} for n in "AE"
    }
    params["G"] = {"estimate": g, "se": 0.1, "ci_low": lo, "ci_high": hi, "identified": identified}
    return BootstrapSummary(
        dataset="d", form="mikami_shifted", params=params, seed=0, n_samples=400, cells=cells, n_points=4
    )


def test_method_table_gives_the_difference_in_g_with_a_paired_interval():
    from transferlaw.law.compare import method_markdown, method_table

    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.1, 400)  # what the two methods' resamples share (the same cells)
    samples = {
        ("d", "m", "full"): pd.DataFrame({"G": 0.5 + shared}),
        ("d", "m", "lora"): pd.DataFrame({"G": 0.8 + shared + rng.normal(0, 0.01, 400)}),
    }
    summaries = {("d", "m", "full"): _summary(0.5, 0.3, 0.7), ("d", "m", "lora"): _summary(0.8, 0.6, 1.0)}
    table = method_table(summaries, samples, reference="full")
    lora = table[table["method"] == "lora"].iloc[0]
    assert lora["G_diff"] == pytest.approx(0.3)
    assert lora["pairing"] == "paired by cell"
    # paired, the shared spread cancels: the interval is the 0.01 noise's, and excludes 0
    assert 0.27 < lora["G_diff_low"] < 0.3 < lora["G_diff_high"] < 0.33
    assert lora["G_diff_verdict"] == "G larger than full's"
    assert "(reference)" in method_markdown(table)
    # other cells: independent draws, a wide interval spanning 0 for a small difference
    summaries[("d", "m", "lora")] = _summary(0.52, 0.3, 0.7, cells=((0, 4),))
    samples[("d", "m", "lora")] = pd.DataFrame({"G": 0.52 + rng.normal(0, 0.1, 400)})
    lora = method_table(summaries, samples, reference="full").iloc[1]
    assert lora["pairing"] == "independent" and lora["G_diff_low"] < 0 < lora["G_diff_high"]
    assert lora["G_diff_verdict"].startswith("no difference resolved")
    # a G at the bound has no difference to speak of, however narrow its resampled interval is
    summaries[("d", "m", "lora")] = _summary(8.8e-27, 8.8e-27, 8.8e-27, identified=False)
    samples[("d", "m", "lora")] = pd.DataFrame({"G": np.full(400, 8.8e-27)})
    lora = method_table(summaries, samples, reference="full").iloc[1]
    assert lora["G_diff_high"] < 0 and lora["G_diff_verdict"] == "not resolved: G not identified for lora"
    # an interval above the other's upper limit is a difference, though that G is not identified
    summaries[("d", "m", "full")] = _summary(1e-3, 8.8e-27, 0.2, identified=False)
    summaries[("d", "m", "full")].params["G"]["bound"] = ["low"]
    summaries[("d", "m", "lora")] = _summary(0.8, 0.6, 1.0)
    samples[("d", "m", "lora")] = pd.DataFrame({"G": 0.8 + shared})
    lora = method_table(summaries, samples, reference="full").iloc[1]
    assert lora["G_diff_verdict"] == "G larger than full's (beyond its upper limit)"
    assert (
        lora["G_text"] == "0.8 [0.6, 1]"
        and method_table(summaries, samples, "full").iloc[0]["G_text"] == "G < 0.2"
    )


def test_gap_trend_recovers_a_power_law_in_model_size():
    from transferlaw.law.compare import gap_table, gap_trend

    rng = np.random.default_rng(1)
    sizes = {"s": 1e6, "m": 1e7, "l": 1e8}
    truth = {m: 3.0 * n**-0.2 for m, n in sizes.items()}
    summaries, samples = {}, {}
    for m, g in truth.items():
        draws = g * np.exp(rng.normal(0, 0.02, 500))
        lo, hi = np.percentile(draws, [2.5, 97.5])
        summaries[("d", m, "full")] = _summary(g, lo, hi)
        samples[("d", m, "full")] = pd.DataFrame({"G": draws})
    table = gap_table(summaries, sizes)
    assert table["model"].tolist() == ["s", "m", "l"]  # by N
    assert table["G_upper_limit"].isna().all()  # every G measured: no limits
    trend = gap_trend(table, samples).iloc[0]
    assert trend["gamma"] == pytest.approx(0.2, abs=1e-9) and trend["c"] == pytest.approx(3.0, rel=1e-6)
    assert (
        trend["gamma_low"] < 0.2 < trend["gamma_high"] and trend["gamma_high"] - trend["gamma_low"] < 0.04
    )  # 2% noise: slope sd 0.006
    assert trend["status"] == "fitted: G shrinks with model size"
    # two sizes, or a G not identified at one of three: no trend, and it says why
    assert gap_trend(table[table["model"] != "l"], samples).iloc[0]["status"].startswith("skipped: 2 model")
    table.loc[table["model"] == "m", "G_identified"] = False
    assert "identified at 2 of 3" in gap_trend(table, samples).iloc[0]["status"]
    limited = summaries[("d", "m", "full")].params["G"] | {"identified": False, "bound": ["low"]}
    summaries[("d", "m", "full")].params["G"] = limited
    row = gap_table(summaries, sizes).iloc[1]
    assert row["G_upper_limit"] == limited["ci_high"] and row["G_text"].startswith("G < ")


def _noise_runs(misfit: float, seed: int = 0):
    """Runs of one (dataset, model, method) drawn from a known law with 2% run noise, and ``misfit`` added
    to every other cell (model error the law cannot follow)."""
    from transferlaw.law.forms import get_form

    params = {"A": 3.0, "alpha": 0.5, "G": 0.5, "beta": 0.3, "E": 1.5}
    rng = np.random.default_rng(seed)
    rows = []
    for i, (p, f) in enumerate((p, f) for p in (0, 4, 16, 64, 256) for f in (4, 8, 16, 32)):
        mean = get_form("mikami_shifted").predict(params, np.array([p]), np.array([f]))[0]
        for s in range(3):
            loss = mean * math.exp(rng.normal(0, 0.02) + (misfit if i % 2 else 0.0))
            rows.append(
                dict(
                    dataset="d",
                    model="m",
                    method="full",
                    pretrain_step=p,
                    finetune_size=f,
                    seed=s,
                    eval_loss=loss,
                    status="ok",
                )
            )
    from transferlaw.law.fit import fit_table

    runs = pd.DataFrame(rows)
    fit = fit_table(runs, form="mikami_shifted")["d"]  # the law as the workflow fits it (one per dataset)
    return runs, {("d", "m", "full"): fit}


def test_run_noise_tells_noise_from_model_error():
    from transferlaw.law.noise import cell_noise, noise_markdown, noise_vs_residuals

    runs, fits = _noise_runs(misfit=0.0)
    cells = cell_noise(runs)
    assert len(cells) == 20 and (cells["n_runs"] == 3).all()
    first = runs[(runs["pretrain_step"] == 0) & (runs["finetune_size"] == 4)]["eval_loss"]
    assert cells.loc[0, "sd"] == pytest.approx(first.std(ddof=1))
    within = noise_vs_residuals(runs, fits).iloc[0]
    assert within["noise_rms_log"] == pytest.approx(0.02, rel=0.25)
    assert within["verdict"].startswith("within run noise")
    runs, fits = _noise_runs(misfit=0.1)
    wrong = noise_vs_residuals(runs, fits).iloc[0]
    assert wrong["verdict"].startswith("model error") and wrong["p_value"] < 1e-6
    assert wrong["lack_of_fit_rms_log"] > 3 * wrong["noise_rms_log"]
    assert "model error" in noise_markdown(cell_noise(runs), noise_vs_residuals(runs, fits))
    single = runs[runs["seed"] == 0]
    assert noise_vs_residuals(single, fits).iloc[0]["verdict"] == "no replicates: run noise not measured"


# ---- a LoRA run in a worker's checkpoint cache ----------------------------------------------------------
@pytest.fixture(scope="module")
def pinned_checkpoint(tmp_path_factory):
    from fakehub import tiny_neox_files, write_hub_cache

    from transferlaw.data.prepare import PreparedData
    from transferlaw.train.checkpoints import pin, scan_cache, verify

    tmp = tmp_path_factory.mktemp("lora")
    cache = tmp / "hf"
    write_hub_cache(cache, "org/tiny", {"step8": tiny_neox_files(0)})
    pinned = pin(verify(scan_cache("org/tiny", ["step8"], cache)), "tiny", "step8")
    rng = np.random.default_rng(0)
    data = PreparedData(
        eval=rng.integers(0, 300, (8, 16)).astype(np.int32),
        train=rng.integers(0, 300, (24, 16)).astype(np.int32),
    )
    data.save(tmp / "data.npz", {"dataset": "d"})
    return pinned, str(tmp / "data.npz")


def _run(pinned, data, cache, method, **over):
    from transferlaw.train.finetune import FinetuneSettings, run

    settings = {
        **finetune_defaults(),
        "lr": 1e-2,
        "micro_batch": 4,
        "grad_accum": 1,
        "patience": 2,
        "max_epochs": 6,
        "eval_batch": 8,
        "device": "cpu",
        "threads": 1,
    }
    if method == "lora":
        settings.update(method="lora", lora_rank=2, lora_alpha=4, lora_dropout=0.1, lr=5e-2)
    settings.update(over)
    return run(
        dataset="d",
        model_settings={"model": "tiny", "tokens_per_step": 64},
        pin=pinned,
        size=12,
        settings=FinetuneSettings.from_config(settings),
        data_path=data,
        cache=cache,
        method=method,
    )


@pytest.mark.slow
def test_a_lora_run_trains_only_adapters_and_leaves_none_behind_in_the_worker(pinned_checkpoint):
    """Runs in one worker's cache are independent: a LoRA run between two full fine-tunes changes neither,
    its adapters are gone afterwards, and a second LoRA run with its seed gives the same record."""
    import torch

    from transferlaw.schema import records_frame
    from transferlaw.train.finetune import CheckpointCache

    pinned, data = pinned_checkpoint
    fresh = _run(pinned, data, CheckpointCache(), "full")
    cache = CheckpointCache()
    lora = _run(pinned, data, cache, "lora")
    full = _run(pinned, data, cache, "full")
    again = _run(pinned, data, cache, "lora")
    other_seed = _run(pinned, data, cache, "lora", seed=1)
    assert full["eval_curve"] == fresh["eval_curve"]  # bit for bit: nothing of the LoRA run was left
    assert again["eval_curve"] == lora["eval_curve"]
    assert other_seed["eval_curve"] != lora["eval_curve"]  # a replicate draws its own adapters and order
    model = cache.model
    assert not [n for n, _ in model.named_modules() if "lora" in n.lower()]
    assert all(p.requires_grad for p in model.parameters())
    assert isinstance(model.gpt_neox.layers[0].attention.query_key_value, torch.nn.Linear)
    # 1 layer: query_key_value is 16 -> 48, so rank-2 adapters have 2 * (16 + 48) parameters
    assert lora["trainable_params"] == 2 * (16 + 48)
    assert full["trainable_params"] == full["n_params"] == lora["n_params"]
    assert (lora["finetune_method"], lora["lora_rank"], lora["lora_target_modules"]) == (
        "lora",
        2,
        "query_key_value",
    )
    assert (
        lora["flops"]
        == (4 * lora["n_params"] + 2 * lora["trainable_params"]) * lora["finetune_tokens"] * lora["epochs"]
    )
    assert full["flops"] == 6 * full["n_params"] * full["finetune_tokens"] * full["epochs"]
    assert lora["eval_loss"] < lora["initial_eval_loss"]  # the adapters learn
    frame = records_frame([lora, full])
    assert frame["method"].tolist() == ["lora", "full"]


@pytest.mark.slow
def test_lora_on_a_module_the_checkpoint_lacks_fails_naming_it(pinned_checkpoint):
    from transferlaw.train.finetune import CheckpointCache

    pinned, data = pinned_checkpoint
    cache = CheckpointCache()
    with pytest.raises(ValueError, match="lora_target_modules"):
        _run(pinned, data, cache, "lora", lora_target_modules=["q_proj"])
    assert (
        _run(pinned, data, cache, "full")["eval_curve"]
        == _run(pinned, data, CheckpointCache(), "full")["eval_curve"]
    )


# ---- the workflow ---------------------------------------------------------------------------------------
def _runs_planned(workdir):
    return sorted(o for o in planned_outputs(workdir) if o.startswith("results/runs/") and o.count("/") > 2)


@pytest.mark.slow
def test_jobs_expand_over_models_methods_and_seeds(tmp_path):
    workdir = make_study_dir(tmp_path / "plan", MULTI)
    runs = _runs_planned(workdir)
    # 2 models x 2 methods x 2 seeds x 3 checkpoints x 2 sizes
    assert len(runs) == 48 and len(set(runs)) == 48
    assert sum(r.endswith(".full.s0.parquet") for r in runs) == 12  # every record names its method and seed
    assert sum(r.endswith(".full.s1.parquet") for r in runs) == 12
    assert sum(r.endswith(".lora.s0.parquet") for r in runs) == 12
    assert sum(r.endswith(".lora.s1.parquet") for r in runs) == 12
    planned = planned_outputs(workdir)
    assert f"results/fits/{DS}.json" in planned  # the main model (the first listed) and method
    assert {f"results/fits/{DS}/{m}/{me}.json" for m in MODELS for me in METHODS} - set(planned) == {
        f"results/fits/{DS}/neox-s/full.json"
    }
    for table in ("methods.md", "gap_vs_size.csv", "run_noise.csv"):
        assert f"results/tables/{table}" in planned
    assert "results/figures/gap_vs_size.png" in planned and "results/figures/run_noise.png" in planned


@pytest.mark.slow
def test_one_method_and_listed_seeds_plan_only_their_runs(tmp_path):
    def edit(c):
        del c["methods"]
        c["seeds"] = [3, 7]
        c["models"].pop("neox-m")

    workdir = make_study_dir(tmp_path / "plan", multi_config(tmp_path, edit))
    runs = _runs_planned(workdir)
    assert len(runs) == 12 and all(r.endswith((".full.s3.parquet", ".full.s7.parquet")) for r in runs)
    planned = planned_outputs(workdir)
    assert "results/tables/run_noise.csv" in planned
    assert not any(t in o for o in planned for t in ("methods.md", "gap_vs_size", f"fits/{DS}/"))


TARGETS = [
    "results/tables/methods.md",
    "results/tables/gap_vs_size.csv",
    "results/figures/gap_vs_size.png",
    "results/tables/run_noise.csv",
    "results/figures/run_noise.png",
    "results/tables/hernandez.json",
    "results/summary.md",
]


@pytest.fixture(scope="session")
def multi_study(tmp_path_factory):
    """The multi-axis study, built once per test session (for every pytest-xdist worker); tests that change
    it work on a copy."""
    return build_once(
        tmp_path_factory,
        "multi-study",
        lambda folder: snakemake(make_study_dir(folder, MULTI), "--cores", "2", *TARGETS),
    )


def test_every_run_is_recorded_with_its_method_seed_and_trainable_parameters(multi_study):
    from transferlaw.schema import read_records

    runs = read_records(str(multi_study / f"results/runs/{DS}.parquet"))
    assert len(runs) == 48
    assert runs.groupby(["model", "method", "seed"]).size().eq(6).all()
    full, lora = runs[runs["method"] == "full"], runs[runs["method"] == "lora"]
    assert (full["trainable_params"] == full["n_params"]).all() and (full["finetune_method"] == "full").all()
    assert (lora["finetune_method"] == "lora").all() and (lora["lora_rank"] == 4).all()
    assert (lora["trainable_params"] < lora["n_params"] / 10).all()
    assert runs.groupby("model")["n_params"].nunique().eq(1).all() and runs["n_params"].nunique() == 2
    # LoRA's seeds draw different adapters: its replicates differ in every cell
    pivot = lora.pivot_table(index=["model", "revision", "finetune_size"], columns="seed", values="eval_loss")
    assert (pivot[0] != pivot[1]).all()


def test_each_model_and_method_has_its_own_fit_and_the_gap_table_lists_them_by_size(multi_study):
    res = multi_study / "results"
    gap = pd.read_csv(res / "tables/gap_vs_size.csv")
    assert len(gap) == 4 and set(gap["method"]) == set(METHODS)
    for model in MODELS:
        for method in METHODS:
            main = (model, method) == ("neox-s", "full")
            fit = json.loads(
                (res / ("fits/" + (f"{DS}.json" if main else f"{DS}/{model}/{method}.json"))).read_text()
            )
            boot = json.loads(
                (res / ("bootstrap/" + (f"{DS}.json" if main else f"{DS}/{model}/{method}.json"))).read_text()
            )
            assert (fit["model"], fit["method"], fit["n_points"], fit["n_seeds"]) == (model, method, 12, 2)
            assert boot["n_cells"] == 6 and boot["n_points"] == 12
            row = gap[(gap["model"] == model) & (gap["method"] == method)].iloc[0]
            assert row["G"] == pytest.approx(boot["params"]["G"]["estimate"])
            assert row["G_low"] == pytest.approx(boot["params"]["G"]["ci_low"])
            assert row["n_params"] == fit["model_n_params"]
    for _, sub in gap.groupby("method"):
        assert sub["n_params"].is_monotonic_increasing and sub["model"].tolist() == ["neox-s", "neox-m"]
    trend = pd.read_csv(res / "tables/gap_trend.csv")
    assert trend["status"].str.startswith("skipped: 2 model size(s)").all()  # a trend needs three sizes
    methods = pd.read_csv(res / "tables/methods.csv")
    lora = methods[methods["method"] == "lora"]
    assert (
        len(lora) == 2 and (lora["G_diff_vs"] == "full").all() and (lora["pairing"] == "paired by cell").all()
    )
    hernandez = json.loads((res / "tables/hernandez.json").read_text())
    for method in METHODS:  # two model sizes: the fit runs, or says which runs it lacked, not "one size"
        entry = hernandez[DS][method]
        assert "k" in entry or entry["skipped"] != "runs have fewer than two distinct n_params"
    summary = (res / "summary.md").read_text()
    assert "## Fine-tuning methods" in summary and "## Transfer gap against model size" in summary
    assert "## Run noise against the law's residuals" in summary


def test_the_advice_is_drawn_from_the_main_model_and_method_only(multi_study):
    """Like the main fit, the advice reads the runs of fit.model and fit.method, not every method's."""
    from transferlaw.schema import read_records

    runs = read_records(str(multi_study / f"results/runs/{DS}.parquet"))
    main = runs[(runs["model"] == "neox-s") & (runs["method"] == "full") & (runs["status"] == "ok")]
    advice = pd.read_csv(multi_study / f"results/advice/{DS}.csv")
    assert advice["message"].iloc[0].startswith(f"{len(main)} runs")  # "12 runs, ..." or "12 runs: ..."
    assert len(main) < (runs["model"] == "neox-s").sum()  # the other method's runs are there to be left out


def test_run_noise_is_the_spread_of_the_records_replicates(multi_study):
    from transferlaw.schema import read_records

    runs = read_records(str(multi_study / f"results/runs/{DS}.parquet"))
    cells = pd.read_csv(multi_study / "results/tables/run_noise.csv")
    assert len(cells) == 2 * 2 * 6 and (cells["n_runs"] == 2).all()
    for _, c in cells.sample(6, random_state=0).iterrows():
        sub = runs[
            (runs["model"] == c["model"])
            & (runs["method"] == c["method"])
            & (runs["pretrain_step"] == c["pretrain_step"])
            & (runs["finetune_size"] == c["finetune_size"])
        ]
        assert c["sd"] == pytest.approx(sub["eval_loss"].std(ddof=1), abs=1e-12)
        assert bool(c["identical"]) == (sub["eval_loss"].nunique() == 1)
    summary = pd.read_csv(multi_study / "results/tables/run_noise_summary.csv")
    assert len(summary) == 4 and (summary["n_cells"] == 6).all()
    assert summary["noise_rms_log"].notna().all() and summary["verdict"].str.len().gt(0).all()
    for name in ("gap_vs_size", "run_noise"):
        png = multi_study / f"results/figures/{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert (multi_study / f"results/figures/{name}.pdf").stat().st_size > 1000


def test_nothing_to_do_after_the_multi_study_and_a_new_seed_adds_only_its_runs(multi_study, tmp_path):
    study = copy_study(multi_study, tmp_path / "copy")
    assert planned_outputs(study, *TARGETS) == []
    cfg = yaml.safe_load((study / "config.yaml").read_text())
    cfg["seeds"] = 3
    (study / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    runs = sorted(
        o for o in planned_outputs(study, *TARGETS) if o.startswith("results/runs/") and o.count("/") > 2
    )
    assert len(runs) == 24 and all(r.endswith(".s2.parquet") for r in runs)


def test_a_per_method_fit_redone_alone_leaves_an_exact_plan(multi_study, tmp_path):
    """One (model, method) law re-fitted on its own: the tables and figures that compare the laws are planned,
    the next run does exactly that plan, and nothing is left after it."""
    study = copy_study(multi_study, tmp_path / "copy")
    snakemake(study, "--cores", "2", "--force", f"results/fits/{DS}/neox-m/lora.json")  # it alone
    planned = planned_outputs(study, *TARGETS)
    assert "results/tables/gap_vs_size.csv" in planned and "results/tables/run_noise.csv" in planned
    proc = snakemake(study, "--cores", "2", *TARGETS)
    assert sorted(executed_outputs(proc)) == sorted(planned)
    assert_nothing_planned(study, *TARGETS)


def test_a_full_run_served_by_a_worker_that_ran_lora_equals_one_in_its_own_process(multi_study, tmp_path):
    """The study's workers served LoRA and full runs of each checkpoint in turn: a full fine-tune's record is
    the one its job gives alone, in its own process (``finetune.worker: false``), to the last bit."""
    from transferlaw.schema import read_records

    study = copy_study(multi_study, tmp_path / "copy")
    target = f"results/runs/{DS}/neox-m/step32/f16.full.s0.parquet"
    served = read_records(str(study / target)).iloc[0]
    (study / target).unlink()
    cfg = yaml.safe_load((study / "config.yaml").read_text())
    cfg["finetune"]["worker"] = False  # a resource setting: reruns nothing else
    (study / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(study, "--cores", "1", target)
    alone = read_records(str(study / target)).iloc[0]
    assert list(alone["eval_curve"]) == list(served["eval_curve"])
    assert (alone["eval_loss"], alone["epochs"]) == (served["eval_loss"], served["epochs"])
