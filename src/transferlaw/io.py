"""Atomic file output: a killed job must leave either the complete file or no file at all.

Every writer here writes to a temporary file in the destination folder and renames it into place;
``os.replace`` is atomic on POSIX filesystems, so readers (and Snakemake) never see half a file. The file
gets the permissions any new file would (0666 less the user's umask), not the temporary file's private 0600:
teammates on a shared project folder must be able to read the results.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def umask() -> int:
    """The process's umask, read without changing it (Linux), or by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike[str]) -> None:
    """Give a file (0666) or folder (0777) the permissions the umask gives new ones."""
    base = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, base & ~umask())


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on error delete it."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    # the temporary name keeps the real suffix, so writers that infer a format from it still work
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        follow_umask(tmp_path)
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented JSON (numpy scalars and arrays allowed), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n")


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str], **kwargs: Any) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, **kwargs)


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str], **kwargs: Any) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, **kwargs)


def write_with(writer: Callable[[Path], None], path: str | os.PathLike[str]) -> None:
    """Atomically write ``path`` with any function that writes to a given path (figures, npz, ...)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table of runs from parquet or CSV (chosen by suffix), naming the file on failure."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"table of runs not found: {p}")
    suffix = p.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(p)
    if suffix in {".csv", ".tsv", ".txt"}:
        return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
    raise ValueError(f"{p}: unknown table format {suffix!r} (expected .parquet, .csv or .tsv)")


def planned_moves(moves: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The moves of :func:`move_files` that have something to move, checked before anything moves.

    An ``old`` that does not exist is left out, so that running the same moves again does nothing. Where a
    ``new`` exists already, or two files would move to one path, it raises :class:`FileExistsError` naming
    each such pair (which to keep is the user's call).
    """
    todo = [(old, new) for old, new in moves if Path(old).exists()]
    targets = [new for _, new in todo]
    clash = [f"{old} -> {new}" for old, new in todo if Path(new).exists() or targets.count(new) > 1]
    if clash:
        raise FileExistsError(
            f"{len(clash)} move(s) would overwrite a file (it exists, or another file moves there too); "
            "nothing was moved. Delete the file you do not want of each and run again:\n  "
            + "\n  ".join(clash)
        )
    return todo


def move_files(moves: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Move each existing file ``old`` to ``new`` (pairs given by the caller, e.g. a layout's old and new
    paths), keeping its bytes and modification time, and return the moves made.

    Every pair is checked before anything moves (:func:`planned_moves`): where one would overwrite a file,
    nothing is moved. Each move is one ``os.replace``, atomic on one filesystem: a killed move leaves every
    file at one of its two paths, and running the moves again finishes them.
    """
    todo = planned_moves(moves)
    for old, new in todo:
        Path(new).parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, new)
    return todo
