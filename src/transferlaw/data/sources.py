"""Training text from the formats researchers have: plain text, Markdown, LaTeX, JSON Lines, parquet, FASTA,
mbox and maildir files on disk, datasets on the Hugging Face hub, and files behind a URL.

Every loader returns one string; documents (records, messages) are joined with a blank line (``"\\n\\n"``),
FASTA records with a newline (and, with ``keep_lines``, a record's own lines too). Single files may be
compressed (``.gz``, ``.xz``, ``.bz2``), whatever their format. Text is UTF-8; a byte-order mark is dropped
(it marks the encoding, it is not text). Errors are :class:`~transferlaw.data.prepare.DataError`, naming the
file (or URL, or hub dataset), the format and the field.

Which library reads what:

* **Local parquet: pyarrow**, reading only the ``text_field`` column (parquet is columnar, so the other
  columns are never decompressed). ``datasets.load_dataset("parquet", ...)`` would first copy the whole
  table into an Arrow cache on disk (under ``~/.cache`` unless told otherwise), for one column we read once.
* **Local JSON Lines: the standard library's json, line by line.** It streams a file of any size, names the
  line at fault, and tells a missing field (an error) from a null one (skipped), which pyarrow's and
  ``datasets``' JSON readers (nulls for missing keys, type inference over the whole file) cannot.
* **Hub datasets: datasets.load_dataset**: it resolves names, configs, splits and revisions, downloads into
  and reads from its cache (offline too, once cached), and accepts a local folder laid out like a hub repo.
* **Mail: the standard library's mailbox and email**; **URLs: urllib** (no new dependency).

Speed does not decide it: on 50,000 records (96 MB JSON Lines, 26 MB parquet; ``python
benchmarks/sources.py``, 2 shared cores, noisy) JSON Lines took 0.5-0.65 s with json, 0.3-0.5 s with
``pyarrow.json`` and 0.6-1.0 s with ``datasets``; parquet 0.2-0.45 s with pyarrow, 0.55-0.65 s with
``datasets``.
"""

from __future__ import annotations

import email
import email.policy
import fnmatch
import hashlib
import http.client
import io
import json
import logging
import mailbox
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from transferlaw.data.prepare import COMPRESSED_SUFFIXES, DataError, open_text_binary

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = (
    "text",
    "markdown",
    "latex",
    "html",
    "jsonl",
    "parquet",
    "fasta",
    "mbox",
    "maildir",
)

_EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".tex": "latex",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".fa": "fasta",
    ".fasta": "fasta",
    ".fna": "fasta",
    ".fas": "fasta",
    ".mbox": "mbox",
}

# Formats whose extracted text never has more bytes than the (decompressed) file: the loader only drops
# bytes, and JSON's escapes are never shorter than what they decode to. Not parquet (compressed columns),
# not maildir (a folder), not html (&nGt; is 5 bytes and decodes to 6), and not mbox: a Latin-1 body
# doubles in UTF-8, and undecodable bytes become U+FFFD (3 bytes each).
_TEXT_WITHIN_FILE = frozenset({"text", "markdown", "latex", "fasta", "jsonl"})


def text_bytes_bound_ok(format: str) -> bool:
    """Whether a file's raw (decompressed) byte count is an upper bound on the UTF-8 bytes of its text."""
    return format in _TEXT_WITHIN_FILE


