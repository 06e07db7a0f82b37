import math

import numpy as np
import pandas as pd
import pytest

from transferlaw.io import atomic_path, write_json
from transferlaw.schema import RECORD_COLUMNS, RecordError, read_records, records_frame, write_records


def record(**over):
    row = {
        "dataset": "d",
        "model": "m",
        "revision": "step4",
        "revision_sha": "4" * 40,
        "pretrain_step": 4,
        "pretrain_tokens": 4096,
        "finetune_unit": "sequences",
        "finetune_size": 8,
        "finetune_sequences": 8,
        "finetune_tokens": 512,
        "context_length": 64,
        "seed": 0,
        "method": "full",
        "finetune_method": "full",
        "lora_rank": 0,
        "lora_alpha": 0.0,
        "lora_dropout": 0.0,
        "lora_target_modules": "",
        "eval_loss": 3.2,
        "initial_eval_loss": 4.0,
        "eval_tokens": 630,
        "best_epoch": 3,
        "epochs": 6,
        "optimizer_steps": 6,
        "train_loss": 2.9,
        "n_params": 1000,
        "trainable_params": 1000,
        "flops": 6.0 * 1000 * 512 * 6,
        "wall_seconds": 1.5,
        "device_name": "cpu",
        "precision": "fp32",
        "weights_dtype": "float32",
        "attention": "sdpa",
        "optimizer": "adamw",
        "tf32": False,
        "gradient_checkpointing": False,
        "versions": "torch=2.13.0",
        "status": "ok",
        "eval_curve": [3.5, 3.3, 3.2],
    }
    row.update(over)
    return row


def test_round_trip_preserves_every_column(tmp_path):
    df = records_frame([record(), record(finetune_size=16, eval_loss=3.0)])
    path = tmp_path / "r.parquet"
    write_records(df, str(path))
    back = read_records(str(path))
    assert list(back.columns) == list(RECORD_COLUMNS)
    assert back["eval_loss"].tolist() == [3.2, 3.0]
    assert list(back["eval_curve"][0]) == [3.5, 3.3, 3.2]


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        ({"status": "weird"}, "status"),
        ({"pretrain_step": -1}, "pretrain_step"),
        ({"finetune_unit": "bytes"}, "finetune_unit"),
        ({"eval_loss": math.nan}, "eval_loss"),
        ({"dataset": None}, "dataset"),
        ({"tf32": "yes"}, "tf32"),
    ],
)
def test_bad_values_name_the_column(change, culprit):
    with pytest.raises(RecordError, match=culprit):
        records_frame([record(**change)])


def test_missing_and_unknown_columns_are_named():
    df = pd.DataFrame([record()])
    with pytest.raises(RecordError, match="missing column.*eval_loss"):
        records_frame(df.drop(columns="eval_loss").to_dict("records"))
    with pytest.raises(RecordError, match="unknown column.*extra"):
        records_frame([record(extra=1)])


def test_integer_columns_must_be_integers():
    with pytest.raises(RecordError, match="finetune_size"):
        records_frame([record(finetune_size=8.5)])


def test_diverged_run_may_have_nan_loss():
    df = records_frame([record(status="diverged", eval_loss=math.nan, train_loss=math.nan)])
    assert np.isnan(df["eval_loss"][0])


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []
    write_json({"a": np.float64(1.5)}, dest)
    assert dest.read_text().strip().startswith("{")


def test_schema_command_prints_every_column(capsys):
    from transferlaw.cli import main

    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert all(f"| `{c}` |" in out for c in RECORD_COLUMNS)


def test_read_model_runs_validates_and_keeps_one_model(tmp_path):
    from transferlaw.schema import read_model_runs

    path = tmp_path / "runs.parquet"
    write_records(records_frame([record(model="a"), record(model="b", eval_loss=2.0)]), str(path))
    runs = read_model_runs(str(path), "b")
    assert runs["model"].tolist() == ["b"] and runs["eval_loss"].tolist() == [2.0]
    pd.DataFrame([record()]).drop(columns="seed").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(RecordError, match="seed"):
        read_model_runs(str(tmp_path / "bad.parquet"), "m")


def test_readme_documents_the_record_schema_as_defined():
    from conftest import REPO

    from transferlaw.schema import describe_schema

    assert describe_schema() in (REPO / "README.md").read_text()
