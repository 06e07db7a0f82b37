"""Checkpoints load the way hub checkpoints do: ``from_pretrained(repo_id, revision=...)``.

The workflow's own pre-trained model is *published* into a folder laid out as a Hugging Face cache
(``models--<org>--<name>/refs/<revision>`` pointing at ``snapshots/<hash>/``), so fine-tuning loads a local
``step64`` through exactly the code path that loads ``EleutherAI/pythia-2.8b`` at ``step64`` on a cluster
(where compute nodes are usually offline and read a pre-filled cache).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from transferlaw.io import follow_umask, write_text


def use_offline_mode(offline: bool = True) -> None:
    """Tell huggingface_hub and transformers never to reach the network.

    ``local_files_only`` alone is not enough: transformers still probes the hub for optional files (such as
    ``adapter_config.json``) and retries for ~20 s on a machine without network. The flag is read when
    huggingface_hub is imported, so call this before importing transformers.
    """
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def repo_folder(cache_dir: str | Path, repo_id: str) -> Path:
    """The cache folder of a model repo, named as huggingface_hub names it."""
    return Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def ref_path(cache_dir: str | Path, repo_id: str, revision: str) -> Path:
    return repo_folder(cache_dir, repo_id) / "refs" / revision


def publish_revision(save: Any, cache_dir: str | Path, repo_id: str, revision: str) -> Path:
    """Save a checkpoint as ``revision`` of ``repo_id`` in a Hugging Face cache layout.

    ``save`` is a callable writing the checkpoint's files into a folder (e.g. a function calling
    ``model.save_pretrained`` and ``tokenizer.save_pretrained``). The snapshot is named by a hash of its
    content, and the ref is written last and atomically, so a killed job never leaves a ref to a partial
    snapshot. Returns the ref file.
    """
    repo = repo_folder(cache_dir, repo_id)
    (repo / "snapshots").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".publish-", dir=repo))
    try:
        save(tmp)
        for path in [tmp, *tmp.rglob("*")]:  # mkdtemp makes the folder private, some writers their files
            follow_umask(path)
        digest = hashlib.sha1()
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                digest.update(f.relative_to(tmp).as_posix().encode())
                digest.update(hashlib.sha1(f.read_bytes()).digest())
        commit = digest.hexdigest()
        snapshot = repo / "snapshots" / commit
        if snapshot.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, snapshot)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    ref = ref_path(cache_dir, repo_id, revision)
    write_text(commit, ref)
    return ref


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    """The cache folder to use: the given one, or the user's default Hugging Face cache."""
    if cache_dir is None:
        from huggingface_hub.constants import HF_HUB_CACHE

        cache_dir = HF_HUB_CACHE
    return Path(cache_dir)


def snapshot_path(cache_dir: str | Path, repo_id: str, commit: str) -> Path:
    return repo_folder(cache_dir, repo_id) / "snapshots" / commit


#: never run code shipped with a checkpoint, and unpickle ``.bin`` weights with torch's weights-only loader
SAFE_LOADING = {"trust_remote_code": False, "weights_only": True}


def load_model(
    repo_id: str, revision: str, cache_dir: str | None = None, offline: bool = True, **kwargs: Any
):
    """Load a causal LM checkpoint by repo id and revision (a commit, or a branch name) from a cache (or the
    hub when ``offline`` is False), without executing code from the checkpoint."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        repo_id, revision=revision, cache_dir=cache_dir, local_files_only=offline, **SAFE_LOADING, **kwargs
    )


def load_tokenizer(repo_id: str, revision: str, cache_dir: str | None = None, offline: bool = True):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        repo_id, revision=revision, cache_dir=cache_dir, local_files_only=offline, trust_remote_code=False
    )
