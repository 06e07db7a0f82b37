"""Every figure of the paper, for one dataset or across datasets (Barnett 2024, Figs. 1-8).

Each ``plot_*`` function takes data frames or dicts and returns a matplotlib Figure; none touches a file,
so they are usable from a notebook and testable without a workflow. :func:`save` writes PNG and PDF
atomically. :func:`set_style` is the one place fonts, grid and palettes are chosen: seaborn's theme, read
from ``theme.json`` (written from seaborn by :func:`write_theme`; a test checks the two agree), so that a
figure job does not pay seaborn's import (it pulls in scipy.stats: two of a figure job's six seconds here).
Only the two figures that draw with seaborn (a histogram, a heatmap) import it.

Log axes and p = 0: the step-0 checkpoint (no pre-training) is a real data point, so the pre-training
axis is drawn at p + 1 and labelled "+ 1" (the same shift the default law form, eq. 7, uses). The
fine-tune axis is drawn at f itself (sizes are >= 1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # figures are files; never ask for a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import cycler  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator  # noqa: E402

from transferlaw.io import write_with  # noqa: E402
from transferlaw.law.bootstrap import BootstrapSummary  # noqa: E402
from transferlaw.law.crossval import train_mask  # noqa: E402
from transferlaw.law.fit import NO_LAW, STATUS_NOT_FITTED, FitRecord  # noqa: E402
from transferlaw.law.forms import get_form  # noqa: E402
from transferlaw.schema import fit_uses  # noqa: E402

LOSS_LABEL = "eval loss (nats/token)"
#: sequential palette for ordered quantities (fine-tune sizes, checkpoints); categorical for datasets
SEQUENTIAL = "viridis"
CATEGORICAL = "colorblind"
BAND = (2.5, 97.5)  # bootstrap band: the central 95% of predictions


#: seaborn's theme for every figure: white grid, paper context scaled up so labels survive a PDF shrink
THEME = dict(context="paper", style="whitegrid", palette=CATEGORICAL, font_scale=1.3)
THEME_FILE = Path(__file__).with_name("theme.json")
#: rc settings of the theme left out of theme.json: the default image colormap would be seaborn's "rocket",
#: which only exists once seaborn is imported (every figure names its colormap)
THEME_LEFT_OUT = ("image.cmap",)


def seaborn_theme() -> dict[str, Any]:
    """The rc settings seaborn's ``set_theme(**THEME)`` changes from matplotlib's defaults, as JSON values
    (the colour cycle as a list of colours)."""
    import seaborn as sns

    with matplotlib.rc_context():
        plt.rcdefaults()
        before = dict(plt.rcParams)
        sns.set_theme(**THEME)
        after = dict(plt.rcParams)
        plt.rcdefaults()
    theme = {}
    for key, value in sorted(after.items()):
        if value == before.get(key) or key in THEME_LEFT_OUT:
            continue
        if key == "axes.prop_cycle":
            value = [list(c) for c in value.by_key()["color"]]
        elif not isinstance(value, (bool, int, float, str, list)):
            value = str(value)  # an enum (a cap style)
        theme[key] = value
    return theme


def write_theme(path: Path = THEME_FILE) -> None:
    """Write seaborn's theme to ``theme.json`` (after a seaborn upgrade that changes it; a test says when)."""
    write_with(lambda tmp: Path(tmp).write_text(json.dumps(seaborn_theme(), indent=1) + "\n"), path)


@cache
def _theme() -> dict[str, Any]:
    theme = json.loads(THEME_FILE.read_text())
    theme["axes.prop_cycle"] = cycler(color=[tuple(c) for c in theme["axes.prop_cycle"]])
    return theme


def set_style() -> None:
    """One look for every figure: seaborn's theme (``THEME``), then dpi, tight boxes and bold titles."""
    plt.rcParams.update(_theme())
    plt.rcParams.update(
        {"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight", "axes.titleweight": "bold"}
    )


def categorical(n: int | None = None) -> list[tuple[float, ...]]:
    """The categorical palette (the theme's colour cycle, seaborn's "colorblind"), ``n`` colours repeating
    the cycle as seaborn's ``color_palette`` does (all of it when ``n`` is None)."""
    colours = [tuple(c) for c in _theme()["axes.prop_cycle"].by_key()["color"]]
    return colours if n is None else [colours[i % len(colours)] for i in range(n)]


def sequential(n: int) -> list[tuple[float, ...]]:
    """``n`` colours of the sequential palette (``SEQUENTIAL``), spaced as seaborn's ``color_palette`` spaces
    a matplotlib colormap: evenly, the two ends left out."""
    cmap = matplotlib.colormaps[SEQUENTIAL]
    return [tuple(map(float, c[:3])) for c in cmap(np.linspace(0, 1, int(n) + 2)[1:-1])]


def save(fig: Figure, path_png: str | Path, path_pdf: str | Path | None = None) -> None:
    """Write ``fig`` as PNG (and PDF) atomically, then close it so long workflows do not leak figures."""
    for path in (path_png, path_pdf):
        if path is not None:
            write_with(lambda tmp: fig.savefig(tmp), path)
    plt.close(fig)


# ----- labels ----------------------------------------------------------------------------------------
def p_label(p_column: str = "pretrain_step", shifted: bool = True) -> str:
    """Axis label of the pre-training axis, with its unit and the +1 shift when drawn on log axes."""
    unit = "tokens" if "token" in p_column else "steps"
    return f"pre-training {unit}" + (" + 1" if shifted else "")


