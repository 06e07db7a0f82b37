"""Hugging Face caches built in tests: tiny random GPT-NeoX checkpoints laid out exactly as `hf download`
(huggingface_hub) lays out what it fetches, since the hub itself cannot be reached here.

Layout (huggingface_hub's cache): ``models--<org>--<name>/blobs/<id>`` holds each file once, named by its
sha256 for LFS files (weights) and by its git blob sha1 otherwise; ``snapshots/<commit>/<file>`` are
relative symlinks into ``blobs/``; ``refs/<branch>`` holds the commit a branch pointed to.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
from pathlib import Path

LFS_PATTERNS = ("*.safetensors", "*.bin")


def tiny_neox_files(
    seed: int, tokenizer, hidden: int = 16, layers: int = 1, context: int = 64
) -> dict[str, bytes]:
    """The files of one tiny GPT-NeoX checkpoint (config, safetensors weights, tokenizer) as bytes; a
    different seed gives different weights."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    config = GPTNeoXConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=context,
        rotary_pct=0.25,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPTNeoXForCausalLM(config)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def _blob_id(name: str, data: bytes) -> str:
    if any(fnmatch.fnmatch(name, p) for p in LFS_PATTERNS):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def commit_of(files: dict[str, bytes]) -> str:
    h = hashlib.sha1()
    for name in sorted(files):
        h.update(name.encode() + _blob_id(name, files[name]).encode())
    return h.hexdigest()


def write_hub_cache(cache_dir: Path, repo_id: str, branches: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """Lay out ``branches`` ({branch: {file: bytes}}) of ``repo_id`` in a hub cache; return the commits."""
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    commits = {}
    for branch, files in branches.items():
        commit = commit_of(files)
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            blob = repo / "blobs" / _blob_id(name, data)
            blob.parent.mkdir(parents=True, exist_ok=True)
            if not blob.exists():
                blob.write_bytes(data)
            link = snap / name
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(blob, link.parent))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / branch).write_text(commit)
        commits[branch] = commit
    return commits


def weight_blob(cache_dir: Path, repo_id: str, commit: str, name: str = "model.safetensors") -> Path:
    """The blob a snapshot's weight file points to (to corrupt it in a test)."""
    link = Path(cache_dir) / ("models--" + repo_id.replace("/", "--")) / "snapshots" / commit / name
    return link.resolve()
