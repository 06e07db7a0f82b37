"""A stand-in for the Pythia suite: a tiny GPT-NeoX (Pythia's architecture) pre-trained from scratch on
a local corpus, with a byte-level BPE tokenizer built locally, saved at log-spaced steps *including step 0*
as Pythia-style revisions (``step0``, ``step1``, ``step2``, ``step4``, ...).

The checkpoints are published in a Hugging Face cache layout (see :mod:`transferlaw.train.hub`), so
fine-tuning loads them exactly as it would load ``EleutherAI/pythia-*`` revisions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from transferlaw.train.hub import publish_revision

EOS = "<|endoftext|>"
#: the linear modules of the workflow's GPT-NeoX (and Pythia's), by name: what LoRA can adapt
GPT_NEOX_LINEAR = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h", "lm_head")


def build_tokenizer(text: str, vocab_size: int):
    """Train a byte-level BPE tokenizer (GPT-2/Pythia style, so any byte sequence is encodable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text.splitlines(keepends=True), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS)


def model_config(settings: dict[str, Any], tokenizer: Any):
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings["hidden_size"],
        num_hidden_layers=settings["num_hidden_layers"],
        num_attention_heads=settings["num_attention_heads"],
        intermediate_size=settings["intermediate_size"],
        max_position_embeddings=settings["context_length"],
        rotary_pct=0.25,
        use_parallel_residual=True,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def lr_at(step: int, settings: dict[str, Any]) -> float:
    """Linear warm-up then cosine decay to 10% (Pythia's schedule, shortened)."""
    warm, total, lr = settings["warmup_steps"], settings["steps"], settings["lr"]
    if step < warm:
        return lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain(
    tokens: np.ndarray,
    tokenizer: Any,
    settings: dict[str, Any],
    cache_dir: str | Path,
    repo_id: str,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Train from scratch and publish a revision at every step in ``settings['save_steps']``.

    Batches are random windows of the token stream (seeded), as in Pythia's single-epoch regime.
    Returns the ref files written.
    """
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(settings["seed"])
    torch.set_num_threads(settings["threads"])
    rng = np.random.default_rng(settings["seed"])
    model = _new_model(settings, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"GPT-NeoX with {n_params:,} parameters; {len(tokens):,} corpus tokens")
    opt = torch.optim.AdamW(
        model.parameters(), lr=settings["lr"], betas=(0.9, 0.95), weight_decay=settings["weight_decay"]
    )
    ctx, bs = settings["context_length"], settings["batch_size"]
    save = set(settings["save_steps"])
    refs = []

    def publish(step: int) -> None:
        def writer(folder: Path) -> None:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)

        refs.append(publish_revision(writer, cache_dir, repo_id, f"step{step}"))

    data = torch.from_numpy(tokens.astype(np.int64))
    t0 = time.time()
    if 0 in save:
        publish(0)
    model.train()
    bar = tqdm(range(1, settings["steps"] + 1), desc="pretrain", mininterval=2.0)
    for step in bar:
        starts = rng.integers(0, len(tokens) - ctx - 1, size=bs)
        batch = torch.stack([data[s : s + ctx] for s in starts])
        for group in opt.param_groups:
            group["lr"] = lr_at(step - 1, settings)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if step in save:
            publish(step)
            log(f"step {step}: train loss {loss.item():.4f} ({time.time() - t0:.1f}s)")
    return refs


def _new_model(settings: dict[str, Any], tokenizer: Any):
    from transformers import GPTNeoXForCausalLM

    return GPTNeoXForCausalLM(model_config(settings, tokenizer))