def f_label(unit: str = "sequences") -> str:
    return f"fine-tune size ({unit})"


def _f_unit(runs: pd.DataFrame) -> str:
    if "finetune_unit" in runs.columns and len(runs):
        return str(runs["finetune_unit"].iloc[0])
    return "sequences"


def _ok(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a law is fitted to (:func:`transferlaw.schema.fit_uses`: status ok); the others are only
    upper bounds or diverged."""
    return runs[fit_uses(runs)]


def _hue_colours(values: Sequence[Any]) -> dict[Any, Any]:
    values = sorted(set(values))
    return dict(zip(values, sequential(len(values)), strict=True))


def _tidy_log(ax: Any) -> None:
    """Plain numbers on log axes (2, 3, 5 rather than 2×10^0); minor labels only within about a decade,
    so that they never collide."""
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale != "log":
            continue
        lo, hi = sorted(axis.get_view_interval())
        span = hi / max(lo, 1e-300)
        axis.set_major_formatter(fmt)
        if span < 100:  # under two decades the majors alone leave the axis nearly unlabelled
            axis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0) if span < 12 else (2.0, 5.0)))
            axis.set_minor_formatter(fmt)
        else:
            axis.set_minor_formatter(NullFormatter())


def _ticks_at(axis: Any, values: Sequence[float], max_ticks: int = 8) -> None:
    """Ticks at the sizes actually run (4, 8, 16, ...) when there are few: easier to read than 10^k."""
    values = sorted(set(float(v) for v in values))
    if 1 < len(values) <= max_ticks:
        axis.set_major_locator(matplotlib.ticker.FixedLocator(values))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_locator(NullLocator())


def _title(fig: Figure, dataset: str | None, what: str) -> None:
    fig.suptitle(f"{dataset}: {what}" if dataset else what, fontweight="bold")


def _p_grid(law_name: str, p_values: np.ndarray, n: int = 120) -> np.ndarray:
    """p values for a smooth curve on the p + 1 axis; from the smallest positive p if the law needs p > 0."""
    lo = 0.0 if not get_form(law_name).needs_positive_p else max(p_values[p_values > 0].min(), 1e-9)
    return np.geomspace(lo + 1.0, p_values.max() + 1.0, n) - 1.0


def _f_grid(law_name: str, f_values: np.ndarray, n: int = 120) -> np.ndarray:
    lo = max(f_values.min(), 1e-9)
    return np.geomspace(lo, f_values.max(), n)


def _predict(fit: FitRecord, p: np.ndarray, f: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore"):
        return fit.predict(p, f)


def _band(fit: FitRecord, samples: pd.DataFrame | None, p: np.ndarray, f: np.ndarray):
    """Central 95% of the bootstrap predictions at (p, f), or None without samples."""
    if samples is None or not len(samples):
        return None
    law = fit.law
    if "converged" in samples.columns:
        samples = samples[samples["converged"].astype(bool)]
    preds = []
    for _, row in samples.iterrows():
        try:
            preds.append(law.predict({n: row[n] for n in law.param_names}, p, f))
        except ValueError:
            continue
    if not preds:
        return None
    return np.nanpercentile(np.array(preds), BAND, axis=0)


# ----- per dataset -----------------------------------------------------------------------------------
#: how a figure marks the runs that stopped at the epoch cap (their loss is an upper bound, not fitted)
CAPPED_MARKER = {"marker": "o", "facecolors": "none", "s": 40, "linewidths": 1.2}


def _capped(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs stopped at the epoch cap with a finite loss: drawn (open markers), never fitted."""
    if "status" not in runs.columns:
        return runs.iloc[:0]
    capped = runs[runs["status"] == "max_epochs"]
    return capped[np.isfinite(capped["eval_loss"].to_numpy(float))]


def _not_drawn(runs: pd.DataFrame) -> str:
    """The runs a figure of losses cannot show (diverged, or without a finite loss), in words; "" if none."""
    status = runs["status"] if "status" in runs.columns else pd.Series("ok", index=runs.index)
    gone = ((status != "ok") & (status != "max_epochs")) | ~np.isfinite(runs["eval_loss"].to_numpy(float))
    if not gone.any():
        return ""
    counts = status[gone].value_counts()
    return "not drawn: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " run(s)"


def _say(ax: Any, text: str, y: float = 0.5) -> None:
    """A sentence across the middle of an axes (what a figure cannot show, and why), wrapped."""
    import textwrap

    ax.text(
        0.5,
        y,
        textwrap.fill(text, 70),
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize="small",
        color="firebrick",
        bbox={"facecolor": "white", "edgecolor": "firebrick", "alpha": 0.9, "boxstyle": "round"},
    )


def _capped_and_missing(ax: Any, runs: pd.DataFrame, p_column: str, colours: Mapping[Any, Any]) -> None:
    """Draw the runs stopped at the epoch cap (open markers) and say, in a corner, which runs cannot be
    drawn (diverged)."""
    capped = _capped(runs)
    for size, grp in capped.groupby("finetune_size"):
        label = f"{size:g} (stopped at the epoch cap)"
        ax.scatter(
            grp[p_column] + 1, grp["eval_loss"], edgecolors=colours[size], label=label, **CAPPED_MARKER
        )
    notes = ["open markers: stopped at the epoch cap, not fitted"] if len(capped) else []
    notes += [n for n in (_not_drawn(runs),) if n]
    if notes:
        corner = dict(xycoords="axes fraction", fontsize="x-small", color="grey")
        ax.annotate("; ".join(notes), (0.01, 0.01), **corner)


def _size_colours(runs: pd.DataFrame) -> dict[Any, Any]:
    """A colour per fine-tune size of the runs that can be drawn (usable or stopped at the cap)."""
    return _hue_colours(pd.concat([_ok(runs)["finetune_size"], _capped(runs)["finetune_size"]]))


def plot_raw_data(runs: pd.DataFrame, p_column: str = "pretrain_step", dataset: str | None = None) -> Figure:
    """Fig. 5: eval loss against pre-training, one line per fine-tune size; how much pre-training buys.
    Runs stopped at the epoch cap are open markers (upper bounds, not fitted)."""
    set_style()
    df = _ok(runs)
    fig, ax = plt.subplots(figsize=(7, 5))
    colours = _size_colours(runs)
    for size, grp in df.groupby("finetune_size"):
        grp = grp.groupby(p_column, as_index=False)["eval_loss"].mean().sort_values(p_column)
        ax.plot(grp[p_column] + 1, grp["eval_loss"], "o-", color=colours[size], label=f"{size:g}")
    _capped_and_missing(ax, runs, p_column, colours)
    ax.set(xscale="log", yscale="log", xlabel=p_label(p_column), ylabel=LOSS_LABEL)
    _tidy_log(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=f_label(_f_unit(runs)), fontsize="small", title_fontsize="small")
    _title(fig, dataset, "loss against pre-training")
    return fig


def plot_no_law(runs: pd.DataFrame, fit: FitRecord, what: str, dataset: str | None = None) -> Figure:
    """A figure of the fitted law where none could be fitted: the runs that exist (loss against
    pre-training per fine-tune size; open markers where they stopped at the epoch cap) and why there is no
    law, with the setting to change (the fit record's ``reason``)."""
    set_style()
    runs = fit.runs(runs, usable=False)  # the law's runs (and those it left out), whatever else is there
    pc = fit.columns.p
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = _size_colours(runs)
    for size, grp in _ok(runs).groupby("finetune_size"):
        ax.scatter(grp[pc] + 1, grp["eval_loss"], color=colours[size], s=40, label=f"{size:g}")
    _capped_and_missing(ax, runs, pc, colours)
    ax.set(xscale="log", yscale="log", xlabel=p_label(pc), ylabel=LOSS_LABEL)
    _tidy_log(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=f_label(_f_unit(runs)), fontsize="small", title_fontsize="small", loc="upper right")
    _say(ax, f"no law fitted: {fit.reason}")
    _title(fig, dataset, f"{what}: no law fitted")
    return fig


#: the margin the cross-section's loss axis leaves around the runs (a factor on a log axis)
LOSS_MARGIN = 1.3


def plot_cross_section(
    runs: pd.DataFrame,
    fit: FitRecord,
    samples: pd.DataFrame | None = None,
    dataset: str | None = None,
) -> Figure:
    """Fig. 3: the fitted law through the data, along p (per f) and along f (per p), with bootstrap bands.
    The loss axis follows the runs (with a margin of :data:`LOSS_MARGIN`), so that a band that widens far
    from them does not squeeze the data into a line; where the law is drawn beyond the runs along x (to
    p = 0), it is lighter and dashed: an extrapolation, not a fit."""
    set_style()
    runs = fit.runs(runs, usable=False)  # the law's runs (and those it left out), whatever else is there
    pc, fc = fit.columns.p, fit.columns.f
    df = _ok(runs)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    p_all, f_all = df[pc].to_numpy(float), df[fc].to_numpy(float)
    for ax, x, z, xlabel, ztitle in (
        (axes[0], pc, fc, p_label(pc), f_label(_f_unit(runs))),
        (axes[1], fc, pc, f_label(_f_unit(runs)), p_label(pc, shifted=False)),
    ):
        colours = _hue_colours(df[z])
        for value, grp in df.groupby(z):
            if x == pc:
                xs = _p_grid(fit.form, p_all)
                p, f, shift = xs, np.full_like(xs, value), 1.0
            else:
                xs = _f_grid(fit.form, f_all)
                p, f, shift = np.full_like(xs, value), xs, 0.0
            c = colours[value]
            ax.scatter(grp[x] + shift, grp["eval_loss"], color=c, s=30, zorder=3)
            pred = _predict(fit, p, f)
            lo, hi = df[x].min(), df[x].max()
            if xs.min() < lo or xs.max() > hi:  # beyond the runs: lighter, and clipped by the loss axis
                ax.plot(xs + shift, pred, color=c, alpha=0.4, ls="--", lw=1)
            x_in = np.geomspace(lo + shift, hi + shift, xs.size) - shift  # over the runs: the fit itself
            p_in, f_in = (x_in, np.full_like(x_in, value)) if x == pc else (np.full_like(x_in, value), x_in)
            ax.plot(x_in + shift, _predict(fit, p_in, f_in), color=c, label=f"{value:g}")
            band = _band(fit, samples, p, f)
            if band is not None:
                ax.fill_between(xs + shift, band[0], band[1], color=c, alpha=0.2, linewidth=0)
        ax.set(xscale="log", yscale="log", xlabel=xlabel)
        losses = df["eval_loss"].to_numpy(float)
        if np.isfinite(losses).any():
            ax.set_ylim(np.nanmin(losses) / LOSS_MARGIN, np.nanmax(losses) * LOSS_MARGIN)
        _tidy_log(ax)
        if x == fc:
            _ticks_at(ax.xaxis, df[fc])
        ax.legend(title=ztitle, fontsize="small", title_fontsize="small")
    axes[0].set_ylabel(LOSS_LABEL)
    what = "fitted law through the data" + (" (bands: bootstrap 95%)" if samples is not None else "")
    _title(fig, dataset, what)
    return fig


def plot_iso_loss(runs: pd.DataFrame, fit: FitRecord, dataset: str | None = None) -> Figure:
    """Figs. 1 and 6: contours of equal predicted loss over (p, f), runs marked in their measured loss."""
    set_style()
    runs = fit.runs(runs, usable=False)  # the law's runs (and those it left out), whatever else is there
    pc, fc = fit.columns.p, fit.columns.f
    df = _ok(runs)
    p_all, f_all = df[pc].to_numpy(float), df[fc].to_numpy(float)
    p = _p_grid(fit.form, p_all, 200)
    f = _f_grid(fit.form, f_all, 200)
    P, F = np.meshgrid(p, f)
    L = _predict(fit, P, F)
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    finite = L[np.isfinite(L)]
    levels = np.geomspace(finite.min(), finite.max(), 15)
    cs = ax.contourf(P + 1, F, L, levels=levels, cmap="magma_r", norm=LogNorm(levels[0], levels[-1]))
    lines = ax.contour(P + 1, F, L, levels=levels[::2], colors="white", linewidths=0.8)
    ax.clabel(lines, fmt="%.2f", fontsize=8)
    ax.scatter(
        df[pc] + 1,
        df[fc],
        c=df["eval_loss"],
        cmap="magma_r",
        norm=cs.norm,
        edgecolors="black",
        s=60,
        zorder=3,
        clip_on=False,
        label="runs (colour: measured loss)",
    )
    cbar = fig.colorbar(cs, ax=ax, format=FuncFormatter(lambda v, _: f"{v:.2f}"))
    cbar.set_label(f"predicted {LOSS_LABEL}")
    ax.set(xscale="log", yscale="log", xlabel=p_label(pc), ylabel=f_label(_f_unit(runs)))
    _tidy_log(ax)
    _ticks_at(ax.yaxis, df[fc])
    ax.legend(loc="upper right", fontsize="small")
    _title(fig, dataset, "iso-loss contours of the fitted law")
    return fig


def plot_surface(runs: pd.DataFrame, fit: FitRecord, dataset: str | None = None) -> Figure:
    """Fig. 4: the fitted surface and the data in 3-D; axes are log10 (3-D axes have no log scale)."""
    set_style()
    runs = fit.runs(runs, usable=False)  # the law's runs (and those it left out), whatever else is there
    pc, fc = fit.columns.p, fit.columns.f
    df = _ok(runs)
    p = _p_grid(fit.form, df[pc].to_numpy(float), 40)
    f = _f_grid(fit.form, df[fc].to_numpy(float), 40)
    P, F = np.meshgrid(p, f)
    L = _predict(fit, P, F)
    fig = plt.figure(figsize=(8, 6.5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(np.log10(P + 1), np.log10(F), np.log10(L), cmap="magma_r", alpha=0.6, linewidth=0)
    ax.scatter(
        np.log10(df[pc] + 1),
        np.log10(df[fc]),
        np.log10(df["eval_loss"]),
        color="tab:blue",
        edgecolors="black",
        s=40,
        depthshade=False,
        label="runs",
    )
    ax.set_xlabel(f"log10({p_label(pc)})", labelpad=10)
    ax.set_ylabel(f"log10({f_label(_f_unit(runs))})", labelpad=10)
    ax.set_zlabel(f"log10({LOSS_LABEL})", labelpad=10)
    ax.view_init(elev=22, azim=-125)
    ax.legend(loc="upper left", fontsize="small")
    _title(fig, dataset, "fitted surface and data")
    return fig


def plot_epochs(runs: pd.DataFrame, p_column: str = "pretrain_step", dataset: str | None = None) -> Figure:
    """Fig. 8: epochs to the best eval loss against p (per f) and against f (per p)."""
    set_style()
    df = _ok(runs) if len(_ok(runs)) else runs
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    unit = _f_unit(runs)
    for ax, x, z, xlabel, ztitle, shift in (
        (axes[0], p_column, "finetune_size", p_label(p_column), f_label(unit), 1),
        (axes[1], "finetune_size", p_column, f_label(unit), p_label(p_column, shifted=False), 0),
    ):
        colours = _hue_colours(df[z])
        for value, grp in df.groupby(z):
            grp = grp.groupby(x, as_index=False)["best_epoch"].mean().sort_values(x)
            ax.plot(grp[x] + shift, grp["best_epoch"], "o-", color=colours[value], label=f"{value:g}")
        ax.set(xscale="log", xlabel=xlabel)
        _tidy_log(ax)
        if x == "finetune_size":
            _ticks_at(ax.xaxis, df[x])
        ax.legend(title=ztitle, fontsize="small", title_fontsize="small")
    axes[0].set_ylabel("epochs to best eval loss")
    _title(fig, dataset, "epochs to convergence")
    return fig


def plot_bootstrap(samples: pd.DataFrame, fit: FitRecord, dataset: str | None = None) -> Figure:
    """Bootstrap distribution of each parameter, the point estimate marked: how well the data pin it."""
    set_style()
    names = list(fit.law.param_names)
    if "converged" in samples.columns:
        samples = samples[samples["converged"].astype(bool)]
    ncol = min(3, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.3 * ncol, 3.5 * nrow), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        values = samples[name].to_numpy(float)
        span = np.append(values, fit.params[name])  # the estimate must fit on the axis too
        log = bool(name not in ("alpha", "beta") and (span > 0).all() and span.max() / span.min() > 100)
        import seaborn as sns  # only here and in the heatmap: see the module's docstring

        sns.histplot(values, ax=ax, bins=30, log_scale=log, color=categorical()[0])
        ax.axvline(fit.params[name], color="black", linestyle="--", label="estimate")
        lo, hi = np.percentile(values, BAND)
        ax.axvspan(lo, hi, color="grey", alpha=0.15, label="95% interval")
        ax.set(xlabel=name + (" (log)" if log else ""), ylabel="samples")
        if name in fit.at_bound:
            ax.set_title(
                f"{name}: at the optimiser's bound (not identified)", fontsize="small", color="firebrick"
            )
        if log:
            _tidy_log(ax)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(4))  # long decimals collide otherwise
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize="small")
    _title(fig, dataset, f"bootstrap distributions ({len(samples)} samples)")
    fig.tight_layout()
    return fig


# ----- across datasets -------------------------------------------------------------------------------
def plot_parameters(intervals: Mapping[str, BootstrapSummary]) -> Figure:
    """The transfer gap G first, then the other parameters: estimate and 95% interval, one row per dataset;
    an upper limit ("G < x", a left-pointing marker) where the interval reaches the bound, and "not
    identified" where the runs do not measure the parameter.

    ``intervals`` maps dataset -> its bootstrap summary.
    """
    set_style()
    datasets = list(intervals)
    names: list[str] = []
    for summary in intervals.values():  # a dataset without a law has its form's names
        names += [n for n in summary.names if n not in names]
    names.sort(key=lambda n: (n != "G", n))
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.2 * len(names) + 1.5, 0.55 * len(datasets) + 2), sharey=True, squeeze=False
    )
    colours = dict(zip(datasets, categorical(len(datasets)), strict=True))
    for ax, name in zip(axes[0], names, strict=True):
        shown = []  # the values that set the axis: measured intervals and upper limits, never the bound
        for i, ds in enumerate(datasets):
            if not intervals[ds].fitted:
                ax.annotate(
                    NO_LAW,
                    (0.5, i),
                    xycoords=("axes fraction", "data"),
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="firebrick",
                )
                continue
            par = intervals[ds].params.get(name)
            if par is None:
                continue
            est, lo, hi = par["estimate"], par["ci_low"], par["ci_high"]
            if par.get("identified", True):
                ax.errorbar(
                    est,
                    i,
                    xerr=[[max(est - lo, 0)], [max(hi - est, 0)]],
                    fmt="o",
                    color=colours[ds],
                    capsize=4,
                )
                shown += [lo, hi]
            elif par.get("bound") == ["low"]:  # an upper limit: "G < hi"
                ax.plot([hi], [i], marker="<", markersize=9, color=colours[ds], linestyle="none")
                ax.annotate(
                    f"{name} < {hi:.3g}",
                    (hi, i),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize="small",
                    color=colours[ds],
                )
                shown.append(hi)
            else:
                ax.annotate(
                    "not identified",
                    (0.5, i),
                    xycoords=("axes fraction", "data"),
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="grey",
                )
        lo = min(shown, default=0.0)
        hi = max(shown, default=1.0)
        if name not in ("alpha", "beta") and lo > 0 and hi / lo > 30:  # log only when it spans decades
            ax.set_xscale("log")
            _tidy_log(ax)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel(name + (" (transfer gap)" if name == "G" else ""))
    axes[0][0].set_yticks(range(len(datasets)), datasets)
    axes[0][0].invert_yaxis()
    fig.suptitle("fitted parameters with bootstrap 95% intervals", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_law_forms(crossval: pd.DataFrame) -> Figure:
    """Cross-validation of the law forms: mean held-out RMSE per dataset and form, best form outlined.

    For each (dataset, form) the regularisation setting with the lowest mean RMSE is shown, so a form is
    judged at its best; the number in each cell is that RMSE.
    """
    from transferlaw.law.crossval import scored, unscored

    set_style()
    scores = scored(crossval)
    if scores.empty:  # nothing to draw: say why, per dataset
        fig, ax = plt.subplots(figsize=(9, 0.6 * max(crossval["dataset"].nunique(), 1) + 2.5))
        ax.set_axis_off()
        why = unscored(crossval).drop_duplicates("dataset")
        lines = [f"{r.dataset}: {r.message}" for r in why.itertuples()] or ["no runs to cross-validate"]
        _say(ax, "no cross-validation split was scored. " + " | ".join(lines))
        fig.suptitle("cross-validation of law forms: nothing scored", fontweight="bold")
        return fig
    mean = scores.groupby(["dataset", "form", "l2_exponents", "l2_coefficients"], as_index=False)[
        "rmse"
    ].mean()
    best = mean.groupby(["dataset", "form"], as_index=False)["rmse"].min()
    table = best.pivot(index="dataset", columns="form", values="rmse")
    # datasets nothing scored stay in the figure as a blank row (the cross-validation table says why)
    table = table.reindex(sorted(set(table.index) | set(crossval["dataset"].astype(str))))
    fig, ax = plt.subplots(figsize=(1.6 * table.shape[1] + 3, 0.7 * table.shape[0] + 2.5))
    import seaborn as sns  # only here and in the histogram: see the module's docstring

    sns.heatmap(
        table,
        annot=True,
        fmt=".3g",
        cmap="rocket_r",
        ax=ax,
        cbar_kws={"label": f"held-out RMSE, {LOSS_LABEL}"},
    )
    why = unscored(crossval).astype({"dataset": str}).drop_duplicates("dataset").set_index("dataset")
    for row, ds in enumerate(table.index):
        row_values = table.loc[ds].to_numpy(dtype=float)
        if not np.isfinite(row_values).any():  # nothing scored on this dataset: say so, nothing to outline
            status = str(why["status"].get(ds, "")) if ds in why.index else ""
            no_split = "no split to score (its cross-validation table says why)"
            text = NO_LAW if status == STATUS_NOT_FITTED else no_split
            ax.text(table.shape[1] / 2, row + 0.5, text, ha="center", va="center", color="grey")
            continue
        col = int(np.nanargmin(row_values))
        ax.add_patch(plt.Rectangle((col, row), 1, 1, fill=False, edgecolor="tab:blue", linewidth=3))
    ax.grid(False)  # blank cells (a form that failed) stay blank
    ax.set(xlabel="law form", ylabel="dataset")
    ax.tick_params(axis="x", rotation=30)
    fig.suptitle("cross-validation of law forms (blue box: lowest RMSE)", fontweight="bold")
    fig.tight_layout()
    return fig


def _allocation(
    sweeps: Mapping[str, pd.DataFrame], x: str, xlabel: str, title: str, no_law: Sequence[str] = ()
) -> Figure:
    set_style()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    if no_law:  # datasets without a law have no allocation to draw
        ax.annotate(f"{NO_LAW}: {', '.join(no_law)}", (0.01, 0.01), xycoords="axes fraction",
                    fontsize="x-small", color="firebrick")  # fmt: skip
    colours = dict(zip(sweeps, categorical(len(sweeps)), strict=True))
    for ds, df in sweeps.items():
        df = df.sort_values(x)
        ax.plot(df[x], 100 * df["share_finetune"], "-", color=colours[ds], label=ds, linewidth=2)
        if "G_fit" in df.columns and x == "G":
            g = float(df["G_fit"].iloc[0])
            if not df[x].min() <= g <= df[x].max():
                continue
            y = np.interp(np.log(g), np.log(df[x]), 100 * df["share_finetune"])
            ax.plot([g], [y], "o", color=colours[ds], markersize=8, markeredgecolor="black")
    ax.set(xscale="log", xlabel=xlabel, ylabel="budget on fine-tuning data (%)", ylim=(-3, 103))
    _tidy_log(ax)
    if sweeps:
        ax.legend(title="law fitted to", fontsize="small", title_fontsize="small")
    else:
        _say(ax, "no dataset's law could be fitted: nothing to allocate")
    fig.suptitle(title, fontweight="bold")
    return fig


def plot_allocation_gap(sweeps: Mapping[str, pd.DataFrame], no_law: Sequence[str] = ()) -> Figure:
    """Fig. 2a: optimal share of budget on fine-tuning data as the transfer gap G grows (dot: fitted G).
    ``no_law`` names the datasets whose law could not be fitted (said in a corner)."""
    return _allocation(sweeps, "G", "transfer gap G", "optimal allocation as the transfer gap grows", no_law)


def plot_allocation_cost(sweeps: Mapping[str, pd.DataFrame], no_law: Sequence[str] = ()) -> Figure:
    """Fig. 2b: optimal share of budget on fine-tuning data as the cost ratio C_f/C_p grows."""
    return _allocation(
        sweeps,
        "cost_ratio",
        "cost ratio C_f / C_p (fine-tune example / pre-training step)",
        "optimal allocation as fine-tuning data gets dearer",
        no_law,
    )


# ----- across models, methods and seeds -------------------------------------------------------------
def plot_gap_vs_size(table: pd.DataFrame, trend: pd.DataFrame | None = None) -> Figure:
    """The transfer gap G against model size N: one panel per dataset, one colour per method; the estimate
    and its 95% interval where G is identified, an upper limit (a downward marker at "G < x") where only
    its upper end is measured ("n.i." on the axis where not even that is), and the fitted trend
    G(N) = c·N^-gamma where there is one.

    ``table`` is :func:`transferlaw.law.compare.gap_table`'s, ``trend``
    :func:`transferlaw.law.compare.gap_trend`'s.
    """
    set_style()
    datasets = sorted(table["dataset"].unique())
    methods = sorted(table["method"].unique())
    colours = dict(zip(methods, categorical(len(methods)), strict=True))
    offsets = np.linspace(-0.04, 0.04, len(methods)) if len(methods) > 1 else np.zeros(1)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets) + 0.5, 4.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        shown: list[float] = []  # measured intervals: they set the axis
        limits: list[tuple[float, float, Any]] = []  # (x, upper limit, colour)
        missing: list[tuple[float, Any]] = []  # G not identified at all: marked on the axis
        for method, offset in zip(methods, offsets, strict=True):
            sub = table[(table["dataset"] == ds) & (table["method"] == method)]
            colour = colours[method]
            x = sub["n_params"].to_numpy(float) * 10**offset  # methods side by side at one N
            known = sub["G_identified"].to_numpy(bool)
            g, lo, hi = (sub[c].to_numpy(float) for c in ("G", "G_low", "G_high"))
            if known.any():
                ax.errorbar(
                    x[known],
                    g[known],
                    yerr=[np.maximum(g - lo, 0)[known], np.maximum(hi - g, 0)[known]],
                    fmt="o",
                    color=colour,
                    capsize=4,
                )
                shown += [*g[known], *lo[known], *hi[known]]
            cap = (
                sub["G_upper_limit"].to_numpy(float) if "G_upper_limit" in sub else np.full(len(sub), np.nan)
            )
            limit = ~known & np.isfinite(cap)
            if limit.any():
                limits += [(xv, cv, colour) for xv, cv in zip(x[limit], cap[limit], strict=True)]
            missing += [(xv, colour) for xv in x[~known & ~np.isfinite(cap)]]
            if trend is not None and len(trend):
                row = trend[(trend["dataset"] == ds) & (trend["method"] == method)]
                if len(row) and np.isfinite(row["gamma"].iloc[0]):
                    n = np.geomspace(sub["n_params"].min(), sub["n_params"].max(), 50)
                    gamma, c = float(row["gamma"].iloc[0]), float(row["c"].iloc[0])
                    ax.plot(n, c * n ** (-gamma), "--", color=colour, label=f"{method}: G ∝ N^-{gamma:.2g}")
        # the axis covers what is measured and the useful limits; a limit far above them (the runs bound G by
        # nothing a loss could be) is drawn at the top edge, labelled
        positive = [v for v in shown if np.isfinite(v) and v > 0]
        caps = [c for _, c, _ in limits if c > 0]
        top = 1.5 * max(positive + [c for c in caps if c <= 100 * max(positive, default=10.0)], default=10.0)
        low = min(positive + [c for c in caps if c <= top], default=top / 10)
        for xv, cv, colour in limits:
            ax.plot([xv], [min(cv, top / 1.1)], marker="v", markersize=9, color=colour, linestyle="none")
            if cv > top:
                ax.annotate(
                    f"G < {cv:.2g}",
                    (xv, top / 1.1),
                    xytext=(0, -14),
                    textcoords="offset points",
                    ha="center",
                    fontsize="x-small",
                    color=colour,
                )
        if top / low > 30:
            ax.set_yscale("log")
            ax.set_ylim(low / 3, top)
        else:
            ax.set_ylim(0, top)
        for xv, colour in missing:
            ax.annotate(
                "n.i.",
                (xv, 0.03),
                xycoords=("data", "axes fraction"),
                ha="center",
                fontsize="x-small",
                color=colour,
            )
        sizes = table.loc[table["dataset"] == ds, "n_params"].to_numpy(float)
        ax.set_xlim(sizes.min() / 1.6, sizes.max() * 1.6)  # set, so that marks without data stay inside
        _ticks_at(ax.xaxis, sizes)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.set(xlabel="model parameters N", ylabel="transfer gap G", title=ds)
        if not shown and not limits:
            ax.annotate(
                "G not identified at any size",
                (0.5, 0.5),
                xycoords="axes fraction",
                ha="center",
                color="grey",
            )
        for method, colour in colours.items():  # the legend: methods, and what the marks mean
            ax.plot([], [], "o", color=colour, label=method)
        if limits:
            ax.plot([], [], "v", color="grey", label="upper limit (G < x)")
        if missing:
            ax.plot([], [], " ", label="n.i.: not identified")
        ax.legend(fontsize="small")
    fig.suptitle("transfer gap G against model size N (bootstrap 95% intervals)", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_run_noise(cells: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Run noise against the law's misfit. Left: each cell's seed-to-seed standard deviation of log eval loss
    against its fine-tune size (one colour per dataset, one marker per method). Right: per (dataset, model,
    method), the pooled run noise, the law's residual RMS over every run, and the lack-of-fit RMS of the cell
    means (all in log loss): lack of fit well above the noise is model error, not noise.

    ``cells`` is :func:`transferlaw.law.noise.cell_noise`'s table, ``summary``
    :func:`transferlaw.law.noise.noise_vs_residuals`'.
    """
    set_style()
    height = max(4.8, 0.32 * len(summary) + 1.8)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, height), gridspec_kw={"width_ratios": [1, 1.3]})
    f_col = next(c for c in cells.columns if c.startswith("finetune_"))
    replicated = cells[cells["n_runs"] > 1]
    datasets = sorted(cells["dataset"].unique())
    colours = dict(zip(datasets, categorical(len(datasets)), strict=True))
    markers = dict(zip(sorted(cells["method"].unique()), "osD^v<>", strict=False))
    for (ds, method), sub in replicated.groupby(["dataset", "method"]):
        left.plot(
            sub[f_col],
            sub["sd_log"],
            markers.get(method, "o"),
            color=colours[ds],
            alpha=0.75,
            label=f"{ds}, {method}",
        )
    unit = "" if f_col == "finetune_size" else f" ({f_col.removeprefix('finetune_')})"
    left.set(
        xscale="log",
        xlabel=f"fine-tune size{unit}",
        ylabel="seed-to-seed sd of log eval loss",
        title="run noise per cell",
    )
    _ticks_at(left.xaxis, cells[f_col])
    if not len(replicated):
        left.annotate(
            "no cell has replicates", (0.5, 0.5), xycoords="axes fraction", ha="center", color="grey"
        )
    else:
        left.legend(fontsize="x-small", ncol=2)
    labels = [f"{r.dataset} · {r.model} · {r.method}" for r in summary.itertuples()]
    y = np.arange(len(summary))
    h = 0.27
    bars = (
        ("noise_rms_log", "run noise (pure error)"),
        ("residual_rms_log", "law residual, every run"),
        ("lack_of_fit_rms_log", "lack of fit, cell means"),
    )
    for i, (col, name) in enumerate(bars):
        right.barh(y + (i - 1) * h, summary[col].to_numpy(float), height=h, label=name)
    right.set_yticks(y, labels, fontsize="x-small")
    right.invert_yaxis()
    right.set(xlabel="RMS of log eval loss", title="run noise against the law's misfit")
    right.legend(fontsize="small")
    fig.suptitle("is the misfit noise or model error?", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_crossval_splits(
    runs: pd.DataFrame,
    form: str,
    p_column: str = "pretrain_step",
    dataset: str | None = None,
    steps: Sequence[int] = (1, 2, 3),
) -> Figure:
    """Fig. 7: step-wise cross-validation (appendix D) on this dataset's runs. For the k-th distinct
    pre-training value and the k-th distinct size as thresholds (k in ``steps``), the runs at or below both
    train the law (red) and every other run validates it (blue), as :func:`threshold_splits` splits them;
    the cross-validation goes through every combination of the two thresholds, not only these. A split
    with fewer training runs than ``form`` has parameters is not scored, and the panel says so."""
    set_style()
    df = _ok(runs)
    law = get_form(form)
    p, f = df[p_column].to_numpy(float), df["finetune_size"].to_numpy(float)
    p_values, f_values = np.unique(p), np.unique(f)
    colours = categorical()
    fig, axes = plt.subplots(
        1, len(steps), figsize=(4.6 * len(steps), 4.8), sharex=True, sharey=True, layout="constrained"
    )
    for ax, k in zip(np.atleast_1d(axes), steps, strict=True):
        if k > min(len(p_values), len(f_values)):
            have = f"{len(p_values)} pre-training values, {len(f_values)} sizes"
            _say(ax, f"no threshold {k}: the runs have\n{have}")
            continue
        pt, ft = p_values[k - 1], f_values[k - 1]
        train = train_mask(p, f, pt, ft)
        ax.scatter(p[~train] + 1, f[~train], s=36, color=colours[0], label="validation")
        ax.scatter(p[train] + 1, f[train], s=36, color=colours[3], label="training")
        ax.axvline(pt + 1, color="0.4", lw=0.8, ls="--")
        ax.axhline(ft, color="0.4", lw=0.8, ls="--")
        scored = train.sum() >= law.n_params and (~train).any()
        note = "" if scored else f"\nnot scored: {int(train.sum())} < {law.n_params} parameters"
        ax.set_title(f"split {k}: train on p ≤ {pt:g}, f ≤ {ft:g}{note}", fontsize="small")
        ax.set(xscale="log", yscale="log", xlabel=p_label(p_column))
        _tidy_log(ax)
    np.atleast_1d(axes)[0].set_ylabel(f_label(_f_unit(runs)))
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=2)
    _title(fig, dataset, f"step-wise cross-validation splits (form {law.name})")
    return fig


def plot_adaptive(
    rounds: pd.DataFrame,
    target: str = "G",
    reference: BootstrapSummary | None = None,
    dataset: str | None = None,
) -> Figure:
    """An adaptive study's rounds (``rounds.csv``): the target's 95% interval against the runs spent after
    each round, the last marked with what stopped it; beside them, at its own run count, a grid study's
    interval (``reference``, its bootstrap summary) where there is one."""
    set_style()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ok = rounds.dropna(subset=[target, f"{target}_low", f"{target}_high"])
    if len(ok):
        est, lo, hi = (ok[c].to_numpy(float) for c in (target, f"{target}_low", f"{target}_high"))
        ax.errorbar(ok["runs"], est, yerr=[est - lo, hi - est], fmt="o-", capsize=3, label="adaptive rounds")
    else:
        _say(ax, "no round gave an interval of " + target)
    if len(rounds) and rounds["stop"].iloc[-1]:
        last = rounds.iloc[-1]
        ax.annotate(
            f"stopped: {last['stop']}",
            (last["runs"], last[target] if pd.notna(last[target]) else 0.0),
            textcoords="offset points",
            xytext=(6, 8),
            fontsize=9,
        )
    entry = reference.params.get(target) if reference is not None and reference.fitted else None
    if entry and entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        n = reference.n_points or 0
        e, lo, hi = (float(entry[k]) for k in ("estimate", "ci_low", "ci_high"))
        ax.errorbar([n], [e], yerr=[[e - lo], [hi - e]], fmt="s", capsize=4, color="black", label="full grid")
        ax.axhspan(lo, hi, color="grey", alpha=0.15, lw=0)
    ax.set_xlabel("runs spent")
    ax.set_ylabel(f"{target} (95% interval)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=9)
    _title(fig, dataset, f"{target} by round")
    return fig
