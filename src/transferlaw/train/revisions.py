"""Which checkpoints a study fine-tunes: a grid of steps, resolved to branches that pass the gate.

A model's ``revisions`` are a list of branch names (``step1000``, ...) or a **rule**, resolved by ``snakemake
prefetch`` against what the checkpoint suite actually serves:

    revisions: {log_spaced: {count: 15, first: 128, last: 143000}}

asks for ``count`` steps log-spaced from ``first`` to ``last`` (both included). Each target step is then
mapped to the nearest revision (by log distance) that *passes the integrity gate* -- whose weights no other
step branch of the repository serves -- within ``[first, last]``, each revision at most once: targets are
taken from the lowest up, and a target whose nearest revision is taken gets the nearest one left (ties go
to the lower step). The same mapping over a suite's whole branch list gives the grid a rule means when every
branch passes (``config/barnett2024.yaml`` is derived that way; ``tests/test_paper_config.py`` checks it).

These are pure functions of step numbers and names; what passes is decided by
:mod:`transferlaw.train.checkpoints` from the hashes the hub lists (or the cache holds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_STEP = re.compile(r"^step(\d+)$")


class RuleError(ValueError):
    """A revision rule cannot be resolved (not enough revisions pass); the message says what passes."""


def step_of(revision: str) -> int | None:
    """The step of a Pythia-style branch name (``step1000`` -> 1000), None for any other name (``main``)."""
    m = _STEP.match(revision)
    return int(m.group(1)) if m else None


def by_step(revisions: Iterable[str]) -> list[str]:
    """The step branches among ``revisions``, in step order (other names dropped)."""
    return sorted((r for r in revisions if step_of(r) is not None), key=lambda r: step_of(r))


def is_rule(revisions: Any) -> bool:
    """Whether a model's ``revisions`` is a rule (a mapping) rather than a list of names."""
    return isinstance(revisions, Mapping)


def describe_rule(rule: Mapping[str, Any]) -> str:
    spec = rule["log_spaced"]
    return f"{spec['count']} log-spaced steps from {spec['first']} to {spec['last']}"


def log_spaced_targets(count: int, first: int, last: int) -> list[float]:
    """``count`` steps log-spaced from ``first`` to ``last``, both included."""
    if count < 2 or not 1 <= first < last:
        raise RuleError(f"log_spaced needs count >= 2 and 1 <= first < last (got {count}, {first}, {last})")
    ratio = math.log(last / first) / (count - 1)
    return [first * math.exp(k * ratio) for k in range(count - 1)] + [float(last)]


def resolve(rule: Mapping[str, Any], passing: Iterable[str]) -> list[dict[str, Any]]:
    """Map each target step of ``rule`` to a distinct revision among ``passing`` (the names that pass the
    gate), as the module docstring says. Returns one row per target, lowest first: ``target`` (rounded),
    ``revision``, ``step`` and ``ratio`` (the revision's step over the target). Raises :class:`RuleError`,
    naming what passes, if fewer than ``count`` passing revisions lie within ``[first, last]``."""
    spec = rule["log_spaced"]
    count, first, last = int(spec["count"]), int(spec["first"]), int(spec["last"])
    targets = log_spaced_targets(count, first, last)
    candidates = [r for r in by_step(passing) if first <= step_of(r) <= last]
    if len(candidates) < count:
        raise RuleError(
            f"{describe_rule(rule)}: only {len(candidates)} revision(s) between step {first} and step {last} "
            f"pass the gate ({', '.join(candidates) or 'none'}); lower `count` or widen `first`..`last`"
        )
    rows, taken = [], set()
    for target in targets:
        best = min(
            (r for r in candidates if r not in taken),
            key=lambda r: (abs(math.log(step_of(r) / target)), step_of(r)),
        )
        taken.add(best)
        step = step_of(best)
        rows.append({"target": round(target), "revision": best, "step": step, "ratio": step / target})
    return rows


def far_targets(rule: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows of a resolution whose revision is more than two of the rule's grid steps away from its
    target step (either way): there the grid resolved is not the one the rule asks for. (One step is not
    enough to say so: Pythia has 4 branches between 128 and 1000, where a 15-step grid to 143000 puts 5.)"""
    spec = rule["log_spaced"]
    factor = (spec["last"] / spec["first"]) ** (2 / (spec["count"] - 1))
    return [r for r in rows if max(r["ratio"], 1 / r["ratio"]) > factor]


def resolution_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per target: ``target -> revision (x ratio)``."""
    return [f"  step {r['target']:>7} -> {r['revision']:<11} (x{r['ratio']:.2f})" for r in rows]


def nearest(revision: str, candidates: Iterable[str], per_side: int = 3) -> tuple[list[str], list[str]]:
    """The ``per_side`` candidates closest to ``revision``'s step below it and above it (closest first)."""
    step = step_of(revision)
    ordered = by_step(c for c in candidates if c != revision)
    below = [c for c in ordered if step_of(c) < step][::-1][:per_side]
    above = [c for c in ordered if step_of(c) > step][:per_side]
    return below, above


__all__ = [
    "RuleError",
    "by_step",
    "describe_rule",
    "far_targets",
    "is_rule",
    "log_spaced_targets",
    "nearest",
    "resolution_table",
    "resolve",
    "step_of",
]
