"""Rebuild the shipped corpora under ``resources/`` from unpacked Debian packages.

``make_resources.sh`` downloads the packages and unpacks them all into one folder (ROOT); this script turns
the files found there into clean UTF-8 text and writes it xz-compressed. Every step is deterministic (sorted
inputs, fixed xz preset, no timestamps in the .xz container), so the sha256 sums recorded in README.md can
be checked by rerunning it.

Usage: python resources/make_resources.py ROOT OUTDIR
"""

from __future__ import annotations

import gzip
import lzma
import re
import subprocess
import sys
from pathlib import Path

XZ_PRESET = 9 | lzma.PRESET_EXTREME
DICTD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
PY_MIN_BYTES, PY_MAX_BYTES, PY_STRIDE = 2_000, 40_000, 4
KJV_BOOK_STRIDE, PYDOC_STRIDE = 3, 4
PYDOC_PARTS = ("tutorial", "howto", "faq", "reference", "library")


def write_xz(text: str, path: Path) -> None:
    """Write ``text`` as UTF-8 + xz; a fixed preset and a single stream keep the bytes reproducible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(lzma.compress(text.encode("utf-8"), format=lzma.FORMAT_XZ, preset=XZ_PRESET))
    tmp.replace(path)


# --- King James Bible -------------------------------------------------------------------------------


def kjv_text(root: Path) -> str:
    """Dump the KJV with Debian's own reader (the data file is in its private EC02 compressed format),
    then drop chapter/verse numbering: a book heading, one verse per line, a blank line between chapters."""
    raw = subprocess.run(
        [str(root / "usr/bin/bible"), "-p", str(root / "usr/lib"), "-l100000", "Gen1:1-Rev22:21"],
        check=True,
        capture_output=True,
    ).stdout.decode("ascii")
    heading = re.compile(r"^(\S.*) (\d+)$")
    verse = re.compile(r"^\s+\d+ (.+)$")
    out: list[str] = []
    book = None
    for line in raw.splitlines():
        if not line.strip():
            continue
        if m := heading.match(line):
            if m.group(1) != book:
                book = m.group(1)
                out += ["", "", book] if out else [book]
            out.append("")
        elif m := verse.match(line):
            out.append(m.group(1).strip())
        else:
            raise ValueError(f"unexpected line in bible output: {line!r}")
    return "\n".join(out).strip() + "\n"


# --- Devil's Dictionary (dictd format) ----------------------------------------------------------------


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + DICTD_B64.index(c)
    return n


def dictd_text(root: Path, name: str) -> str:
    """Decode a dictd database: ``.index`` rows are headword, base64 offset, base64 length into the
    gunzipped ``.dict.dz``. Metadata entries (``00database*``, which hold the preface and the URL) are
    dropped; entries that share one body (several headwords) are kept once, in file order."""
    d = root / "usr/share/dictd"
    data = gzip.decompress((d / f"{name}.dict.dz").read_bytes())
    spans = set()
    for row in (d / f"{name}.index").read_text(encoding="utf-8").splitlines():
        word, off, size = row.split("\t")[:3]
        if not word.startswith("00database"):
            spans.add((_b64(off), _b64(size)))
    entries = []
    for off, size in sorted(spans):
        body = data[off : off + size].decode("utf-8")
        lines = [ln.rstrip() for ln in body.strip("\n").splitlines()]
        entries.append(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n"))
    return "\n\n".join(entries) + "\n"


def devils_dictionary_text(root: Path) -> str:
    return dictd_text(root, "devil")


# --- The pre-training library: Bible, Jargon File, Python documentation ---------------------------------


def library_text(root: Path) -> str:
    """A broad pre-training corpus in three parts of about 1.5 MB each, so that later checkpoints keep
    transferring to every English or code-like dataset instead of specialising on one book: every third
    book of the KJV (archaic prose), the whole Jargon File (a dictionary of hacker slang: entries like the
    Devil's Dictionary's, modern English), and every fourth reST source of the Python documentation
    (technical English with code; none of it is the python-stdlib dataset's source files)."""
    books = kjv_text(root).split("\n\n\n")
    docs = root / "usr/share/doc/python3.11/html/_sources"
    sources = [p for sub in PYDOC_PARTS for p in sorted((docs / sub).rglob("*.rst.txt"))]
    parts = [
        "\n\n\n".join(books[::KJV_BOOK_STRIDE]).strip("\n"),
        dictd_text(root, "jargon").strip("\n"),
        "\n\n".join(p.read_text(encoding="utf-8").strip("\n") for p in sources[::PYDOC_STRIDE]),
    ]
    return "\n\n\n".join(parts) + "\n"


# --- Python standard library ----------------------------------------------------------------------------


def python_stdlib_text(root: Path) -> str:
    """Concatenate a fixed selection of top-level public stdlib modules: sorted by name, ASCII-only,
    2-40 KB each (no test suites, no packages), every fourth one, each preceded by ``# file: <path>``."""
    lib = root / "usr/lib/python3.11"
    eligible = []
    for p in sorted(lib.glob("*.py")):
        b = p.read_bytes()
        if p.name.startswith(("_", "test")) or not b.isascii():
            continue
        if PY_MIN_BYTES <= len(b) <= PY_MAX_BYTES:
            eligible.append(p)
    parts = []
    for p in eligible[::PY_STRIDE]:
        src = p.read_text(encoding="ascii").rstrip("\n")
        parts.append(f"# file: {p.relative_to(lib.parent)}\n{src}\n")
    return "\n".join(parts)


# --- Chloroplast genome ---------------------------------------------------------------------------------


def chloroplast_dna_text(root: Path) -> str:
    """Take the GenBank ORIGIN block only; drop coordinates and spaces; uppercase; 60 bases a line."""
    gb = root / "usr/share/doc/python-biopython-doc/Tests/GenBank/NC_000932.gb.gz"
    text = gzip.decompress(gb.read_bytes()).decode("ascii")
    origin = text.split("\nORIGIN", 1)[1].split("\n//", 1)[0]
    seq = re.sub(r"[^acgtACGT]", "", origin.split("\n", 1)[1]).upper()
    if len(seq) != 154478:
        raise ValueError(f"expected 154478 bp, got {len(seq)}")
    return "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n"


def main(argv: list[str] | None = None) -> None:
    root, outdir = (Path(a) for a in (argv or sys.argv[1:]))
    write_xz(kjv_text(root), outdir / "pretrain/kjv.txt.xz")
    write_xz(library_text(root), outdir / "pretrain/library.txt.xz")
    write_xz(devils_dictionary_text(root), outdir / "datasets/devils_dictionary.txt.xz")
    write_xz(python_stdlib_text(root), outdir / "datasets/python_stdlib.txt.xz")
    write_xz(chloroplast_dna_text(root), outdir / "datasets/chloroplast_dna.txt.xz")


if __name__ == "__main__":
    main()
