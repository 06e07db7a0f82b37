"""Every figure function draws a non-blank image from synthetic inputs; so does every figure rule."""

import json
import shutil

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import synthetic as S
from conftest import snakemake

from transferlaw.law.allocate import sweep_cost_ratio, sweep_gap
from transferlaw.law.forms import get_form
from transferlaw.report import plots

DATASETS = ["devils-dictionary", "chloroplast-dna"]
PER_DATASET = ["raw_data", "cross_section", "iso_loss", "surface", "epochs", "bootstrap"]


def assert_image(path):
    """A real picture: a PNG of some size whose pixels are not all one colour."""
    assert path.exists() and path.stat().st_size > 5_000, path
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels[..., :3].std() > 0.02, f"{path} is blank"


def assert_pdf(path):
    assert path.read_bytes()[:5] == b"%PDF-" and path.stat().st_size > 2_000


def figures():
    runs, fit, samples = S.runs(), S.fit_record(), S.bootstrap_samples()
    intervals = {ds: S.bootstrap_record(ds, samples) for ds in DATASETS}
    crossval = pd.concat([S.crossval(ds, i) for i, ds in enumerate(DATASETS)])
    gap = {
        "toy": sweep_gap(S.PARAMS, fit.form, 1088.0, 1.0, 1.0, np.geomspace(1e-3, 10, 9)).assign(G_fit=0.4)
    }
    cost = {"toy": sweep_cost_ratio(S.PARAMS, fit.form, 1088.0, 1.0, np.geomspace(1e-2, 1e2, 9))}
    return {
        "raw_data": lambda: plots.plot_raw_data(runs, dataset="toy"),
        "cross_section": lambda: plots.plot_cross_section(runs, fit, dataset="toy"),
        "cross_section_bands": lambda: plots.plot_cross_section(runs, fit, samples, dataset="toy"),
        "iso_loss": lambda: plots.plot_iso_loss(runs, fit, dataset="toy"),
        "surface": lambda: plots.plot_surface(runs, fit, dataset="toy"),
        "epochs": lambda: plots.plot_epochs(runs, dataset="toy"),
        "bootstrap": lambda: plots.plot_bootstrap(samples, fit, dataset="toy"),
        "parameters": lambda: plots.plot_parameters(intervals),
        "law_forms": lambda: plots.plot_law_forms(crossval),
        "allocation_gap": lambda: plots.plot_allocation_gap(gap),
        "allocation_cost": lambda: plots.plot_allocation_cost(cost),
        "crossval_splits": lambda: plots.plot_crossval_splits(runs, fit.form, dataset="toy"),
    }


