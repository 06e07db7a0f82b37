"""The config schema (``schemas/config.schema.yaml``) and every default of the study, read from it: the one
place each default lives. Every stage reads its defaults from here (the estimator's form and penalties, the
bootstrap's resamples, ...); :mod:`transferlaw.config` validates and resolves whole studies against it."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.yaml"


#: libyaml's parser where PyYAML was built with it: the schema is read by every Snakemake invocation and
#: every job, and the pure-Python parser takes a quarter of a second for it
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema() -> dict[str, Any]:
    """The config schema, a copy the caller may change."""
    return copy.deepcopy(_schema())


@functools.cache
def _schema() -> dict[str, Any]:
    return yaml.load(SCHEMA_PATH.read_text(), Loader=_LOADER)  # noqa: S506 (a safe loader)


def _node(key: str) -> dict[str, Any]:
    """The schema of a config key, e.g. ``finetune.lr``, with references followed."""
    schema = _schema()
    node: Any = schema
    for part in key.split("."):
        if "$ref" in node:  # "#/definitions/finetune"
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        node = node["properties"][part]
    if "$ref" in node:
        node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[1]], **node}
    return node


def default(key: str) -> Any:
    """The schema's default of a config key, e.g. ``default("fit.form")``: the one place each default of
    the study lives (the command line and the library read theirs from here)."""
    return copy.deepcopy(_node(key)["default"])


def keys(block: str) -> tuple[str, ...]:
    """The keys a config block may hold, e.g. ``keys("finetune")``, in the schema's order."""
    return tuple(_node(block)["properties"])
