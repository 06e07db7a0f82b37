"""Data preparation, once per dataset: tokenize, cut into context-length sequences (the paper's "data
points"), hold out a fixed eval split, and define nested fine-tune subsets.

Every fine-tune size is a *prefix* of one seeded shuffle of the training pool, so a larger subset contains
every smaller one and differences between sizes are data, not sampling noise. The eval split is drawn from
the same shuffle first, so it is disjoint from every subset and shared by every run of the dataset.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from transferlaw.io import write_json, write_with

_OPENERS = {".xz": lzma.open, ".lzma": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}
COMPRESSED_SUFFIXES = frozenset(_OPENERS)  # suffixes open_text_binary decompresses (lower case)


class DataError(ValueError):
    """A dataset cannot be prepared as configured; the message names the dataset or file."""


def open_text_binary(path: str | Path) -> IO[bytes]:
    """Open a plain or compressed (.xz, .gz, .bz2) text file for binary reading."""
    path = Path(path)
    return _OPENERS.get(path.suffix.lower(), open)(path, "rb")


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a plain or compressed file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open_text_binary(path) as fh:
            text = fh.read().decode("utf-8")
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read as UTF-8 text ({err})") from err
    if not text.strip():
        raise DataError(f"{path}: file has no text")
    return text


def _line_chunks(text: str, chars: int = 1 << 16) -> Iterator[str]:
    """Split text at line boundaries into pieces of roughly ``chars`` characters (keeping every byte).

    A line longer than ``chars`` (a FASTA record is one line of millions of bases) is cut every ``chars``
    characters: the tokenizer would otherwise see one word of millions of characters. The cut changes at
    most the token at each cut, one in thousands.
    """
    start = 0
    while start < len(text):
        end = text.find("\n", start + chars)
        end = len(text) if end < 0 else end + 1
        if end - start > 2 * chars:
            cut = text.find("\n", start, start + chars)
            end = cut + 1 if cut >= 0 else start + chars
        yield text[start:end]
        start = end


def tokenize(text: str, tokenizer: Any) -> np.ndarray:
    """Token ids of ``text`` as one int32 stream.

    The text is encoded in line-aligned chunks (batched by the fast tokenizer) rather than as one string:
    byte-level BPE splits on whitespace first, so chunking at newlines changes nothing but memory use.
    """
    chunks = list(_line_chunks(text))
    ids = tokenizer(chunks, add_special_tokens=False)["input_ids"]
    return np.fromiter((t for chunk in ids for t in chunk), dtype=np.int32)


def make_sequences(tokens: np.ndarray, context_length: int) -> np.ndarray:
    """Cut a token stream into non-overlapping sequences of ``context_length`` (the tail is dropped)."""
    n = len(tokens) // context_length
    return tokens[: n * context_length].reshape(n, context_length)


def split_order(n_sequences: int, eval_sequences: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One seeded shuffle of sequence indices: the first ``eval_sequences`` are the eval split, the rest the
    training pool in the order subsets are taken from."""
    if eval_sequences >= n_sequences:
        raise DataError(
            f"eval split of {eval_sequences} sequences leaves nothing of {n_sequences} to train on"
        )
    order = np.random.default_rng(seed).permutation(n_sequences)
    return order[:eval_sequences], order[eval_sequences:]


def subset(train: np.ndarray, size: int, unit: str) -> list[np.ndarray]:
    """The fine-tune subset of ``size`` (in ``unit``): a prefix of the shuffled training pool.

    In ``tokens`` the last sequence is cut so that exactly ``size`` tokens are used.
    """
    context_length = train.shape[1]
    if unit == "sequences":
        n_full, rest = size, 0
    elif unit == "tokens":
        n_full, rest = divmod(size, context_length)
    else:
        raise DataError(f"unknown fine-tune unit {unit!r} (expected 'sequences' or 'tokens')")
    needed = n_full + (1 if rest else 0)
    if needed > len(train):
        raise DataError(f"fine-tune size {size} {unit} needs {needed} sequences; the pool has {len(train)}")
    seqs = [train[i] for i in range(n_full)]
    if rest:
        seqs.append(train[n_full][:rest])
    return seqs


def pool_needed(sizes: Sequence[int], unit: str, context_length: int) -> int:
    largest = max(sizes)
    return largest if unit == "sequences" else math.ceil(largest / context_length)


@dataclass(frozen=True)
class PreparedData:
    """A prepared dataset: the eval split and the shuffled training pool, both (n, context_length) int32."""

    eval: np.ndarray
    train: np.ndarray

    def save(self, path: str | Path, manifest: dict[str, Any]) -> None:
        """Write the arrays (``.npz``) and a JSON manifest next to them, both atomically."""
        write_with(lambda p: np.savez(p, eval=self.eval, train=self.train), path)
        write_json(manifest, Path(path).with_suffix(".json"))

    @classmethod
    def load(cls, path: str | Path) -> PreparedData:
        with np.load(path) as z:
            return cls(eval=z["eval"], train=z["train"])


def prepare(
    text: str, tokenizer: Any, *, context_length: int, eval_sequences: int, seed: int, name: str = "dataset"
) -> tuple[PreparedData, dict[str, Any]]:
    """Tokenize and split one dataset; returns the data and a manifest describing it."""
    tokens = tokenize(text, tokenizer)
    seqs = make_sequences(tokens, context_length)
    if len(seqs) <= eval_sequences:
        raise DataError(
            f"dataset {name!r}: {len(tokens)} tokens make {len(seqs)} sequences of {context_length}, "
            f"not more than the {eval_sequences}-sequence eval split"
        )
    eval_idx, train_idx = split_order(len(seqs), eval_sequences, seed)
    data = PreparedData(eval=seqs[eval_idx], train=seqs[train_idx])
    manifest = {
        "dataset": name,
        "tokens": int(len(tokens)),
        "sequences": int(len(seqs)),
        "context_length": context_length,
        "eval_sequences": int(len(eval_idx)),
        "train_pool_sequences": int(len(train_idx)),
        "seed": seed,
        "vocab_size": int(len(tokenizer)),
    }
    return data, manifest


def check_sizes(manifest: dict[str, Any], sizes: Sequence[int], unit: str, name: str) -> None:
    """Fail, naming the dataset, if the largest fine-tune size does not fit in the training pool."""
    need = pool_needed(sizes, unit, manifest["context_length"])
    have = manifest["train_pool_sequences"]
    if need > have:
        raise DataError(
            f"datasets.{name}.sizes: the largest size {max(sizes)} {unit} needs {need} sequences of "
            f"{manifest['context_length']} tokens, but after the {manifest['eval_sequences']}-sequence "
            f"eval split "
            f"only {have} remain ({manifest['tokens']} tokens in all); use a larger file or smaller sizes"
        )


def check_size_marker(manifest_path: str, size: int, unit: str, name: str, marker: str, log: str) -> None:
    """Check one fine-tune size against a prepared dataset's manifest; write the marker (and a log line)
    that the size's fine-tune jobs wait for. Raises :class:`DataError` naming the dataset and size."""
    import json

    from transferlaw.io import write_text

    manifest = json.loads(Path(manifest_path).read_text())
    try:
        check_sizes(manifest, [size], unit, name)
    except DataError as err:
        write_text(f"{err}\n", log)
        raise
    write_text(
        f"size {size} {unit} fits {name} ({manifest['train_pool_sequences']} sequences in the pool)\n", log
    )
    write_text("ok\n", marker)
