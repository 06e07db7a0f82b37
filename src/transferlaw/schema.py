"""The run record: one row per fine-tuning run, defined once and validated everywhere.

Every fine-tuning job writes exactly one record; aggregation, fitting, bootstrap and figures read these
columns by name. Changing a column means changing it here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported by the functions that build or read tables, not here: every fine-tuning job's client
# imports this module (through transferlaw.config) for its statuses and revision names, and pandas would be
# most of its start-up (0.4-0.6 s of CPU a job, of a client that otherwise imports next to nothing)

#: Status of a run whose minimum eval loss is usable for fitting (early stopping triggered).
STATUS_OK = "ok"
#: The run hit ``max_epochs`` before early stopping triggered: its loss is only an upper bound.
STATUS_MAX_EPOCHS = "max_epochs"
#: A non-finite training or eval loss appeared.
STATUS_DIVERGED = "diverged"
STATUSES = (STATUS_OK, STATUS_MAX_EPOCHS, STATUS_DIVERGED)

_STEP = re.compile(r"^step(\d+)$")


def revision_step(revision: str) -> int:
    """The pre-training step of a Pythia-style revision name (``step1000`` -> 1000): the record's
    ``pretrain_step`` of a run at that revision. Raises ValueError for any other name."""
    m = _STEP.match(revision)
    if not m:
        raise ValueError(f"revision {revision!r} is not of the form 'step<N>'")
    return int(m.group(1))


#: Column name -> (arrow type, description). Order is the column order of every record file.
RECORD_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "dataset": (pa.string(), "downstream dataset name (config key under `datasets`)"),
    "model": (pa.string(), "model name (config key under `models`)"),
    "revision": (pa.string(), "checkpoint revision, Pythia-style (`step0`, `step1`, ...)"),
    "revision_sha": (pa.string(), "commit the revision was pinned to and loaded from (40 hex digits)"),
    "pretrain_step": (pa.int64(), "pre-training optimizer steps of the checkpoint"),
    "pretrain_tokens": (pa.int64(), "pre-training tokens seen by the checkpoint (steps x tokens per step)"),
    "finetune_unit": (pa.string(), "unit of `finetune_size`: `sequences` or `tokens`"),
    "finetune_size": (pa.int64(), "fine-tune data size in the study's unit (the law's f)"),
    "finetune_sequences": (pa.int64(), "number of (context-length) sequences fine-tuned on"),
    "finetune_tokens": (pa.int64(), "number of tokens fine-tuned on (one epoch)"),
    "context_length": (pa.int64(), "tokens per sequence"),
    "seed": (
        pa.int64(),
        "seed of the run (data order, dropout, initialisation of new parameters): a replicate",
    ),
    "method": (pa.string(), "fine-tuning method's name (config key under `methods`; `full` without one)"),
    "finetune_method": (pa.string(), "what the method trains: `full` (every parameter) or `lora` (adapters)"),
    "lora_rank": (pa.int64(), "LoRA: rank of the adapters (0 for a full fine-tune)"),
    "lora_alpha": (pa.float64(), "LoRA: scale alpha of the adapters (0 for a full fine-tune)"),
    "lora_dropout": (pa.float64(), "LoRA: dropout on the adapters' input (0 for a full fine-tune)"),
    "lora_target_modules": (
        pa.string(),
        "LoRA: modules adapted, comma-separated (empty for a full fine-tune)",
    ),
    "eval_loss": (
        pa.float64(),
        "minimum over epochs of the mean token cross-entropy on the eval split, nats",
    ),
    "initial_eval_loss": (pa.float64(), "eval loss of the checkpoint before any fine-tuning, nats"),
    "eval_tokens": (pa.int64(), "number of predicted tokens in the eval split"),
    "best_epoch": (pa.int64(), "epoch (1-based) that reached `eval_loss`"),
    "epochs": (pa.int64(), "epochs trained before early stopping or the cap"),
    "optimizer_steps": (pa.int64(), "optimizer updates performed"),
    "train_loss": (pa.float64(), "mean training loss over the best epoch, nats"),
    "n_params": (pa.int64(), "parameters of the model (all, embeddings included; without LoRA's adapters)"),
    "trainable_params": (
        pa.int64(),
        "parameters trained: n_params for a full fine-tune, the adapters' for LoRA",
    ),
    "flops": (
        pa.float64(),
        "training compute, (4 x n_params + 2 x trainable_params) x tokens trained (epochs x "
        "finetune_tokens): forward and input gradients through every weight, weight gradients for the "
        "trained ones (6 N D when all are)",
    ),
    "wall_seconds": (pa.float64(), "wall time of the run (load, train, eval)"),
    "device_name": (pa.string(), "device the run trained on: `cpu`, or the GPU's name"),
    "precision": (pa.string(), "matmul precision used: `fp32`, or `bf16` (autocast over the master weights)"),
    "weights_dtype": (pa.string(), "dtype of the master weights and optimizer state (`float32`, ...)"),
    "attention": (pa.string(), "attention kernel used (`sdpa`, `eager`)"),
    "optimizer": (pa.string(), "optimizer implementation used (`adamw`, `adamw-fused`)"),
    "tf32": (pa.bool_(), "whether float32 matmuls on the GPU used TF32 tensor cores"),
    "gradient_checkpointing": (pa.bool_(), "whether activations were recomputed in the backward pass"),
    "versions": (pa.string(), "library versions of the run (torch, CUDA, transformers)"),
    "status": (pa.string(), f"one of {', '.join(STATUSES)}; only `{STATUS_OK}` runs are fitted"),
    "eval_curve": (pa.list_(pa.float64()), "eval loss after each epoch"),
}

RECORD_SCHEMA = pa.schema(
    [pa.field(name, dtype, nullable=False) for name, (dtype, _) in RECORD_COLUMNS.items()]
)

_INT = {n for n, (t, _) in RECORD_COLUMNS.items() if pa.types.is_integer(t)}
_FLOAT = {n for n, (t, _) in RECORD_COLUMNS.items() if pa.types.is_floating(t)}
_STR = {n for n, (t, _) in RECORD_COLUMNS.items() if pa.types.is_string(t)}
_BOOL = {n for n, (t, _) in RECORD_COLUMNS.items() if pa.types.is_boolean(t)}


class RecordError(ValueError):
    """A run record (or a table of them) does not match :data:`RECORD_SCHEMA`."""


def validate_records(df: pd.DataFrame, source: str = "records") -> pd.DataFrame:
    """Check a table of run records against the schema and return it with canonical column order and types.

    Raises :class:`RecordError` naming the file (``source``) and the offending column.
    """
    import pandas as pd

    missing = [c for c in RECORD_COLUMNS if c not in df.columns]
    if missing:
        raise RecordError(f"{source}: missing column(s) {', '.join(missing)}")
    extra = [c for c in df.columns if c not in RECORD_COLUMNS]
    if extra:
        raise RecordError(f"{source}: unknown column(s) {', '.join(extra)}")
    for col in RECORD_COLUMNS:
        # float columns may be NaN (a diverged run has no finite loss); nothing else may be missing
        if col not in _FLOAT and df[col].isna().any():
            raise RecordError(f"{source}: column {col!r} has missing values")
    for col in _INT:
        if not pd.api.types.is_integer_dtype(df[col]):
            raise RecordError(f"{source}: column {col!r} must be integer, got {df[col].dtype}")
    for col in _FLOAT:
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise RecordError(f"{source}: column {col!r} must be numeric, got {df[col].dtype}")
    for col in _STR:
        if not all(isinstance(v, str) for v in df[col]):
            raise RecordError(f"{source}: column {col!r} must hold strings")
    for col in _BOOL:
        if not pd.api.types.is_bool_dtype(df[col]):
            raise RecordError(f"{source}: column {col!r} must be boolean, got {df[col].dtype}")
    bad_status = sorted(set(df["status"]) - set(STATUSES))
    if bad_status:
        raise RecordError(f"{source}: column 'status' has unknown value(s) {bad_status}")
    for col in ("pretrain_step", "pretrain_tokens", "finetune_size", "finetune_sequences", "finetune_tokens"):
        if (df[col] < 0).any():
            raise RecordError(f"{source}: column {col!r} has negative values")
    ok = df["status"] == STATUS_OK
    if ok.any() and not np.isfinite(df.loc[ok, "eval_loss"].astype(float)).all():
        raise RecordError(f"{source}: column 'eval_loss' must be finite for runs with status '{STATUS_OK}'")
    if not set(df["finetune_unit"]) <= {"sequences", "tokens"}:
        raise RecordError(f"{source}: column 'finetune_unit' must be 'sequences' or 'tokens'")
    out = df[list(RECORD_COLUMNS)].copy()
    for col in _INT:
        out[col] = out[col].astype("int64")
    for col in _FLOAT:
        out[col] = out[col].astype("float64")
    return out.reset_index(drop=True)


#: columns added after records were first written, with the value every earlier record implicitly had
#: (the run was a full fine-tune): read_records fills them, so earlier studies' records stay readable
LATER_COLUMNS: dict[str, Any] = {
    "method": "full",
    "finetune_method": "full",
    "lora_rank": 0,
    "lora_alpha": 0.0,
    "lora_dropout": 0.0,
    "lora_target_modules": "",
    "trainable_params": "n_params",  # every parameter was trained
}


def upgrade_records(df: pd.DataFrame) -> pd.DataFrame:
    """Records written before :data:`LATER_COLUMNS` existed, with the values those runs had."""
    missing = [c for c in LATER_COLUMNS if c not in df.columns]
    if not missing or "n_params" not in df.columns:
        return df
    df = df.copy()
    for col in missing:
        value = LATER_COLUMNS[col]
        df[col] = df[value] if value == "n_params" else value
    return df


def records_frame(rows: Sequence[Mapping[str, Any]], source: str = "records") -> pd.DataFrame:
    """Build a validated records table from dicts (one per run)."""
    import pandas as pd

    return validate_records(pd.DataFrame(list(rows)), source)


def to_arrow(df: pd.DataFrame, source: str = "records") -> pa.Table:
    """Validated records as an Arrow table with exactly :data:`RECORD_SCHEMA`.

    A float column keeps NaN as NaN (a diverged run's loss), not as a missing value: pandas' conversion
    would make it null, which the schema (every column required) refuses.
    """
    df = validate_records(df, source)
    columns = [
        pa.array(df[name].to_numpy(), type=field.type, from_pandas=name not in _FLOAT)
        for name, field in zip(RECORD_SCHEMA.names, RECORD_SCHEMA, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=RECORD_SCHEMA)


def write_records(df: pd.DataFrame, path: str, source: str | None = None) -> None:
    """Validate and write a records table as parquet, atomically."""
    import pyarrow.parquet as pq

    from transferlaw.io import atomic_path

    table = to_arrow(df, source or path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_records(paths: str | Sequence[str]) -> pd.DataFrame:
    """Read and validate one or more record files into one table (sorted for reproducibility)."""
    import pandas as pd

    if isinstance(paths, str):
        paths = [paths]
    frames = [validate_records(upgrade_records(_read_parquet(p)), p) for p in paths]
    if not frames:
        return validate_records(pd.DataFrame({c: [] for c in RECORD_COLUMNS}).astype(_empty_dtypes()))
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(
        ["dataset", "model", "method", "pretrain_step", "finetune_size", "seed"], kind="stable"
    ).reset_index(drop=True)


def _read_parquet(path: str) -> pd.DataFrame:
    """One record file; a truncated or corrupt one is named, with what to do about it."""
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise RecordError(
            f"{path}: unreadable record ({type(err).__name__}: {err}); delete it to rerun that run"
        ) from err


def fit_uses(
    runs: pd.DataFrame,
    *,
    dataset: Any = None,
    model: str | None = None,
    method: str | None = None,
    status: str | None = "status",
    usable: bool = True,
) -> np.ndarray:
    """Which runs of a table a law is fitted to, as a boolean mask: the one place that decides it, for the
    fit, its bootstrap, cross-validation and advice, its figures, tables and effective data.

    A law of (``dataset``, ``model``, ``method``) uses that dataset's, model's and method's runs (each where
    given and where the table has the column: a table of runs from elsewhere may lack them), and of those
    the usable ones: ``status`` ``"ok"`` where the table has the ``status`` column (a run stopped at the
    epoch cap has only an upper bound, a diverged one no loss). ``usable=False`` keeps every run of the
    selection, whatever its status: what figures draw (capped runs as open markers) and messages count."""
    keep = np.ones(len(runs), bool)
    for column, value in (("dataset", dataset), ("model", model), ("method", method)):
        if value is not None and column in runs.columns:
            keep &= (runs[column] == value).to_numpy()
    if usable and status is not None and status in runs.columns:
        keep &= (runs[status] == STATUS_OK).to_numpy()
    return keep


def read_model_runs(path: str, model: str, method: str | None = None) -> pd.DataFrame:
    """The validated runs of one model (and method, where given) from a per-dataset table: what its law is
    fitted to (and what the bootstrap, cross-validation and figures of that fit use), every replicate, of
    every status (:func:`fit_uses`)."""
    runs = read_records(path)
    return runs[fit_uses(runs, model=model, method=method, usable=False)].reset_index(drop=True)


def _empty_dtypes() -> dict[str, str]:
    kinds = {
        **dict.fromkeys(_INT, "int64"),
        **dict.fromkeys(_FLOAT, "float64"),
        **dict.fromkeys(_BOOL, "bool"),
    }
    return {c: kinds.get(c, "object") for c in RECORD_COLUMNS}


def describe_schema() -> str:
    """The schema as a Markdown table (the README's table; printed by `transferlaw schema`)."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{n}` | {t} | {d} |" for n, (t, d) in RECORD_COLUMNS.items()]
    return "\n".join(lines)
