import math

import numpy as np
import pytest
from conftest import REPO

from transferlaw.schema import STATUS_MAX_EPOCHS, STATUS_OK
from transferlaw.train.finetune import EarlyStopping, evaluate, finetune


def test_early_stopping_waits_patience_epochs_after_the_minimum():
    stop = EarlyStopping(patience=3)
    decisions = [stop.update(x) for x in [5.0, 4.0, 3.0, 3.5, 3.1, 2.9, 3.0, 2.9, 3.0]]
    # a tie is not an improvement: stops on the third epoch without a new minimum after 2.9 (epoch 6)
    assert decisions == [False] * 8 + [True]
    assert stop.best == 2.9 and stop.best_epoch == 6


def test_early_stopping_patience_one():
    stop = EarlyStopping(patience=1)
    assert not stop.update(2.0)
    assert stop.update(2.5)
    assert stop.best_epoch == 1


def settings(**over):
    from transferlaw.config import finetune_defaults
    from transferlaw.train.finetune import FinetuneSettings

    base = {
        **finetune_defaults(),
        "lr": 1e-2,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.0,
        "micro_batch": 4,
        "grad_accum": 2,
        "patience": 2,
        "max_epochs": 30,
        "eval_batch": 8,
        "seed": 0,
    }
    base.update(over)
    return FinetuneSettings.from_config(base)


