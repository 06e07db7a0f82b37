"""What each Slurm submission of a study will ask for, before anything is submitted.

``transferlaw plan --configfile STUDY.yaml [--profile profiles/slurm]`` reads the profile with Snakemake's own
command-line parser, builds the study's jobs and group jobs with Snakemake's own DAG code (a dry run with the
profile's executor, so nothing runs and nothing is submitted), takes each submission's resources as the
submitting Snakemake computes them (a group's through ``snakemake.resources.GroupResources``, with the
profile's constraints and scopes), and turns them into sbatch options with the Slurm plugin's own submit code
(``get_submit_command``, ``set_gres_string``). What it prints is therefore what the plugin will ask Slurm for:
per submission its CPUs, memory, GPUs, minutes and the number of jobs it runs, at the first attempt and at the
last retry (a retry multiplies a fine-tuning run's memory and minutes by its attempt number).

Checked against a partition's time limit (``--time-limit``, or the partitions' ``MaxTime`` where ``scontrol``
answers): a submission whose last retry would ask for more minutes than its partition allows would wait in
the queue forever, so the plan fails and names the profile key to lower, with the value that fits.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

#: the profile used when none is given (relative to the working directory, as Snakemake resolves it)
DEFAULT_PROFILE = "profiles/slurm"


@dataclass(frozen=True)
class Submission:
    """One Slurm job the study will submit, at one attempt."""

    name: str  # the group's id (``ft_pythia-2.8b_step0``), or the rule of a job submitted alone
    kind: str  # the group's name in the profile (``ft_{model}_{revision}``), or the rule
    grouped: bool  # a group job (several jobs in one submission), not a job submitted alone
    runs: int  # Snakemake jobs it runs, one after another
    attempt: int
    cpus: int
    mem_mb: int | None
    gpus: int
    minutes: int | None
    partition: str  # '' when the cluster's default partition takes it
    job_cpus: int  # the most CPUs one of its jobs needs
    job_mem_mb: int | None  # the most memory one of its jobs needs
    job_minutes: int | None  # the most minutes one of its jobs needs
    sbatch: str  # the plugin's sbatch options for it, without the command

    @property
    def more_than_one_job(self) -> bool:
        """Whether it asks for more CPUs or memory than its largest job needs (runs summed side by side)."""
        return self.cpus > self.job_cpus or (self.mem_mb or 0) > (self.job_mem_mb or 0)


@dataclass(frozen=True)
class Plan:
    first: list[Submission]  # attempt 1
    last: list[Submission]  # the last retry of each submission (the same as ``first`` without retries)
    jobs: dict[str, int]  # every job planned, submitted or not, per rule
    local_jobs: dict[str, int]  # the jobs Snakemake runs itself (local rules), per rule
    profile: str
    configfile: str


# ---- the plan ---------------------------------------------------------------------------------------------


def make_plan(
    configfile: str | Path,
    profile: str | Path = DEFAULT_PROFILE,
    *,
    snakefile: str | Path | None = None,
    workdir: str | Path | None = None,
    snakemake_args: Sequence[str] = (),
) -> Plan:
    """Plan the study of ``configfile`` with ``profile`` (plus ``snakemake_args``, as on a command line).

    ``workdir`` None plans the whole study from nothing, in an empty scratch folder (with a link to
    ``resources/`` of the Snakefile's checkout); a folder plans what a run there would still submit."""
    from snakemake.cli import parse_args
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    argv = ["--profile", str(profile), "--configfile", str(Path(configfile).resolve()), *snakemake_args]
    if snakefile is not None:
        argv += ["--snakefile", str(Path(snakefile).resolve())]
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            _, args = parse_args(argv)  # it says "Using profile ..."
    except SystemExit as err:  # argparse's and the profile loader's way of refusing
        raise ValueError(f"snakemake {' '.join(argv)}: {said.getvalue().strip()}") from err
    if args.executor != "slurm":
        executor = args.executor or "local"
        raise ValueError(f"profile {profile}: its executor is {executor!r}, not slurm: it submits nothing")
    snakefile = Path(args.snakefile or "Snakefile").resolve()
    if not snakefile.is_file():
        raise FileNotFoundError(f"no Snakefile at {snakefile} (run from the repository, or give --snakefile)")
    registry = ExecutorPluginRegistry()
    slurm = registry.get_plugin("slurm")
    executor_settings = slurm.get_settings(args)

    try:
        return _plan(args, slurm, executor_settings, snakefile, workdir, profile, configfile)
    except (ValueError, FileNotFoundError):
        raise
    except Exception as err:  # Snakemake's own errors: a bad config, a missing input, an unknown rule
        raise ValueError(f"{configfile}: the study could not be planned: {err}") from err


def _plan(args, slurm, executor_settings, snakefile: Path, workdir, profile, configfile) -> Plan:
    from snakemake.api import SnakemakeApi
    from snakemake.cli import parse_config
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        GroupSettings,
        OutputSettings,
        ResourceSettings,
    )

    with contextlib.ExitStack() as stack:
        if workdir is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="transferlaw-plan-")))
            (scratch / "resources").symlink_to(snakefile.parent / "resources")
            workdir = scratch
        # the study's jobs never run here: offline, and Snakemake's own messages kept out of the plan
        stack.enter_context(_environ(HF_HUB_OFFLINE="1"))
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        api = stack.enter_context(
            SnakemakeApi(OutputSettings(quiet={Quietness.ALL}, enable_file_logging=False))
        )
        workflow_api = api.workflow(
            # as `snakemake` itself passes them (snakemake.cli.args_to_api); no --cores: a submitting
            # Snakemake sets none unless told to, and then does not bound a job's threads
            resource_settings=ResourceSettings(
                cores=args.cores,
                nodes=args.jobs,
                local_cores=args.local_cores,
                max_threads=args.max_threads,
                resources=args.resources,
                overwrite_threads=args.set_threads,
                overwrite_scatter=args.set_scatter,
                overwrite_resource_scopes=args.set_resource_scopes,
                overwrite_resources=args.set_resources,
                default_resources=args.default_resources,
            ),
            config_settings=ConfigSettings(
                config=parse_config(args.config), configfiles=args.configfile, config_args=args.config
            ),
            snakefile=snakefile,
            workdir=Path(workdir).resolve(),
        )
        dag_api = workflow_api.dag(
            DAGSettings(
                targets=args.targets,
                forcetargets=args.force,
                forceall=args.forceall,
                forcerun=args.forcerun,
                until=args.until,
                omit_from=args.omit_from,
                force_incomplete=args.rerun_incomplete,
            )
        )
        # validated against the Slurm executor, run by the dry-run one: groups form as they will
        dag_api.execute_workflow(
            executor="slurm",
            pseudo_executor="dryrun",
            executor_settings=executor_settings,
            execution_settings=ExecutionSettings(retries=args.retries, lock=False),
            group_settings=GroupSettings(
                group_components=args.group_components, overwrite_groups=args.groups
            ),
        )
        workflow = workflow_api._workflow
        # From here on, what the submitting process computes: the Slurm executor's (non-local) view of
        # threads, resources and local rules, and a group's resources layered for submission, not for a
        # run in this process. Setting an attempt drops the resources cached for another one.
        workflow._executor_plugin = slurm
        dag = workflow.dag
        submitted: dict[int, object] = {}
        jobs: Counter[str] = Counter()
        local_jobs: Counter[str] = Counter()
        for job in dag.needrun_jobs(exclude_finished=False):
            jobs[job.rule.name] += 1
            group = dag.get_job_group(job)
            if group is not None:
                submitted[id(group)] = group
            elif not job.is_local:
                submitted[id(job)] = job
            else:
                local_jobs[job.rule.name] += 1
        units = sorted(submitted.values(), key=lambda u: (_kind(workflow, u), _natural(_name(u))))
        first = [_submission(workflow, u, 1, executor_settings) for u in units]
        last = [_submission(workflow, u, u.restart_times + 1, executor_settings) for u in units]
    return Plan(
        first=first,
        last=last,
        jobs=dict(jobs),
        local_jobs=dict(local_jobs),
        profile=str(profile),
        configfile=str(configfile),
    )