def _format_hint() -> str:
    return f"set `format:` to one of {', '.join(FORMATS)}"


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` from its extension (after a compression suffix), or ``maildir`` for a folder
    with ``cur/`` and ``new/`` (``tmp/`` is optional: git does not keep empty folders)."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return "maildir"
        raise DataError(f"{path}: a folder, but not a maildir (no cur/ and new/ in it); {_format_hint()}")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    if ext == ".json":
        return _json_lines_or_error(path)
    if ext not in _EXTENSIONS:
        raise DataError(f"{path}: cannot tell the format from the extension {ext!r}; {_format_hint()}")
    return _EXTENSIONS[ext]


def _json_lines_or_error(path: Path) -> str:
    """``jsonl`` if the first non-blank line of a ``.json`` file is a whole JSON object."""
    try:
        first = next((line for line in _lines(path, "jsonl") if line.strip()), "")
        if isinstance(json.loads(first), dict):
            return "jsonl"
    except ValueError:  # json.JSONDecodeError, and DataError from a file that is not UTF-8
        pass
    raise DataError(
        f"{path}: a .json file that is not JSON Lines (one object per line); convert it "
        f"(e.g. `jq -c '.[]'`) or {_format_hint()}"
    )


def load_text(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    text_field: str = "text",
    headers: bool = False,
    keep_lines: bool = False,
) -> str:
    """The training text of one local file or folder, read as ``format`` (detected when None).

    ``text_field`` is the field of JSON Lines and parquet records that holds the text; ``headers`` prefixes
    each mail body with its header block; ``keep_lines`` keeps a FASTA file's sequence lines as they are.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found")
    if format is None:
        format = detect_format(path)
    if format not in _LOADERS:
        raise DataError(f"{path}: unknown format {format!r}; {_format_hint()}")
    if path.is_dir() != (format == "maildir"):
        raise DataError(f"{path}: format {format} reads a {'folder' if format == 'maildir' else 'file'}")
    text = _LOADERS[format](path, text_field=text_field, headers=headers, keep_lines=keep_lines)
    if not text.strip():
        raise DataError(f"{path}: no training text in it, read as {format}")
    return text


# -- plain text, Markdown, LaTeX -------------------------------------------------------------------------


def _read(path: Path, format: str) -> str:
    try:
        with open_text_binary(path) as fh:
            return fh.read().decode("utf-8-sig")
    except (OSError, EOFError, ValueError) as err:  # lzma.LZMAError, UnicodeDecodeError: ValueError/OSError
        raise DataError(f"{path}: cannot read as UTF-8 {format} ({err})") from err


def _load_plain(path: Path, **_: Any) -> str:
    return _read(path, "text")


def _load_markdown(path: Path, **_: Any) -> str:
    return _read(path, "markdown")


# a % that starts a comment: preceded by an even number (0, 2, ...) of backslashes (\% is a percent sign)
_TEX_COMMENT = re.compile(r"(?<!\\)(?:\\\\)*(%)")
_BEGIN_DOCUMENT = re.compile(r"\\begin\s*\{document\}")
_END_DOCUMENT = re.compile(r"\\end\s*\{document\}")


def strip_latex(source: str) -> str:
    """LaTeX source without comments and preamble: what the paper's arXiv math data looks like.

    A comment runs from an unescaped ``%`` to the end of the line; a line that was only a comment goes
    entirely. The preamble is everything up to ``\\begin{document}`` when there is one; ``\\end{document}``
    and what follows go too. Verbatim environments are not special: a ``%`` in them starts a comment.
    """
    lines = []
    for line in source.splitlines(keepends=True):
        match = _TEX_COMMENT.search(line)
        if match is None:
            lines.append(line)
            continue
        kept = line[: match.start(1)]
        if kept.strip():
            lines.append(kept + line[len(line.rstrip("\r\n")) :])  # the text before it and the line end
    body = "".join(lines)
    begin = _BEGIN_DOCUMENT.search(body)
    if begin:
        body = body[begin.end() :]
    end = _END_DOCUMENT.search(body)
    if end:
        body = body[: end.start()]
    return body.strip("\r\n")


def _load_latex(path: Path, **_: Any) -> str:
    return strip_latex(_read(path, "latex"))


class _HTMLText(HTMLParser):
    """The visible text of an HTML page: scripts, styles and the head dropped, a paragraph break after each
    block element, runs of white space inside a paragraph collapsed (as a browser shows them)."""

    SKIP = frozenset({"script", "style", "head", "noscript", "template", "svg"})
    BLOCKS = frozenset(
        "p div section article header footer li ul ol table tr h1 h2 h3 h4 h5 h6 pre blockquote br hr "
        "figcaption dt dd".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping = 0
        self.paragraphs: list[str] = []
        self.current: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.current.append(data)

    def flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.paragraphs.append(text)
        self.current = []


def html_text(source: str) -> str:
    parser = _HTMLText()
    parser.feed(source)
    parser.close()
    parser.flush()
    return "\n\n".join(parser.paragraphs)


def _load_html(path: Path, **_: Any) -> str:
    return html_text(_read(path, "html"))


# -- JSON Lines and parquet ------------------------------------------------------------------------------


def _lines(path: Path, format: str) -> Iterator[str]:
    """The decoded lines of a (possibly compressed) file, streamed; decode errors name the file."""
    n = 0
    try:
        with io.TextIOWrapper(open_text_binary(path), encoding="utf-8-sig") as fh:
            for n, line in enumerate(fh, 1):  # noqa: B007 (n says how far reading got)
                yield line
    except (OSError, EOFError, ValueError) as err:
        raise DataError(f"{path}: cannot read as UTF-8 {format} after line {n} ({err})") from err


def _load_jsonl(path: Path, *, text_field: str, **_: Any) -> str:
    texts, skipped = [], 0
    for n, line in enumerate(_lines(path, "jsonl"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: jsonl line {n} is not valid JSON ({err})") from err
        if not isinstance(record, dict):
            raise DataError(f"{path}: jsonl line {n} is a {type(record).__name__}, not a JSON object")
        if text_field not in record:
            raise DataError(
                f"{path}: jsonl line {n} has no field {text_field!r} (`text_field:`); "
                f"its fields: {', '.join(map(repr, record)) or 'none'}"
            )
        value = record[text_field]
        if value is None or value == "":
            skipped += 1
            continue
        if not isinstance(value, str):
            raise DataError(
                f"{path}: jsonl line {n}: field {text_field!r} holds a {type(value).__name__}, not a string"
            )
        try:
            value.encode("utf-8")  # JSON can escape a lone surrogate (half an emoji), which is no text
        except UnicodeEncodeError as err:
            raise DataError(
                f"{path}: jsonl line {n}: field {text_field!r} holds a lone surrogate "
                f"\\u{ord(value[err.start]):04x} at character {err.start}, which is not UTF-8 text"
            ) from err
        texts.append(value)
    _log_skipped(f"{path}: jsonl", text_field, skipped, skipped + len(texts))
    return "\n\n".join(texts)


def _load_parquet(path: Path, *, text_field: str, **_: Any) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # parquet needs random access: a compressed file is decompressed into memory first
        source = path if path.suffix.lower() not in COMPRESSED_SUFFIXES else pa.BufferReader(_raw(path))
        file = pq.ParquetFile(source)
        names = file.schema_arrow.names
        if text_field not in names:
            raise DataError(
                f"{path}: parquet has no field {text_field!r} (`text_field:`); its fields: "
                f"{', '.join(map(repr, names))}"
            )
        column = file.read(columns=[text_field]).column(0)
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: cannot read as parquet ({err})") from err
    return _join_column(column, f"{path}: parquet", text_field)


def _raw(path: Path) -> bytes:
    with open_text_binary(path) as fh:
        return fh.read()


def _join_column(column: Any, where: str, field: str) -> str:
    """The non-null, non-empty strings of an Arrow column, joined by blank lines; ``where`` names it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):  # pandas categoricals come back dictionary-encoded
        column = column.cast(column.type.value_type)
    kind = column.type
    textual = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view, pa.types.is_null)
    if not any(is_type(kind) for is_type in textual):
        row = pc.index(column.is_valid(), True).as_py()
        raise DataError(f"{where} field {field!r} holds {kind} values, not strings (row {row})")
    texts = [text for text in column.to_pylist() if text]
    _log_skipped(where, field, len(column) - len(texts), len(column))
    return "\n\n".join(texts)


def _log_skipped(where: str, field: str, skipped: int, total: int) -> None:
    if skipped:
        logger.info("%s: skipped %d of %d records with a null or empty %r", where, skipped, total, field)


# -- FASTA -----------------------------------------------------------------------------------------------


def _load_fasta(path: Path, *, keep_lines: bool = False, **_: Any) -> str:
    """One line of sequence per record, or, with ``keep_lines``, the source's own sequence lines (Ensembl's
    and NCBI's 60 bases a line, as in the paper's appendix F.4 sample): a BPE tokenizer reads newlines too,
    so the two give other tokens and losses per token that cannot be compared. Soft-masked (lower-case) bases
    are upper-cased, not dropped: masking marks repeats for aligners, it does not change the sequence, and
    the alphabet stays that of unmasked files. Headers (``>``), ``;`` comments and blank lines go; lines are
    handled as bytes, so a header in any encoding is fine."""
    records: list[bytes] = []
    current: list[bytes] = []
    joint = b"\n" if keep_lines else b""
    try:
        with open_text_binary(path) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith(b">"):
                    records.append(joint.join(current))
                    current = []
                elif line and not line.startswith(b";"):
                    current.append(line.upper())  # bytes.upper changes ASCII letters only
        records.append(joint.join(current))
        return "\n".join(r.decode("utf-8") for r in records if r)
    except (OSError, EOFError, ValueError) as err:
        raise DataError(f"{path}: cannot read as fasta ({err})") from err


# -- mail ------------------------------------------------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _plain_parts(part: email.message.Message) -> Iterator[str]:
    """The decoded text/plain parts of a message, depth first, skipping attachments (and all inside them)."""
    if part.get_content_disposition() == "attachment":
        return
    if part.is_multipart():
        for sub in part.get_payload():
            yield from _plain_parts(sub)
    elif part.get_content_type() == "text/plain":
        payload = part.get_payload(decode=True) or b""
        try:
            yield payload.decode(part.get_content_charset() or "utf-8")
        except (LookupError, UnicodeDecodeError):
            # an unknown or wrong charset (common in old mail): UTF-8, with U+FFFD for what is not
            yield payload.decode("utf-8", errors="replace")


def message_text(raw: bytes, headers: bool = False) -> str:
    """The text of one message (raw RFC 5322 bytes): its text/plain body, after its header block as it
    appears in the message when ``headers``. Line ends are normalised to ``\\n``."""
    body = "\n".join(_plain_parts(email.message_from_bytes(raw, policy=email.policy.compat32)))
    text = body.replace("\r\n", "\n").strip("\n")
    if headers:
        end = _HEADER_END.search(raw)
        block = raw[: end.start() if end else len(raw)].decode("utf-8", errors="replace")
        text = block.replace("\r\n", "\n") + ("\n\n" + text if text else "")
    return text


def _mailbox_text(box: mailbox.Mailbox, headers: bool) -> str:
    # sorted keys: a maildir lists files in arbitrary order, and the text must be the same on every run
    texts = (message_text(box.get_bytes(key), headers) for key in sorted(box.keys()))
    return "\n\n".join(text for text in texts if text)


def _load_mbox(path: Path, *, headers: bool, **_: Any) -> str:
    if path.suffix.lower() not in COMPRESSED_SUFFIXES:
        return _mailbox_text(mailbox.mbox(path, create=False), headers)
    with tempfile.NamedTemporaryFile(suffix=".mbox") as tmp:  # mailbox needs a seekable, plain file
        with open_text_binary(path) as fh:
            try:
                shutil.copyfileobj(fh, tmp)
            except (OSError, EOFError, ValueError) as err:
                raise DataError(f"{path}: cannot decompress the mbox ({err})") from err
        tmp.flush()
        return _mailbox_text(mailbox.mbox(tmp.name, create=False), headers)


def _load_maildir(path: Path, *, headers: bool, **_: Any) -> str:
    """A maildir (``cur/`` and ``new/``), or any folder of one-message files (MH, and the layout of the CMU
    Enron corpus: ``maildir/<user>/<folder>/1.``, ``2.``, ...), read in sorted order."""
    if (path / "cur").is_dir() and (path / "new").is_dir():
        return _mailbox_text(mailbox.Maildir(path, factory=None, create=False), headers)
    return _messages_text(sorted(p for p in path.rglob("*") if p.is_file()), headers)


def _messages_text(files: list[Path], headers: bool) -> str:
    texts = []
    for f in files:
        raw = f.read_bytes()
        if not email.message_from_bytes(raw, policy=email.policy.compat32).keys():
            raise DataError(f"{f}: not a mail message (no header fields), read as one message of a maildir")
        texts.append(message_text(raw, headers))
    return "\n\n".join(text for text in texts if text)


_LOADERS: dict[str, Callable[..., str]] = {
    "text": _load_plain,
    "markdown": _load_markdown,
    "latex": _load_latex,
    "html": _load_html,
    "jsonl": _load_jsonl,
    "parquet": _load_parquet,
    "fasta": _load_fasta,
    "mbox": _load_mbox,
    "maildir": _load_maildir,
}
assert set(_LOADERS) == set(FORMATS)


# -- archives and dataset blocks -------------------------------------------------------------------------


def extract_members(archive: Path, pattern: str, dest: Path) -> list[Path]:
    """Extract the regular files of a tar (any compression) or zip ``archive`` whose path matches the glob
    ``pattern`` into ``dest``; return them sorted. Links, absolute paths and ``..`` are never extracted.
    Raises :class:`DataError` if the file is no archive or nothing matches."""

    def wanted(name: str) -> bool:
        parts = Path(name).parts
        return fnmatch.fnmatch(name, pattern) and not Path(name).is_absolute() and ".." not in parts

    out = []
    try:
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    if member.isfile() and wanted(member.name):
                        target = dest / member.name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with tar.extractfile(member) as src, open(target, "wb") as fh:
                            shutil.copyfileobj(src, fh)
                        out.append(target)
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and wanted(info.filename):
                        target = dest / info.filename
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(target, "wb") as fh:
                            shutil.copyfileobj(src, fh)
                        out.append(target)
        else:
            raise DataError(f"{archive}: `members:` is given, but the file is no tar or zip archive")
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as err:
        raise DataError(f"{archive}: cannot read the archive ({err})") from err
    if not out:
        raise DataError(f"{archive}: no member matches `members: {pattern}`")
    return sorted(out)


def load_source(path: str | os.PathLike[str], source: Mapping[str, Any]) -> str:
    """The training text of a dataset block's file (see ``transferlaw.config.dataset_source``): ``format``,
    ``text_field``, ``headers``, ``keep_lines``, and ``members`` (a glob of the files to read from a tar or
    zip archive, each read as ``format``; for ``maildir``, each one message)."""
    options = {
        "text_field": source.get("text_field", "text"),
        "headers": source.get("headers", False),
        "keep_lines": source.get("keep_lines", False),
    }
    pattern = source.get("members")
    if not pattern:
        return load_text(path, source.get("format"), **options)
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix=".members-", dir=path.parent) as tmp:
        files = extract_members(path, pattern, Path(tmp))
        if source.get("format") == "maildir":
            text = _messages_text(files, options["headers"])
        else:
            text = "\n\n".join(load_text(f, source.get("format"), **options) for f in files)
    if not text.strip():
        raise DataError(f"{path}: no training text in members {pattern!r}")
    return text


# -- Hugging Face hub ------------------------------------------------------------------------------------


def load_hub_text(
    name: str,
    *,
    config: str | None = None,
    split: str = "train",
    text_field: str = "text",
    revision: str | None = None,
    cache_dir: str | None = None,
) -> str:
    """The ``text_field`` of one split of a dataset, loaded with ``datasets.load_dataset`` (a hub name, or a
    local folder laid out like a hub repo). Offline (``HF_HUB_OFFLINE=1``) a hub name is read from the cache
    that an earlier load filled (in ``cache_dir`` when given)."""
    import datasets

    where = f"hub dataset {name!r} (config {config!r}, split {split!r}, revision {revision!r})"
    try:
        ds = datasets.load_dataset(name, config, split=split, revision=revision, cache_dir=cache_dir)
    except Exception as err:  # datasets raises many types (not found, offline, unknown split/config)
        raise DataError(f"{where}: cannot load ({type(err).__name__}: {err})") from err
    if text_field not in ds.column_names:
        raise DataError(
            f"{where} has no field {text_field!r} (`text_field:`); its fields: "
            f"{', '.join(map(repr, ds.column_names))}"
        )
    return _join_column(ds.with_format("arrow")[text_field], where, text_field)


# -- downloads -------------------------------------------------------------------------------------------

_USER_AGENT = "transferlaw (python urllib)"
_TRANSIENT_HTTP = frozenset({408, 425, 429, *range(500, 600)})


class _Transient(Exception):
    """A failure worth retrying: connection error, timeout, cut transfer, HTTP 408/425/429/5xx."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_url(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> str:
    """Download ``url`` to ``dest`` and return the file's sha256.

    The bytes go to ``dest.part`` and are renamed onto ``dest`` when complete (and verified, when ``sha256``
    is given), so ``dest`` is never a partial or unverified file. A partial ``.part`` left by a cut
    connection or a killed job is resumed with a Range request; a server that answers 200 instead of 206
    sends the whole file, which then replaces the partial one. Transient failures are retried ``retries``
    times, waiting ``backoff``, 2 x ``backoff``, 4 x ``backoff``, ... seconds. An existing ``dest`` is kept
    (not downloaded again) when it matches ``sha256`` or no ``sha256`` is given; one that does not match is
    deleted and downloaded again. A mismatch after the download deletes it and raises :class:`DataError`.
    """
    dest = Path(dest)
    if dest.is_file():
        actual = file_sha256(dest)
        if sha256 is None or actual == sha256.lower():
            return actual
        logger.warning("%s: sha256 %s is not the expected %s; downloading it again", dest, actual, sha256)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    for attempt in range(retries + 1):
        try:
            _download(url, part, timeout)
            break
        except _Transient as err:
            if attempt == retries:
                raise DataError(f"{url}: download failed after {retries + 1} attempts ({err})") from err
            delay = backoff * 2**attempt
            logger.warning("%s: %s; retrying in %.3g s", url, err, delay)
            time.sleep(delay)
    actual = file_sha256(part)
    if sha256 is not None and actual != sha256.lower():
        part.unlink()
        raise DataError(f"{url}: sha256 mismatch: expected {sha256}, got {actual}; the download was deleted")
    os.replace(part, dest)
    return actual


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-")


def _download(url: str, part: Path, timeout: float) -> None:
    """One request: resume ``part`` if the server answers 206 from where it ends, otherwise rewrite it."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            total = re.fullmatch(r"bytes \*/(\d+)", err.headers.get("Content-Range", ""))
            if total and int(total[1]) == have:
                return  # the partial file is complete (the job died before renaming it)
            part.unlink()  # it is no prefix of what the server has now
            raise _Transient("HTTP 416 to a resume request; starting again from byte 0") from err
        if err.code in _TRANSIENT_HTTP:
            raise _Transient(f"HTTP {err.code} {err.reason}") from err
        raise DataError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, refused or reset connections
        raise _Transient(f"{type(err).__name__}: {err}") from err
    with response:
        partial = response.status == 206
        ranged = _CONTENT_RANGE.match(response.headers.get("Content-Range", "")) if partial else None
        if partial and (ranged is None or int(ranged[1]) != have):
            part.unlink(missing_ok=True)
            raise _Transient(f"a 206 answer with Content-Range {response.headers.get('Content-Range')!r}")
        start = have if ranged else 0
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length is not None else None
        try:
            with open(part, "ab" if ranged else "wb") as fh:
                shutil.copyfileobj(response, fh, 1 << 20)
        except (OSError, http.client.HTTPException) as err:
            raise _Transient(f"transfer cut: {type(err).__name__}: {err}") from err
    got = part.stat().st_size
    if expected is not None and got != expected:
        # http.client ends a body cut short without an error: the length tells
        raise _Transient(f"connection closed after {got} of {expected} bytes")
