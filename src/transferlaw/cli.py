"""The ``transferlaw`` console command.

Researchers often already have a table of runs, so every analysis is usable without the workflow:
``transferlaw fit TABLE -o OUT.json`` reads CSV or parquet and writes the same JSON the Snakemake rule
writes. Subcommands share their table options through :func:`add_table_options`; each handler returns
an exit status, and :func:`main` turns expected failures (bad input) into a one-line message on
stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from transferlaw.law.advise import DEFAULT_COST, DEFAULT_RUNS, DEFAULT_TARGET
from transferlaw.law.advise import DEFAULT_SAMPLES as ADVICE_SAMPLES
from transferlaw.law.advise import DEFAULT_SEED as ADVICE_SEED
from transferlaw.law.bootstrap import DEFAULT_SAMPLES
from transferlaw.law.crossval import CV_FORMS, L2_COEFFICIENTS, L2_EXPONENTS
from transferlaw.law.fit import DEFAULT_FORM, HUBER_DELTA, Columns, FitRecord
from transferlaw.law.forms import FORMS

#: exit status for bad input (argparse uses the same for bad arguments)
EXIT_BAD_INPUT = 2


def add_table_options(
    parser: argparse.ArgumentParser,
    *,
    output_help: str = "output JSON file",
    output_metavar: str = "OUT.json",
) -> None:
    """Options every table-reading subcommand shares: TABLE, -o, --form, --group, --p, --f, --loss."""
    parser.add_argument("table", metavar="TABLE", help="table of runs, CSV or parquet (chosen by suffix)")
    parser.add_argument("-o", "--output", required=True, metavar=output_metavar, help=output_help)
    parser.add_argument(
        "--form", default=DEFAULT_FORM, choices=sorted(FORMS), help="law form (default: %(default)s)"
    )
    default = Columns()
    parser.add_argument(
        "--group",
        default=default.group,
        help="column to fit one law per value of (default: %(default)s); '' fits the whole table as one",
    )
    parser.add_argument(
        "--p", default=default.p, help="pre-training column, e.g. pretrain_tokens (default %(default)s)"
    )
    parser.add_argument("--f", default=default.f, help="fine-tuning size column (default %(default)s)")
    parser.add_argument("--loss", default=default.loss, help="loss column (default: %(default)s)")


def table_columns(args: argparse.Namespace) -> Columns:
    """The column options of :func:`add_table_options`, as every ``*_table`` function takes them."""
    return Columns(group=args.group or None, p=args.p, f=args.f, loss=args.loss)


def _cmd_schema(args: argparse.Namespace) -> int:
    from transferlaw.schema import describe_schema

    print(describe_schema())
    return 0


def _cmd_compile_kernels(args: argparse.Namespace) -> int:
    from transferlaw.law.fit import compile_kernels

    seconds = compile_kernels()
    print(f"transferlaw compile-kernels: the estimator's kernels compiled and cached in {seconds:.1f} s")
    return 0


def _cmd_config_docs(args: argparse.Namespace) -> int:
    from transferlaw.config import describe_config

    print(describe_config(), end="")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from transferlaw.io import read_table, write_json
    from transferlaw.law.fit import fit_table, fits_json

    df = read_table(args.table)
    fits = fit_table(
        df,
        form=args.form,
        columns=table_columns(args),
        huber_delta=args.huber_delta,
        l2_exponents=args.l2_exponents,
        l2_coefficients=args.l2_coefficients,
    )
    write_json(fits_json(fits), args.output)
    for key, fit in fits.items():
        law = fit.result  # every group has one: a group without raises ValueError above
        bound = fit.at_bound
        params = ", ".join(f"{n}=at bound" if n in bound else f"{n}={v:.4g}" for n, v in fit.params.items())
        flag = "" if law.converged else "  [NOT CONVERGED]"
        print(f"{key}: {params}  objective={law.objective:.6g}  ({law.fit_seconds:.2f} s){flag}")
        if bound:
            print(
                f"  not identified: {', '.join(bound)} at the optimiser's bound "
                "(the runs cannot tell it from zero)"
            )
        if fit.diagnostics["flat"]:
            print(f"  flat direction: {fit.diagnostics['flattest']}")
    return 0


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from pathlib import Path

    from transferlaw.io import read_table, write_json, write_parquet
    from transferlaw.law.bootstrap import bootstrap_table
    from transferlaw.law.diagnostics import describe, needs_sentence

    df = read_table(args.table)
    columns = table_columns(args)
    summaries, samples = bootstrap_table(
        df,
        form=args.form,
        columns=columns,
        n_samples=args.samples,
        seed=args.seed,
    )
    write_json({key: rec.to_json() for key, rec in summaries.items()}, args.output)
    if args.samples_dir:
        for key, frame in samples.items():
            write_parquet(frame, Path(args.samples_dir) / f"{key}.parquet")
    for key, rec in summaries.items():
        cells = ", ".join(f"{n}: {describe(n, v)}" for n, v in rec.params.items())
        print(f"{key}: {cells}")
        if sentence := needs_sentence(str(key), rec.params, columns.p, columns.f):
            print(f"  {sentence}")
    return 0


def _cmd_crossval(args: argparse.Namespace) -> int:
    from transferlaw.io import read_table, write_csv
    from transferlaw.law.crossval import best_by_form, crossval_table

    df = read_table(args.table)
    cv = crossval_table(
        df,
        forms=args.forms,
        columns=table_columns(args),
        skip=args.skip,
        l2_exponents=args.l2_exponents,
        l2_coefficients=args.l2_coefficients,
        workers=args.workers,
        form=args.form,
    )
    write_csv(cv, args.output)
    print(best_by_form(cv).to_string(index=False))
    return 0


def _cmd_advise(args: argparse.Namespace) -> int:
    from transferlaw.io import read_table, write_csv
    from transferlaw.law.advise import STATUS_OK, advise_table

    df = read_table(args.table)
    candidates = read_table(args.candidates)
    columns = table_columns(args)
    intervals = None
    if args.intervals:  # `transferlaw bootstrap`'s record: its interval is the one the message states
        import json

        from transferlaw.law.bootstrap import BootstrapSummary

        raw = json.loads(open(args.intervals).read())
        if "params" in raw:  # one group's record (the workflow's results/bootstrap/<dataset>.json)
            raw = {str(raw.get("dataset")): raw}
        intervals = {k: BootstrapSummary.from_json(v, args.intervals) for k, v in raw.items()}
    advice = advise_table(
        df,
        candidates,
        args.runs,
        form=args.form,
        columns=columns,
        target=args.target,
        cost=args.cost,
        n_samples=args.samples,
        seed=args.seed,
        intervals=intervals,
    )
    write_csv(advice, args.output)
    key = columns.group
    for _, rows in advice.groupby(key, sort=False) if key else [(None, advice)]:
        first = rows.iloc[0]
        flag = "" if first["status"] == STATUS_OK else f" [{first['status']}]"
        print(f"{first[key] if key else 'table'}{flag}: {first['message']}")
        for row in rows.head(args.show).to_dict("records"):
            width = row["expected_width"]
            after = f", {args.target} width -> {width:.3g}" if width == width else ""  # NaN: no width to tell
            cell = f"{columns.p} {row[columns.p]:g}, {columns.f} {row[columns.f]:g}"
            again = f", a new replicate: the cell's run {row['replicate'] + 1}" if row["replicate"] else ""
            print(f"  {row['rank']}. {cell} (cost {row['cost']:.3g}{after}{again})")
    return 0


def _load_fit(path: str, dataset: str | None) -> FitRecord:
    """One fitted law from a single-fit JSON (the workflow's) or a multi-group one (``transferlaw fit``'s)."""
    from transferlaw.law.fit import NO_LAW, read_fits

    fits = read_fits(path)
    if dataset is None:
        if len(fits) != 1:
            raise ValueError(f"{path} holds fits of {', '.join(fits)}; choose one with --dataset")
        dataset = next(iter(fits))
    if dataset not in fits:
        raise ValueError(f"{path}: no fit for dataset {dataset!r}; it has {', '.join(fits)}")
    fit = fits[dataset]
    if not fit.fitted:
        raise ValueError(f"{path}: {dataset}: {NO_LAW}: {fit.reason}")
    return fit


def _cmd_allocate(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from transferlaw.law.allocate import allocate, allocate_samples, summarise_samples

    fit = _load_fit(args.fit, args.dataset)
    alloc = allocate(fit.params, fit.form, args.budget, args.cost_pretrain, args.cost_finetune)
    p_name, f_name = fit.columns.p, fit.columns.f
    where = {
        None: "interior optimum",
        "pretrain": "corner: all budget on pre-training",
        "finetune": "corner: all budget on fine-tuning data",
    }[alloc.corner]
    print(f"dataset: {fit.dataset}  form: {fit.form}  ({where})")
    print(f"optimal {p_name}: {alloc.p:.6g}")
    print(f"optimal {f_name}: {alloc.f:.6g}")
    print(f"spend on pre-training: {alloc.share_pretrain:.2%}  on fine-tuning: {alloc.share_finetune:.2%}")
    print(f"predicted loss: {alloc.loss:.6g}")
    # the spread needs the fit's bootstrap refits, named by the caller: the command does not know a layout
    samples = Path(args.samples) if args.samples else None
    if samples is not None:
        if not samples.exists():
            raise FileNotFoundError(f"bootstrap samples not found: {samples}")
        spread = allocate_samples(
            pd.read_parquet(samples), fit.form, args.budget, args.cost_pretrain, args.cost_finetune
        )
        summary = summarise_samples(spread)
        print(f"bootstrap ({len(spread)} samples from {samples}), median [2.5%, 97.5%]:")
        for key, label in (
            ("p", p_name),
            ("f", f_name),
            ("share_finetune", "fine-tune share"),
            ("loss", "loss"),
        ):
            if key in summary:
                s = summary[key]
                print(f"  {label}: {s['median']:.6g} [{s['ci_low']:.6g}, {s['ci_high']:.6g}]")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from transferlaw.plan import as_json, format_plan, make_plan, slurm_time_limits, time_problems

    plan = make_plan(
        args.configfile,
        args.profile,
        snakefile=args.snakefile,
        workdir=args.directory,
        snakemake_args=args.snakemake_args,
    )
    if args.time_limit is not None:
        limits, source = {"*": args.time_limit}, f"--time-limit {args.time_limit}"
    else:
        limits, source = slurm_time_limits(), "each partition's MaxTime from scontrol"
    problems = time_problems(plan, limits, args.profile)
    if args.json:
        print(json.dumps(as_json(plan) | {"time_problems": problems}, indent=1))
    else:
        print(format_plan(plan))
        if not limits:
            print("\nno time limit checked: give --time-limit MINUTES (Slurm did not answer here)")
        elif not problems:
            print(f"\nevery submission's last retry fits the time limit ({source})")
    for problem in problems:
        print(f"transferlaw plan: error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _slurm_minutes(value: str) -> int:
    from transferlaw.plan import _minutes

    try:
        minutes = _minutes(value)
    except ValueError:
        minutes = None
    if minutes is None or minutes < 1:
        raise argparse.ArgumentTypeError(f"not a time limit: {value!r} (minutes, or Slurm's D-HH:MM:SS)")
    return minutes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transferlaw", description="Scaling laws for transfer.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser("fit", help="fit the transfer law to a table of runs, one law per group")
    add_table_options(fit, output_help="output JSON, one object per group keyed by group value")
    fit.add_argument("--huber-delta", type=float, default=HUBER_DELTA, help="Huber δ (default %(default)s)")
    fit.add_argument("--l2-exponents", type=float, default=0.0, help="L2 penalty on exponents (appendix D)")
    fit.add_argument("--l2-coefficients", type=float, default=0.0, help="L2 penalty on log-coefficients")
    fit.set_defaults(handler=_cmd_fit)

    boot = sub.add_parser("bootstrap", help="bootstrap standard errors and 95%% intervals, one law per group")
    add_table_options(boot, output_help="output JSON, per group: params with estimate, se, ci_low, ci_high")
    boot.add_argument(
        "--samples", type=int, default=DEFAULT_SAMPLES, help="bootstrap resamples (default %(default)s)"
    )
    boot.add_argument("--seed", type=int, default=0, help="resampling seed (default %(default)s)")
    boot.add_argument("--samples-dir", help="also write each group's resample refits to DIR/<group>.parquet")
    boot.set_defaults(handler=_cmd_bootstrap)

    cv = sub.add_parser("crossval", help="step-wise cross-validation of law forms and L2 penalties")
    add_table_options(cv, output_help="output CSV, one row per dataset, form, penalty pair and split")
    cv.add_argument(
        "--forms",
        nargs="+",
        default=list(CV_FORMS),
        choices=sorted(FORMS),
        help="forms to score (default all)",
    )
    cv.add_argument("--skip", type=int, default=1, help="use every SKIP-th threshold combination")
    cv.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="processes scoring (dataset, form) problems in parallel (default: this machine's cores)",
    )
    cv.add_argument("--l2-exponents", type=float, nargs="+", default=list(L2_EXPONENTS), metavar="W")
    cv.add_argument("--l2-coefficients", type=float, nargs="+", default=list(L2_COEFFICIENTS), metavar="W")
    cv.set_defaults(handler=_cmd_crossval)
    alloc = sub.add_parser("allocate", help="split a budget between pre-training and fine-tuning (eq. 4)")
    alloc.add_argument(
        "fit", metavar="FIT.json", help="fitted law: results/fits/D.json or `transferlaw fit` output"
    )
    alloc.add_argument("--budget", type=float, required=True, help="total budget B")
    alloc.add_argument("--cost-pretrain", type=float, required=True, help="cost C_p of one unit of p")
    alloc.add_argument("--cost-finetune", type=float, required=True, help="cost C_f of one unit of f")
    alloc.add_argument("--dataset", default=None, help="which fit of a multi-group JSON")
    alloc.add_argument(
        "--samples",
        default=None,
        metavar="SAMPLES.parquet",
        help="the fit's bootstrap refits (the workflow's results/bootstrap/D.parquet, or `transferlaw "
        "bootstrap --samples-dir` output): adds the spread of the allocation",
    )
    alloc.set_defaults(handler=_cmd_allocate)
    adv = sub.add_parser(
        "advise", help="which runs next: those that shrink G's interval most per unit of cost"
    )
    add_table_options(
        adv,
        output_help="output CSV: per group the recommended cells in run order, each with the expected width",
        output_metavar="NEXT.csv",
    )
    adv.add_argument(
        "--candidates",
        required=True,
        metavar="CANDIDATES.csv",
        help="cells that could be run: the table's p and f columns (and its group column: per group)",
    )
    adv.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, metavar="K", help="runs per group (default %(default)s)"
    )
    adv.add_argument(
        "--target", default=DEFAULT_TARGET, help="parameter whose interval to shrink (default %(default)s)"
    )
    adv.add_argument(
        "--cost",
        default=DEFAULT_COST,
        metavar="COLUMN_OR_EXPR",
        help="cost of a run: a candidates column or an expression, e.g. 'finetune_size * epochs' (columns "
        "the candidates lack come from the nearest run); default: every run costs the same",
    )
    adv.add_argument(
        "--samples",
        type=int,
        default=ADVICE_SAMPLES,
        help="bootstrap refits in the ensemble (default %(default)s)",
    )
    adv.add_argument(
        "--seed", type=int, default=ADVICE_SEED, help="seed of the resampling (default %(default)s)"
    )
    adv.add_argument(
        "--intervals",
        default=None,
        metavar="BOOT.json",
        help="`transferlaw bootstrap`'s output for the same table: the message states its interval of the "
        "target instead of the advice's own ensemble's (one interval per group)",
    )
    adv.add_argument(
        "--show", type=int, default=5, help="recommendations printed per group (all are written)"
    )
    adv.set_defaults(handler=_cmd_advise)
    plan = sub.add_parser(
        "plan",
        help="what each Slurm submission of a study will ask for (CPUs, memory, GPUs, minutes, jobs)",
        description="Plan a study with a Slurm profile (a dry run: nothing is submitted) and print, per "
        "submission and per kind of submission, the CPUs, memory, GPUs and minutes the Slurm plugin will "
        "ask for and the jobs it runs. Exit status 1 when a submission's last retry exceeds its "
        "partition's time limit, naming the profile key to lower.",
    )
    plan.add_argument("--configfile", required=True, metavar="STUDY.yaml", help="the study's config")
    plan.add_argument("--profile", default="profiles/slurm", help="Snakemake profile (default %(default)s)")
    plan.add_argument("--snakefile", default=None, help="default: ./Snakefile, as snakemake finds it")
    plan.add_argument(
        "--directory",
        default=None,
        metavar="DIR",
        help="plan what a run in DIR would still submit (default: the whole study, from nothing)",
    )
    plan.add_argument(
        "--time-limit",
        type=_slurm_minutes,
        default=None,
        metavar="TIME",
        help="the partition's time limit (minutes, or D-HH:MM:SS); default: each partition's MaxTime "
        "where scontrol answers",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "snakemake_args",
        nargs="*",
        metavar="-- SNAKEMAKE_ARGS",
        help="more snakemake options or targets, after `--`, as you would give them to snakemake",
    )
    plan.set_defaults(handler=_cmd_plan)
    schema = sub.add_parser("schema", help="print the run-record schema (columns, types, meaning)")
    schema.set_defaults(handler=_cmd_schema)
    docs = sub.add_parser("config-docs", help="print every config key (config/README.md) from the schema")
    docs.set_defaults(handler=_cmd_config_docs)
    compile_ = sub.add_parser(
        "compile-kernels",
        help="compile the estimator's kernels into numba's cache now, not at a first fit (make setup does)",
    )
    compile_.set_defaults(handler=_cmd_compile_kernels)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input or arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    # warnings (excluded runs, non-convergence) go to the stderr of *this* call; the handler is
    # removed afterwards so that repeated calls (tests, notebooks) leave no logging state behind.
    log = logging.getLogger("transferlaw")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("transferlaw: %(levelname)s: %(message)s"))
    old_level = log.level
    log.addHandler(stream)
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        return handler(args)
    except (ValueError, KeyError, FileNotFoundError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"transferlaw {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        log.removeHandler(stream)
        log.setLevel(old_level)


if __name__ == "__main__":
    sys.exit(main())
