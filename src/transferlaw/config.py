"""The study's configuration: one JSON schema (``schemas/config.schema.yaml``), defaults, and the checks that
must pass before any expensive job starts.

Snakemake validates the raw config against the schema (``snakemake.utils.validate``); :func:`resolve` then
fills the schema's defaults and :func:`check_study` checks what a schema cannot (files exist and are large
enough, revisions exist, the context fits the model). Every error names the config key or file at fault.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from transferlaw.defaults import SCHEMA_PATH, _schema, load_schema
from transferlaw.schema import revision_step as _record_revision_step
from transferlaw.train.finetune import LORA_FIELDS


class ConfigError(ValueError):
    """The study configuration is unusable; the message names the config key or file."""


def validate_schema(config: Mapping[str, Any]) -> None:
    """Validate against the JSON schema without filling defaults (Snakemake's validator, same messages),
    after the checks whose schema message would not say what is wrong with the study."""
    from snakemake.utils import validate

    for key, what in (("models", "checkpoints to fine-tune"), ("datasets", "datasets to fine-tune on")):
        if not config.get(key):
            raise ConfigError(
                f"{key}: the study has no {what}, so it would run nothing; add at least one block under "
                f"`{key}:` (every key is documented in config/README.md). Note that a --configfile "
                "describes the whole study: nothing is taken from the embedded default."
            )
    _check_revision_rules(config)
    validate(dict(config), str(SCHEMA_PATH), set_default=False)


def _check_revision_rules(config: Mapping[str, Any]) -> None:
    """A model's ``revisions`` given as a rule, checked against the schema's rule (its ``else`` branch) first,
    so that the message names the key (``models.<name>.revisions.log_spaced.first``), which Snakemake's
    message gives only as a JSON path."""
    from jsonschema import Draft202012Validator

    rule_schema = load_schema()["properties"]["models"]["additionalProperties"]["properties"]["revisions"][
        "else"
    ]
    for name, block in config["models"].items():
        revisions = block.get("revisions") if isinstance(block, Mapping) else None
        if not isinstance(revisions, Mapping):
            continue
        for err in Draft202012Validator(rule_schema).iter_errors(dict(revisions)):
            key = ".".join(["models", str(name), "revisions", *map(str, err.absolute_path)])
            raise ConfigError(
                f"{key}: {err.message}. A revision rule is {{log_spaced: {{count: N, first: F, last: L}}}}: "
                "N >= 2 steps log-spaced from step F >= 1 to step L, integers (config/README.md)"
            )


#: a dataset's blocks that override the study's, key by key: their keys are documented once, at the study's
OVERRIDES = ("datasets.<name>.finetune", "datasets.<name>.adaptive.target", "datasets.<name>.adaptive.budget")


def describe_config() -> str:
    """Every config key as Markdown, generated from the schema: ``config/README.md`` is this text (a test
    checks that the two agree; regenerate with ``transferlaw config-docs > config/README.md``)."""
    schema = _schema()
    lines = [
        "# Config keys",
        "",
        "Generated from `src/transferlaw/schemas/config.schema.yaml` by `transferlaw config-docs`: do not",
        "edit. A study is one YAML file (`config/config.yaml` is the embedded toy, `config/barnett2024.yaml`",
        "the paper's protocol). A dataset's `finetune` block overrides the global `finetune` block for that",
        "dataset only, as its `adaptive` block does the study's `adaptive.target` and `adaptive.budget`.",
        "",
        # the schema's own description: which defaults are the paper's, and why two are not
        " ".join(str(schema["description"]).split()),
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        if "$ref" in node:
            node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[1]], **node}
        for name, sub in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            lines.append(_key_row(key, sub, schema))
            if key in OVERRIDES:  # any key of the block it overrides, defaults from there
                continue
            if "properties" in sub or "$ref" in sub:
                walk(sub, key + ".")
            extra = sub.get("additionalProperties")
            if isinstance(extra, Mapping) and ("properties" in extra or "$ref" in extra):
                walk(extra, f"{key}.<name>.")

    walk(schema, "")
    return "\n".join(lines) + "\n"


def _key_row(key: str, node: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    if "$ref" in node:
        node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[1]], **node}
    kind = node.get("type", "object")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if "enum" in node:
        kind = " \\| ".join(f"`{v}`" for v in node["enum"])
    elif kind == "array" and isinstance(node.get("items"), Mapping) and "type" in node["items"]:
        kind = f"list of {node['items']['type']}"
    default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
    meaning = " ".join(str(node.get("description", "")).split()).replace("|", "\\|")
    return f"| `{key}` | {kind} | {default} | {meaning} |"


def _defaults(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v["default"]) for k, v in props.items() if "default" in v}


def finetune_defaults() -> dict[str, Any]:
    """The paper's fine-tuning settings, as documented in the schema."""
    return _defaults(load_schema()["definitions"]["finetune"]["properties"])


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with the schema's defaults filled in and per-dataset settings merged.

    Defaults are filled here rather than by the validator because a dataset's ``finetune`` block holds only
    *overrides* of the global ``finetune`` block; filling defaults into it would mask the global values.
    """
    schema = load_schema()
    props = schema["properties"]
    cfg = copy.deepcopy(dict(config))
    for key in ("study", "data_cache"):
        cfg.setdefault(key, props[key]["default"])
    cfg["finetune"] = {**finetune_defaults(), **cfg.get("finetune", {})}
    cfg["fit"] = {**_defaults(props["fit"]["properties"]), **cfg.get("fit", {})}
    cfg["analysis"] = {**_defaults(props["analysis"]["properties"]), **cfg.get("analysis", {})}
    cfg["allocation"] = {**_defaults(props["allocation"]["properties"]), **cfg.get("allocation", {})}
    if cfg.get("adaptive") is not None:  # nested blocks: their defaults, then the study's values
        ad_props = props["adaptive"]["properties"]
        block = cfg["adaptive"]
        cfg["adaptive"] = {**_defaults(ad_props), **block}
        for key in ("target", "budget"):  # a dataset's own `adaptive` holds overrides: not filled
            own_defaults = _defaults(schema["definitions"][f"adaptive_{key}"]["properties"])
            cfg["adaptive"][key] = {**own_defaults, **(block.get(key) or {})}
    cfg["fit"].setdefault("model", next(iter(cfg["models"])))
    # one method unless the study lists several: named after `finetune.method` (`full`, the paper's)
    cfg["methods"] = {name: dict(m or {}) for name, m in (cfg.get("methods") or {}).items()} or {
        cfg["finetune"]["method"]: {}
    }
    cfg["fit"].setdefault("method", next(iter(cfg["methods"])))  # the first in the config, before sorting
    cfg.setdefault("seeds", props["seeds"]["default"])
    if "pretrain" in cfg:
        cfg["pretrain"] = {**_defaults(props["pretrain"]["properties"]), **cfg["pretrain"]}
        cfg["pretrain"].setdefault("save_steps", log2_steps(cfg["pretrain"]["steps"]))
    model_defaults = _defaults(props["models"]["additionalProperties"]["properties"])
    cfg["models"] = {name: {**model_defaults, **m} for name, m in cfg["models"].items()}
    ds_props = props["datasets"]["additionalProperties"]["properties"]
    for name, block in cfg["datasets"].items():
        for source in ("generate", "hub"):
            if source in block:
                block[source] = {**_defaults(ds_props[source]["properties"]), **block[source]}
        cfg["datasets"][name] = {**_defaults(ds_props), **block}
    return _sorted(cfg)


def _sorted(obj: Any) -> Any:
    """A copy with every mapping's keys in sorted order.

    Jobs receive slices of the config as ``params``, and Snakemake reruns a job whose params differ;
    sorting makes them independent of the order in which a user happens to write keys or blocks.
    """
    if isinstance(obj, Mapping):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def log2_steps(last: int) -> list[int]:
    """Pythia-like log-spaced checkpoint steps: 0, 1, 2, 4, ..., and the final step."""
    steps = [0] + [2**k for k in range(int(math.log2(last)) + 1)] if last >= 1 else [0]
    return sorted(set(steps) | {last})


def revision_step(revision: str) -> int:
    """The pre-training step of a Pythia-style revision name (``step1000`` -> 1000); a config error else."""
    try:
        return _record_revision_step(revision)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def adaptive_settings(cfg: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """The study's ``adaptive`` block with the dataset's own ``target`` and ``budget`` applied key by key
    (resolved config): what the dataset's rounds stop on."""
    own = cfg["datasets"][dataset].get("adaptive") or {}
    block = dict(cfg["adaptive"])
    for key in ("target", "budget"):
        block[key] = {**block[key], **(own.get(key) or {})}
    return block


def finetune_settings(cfg: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """Global fine-tune settings with the dataset's overrides applied (resolved config): what the dataset's
    data preparation and every method's runs share."""
    return {**cfg["finetune"], **cfg["datasets"][dataset].get("finetune", {})}


#: settings a method cannot override: they make the dataset's prepared data and fine-tune subsets, which
#: every method and replicate of a cell shares (so that they differ only in how they train)
METHOD_DATA_KEYS = ("unit", "context_length", "eval_sequences", "seed")
#: settings of a LoRA run that a full fine-tune ignores (defined with the run's settings)
LORA_KEYS = LORA_FIELDS


def methods(cfg: Mapping[str, Any]) -> list[str]:
    """The study's fine-tuning methods, by name (sorted, as every mapping of a resolved config)."""
    return list(cfg["methods"])


def run_seeds(cfg: Mapping[str, Any], dataset: str) -> list[int]:
    """The seeds of a dataset's replicates: ``seeds: N`` is the dataset's ``finetune.seed`` and the N - 1
    after it (so ``seeds: 1``, the default, is the single run of a study without replicates)."""
    seeds = cfg.get("seeds", 1)
    if isinstance(seeds, int):
        base = finetune_settings(cfg, dataset)["seed"]
        return list(range(base, base + seeds))
    return sorted(int(s) for s in seeds)


def base_seed(cfg: Mapping[str, Any], dataset: str) -> int:
    """The seed of a dataset's data preparation, and of its one run per cell without replicates."""
    return int(finetune_settings(cfg, dataset)["seed"])


def run_settings(
    cfg: Mapping[str, Any], dataset: str, method: str, seed: int | None = None
) -> dict[str, Any]:
    """Everything one run trains with: the dataset's settings, then the method's overrides, with ``seed``
    (default the dataset's) as the run's seed (data order, dropout, initialisation of new parameters)."""
    if method not in cfg["methods"]:
        raise ConfigError(f"unknown method {method!r}: `methods` has {', '.join(cfg['methods'])}")
    out = {**finetune_settings(cfg, dataset), **cfg["methods"][method]}
    out["seed"] = base_seed(cfg, dataset) if seed is None else int(seed)
    return out


def remedy_keys(cfg: Mapping[str, Any], dataset: str, model: str, method: str) -> dict[str, str]:
    """The config keys that would change what the law of (dataset, model, method) is fitted to (resolved
    config), for the message of a law that cannot be fitted (:func:`transferlaw.law.fit.why_no_law`): the
    epoch cap and learning rate where its runs set them, its fine-tune sizes and the model's revisions."""

    def setting(name: str) -> str:
        if name in cfg["methods"].get(method, {}):
            return f"methods.{method}.{name}"
        own = f"datasets.{dataset}.finetune.{name}"
        if name in cfg["datasets"][dataset].get("finetune", {}):
            return own
        return f"{own} (or finetune.{name})"

    return {
        "max_epochs": setting("max_epochs"),
        "lr": setting("lr"),
        "sizes": f"datasets.{dataset}.sizes",
        "revisions": f"models.{model}.revisions",
    }


#: settings that size a job but cannot change its result: kept out of ``params`` (Snakemake reruns a job
#: whose params change), passed through the ``threads`` and ``resources`` directives instead
RESOURCE_KEYS = frozenset({"threads", "mem_mb", "runtime", "gpus", "worker"})


def job_params(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a settings block that determines a job's result (what goes into ``params``).

    A full fine-tune's result does not depend on the LoRA settings, nor on a ``method`` that says what the
    code does without it: they are left out, so a full fine-tune has the parameters it had before methods
    existed, and a study's finished runs (GPU-hours at the paper's scale) are not rerun by this code.
    """
    drop = set(RESOURCE_KEYS)
    if settings.get("method", "full") == "full":
        drop |= {"method", *LORA_KEYS}
    return {k: v for k, v in settings.items() if k not in drop}


def without_resources(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config less every resource setting: what determined the study's results."""
    out = copy.deepcopy(dict(cfg))
    for block in ("pretrain", "finetune"):
        if block in out:
            out[block] = {k: v for k, v in out[block].items() if k not in RESOURCE_KEYS}
    for ds in out.get("datasets", {}).values():
        if "finetune" in ds:
            ds["finetune"] = {k: v for k, v in ds["finetune"].items() if k not in RESOURCE_KEYS}
    for name, block in out.get("methods", {}).items():
        out["methods"][name] = {k: v for k, v in block.items() if k not in RESOURCE_KEYS}
    for model in out.get("models", {}).values():
        if "pretrain" in model:
            model["pretrain"] = {k: v for k, v in model["pretrain"].items() if k not in RESOURCE_KEYS}
    return out


def pretrain_settings(cfg: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The ``pretrain`` block with a workflow-trained model's own overrides (its size, its optimisation)."""
    return {**cfg["pretrain"], **cfg["models"][model].get("pretrain", {})}


#: the ways a dataset block can say where its text comes from (exactly one per block)
DATASET_SOURCES = ("path", "url", "hub", "generate")


def dataset_source(cfg: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """Where a dataset's text comes from and how it is read: the part of its block whose edit changes the
    text (and nothing else, so that an irrelevant key never reruns anything). A URL's ``sha256`` is not part
    of it: pinning a download checks the text, it does not change it (see :func:`check_download_pin`)."""
    from transferlaw.data.sources import detect_format

    block = cfg["datasets"][dataset]
    kind = next(k for k in DATASET_SOURCES if k in block)
    src = {kind: block[kind]}
    if kind in ("path", "url"):
        where = block[kind] if kind == "path" else Path(urlparse(block[kind]).path).name
        # an archive's format is that of its members, which the extension of the archive cannot tell
        src["format"] = block.get("format") or detect_format(block.get("members") or where)
        if src["format"] in ("jsonl", "parquet"):
            src["text_field"] = block["text_field"]
        if src["format"] in ("mbox", "maildir"):
            src["headers"] = block["headers"]
        # only when on: a FASTA study without it keeps its source, so nothing of it reruns
        if src["format"] == "fasta" and block.get("keep_lines"):
            src["keep_lines"] = True
        if "members" in block:
            src["members"] = block["members"]
    return src


def describe_dataset(cfg: Mapping[str, Any], dataset: str) -> dict[str, str]:
    """Table 1's words for a dataset: its ``source`` (the block's description, then where the text comes
    from, as the config pins it) and its ``licence`` (the block's ``licence``, or empty)."""
    block = cfg["datasets"][dataset]
    kind = next(k for k in DATASET_SOURCES if k in block)
    value = block[kind]
    if kind == "hub":
        where = f"hub dataset {value['name']}@{value['revision']}"
    elif kind == "generate":
        where = "generated: " + ", ".join(f"{k} {v}" for k, v in value.items())
    elif kind == "url":
        where = f"{value} (sha256 {block['sha256'][:12]}…)" if "sha256" in block else value
    else:
        where = value
    if "members" in block:
        where += f", members {block['members']}"
    text = f"{block['description']}; {where}" if block.get("description") else where
    return {"source": text, "licence": block.get("licence", "")}


def check_download_pin(cfg: Mapping[str, Any], dataset: str, provenance: str | Path) -> None:
    """A URL pinned by ``sha256`` against the file already downloaded for it (``provenance``, the fetch
    job's record of it, if there is one): a mismatch stops the study before any job, naming the key. The pin
    is not a parameter of the fetch (adding it must rerun nothing), so this is where it is checked at once."""
    block = cfg["datasets"][dataset]
    pinned, path = block.get("sha256"), Path(provenance)
    if "url" not in block or not pinned or not path.is_file():
        return
    record = json.loads(path.read_text())
    if record.get("url") == block["url"] and record.get("sha256") not in (None, pinned.lower()):
        raise ConfigError(
            f"datasets.{dataset}.sha256: {pinned} is not the sha256 of the file downloaded from "
            f"{block['url']} ({record['sha256']}, recorded in {path}). Fix the pin, or delete {path.parent}/"
            f"{dataset}.txt* to download the file again (a download that does not match the pin is refused)"
        )


def prepare_settings(cfg: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """What data preparation of ``dataset`` depends on, and nothing more: the fine-tune *sizes* are left
    out on purpose, so adding a size adds fine-tune jobs without re-preparing (and re-running) the rest."""
    ft = finetune_settings(cfg, dataset)
    return {
        "dataset": dataset,
        "source": dataset_source(cfg, dataset),
        "context_length": ft["context_length"],
        "eval_sequences": ft["eval_sequences"],
        "seed": ft["seed"],
    }


def model_settings(cfg: Mapping[str, Any], model: str) -> dict[str, Any]:
    """What identifies ``model``'s checkpoints in a fine-tuning job's result: its name, repo id and
    pre-training tokens per step (to convert steps to tokens). Where the files are (the cache) is not part
    of it: the job reads that, and the pinned commit, from the revision's pin."""
    m = cfg["models"][model]
    if m["source"] == "pretrain":
        pre = pretrain_settings(cfg, model)
        default_tokens = pre["batch_size"] * pre["context_length"]
        return {
            "model": model,
            "repo_id": local_repo_id(model),
            "tokens_per_step": m.get("tokens_per_step", default_tokens),
        }
    return {"model": model, "repo_id": m["repo_id"], "tokens_per_step": m["tokens_per_step"]}


def checkpoint_source(cfg: Mapping[str, Any], model: str, local_cache: str) -> dict[str, Any]:
    """Where ``model``'s revisions come from and what the integrity gate accepts (prefetch and gate rules).

    The workflow's own model lives in ``local_cache`` (the folder its pre-training rule writes); a hub model
    in its ``cache_dir`` (None: the user's Hugging Face cache).
    """
    m = cfg["models"][model]
    own = m["source"] == "pretrain"
    return {
        "model": model,
        "source": m["source"],
        "repo_id": local_repo_id(model) if own else m["repo_id"],
        "cache_dir": str(local_cache) if own else m.get("cache_dir"),
        # a rule as written: prefetch resolves it (the resolved list is in the model's manifest)
        "revisions": revision_rule(m) or list(m["revisions"]),
        "allow_identical": [list(g) for g in m.get("allow_identical", [])],
        "key": f"models.{model}",
    }


def revision_rule(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """A model block's revision rule (``revisions: {log_spaced: {...}}``), or None if it lists revisions."""
    revisions = block["revisions"]
    return dict(revisions) if isinstance(revisions, Mapping) else None


def planned_revisions(cfg: Mapping[str, Any], model: str, manifest: str | Path) -> list[str] | None:
    """The revisions a study plans for ``model``: its list, or, for a rule, the revisions `snakemake prefetch`
    resolved it to, read from the model's checkpoint ``manifest`` (every machine reads the same file, so
    the study's jobs are the ones prefetch chose; nothing is resolved again). None while the rule is
    unresolved: no manifest yet, or one that resolved another rule or repo (:func:`unresolved_message`)."""
    m = cfg["models"][model]
    rule = revision_rule(m)
    if rule is None:
        return list(m["revisions"])
    path = Path(manifest)
    if not path.is_file():
        return None
    written = json.loads(path.read_text())
    if written.get("rule") != rule or written.get("repo_id") != m["repo_id"]:
        return None
    return sorted((row["revision"] for row in written["resolution"]), key=revision_step)


def unresolved_message(cfg: Mapping[str, Any], model: str, manifest: str | Path) -> str:
    """Why ``model``'s revisions are not known yet, and what to run."""
    from transferlaw.train.revisions import describe_rule

    what = describe_rule(revision_rule(cfg["models"][model]))
    state = (
        "resolved another rule or repo: the rule was changed since"
        if Path(manifest).is_file()
        else "does not exist yet"
    )
    return (
        f"models.{model}.revisions is a rule ({what}) that `snakemake prefetch` has not resolved: {manifest} "
        f"{state}. Run `snakemake prefetch` (with the same config) where the hub can be reached, or with "
        "HF_HUB_OFFLINE=1 on a cache you filled: it resolves each target step to the nearest revision that "
        "passes the integrity gate and writes the manifest, which every later run reads"
    )


def revision_source(cfg: Mapping[str, Any], model: str, local_cache: str) -> dict[str, Any]:
    """What one revision's pin depends on: the model's :func:`checkpoint_source` without the list of its
    revisions and the groups accepted as identical. Adding a revision (or accepting a group) must not rewrite
    the pins of the others, which every finished run of theirs depends on."""
    src = checkpoint_source(cfg, model, local_cache)
    return {k: v for k, v in src.items() if k not in ("revisions", "allow_identical")}


def local_repo_id(model: str) -> str:
    """Repo id under which the workflow's own pre-trained model is laid out in its Hugging Face cache."""
    return f"transferlaw/{model}"


def local_ref(local_cache: str, model: str, revision: str) -> str:
    """The ref file of a revision of the workflow's own model in ``local_cache``, the Hugging Face cache its
    pre-training rule writes (what fine-tune jobs depend on)."""
    from transferlaw.train.hub import ref_path

    return ref_path(local_cache, local_repo_id(model), revision).as_posix()


def required_tokens(sizes: list[int], unit: str, context_length: int, eval_sequences: int) -> int:
    """Tokens a dataset needs: the eval split plus the largest fine-tune subset, in whole sequences."""
    from transferlaw.data.prepare import pool_needed

    return (pool_needed(sizes, unit, context_length) + eval_sequences) * context_length


def check_study(cfg: Mapping[str, Any], root: str | Path = ".") -> None:
    """Semantic checks of a resolved config, run when the workflow is parsed (before any job).

    Checks that need the tokenizer (the exact token count of a dataset) happen in the data-preparation job,
    which every fine-tune job of that dataset waits for.
    """
    root = Path(root)
    models = cfg["models"]
    if any(m["source"] == "pretrain" for m in models.values()) and "pretrain" not in cfg:
        raise ConfigError("models: a model has `source: pretrain` but the config has no `pretrain` block")
    from transferlaw.law.forms import get_form

    try:
        get_form(cfg["fit"]["form"])
    except ValueError as err:
        raise ConfigError(f"fit.form: {err}") from err
    target = cfg["analysis"]["advice_target"]
    if target not in get_form(cfg["fit"]["form"]).param_names:
        raise ConfigError(
            f"analysis.advice_target: {target!r} is not a parameter of fit.form {cfg['fit']['form']!r} "
            f"({', '.join(get_form(cfg['fit']['form']).param_names)})"
        )
    if cfg["fit"]["model"] not in models:
        raise ConfigError(
            f"fit.model: {cfg['fit']['model']!r} is not a key of `models` ({', '.join(models)})"
        )
    _check_methods(cfg)
    _check_adaptive(cfg)
    if "pretrain" in cfg:
        pre = cfg["pretrain"]
        _check_file(root, pre["corpus"], "pretrain.corpus")
        bad = [s for s in pre["save_steps"] if s > pre["steps"]]
        if bad:
            raise ConfigError(f"pretrain.save_steps: {bad} exceed pretrain.steps = {pre['steps']}")
        if pre["hidden_size"] % pre["num_attention_heads"]:
            raise ConfigError("pretrain.hidden_size must be a multiple of pretrain.num_attention_heads")
    for name, m in models.items():
        key = f"models.{name}"
        if "pretrain" in m:
            _check_model_pretrain(cfg, name)
        if revision_rule(m):
            _check_rule(m, key)
            continue
        for rev in m["revisions"]:
            revision_step(rev)
        unknown = sorted({r for group in m.get("allow_identical", []) for r in group} - set(m["revisions"]))
        if unknown:
            raise ConfigError(f"{key}.allow_identical: {', '.join(unknown)} not in {key}.revisions")
        if m["source"] == "pretrain":
            saved = {f"step{s}" for s in cfg["pretrain"]["save_steps"]}
            unknown = [r for r in m["revisions"] if r not in saved]
            if unknown:
                raise ConfigError(
                    f"{key}.revisions: {', '.join(unknown)} not saved by the pretrain rule "
                    f"(pretrain.save_steps gives {', '.join(sorted(saved, key=revision_step))})"
                )
        else:
            # the revisions themselves are checked by the prefetch and gate jobs, which need no GPU and run
            # before any fine-tuning job: a machine without the checkpoints can still plan the study
            for field in ("repo_id", "tokens_per_step"):
                if field not in m:
                    raise ConfigError(f"{key}.{field} is required for a hub model")
    for name in cfg["datasets"]:
        key = f"datasets.{name}"
        _check_dataset(cfg, name, root)
        ft = finetune_settings(cfg, name)
        for mname, m in models.items():
            if m["source"] == "pretrain" and ft["context_length"] > cfg["pretrain"]["context_length"]:
                raise ConfigError(
                    f"{key}: finetune.context_length {ft['context_length']} exceeds the context of model "
                    f"{mname!r} (pretrain.context_length = {cfg['pretrain']['context_length']})"
                )


def _check_adaptive(cfg: Mapping[str, Any]) -> None:
    """An adaptive study (``adaptive``, resolved): values the schema cannot judge, and a study it can run
    (one model and one method: the rounds choose the main law's runs)."""
    from transferlaw.law.adaptive import Settings

    if cfg.get("adaptive") is None:
        for name, block in cfg["datasets"].items():
            if block.get("adaptive") is not None:
                raise ConfigError(
                    f"datasets.{name}.adaptive: overrides the study's `adaptive` block, and this study has "
                    "none (it runs its whole grid): add a top-level `adaptive`, or remove the dataset's"
                )
        return
    try:
        Settings.from_config(cfg["adaptive"])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    settings = {}
    for name in cfg["datasets"]:
        try:
            settings[name] = Settings.from_config(adaptive_settings(cfg, name))
        except ValueError as err:  # the study's block passed: the dataset's own value is the culprit
            raise ConfigError(f"datasets.{name}.{err}") from None
    if len(cfg["models"]) > 1 or len(cfg["methods"]) > 1:
        raise ConfigError(
            f"adaptive: an adaptive study chooses the runs of one model and one method; this one has "
            f"{len(cfg['models'])} model(s) ({', '.join(cfg['models'])}) and {len(cfg['methods'])} method(s) "
            f"({', '.join(cfg['methods'])}): keep one of each, or remove `adaptive`"
        )
    model = cfg["models"][cfg["fit"]["model"]]
    if revision_rule(model):
        return  # the grid is known once `snakemake prefetch` has resolved the rule; round 0 checks it then
    for name in cfg["datasets"]:
        own = settings[name]
        cells = len(model["revisions"]) * len(cfg["datasets"][name]["sizes"])
        first = cells * len(run_seeds(cfg, name)) if own.initial == "grid" else int(own.initial)
        if own.initial != "grid" and first > cells:
            raise ConfigError(
                f"adaptive.initial: {first} runs, but dataset {name!r} has only {cells} cells "
                f"({len(model['revisions'])} revisions x {len(cfg['datasets'][name]['sizes'])} sizes)"
            )
        if own.budget_runs is not None and own.budget_runs < first:
            dataset_own = "runs" in ((cfg["datasets"][name].get("adaptive") or {}).get("budget") or {})
            key = f"datasets.{name}.adaptive.budget.runs" if dataset_own else "adaptive.budget.runs"
            raise ConfigError(
                f"{key}: {own.budget_runs} runs, fewer than the {first} of the first "
                f"round (adaptive.initial) of dataset {name!r}"
            )


def _check_rule(m: Mapping[str, Any], key: str) -> None:
    """A model whose ``revisions`` is a rule: a hub model (prefetch resolves it), bounds in order, and no
    ``allow_identical`` (a rule resolves to revisions that pass the gate: there is nothing to accept)."""
    spec = m["revisions"]["log_spaced"]
    if m["source"] != "hub":
        raise ConfigError(
            f"{key}.revisions: a rule is resolved against a hub repo by `snakemake prefetch`; list the "
            "revisions of a `source: pretrain` model (from pretrain.save_steps)"
        )
    if spec["first"] >= spec["last"]:
        raise ConfigError(
            f"{key}.revisions.log_spaced: first ({spec['first']}) must be below last ({spec['last']})"
        )
    if m.get("allow_identical"):
        raise ConfigError(
            f"{key}.allow_identical: a rule resolves to revisions that pass the gate, so there is no group "
            "to accept; list the revisions instead to fine-tune identical ones"
        )
    for field in ("repo_id", "tokens_per_step"):
        if field not in m:
            raise ConfigError(f"{key}.{field} is required for a hub model")


def _check_methods(cfg: Mapping[str, Any]) -> None:
    """The methods: the main one exists, none changes the data, `full` is full fine-tuning, and LoRA's target
    modules exist in the workflow's own models (a hub model's are checked when its run starts)."""
    names = methods(cfg)
    if cfg["fit"]["method"] not in cfg["methods"]:
        raise ConfigError(
            f"fit.method: {cfg['fit']['method']!r} is not a method of the study ({', '.join(names)})"
        )
    for ds, block in cfg["datasets"].items():
        if "method" in block.get("finetune", {}):
            raise ConfigError(
                f"datasets.{ds}.finetune.method: a study's methods are listed under `methods:` and run on "
                "every "
                "dataset; a dataset cannot change its method"
            )
    from transferlaw.train.pretrain import GPT_NEOX_LINEAR

    own = [m for m, block in cfg["models"].items() if block["source"] == "pretrain"]
    for name, overrides in cfg["methods"].items():
        key = f"methods.{name}"
        data = [k for k in METHOD_DATA_KEYS if k in overrides]
        if data:
            raise ConfigError(
                f"{key}.{data[0]}: a method cannot change the data its runs share with the other methods "
                f"({', '.join(METHOD_DATA_KEYS)}); set it under `finetune:` or a dataset's `finetune:`"
            )
        for ds in cfg["datasets"]:
            settings = run_settings(cfg, ds, name)
            if name == "full" and settings["method"] != "full":
                raise ConfigError(
                    f"{key}.method: the name `full` means full fine-tuning (method: full), not "
                    f"{settings['method']!r}; give this method another name"
                )
            if settings["method"] == "lora" and own:
                unknown = sorted(set(settings["lora_target_modules"]) - set(GPT_NEOX_LINEAR))
                if unknown:
                    raise ConfigError(
                        f"{key}.lora_target_modules: {', '.join(unknown)} not a linear module of the "
                        "workflow's "
                        f"GPT-NeoX ({', '.join(GPT_NEOX_LINEAR)})"
                    )


def _check_model_pretrain(cfg: Mapping[str, Any], model: str) -> None:
    """A workflow-trained model's own `pretrain` overrides: only for `source: pretrain`, and valid as a
    `pretrain` block (the schema's types and bounds) once merged."""
    import jsonschema

    key = f"models.{model}.pretrain"
    if cfg["models"][model]["source"] != "pretrain":
        raise ConfigError(f"{key}: only a model with `source: pretrain` is pre-trained by the workflow")
    merged = pretrain_settings(cfg, model)
    try:
        jsonschema.validate(merged, load_schema()["properties"]["pretrain"])
    except jsonschema.ValidationError as err:
        where = ".".join(str(p) for p in err.absolute_path)
        raise ConfigError(f"{key}.{where}: {err.message}") from None
    if merged["hidden_size"] % merged["num_attention_heads"]:
        raise ConfigError(f"{key}: hidden_size must be a multiple of num_attention_heads")


def _check_dataset(cfg: Mapping[str, Any], name: str, root: Path) -> None:
    """One dataset block: exactly one source, a readable format, and (for local text files) enough bytes
    for its largest size, by a bound that needs no tokenizer."""
    from transferlaw.data.sources import text_bytes_bound_ok

    block, key = cfg["datasets"][name], f"datasets.{name}"
    given = [k for k in DATASET_SOURCES if k in block]
    if len(given) != 1:
        raise ConfigError(
            f"{key}: give exactly one of {', '.join(f'`{k}`' for k in DATASET_SOURCES)}"
            + (f" (it has {', '.join(given)})" if given else "")
        )
    kind = given[0]
    if "format" in block and kind not in ("path", "url"):
        raise ConfigError(f"{key}.format applies to `path` and `url` datasets, not to `{kind}`")
    if "members" in block and kind not in ("path", "url"):
        raise ConfigError(f"{key}.members applies to `path` and `url` datasets, not to `{kind}`")
    if block.get("keep_lines") and dataset_source(cfg, name).get("format") != "fasta":
        what = dataset_source(cfg, name).get("format") or f"a `{kind}` dataset"
        raise ConfigError(f"{key}.keep_lines applies to fasta files; this dataset is read as {what}")
    if kind == "path":
        rel = block["path"]
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        if not path.exists():
            raise ConfigError(f"{key}.path: file not found: {rel}")
    if kind in ("path", "url"):
        try:
            fmt = dataset_source(cfg, name)["format"]
        except ValueError as err:  # DataError: an extension that does not tell the format
            raise ConfigError(f"{key}.{kind}: {err}") from err
    if kind != "path" or "members" in block:
        return  # an archive: what its members hold is known once they are read
    if path.is_dir() != (fmt == "maildir"):
        what = "a folder" if path.is_dir() else "a file"
        raise ConfigError(f"{key}.path: {rel} is {what}, which format {fmt!r} cannot read")
    if path.is_dir():
        return
    if path.stat().st_size == 0:
        raise ConfigError(f"{key}.path: file is empty: {rel}")
    if not text_bytes_bound_ok(fmt):
        return  # parquet: columns are compressed; the exact count is checked by the data-preparation job
    ft = finetune_settings(cfg, name)
    need = required_tokens(block["sizes"], ft["unit"], ft["context_length"], ft["eval_sequences"])
    # A byte-level tokenizer never makes more tokens than there are bytes of text, and these formats never
    # extract more text than the file holds, so this bound is safe; the exact count is checked by the
    # data-preparation job once the tokenizer exists.
    raw = text_bytes(path, limit=need)
    if raw < need:
        raise ConfigError(
            f"{key}.path: {rel} has {raw} bytes of text, fewer than the {need} tokens the "
            f"eval split ({ft['eval_sequences']} sequences) plus the largest size "
            f"({max(block['sizes'])} {ft['unit']}) need at context length {ft['context_length']}"
        )


def _check_file(root: Path, rel: str, key: str) -> Path:
    path = Path(rel) if Path(rel).is_absolute() else root / rel
    if not path.is_file():
        raise ConfigError(f"{key}: file not found: {rel}")
    if path.stat().st_size == 0:
        raise ConfigError(f"{key}: file is empty: {rel}")
    return path


def text_bytes(path: Path, limit: int | None = None) -> int:
    """Bytes of (decompressed) text in ``path``, counting no further than ``limit``."""
    from transferlaw.data.prepare import open_text_binary

    n = 0
    with open_text_binary(path) as fh:
        while chunk := fh.read(1 << 20):
            n += len(chunk)
            if limit is not None and n >= limit:
                break
    return n


def load_config(path: str | Path, root: str | Path | None = None) -> dict[str, Any]:
    """Load, validate, resolve and check a config file outside Snakemake (tests, notebooks)."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text())
    validate_schema(raw)
    cfg = resolve(raw)
    check_study(cfg, root if root is not None else Path.cwd())
    return cfg