@contextlib.contextmanager
def _environ(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _natural(name: str) -> list:
    """Sort key that puts step2 before step16."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _name(unit) -> str:
    if unit.is_group():
        return unit.groupid
    wildcards = ",".join(f"{k}={v}" for k, v in unit.wildcards_dict.items())
    return f"{unit.rule.name}[{wildcards}]" if wildcards else unit.rule.name


def _kind(workflow, unit) -> str:
    if unit.is_group():
        return workflow.parent_groupids.get(unit.groupid, unit.groupid)
    return unit.rule.name


class _Submitted:
    """A job as the plugin's submit code reads it: its resources and threads."""

    def __init__(self, resources, threads: int) -> None:
        self.resources = resources
        self.threads = threads


def _submission(workflow, unit, attempt: int, executor_settings) -> Submission:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    unit.attempt = attempt  # resets the resources: recomputed for this attempt
    jobs = list(unit.jobs) if unit.is_group() else [unit]
    res = unit.resources
    job = _Submitted(res, unit.threads)
    partition = res.get("slurm_partition") or ""
    account = res.get("slurm_account")
    params = {
        "run_uuid": "PLAN",
        "slurm_logfile": "LOG",
        "comment_str": f"rule_{unit.name}",
        "account": f"-A {account}" if account else "",
        "partition": f"-p {partition}" if partition else "",
        "workdir": None,
    }
    call = get_submit_command(job, params, settings=executor_settings) + set_gres_string(job)
    options = call.split(" --comment ", 1)[1].split(" ", 1)[1].strip()
    cpus, mem_mb, gpus, minutes = _read_sbatch(options)
    job_res = [j.resources for j in jobs]
    mems = [r.get("mem_mb") for r in job_res if isinstance(r.get("mem_mb"), int)]
    mins = [r.get("runtime") for r in job_res if isinstance(r.get("runtime"), int)]
    return Submission(
        name=_name(unit),
        kind=_kind(workflow, unit),
        grouped=unit.is_group(),
        runs=len(jobs),
        attempt=attempt,
        cpus=cpus,
        mem_mb=mem_mb,
        gpus=gpus,
        minutes=minutes,
        partition=str(partition),
        job_cpus=max(j.threads for j in jobs),
        job_mem_mb=max(mems) if mems else None,
        job_minutes=max(mins) if mins else None,
        sbatch=" ".join(options.split()),
    )


def _read_sbatch(options: str) -> tuple[int, int | None, int, int | None]:
    """CPUs, memory (MB), GPUs and minutes that sbatch ``options`` ask Slurm for."""

    def one(pattern: str) -> str | None:
        m = re.search(pattern, options)
        return m.group(1) if m else None

    gpus = 0
    if g := one(r"--gpus=(\S+)"):
        gpus = int(g.rsplit(":", 1)[-1])
    elif g := one(r"--gres=gpu(?::\S+)?:(\d+)"):
        gpus = int(g)
    elif one(r"--gres=(gpu)\b"):
        gpus = 1
    if c := one(r"--cpus-per-task=(\d+)"):
        cpus = int(c)
    elif c := one(r"--cpus-per-gpu=(\d+)"):
        cpus = int(c) * max(gpus, 1)
    else:
        cpus = 1
    tasks = int(one(r"--ntasks=(\d+)") or 1)
    cpus *= tasks
    if m := one(r"--mem-per-cpu (\d+)"):
        mem_mb: int | None = int(m) * cpus
    elif m := one(r"--mem (\d+)"):
        mem_mb = int(m)
    else:
        mem_mb = None
    t = one(r"-t (\S+)")
    return cpus, mem_mb, gpus, _minutes(t) if t else None


def _minutes(value: str) -> int | None:
    """Minutes of a Slurm time: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``; None unlimited."""
    value = value.strip().strip("'\"")
    if value.upper() in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    days, _, rest = value.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:
        h, m, s = (parts + [0, 0])[:3]
        total = int(days) * 1440 + h * 60 + m + (s > 0)
    elif len(parts) == 3:
        total = parts[0] * 60 + parts[1] + (parts[2] > 0)
    elif len(parts) == 2:
        total = parts[0] + (parts[1] > 0)
    else:
        total = parts[0]
    return total


# ---- the partition's time limit ---------------------------------------------------------------------------


def slurm_time_limits() -> dict[str, int | None]:
    """Each partition's ``MaxTime`` in minutes (None: unlimited), from ``scontrol``; the default partition
    also under ''. Empty where Slurm does not answer."""
    if not shutil.which("scontrol"):
        return {}
    try:
        out = subprocess.run(
            ["scontrol", "show", "partition", "--oneliner"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    limits: dict[str, int | None] = {}
    for line in out.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "PartitionName" not in fields:
            continue
        limit = _minutes(fields.get("MaxTime", "UNLIMITED"))
        limits[fields["PartitionName"]] = limit
        if fields.get("Default") == "YES":
            limits[""] = limit
    return limits


def time_problems(plan: Plan, limits: dict[str, int | None], profile: str) -> list[str]:
    """Why a submission's last retry would never start in its partition, and which key to lower: one
    message per kind of submission."""
    problems: dict[str, str] = {}
    for s in plan.last:
        limit = limits.get(s.partition, limits.get("*"))
        if limit is None or s.minutes is None or s.minutes <= limit or s.kind in problems:
            continue
        where = f"partition {s.partition!r}" if s.partition else "the default partition"
        head = (
            f"{s.name}: its last retry (attempt {s.attempt}) asks for {s.minutes} min, over the {limit} min "
            f"that {where} allows, and would never start"
        )
        fit = limit // s.job_minutes if s.job_minutes else 0
        if s.grouped and fit >= 1:
            problems[s.kind] = (
                f"{head}: lower `group-components: {s.kind}=N` in {profile} to N <= {fit} (its jobs ask "
                f"for up to {s.job_minutes} min each at attempt {s.attempt})"
            )
        else:
            rule = s.kind if not s.grouped else "its largest"
            problems[s.kind] = (
                f"{head}: one {rule} job alone asks for {s.job_minutes} min; lower its runtime "
                f"(`finetune.runtime` in the study's config for fine-tuning, else `set-resources: "
                f"RULE: runtime=MINUTES` in {profile}) or the profile's `retries`, or use a partition with a "
                "longer time limit"
            )
    return list(problems.values())


# ---- printing ---------------------------------------------------------------------------------------------


def _mem(mb: int | None) -> str:
    return "-" if mb is None else f"{mb}"


def _range(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def kinds(submissions: list[Submission]) -> list[dict]:
    """One summary per kind of submission: how many, and the range of what each asks for."""
    by_kind: dict[str, list[Submission]] = {}
    for s in submissions:
        by_kind.setdefault(s.kind, []).append(s)
    return [
        {
            "kind": kind,
            "submissions": len(group),
            "runs": _range([s.runs for s in group]),
            "cpus": _range([s.cpus for s in group]),
            "mem_mb": _range([s.mem_mb for s in group]),
            "gpus": _range([s.gpus for s in group]),
            "minutes": _range([s.minutes for s in group]),
            "job_cpus": _range([s.job_cpus for s in group]),
            "job_mem_mb": _range([s.job_mem_mb for s in group]),
            "job_minutes": _range([s.job_minutes for s in group]),
        }
        for kind, group in by_kind.items()
    ]


def _n(count, noun: str) -> str:
    return f"{count} {noun}" + ("" if str(count) == "1" else "s")


def kind_line(k: dict) -> str:
    """One kind of submission in a line: how many, and what each asks for."""
    gpus = "no GPU" if k["gpus"] == "0" else _n(k["gpus"], "GPU")
    return (
        f"{k['kind']}: {_n(k['submissions'], 'submission')} of {_n(k['runs'], 'job')}, each asking for "
        f"{_n(k['cpus'], 'CPU')}, {k['mem_mb']} MB, {gpus}, {k['minutes']} min (its largest job: "
        f"{_n(k['job_cpus'], 'CPU')}, {k['job_mem_mb']} MB, {k['job_minutes']} min)"
    )


def format_plan(plan: Plan) -> str:
    rows = [("submission", "jobs", "cpus", "mem_mb", "gpus", "minutes", "partition")]
    for s in plan.first:
        rows.append(
            (s.name, s.runs, s.cpus, _mem(s.mem_mb), s.gpus, s.minutes or "-", s.partition or "(default)")
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"Slurm submissions of {plan.configfile} with {plan.profile}: {len(plan.first)}, running "
        f"{sum(s.runs for s in plan.first)} of the {sum(plan.jobs.values())} jobs planned (the others are "
        "local rules, run by Snakemake itself), as the plugin will ask for them at the first attempt:",
        "",
    ]
    for r in rows:
        cells = [str(c).rjust(w) for c, w in zip(r, widths, strict=True)]
        cells[0], cells[-1] = str(r[0]).ljust(widths[0]), str(r[-1])
        lines.append("  ".join(cells).rstrip())
    lines += ["", "per kind of submission:"]
    lines += [f"  {kind_line(k)}" for k in kinds(plan.first)]
    retried = [k for k, f in zip(kinds(plan.last), kinds(plan.first), strict=True) if k != f]
    if retried:
        lines += ["", "at the last retry (a retry asks for its attempt times a run's memory and minutes):"]
        lines += [f"  {kind_line(k)}" for k in retried]
    over = [s for s in plan.first if s.more_than_one_job]
    if over:
        lines += [
            "",
            f"WARNING: {len(over)} submissions ask for more CPUs or memory than their largest job needs "
            f"(e.g. {over[0].name}: {over[0].cpus} CPUs, {over[0].mem_mb} MB for jobs of at most "
            f"{over[0].job_cpus} CPUs, {over[0].job_mem_mb} MB): their jobs are summed as if they ran side "
            "by side, but a group's jobs run one after another. Keep `run_slot` in the profile's "
            "`default-resources` and `resources`.",
        ]
    return "\n".join(lines)


def as_json(plan: Plan) -> dict:
    return {
        "profile": plan.profile,
        "configfile": plan.configfile,
        "submissions": [asdict(s) | {"more_than_one_job": s.more_than_one_job} for s in plan.first],
        "last_retry": [asdict(s) | {"more_than_one_job": s.more_than_one_job} for s in plan.last],
        "kinds": kinds(plan.first),
        "jobs": plan.jobs,
        "local_jobs": plan.local_jobs,
    }