@pytest.mark.parametrize("name", list(figures()))
def test_figure_function_draws_an_image(name, tmp_path):
    fig = figures()[name]()
    plots.save(fig, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
    assert_image(tmp_path / f"{name}.png")
    assert_pdf(tmp_path / f"{name}.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.pdf", f"{name}.png"]  # no temp files left


def test_unshifted_law_is_drawn_without_step_zero_curve_points(tmp_path):
    """p = 0 runs are shown at p + 1; a law undefined at p = 0 is drawn from the smallest positive p."""
    fit = S.fit_record(form="mikami", formula=get_form("mikami").formula)
    for fig in (plots.plot_cross_section(S.runs(), fit), plots.plot_iso_loss(S.runs(), fit)):
        plots.save(fig, tmp_path / "x.png")
        assert_image(tmp_path / "x.png")


def test_labels_carry_units():
    assert plots.p_label("pretrain_tokens") == "pre-training tokens + 1"
    assert plots.f_label("tokens") == "fine-tune size (tokens)"
    ax = plots.plot_raw_data(S.runs()).axes[0]
    assert ax.get_xlabel() == "pre-training steps + 1" and ax.get_ylabel() == plots.LOSS_LABEL
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_figure_rules_on_the_study(small_study):
    """The default target builds every figure (bootstrap and cross-validation ones included), plus summary
    and config."""
    for ds in DATASETS:
        for name in PER_DATASET:
            assert_image(small_study / f"results/figures/{ds}/{name}.png")
            assert_pdf(small_study / f"results/figures/{ds}/{name}.pdf")
    for name in ("allocation_gap", "allocation_cost", "parameters", "law_forms"):
        assert_image(small_study / f"results/figures/{name}.png")
    summary = (small_study / "results/summary.md").read_text()
    assert all(f"| {ds} | mikami_shifted |" in summary for ds in DATASETS)
    assert "study:" in (small_study / "results/config.yaml").read_text()


def add_synthetic_analyses(workdir):
    """Bootstrap and cross-validation files of the agreed shape, for the study's own fits."""
    for i, ds in enumerate(DATASETS):
        fit = json.loads((workdir / f"results/fits/{ds}.json").read_text())
        params = {k: v for k, v in fit["params"].items()}
        params = {k: (max(v, 1e-3) if k not in ("alpha", "beta") else v) for k, v in params.items()}
        samples = S.bootstrap_samples(params, n=40, seed=i)
        (workdir / "results/bootstrap").mkdir(parents=True, exist_ok=True)
        (workdir / "results/crossval").mkdir(parents=True, exist_ok=True)
        samples.to_parquet(workdir / f"results/bootstrap/{ds}.parquet")
        (workdir / f"results/bootstrap/{ds}.json").write_text(
            json.dumps(S.bootstrap_summary(ds, samples, params))
        )
        S.crossval(ds, i).to_csv(workdir / f"results/crossval/{ds}.csv", index=False)


@pytest.fixture(scope="module")
def study_with_analyses(small_study, tmp_path_factory):
    dest = tmp_path_factory.mktemp("analyses") / "study"
    shutil.copytree(small_study, dest, symlinks=True)
    add_synthetic_analyses(dest)
    snakemake(dest, "--cores", "2")
    return dest


def test_bootstrap_and_crossval_figures_when_their_inputs_exist(study_with_analyses):
    for ds in DATASETS:
        assert_image(study_with_analyses / f"results/figures/{ds}/bootstrap.png")
        assert_image(study_with_analyses / f"results/figures/{ds}/cross_section.png")  # now with bands
        log = (study_with_analyses / f"logs/plots/{ds}/cross_section.log").read_text()
        assert "wrote" in log
    for name in ("parameters", "law_forms"):
        assert_image(study_with_analyses / f"results/figures/{name}.png")
    summary = (study_with_analyses / "results/summary.md").read_text()
    assert "(no bootstrap)" not in summary and "(no cross-validation)" not in summary
    assert "mikami (" in summary  # the synthetic cross-validation makes `mikami` win


def test_crossval_split_figure_trains_on_the_runs_below_both_thresholds():
    """Fig. 7: in the k-th panel the red (training) points are the runs at or below the k-th pre-training
    value and the k-th size, and every other run is blue (validation)."""
    runs = S.runs()
    fig = plots.plot_crossval_splits(runs, S.fit_record().form)
    ok = runs[runs["status"] == "ok"]
    steps, sizes = sorted(ok["pretrain_step"].unique()), sorted(ok["finetune_size"].unique())
    for k, ax in enumerate(fig.axes[:3], start=1):
        validation, training = (c.get_offsets() for c in ax.collections)
        below = (ok["pretrain_step"] <= steps[k - 1]) & (ok["finetune_size"] <= sizes[k - 1])
        assert len(training) == below.sum() and len(validation) == (~below).sum()
        assert np.all(np.asarray(training)[:, 0] <= steps[k - 1] + 1)


def test_the_cross_section_s_loss_axis_follows_the_runs_and_extrapolation_is_lighter():
    """Fig. 3: a band that reaches 1e8 nats does not set the loss axis; the runs fill it (a modest margin);
    the law drawn to p = 0 beyond the runs is a light dashed line."""
    runs = S.runs()
    runs = runs[runs["pretrain_step"] > 0]  # the law is then drawn beyond the runs, to p = 0
    samples = S.bootstrap_samples().copy()
    samples.loc[samples.index[:50], "A"] *= 1e6  # a band that explodes away from the runs
    fig = plots.plot_cross_section(runs, S.fit_record(), samples)
    ok = runs[runs["status"] == "ok"]["eval_loss"]
    lo, hi = fig.axes[0].get_ylim()
    assert lo == pytest.approx(ok.min() / plots.LOSS_MARGIN) and hi == pytest.approx(
        ok.max() * plots.LOSS_MARGIN
    )
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed and all(line.get_alpha() == 0.4 for line in dashed)
    assert min(line.get_xdata().min() for line in dashed) == pytest.approx(1.0)  # p = 0, at p + 1
    solid = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "-"]
    first = runs["pretrain_step"].min() + 1
    assert min(line.get_xdata().min() for line in solid) == pytest.approx(first, rel=1e-6)


def test_the_theme_the_figures_read_is_seaborn_s_and_so_are_the_palettes():
    """theme.json (read by every figure instead of importing seaborn) says what seaborn's set_theme says;
    after a seaborn upgrade that changes it, `python -c "from transferlaw.report.plots import write_theme;
    write_theme()"` rewrites it."""
    import seaborn as sns

    assert json.loads(plots.THEME_FILE.read_text()) == plots.seaborn_theme(), "theme.json is out of date"
    for n in (1, 3, 7, 12):
        assert np.allclose(plots.sequential(n), sns.color_palette(plots.SEQUENTIAL, n))
        assert np.allclose(plots.categorical(n), sns.color_palette(plots.CATEGORICAL, n))
    plots.set_style()
    import matplotlib.pyplot as plt

    themed = {k: plt.rcParams[k] for k in ("axes.edgecolor", "font.size", "axes.grid", "axes.prop_cycle")}
    with matplotlib.rc_context():
        sns.set_theme(**plots.THEME)
        assert themed == {k: plt.rcParams[k] for k in themed}


@pytest.mark.slow  # another Python process
def test_a_figure_job_does_not_import_seaborn():
    """Drawing a per-dataset figure other than the histogram leaves seaborn unimported (its import costs a
    third of a figure job)."""
    code = (
        "import sys, synthetic as S; from transferlaw.report import plots;"
        "plots.plot_surface(S.runs(), S.fit_record()); plots.plot_raw_data(S.runs());"
        "assert 'seaborn' not in sys.modules and 'scipy.stats' not in sys.modules, 'imported'"
    )
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    subprocess.run([sys.executable, "-c", code], cwd=tests, check=True)