def test_a_run_s_settings_come_from_the_resolved_config_and_say_what_is_wrong():
    import dataclasses

    import yaml

    from transferlaw.config import finetune_defaults, job_params, resolve, run_settings
    from transferlaw.train.finetune import SIZING_KEYS, FinetuneSettings

    cfg = resolve(yaml.safe_load((REPO / "tests/config/small.yaml").read_text()))
    block = {**job_params(run_settings(cfg, "devils-dictionary", "full")), "threads": 1}  # what a job passes
    s = FinetuneSettings.from_config(block)
    assert (s.lr, s.max_epochs, s.betas, s.method, s.threads) == (1e-2, 40, (0.9, 0.999), "full", 1)
    assert FinetuneSettings.from_config(s.asdict()) == s
    assert FinetuneSettings.from_config(finetune_defaults()) == FinetuneSettings()  # the schema's defaults
    assert isinstance(FinetuneSettings().lora_alpha, float)
    assert set(SIZING_KEYS) == {"mem_mb", "runtime", "gpus", "worker"}  # accepted, and left out
    with pytest.raises(ValueError, match=r"unknown key\(s\) 'learning_rate'"):
        FinetuneSettings.from_config({**block, "learning_rate": 1e-3})
    with pytest.raises(ValueError, match=r"missing key\(s\) 'patience'"):
        FinetuneSettings.from_config({k: v for k, v in block.items() if k != "patience"})
    with pytest.raises(ValueError, match=r"missing key\(s\) 'lora_rank'.*LoRA run"):
        FinetuneSettings.from_config({**block, "method": "lora"})
    with pytest.raises(ValueError, match="'max_epochs': expected int, got 2.5"):
        FinetuneSettings.from_config({**block, "max_epochs": 2.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 1.0


def corpus(tokenizer, n, ctx=32):
    from transferlaw.data.prepare import make_sequences, read_text, tokenize

    text = read_text(REPO / "resources/datasets/devils_dictionary.txt.xz")[:30_000]
    return make_sequences(tokenize(text, tokenizer), ctx)[:n]


def test_finetune_lowers_eval_loss_and_stops(tiny_model, tiny_tokenizer):
    seqs = corpus(tiny_tokenizer, 40)
    train, ev = list(seqs[:16]), seqs[16:24]
    out = finetune(tiny_model, train, ev, settings())
    assert out["eval_loss"] < out["initial_eval_loss"] - 1.0
    assert out["status"] == STATUS_OK
    assert out["eval_loss"] == min(out["eval_curve"])
    assert out["best_epoch"] == int(np.argmin(out["eval_curve"])) + 1
    assert out["epochs"] == out["best_epoch"] + 2  # patience 2
    # 16 sequences / micro-batch 4 = 4 micro-batches, 2 per optimizer step
    assert out["optimizer_steps"] == 2 * out["epochs"]
    assert out["eval_tokens"] == 8 * 31


def test_epoch_cap_is_reported(tiny_model, tiny_tokenizer):
    seqs = corpus(tiny_tokenizer, 24)
    out = finetune(tiny_model, list(seqs[:8]), seqs[16:24], settings(max_epochs=2, patience=5))
    assert out["epochs"] == 2 and out["status"] == STATUS_MAX_EPOCHS


def test_partial_last_sequence_is_padded_not_scored(tiny_model, tiny_tokenizer):
    import torch

    seqs = corpus(tiny_tokenizer, 8)
    full, _ = evaluate(tiny_model, seqs[:2], 8, "cpu")
    # padding a short sequence must not change its loss
    short = [seqs[0][:10]]
    alone, n_alone = evaluate(tiny_model, np.array(short), 8, "cpu")
    from transferlaw.train.finetune import _collate, token_losses

    ids, mask, labels = _collate([seqs[1], seqs[0][:10]], "cpu")
    with torch.no_grad():
        total, n = token_losses(tiny_model, ids, mask, labels)
    assert n == 31 + 9 and n_alone == 9
    with torch.no_grad():
        first, _ = token_losses(tiny_model, *_collate([seqs[1]], "cpu"))
    assert math.isclose((total.item() - first.item()) / 9, alone, rel_tol=1e-4)
    assert math.isfinite(full)


def test_training_is_deterministic(tiny_tokenizer):
    import torch

    from transferlaw.train.pretrain import _new_model

    seqs = corpus(tiny_tokenizer, 24)
    cfg = {
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "context_length": 32,
    }
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        outs.append(
            finetune(_new_model(cfg, tiny_tokenizer), list(seqs[:8]), seqs[16:], settings(max_epochs=4))
        )
    assert outs[0]["eval_curve"] == pytest.approx(outs[1]["eval_curve"], rel=1e-6)


@pytest.mark.slow  # imports torch
def test_numerics_on_the_cpu_keep_fp32_and_plain_adamw():
    from transferlaw.train.finetune import Numerics

    n = Numerics.resolve(settings(), "cpu")  # precision auto, fused_adamw and tf32 on by default
    assert (n.precision, n.fused_adamw, n.tf32, n.gradient_checkpointing) == ("fp32", False, False, False)
    assert Numerics.resolve(settings(precision="bf16"), "cpu").precision == "bf16"


def _run(tokenizer, seqs, **over):
    import torch

    from transferlaw.train.finetune import Numerics
    from transferlaw.train.pretrain import _new_model

    cfg = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
    torch.manual_seed(0)
    model = _new_model({**cfg, "context_length": 32}, tokenizer)
    if "attention" in over:
        model.set_attn_implementation(over["attention"])
    s = settings(max_epochs=3, patience=5, **over)
    out = finetune(model, list(seqs[:8]), seqs[16:], s)
    return out, Numerics.resolve(s, "cpu").record(model)


def test_bf16_autocast_trains_near_fp32_and_is_recorded(tiny_tokenizer):
    seqs = corpus(tiny_tokenizer, 24)
    fp32, rec32 = _run(tiny_tokenizer, seqs)
    bf16, rec16 = _run(tiny_tokenizer, seqs, precision="bf16")
    assert (rec32["precision"], rec16["precision"]) == ("fp32", "bf16")
    assert rec16["weights_dtype"] == "float32"  # autocast: the master weights stay float32
    assert bf16["eval_curve"] != fp32["eval_curve"]  # bf16 really ran
    assert bf16["eval_curve"] == pytest.approx(fp32["eval_curve"], abs=0.05)


def test_gradient_checkpointing_and_eager_attention_change_no_result(tiny_tokenizer):
    seqs = corpus(tiny_tokenizer, 24)
    base, rec = _run(tiny_tokenizer, seqs)
    ckpt, rec_ckpt = _run(tiny_tokenizer, seqs, gradient_checkpointing=True)
    eager, rec_eager = _run(tiny_tokenizer, seqs, attention="eager")
    assert rec["attention"] == "sdpa" and rec_eager["attention"] == "eager"
    assert rec_ckpt["gradient_checkpointing"] and not rec["gradient_checkpointing"]
    assert ckpt["eval_curve"] == pytest.approx(base["eval_curve"], rel=1e-5)
    assert eager["eval_curve"] == pytest.approx(base["eval_curve"], rel=1e-4)
