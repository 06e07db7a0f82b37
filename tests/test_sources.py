"""Loaders of the dataset formats researchers have, on small fixture files, and downloads from a real local
HTTP server with fault injection."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import lzma
import random
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from transferlaw.data.prepare import DataError
from transferlaw.data.sources import (
    FORMATS,
    detect_format,
    fetch_url,
    load_hub_text,
    load_source,
    load_text,
    strip_latex,
    text_bytes_bound_ok,
)

FIXTURES = REPO / "tests" / "fixtures" / "sources"
COMPRESSORS = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}


def compressed(src: Path, suffix: str, dest_dir: Path) -> Path:
    dest = dest_dir / (src.name + suffix)
    dest.write_bytes(COMPRESSORS[suffix](src.read_bytes()))
    return dest


# -- format detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.txt", "text"),
        ("a.TEXT", "text"),
        ("a.txt.xz", "text"),
        ("notes.md", "markdown"),
        ("notes.markdown.gz", "markdown"),
        ("paper.tex.bz2", "latex"),
        ("rows.jsonl", "jsonl"),
        ("rows.ndjson.gz", "jsonl"),
        ("table.parquet", "parquet"),
        ("table.pq", "parquet"),
        ("chr.fa.gz", "fasta"),
        ("chr.fasta", "fasta"),
        ("chr.fna", "fasta"),
        ("chr.fas", "fasta"),
        ("box.mbox", "mbox"),
        ("v1.2.corpus.txt", "text"),
    ],
)
def test_detect_format_from_extension(name, fmt):
    assert detect_format(name) == fmt


def test_detect_format_json_lines_maildir_and_unknown(tmp_path):
    (tmp_path / "rows.json").write_text('{"text": "a"}\n{"text": "b"}\n')
    assert detect_format(tmp_path / "rows.json") == "jsonl"
    (tmp_path / "doc.json").write_text('[{"text": "a"},\n {"text": "b"}]\n')
    with pytest.raises(DataError, match=r"doc\.json.*not JSON Lines.*`format:`"):
        detect_format(tmp_path / "doc.json")
    box = tmp_path / "box"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    assert detect_format(box) == "maildir"
    (box / "tmp").rmdir()  # git keeps no empty folders: tmp/ is optional
    assert detect_format(box) == "maildir"
    with pytest.raises(DataError, match="not a maildir"):
        detect_format(tmp_path)
    with pytest.raises(DataError) as err:
        detect_format(tmp_path / "corpus.csv.gz")
    message = str(err.value)
    assert "corpus.csv.gz" in message and "`format:`" in message
    assert all(fmt in message for fmt in FORMATS)


# -- text, Markdown, LaTeX -------------------------------------------------------------------------------


def test_text_and_markdown_as_is_without_byte_order_mark(tmp_path):
    assert load_text(FIXTURES / "plain.txt") == (FIXTURES / "plain.txt").read_bytes().decode()
    assert load_text(FIXTURES / "notes.md") == "# Title\n\nSome *markdown* with `code`.\n"
    (tmp_path / "bad.md").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match=r"bad\.md.*UTF-8 markdown"):
        load_text(tmp_path / "bad.md")


def test_latex_drops_preamble_and_comments_keeps_escaped_percent():
    assert load_text(FIXTURES / "paper.tex") == (
        "\\section{Intro} \n"
        "We prove that 50\\% of $x \\in \\R$ satisfy\n"
        "\\begin{equation}\n"
        "  f(x) = x^2 \\\\\n"
        "\\end{equation}\n"
        "\n"
        "The end.\\\\\\% kept: an escaped percent after a line break"
    )


def test_strip_latex_without_document_environment():
    source = "% header comment\n\\section{A}\n100\\% sure % not this\n\\\\% nor this\n\nlast\n"
    assert strip_latex(source) == "\\section{A}\n100\\% sure \n\\\\\n\nlast"
    # a \begin{document} inside a comment is no document start
    assert strip_latex("% \\begin{document}\nkept\n") == "kept"


# -- JSON Lines and parquet ------------------------------------------------------------------------------


def test_jsonl_reads_only_the_text_field_and_skips_nulls(caplog):
    with caplog.at_level(logging.INFO, logger="transferlaw.data.sources"):
        text = load_text(FIXTURES / "records.jsonl")
    assert text == "First document.\nIt has two lines.\n\nCafé — unicode escapes and raw ünïcödé."
    assert "SECRET" not in text
    assert "skipped 2 of 4" in caplog.text
    assert load_text(FIXTURES / "records.jsonl", text_field="meta") == "\n\n".join(
        f"SECRET-META-{i}" for i in range(1, 5)
    )


def test_jsonl_errors_name_file_line_and_field(tmp_path):
    with pytest.raises(
        DataError, match=r"records\.jsonl: jsonl line 1 has no field 'body'.*'id', 'text', 'meta'"
    ):
        load_text(FIXTURES / "records.jsonl", text_field="body")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 3}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: jsonl line 2: field 'text' holds a int"):
        load_text(bad)
    bad.write_text('{"text": "ok"}\n{"text": "unterminated\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: jsonl line 2 is not valid JSON"):
        load_text(bad)
    bad.write_text('{"text": "ok"}\n{"text": "half an emoji \\ud83d"}\n')
    with pytest.raises(
        DataError, match=r"bad\.jsonl: jsonl line 2: field 'text' holds a lone surrogate \\ud83d"
    ):
        load_text(bad)
    bad.write_text('{"text": null}\n{"text": ""}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: no training text.*jsonl"):
        load_text(bad)


def write_parquet(path: Path, table: pa.Table, **kwargs) -> Path:
    pq.write_table(table, path, **kwargs)
    return path


def test_parquet_reads_only_the_text_field(tmp_path, caplog):
    texts = [f"document {i}\nwith a second line" if i % 5 else None for i in range(40)]
    texts[3] = ""
    table = pa.table({"text": texts, "secret": [f"SECRET-{i}" for i in range(40)], "n": list(range(40))})
    path = write_parquet(tmp_path / "t.parquet", table, row_group_size=7)  # several row groups
    with caplog.at_level(logging.INFO, logger="transferlaw.data.sources"):
        text = load_text(path)
    assert text == "\n\n".join(t for t in texts if t)
    assert "SECRET" not in text and "skipped 9 of 40" in caplog.text
    assert load_text(path, text_field="secret").split("\n\n") == [f"SECRET-{i}" for i in range(40)]
    # a pandas categorical comes back dictionary-encoded
    frame = pd.DataFrame({"body": pd.Categorical(["x", "y", "x"]), "id": [1, 2, 3]})
    frame.to_parquet(tmp_path / "cat.pq")
    assert load_text(tmp_path / "cat.pq", text_field="body") == "x\n\ny\n\nx"


def test_parquet_errors_name_file_and_field(tmp_path):
    path = write_parquet(tmp_path / "t.parquet", pa.table({"body": ["a"], "n": [7]}))
    with pytest.raises(DataError, match=r"t\.parquet: parquet has no field 'text'.*'body', 'n'"):
        load_text(path)
    path = write_parquet(tmp_path / "n.parquet", pa.table({"text": pa.array([None, None, 5], pa.int64())}))
    with pytest.raises(DataError, match=r"n\.parquet: parquet field 'text' holds int64 values.*row 2"):
        load_text(path)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"junk\.parquet: cannot read as parquet"):
        load_text(tmp_path / "junk.parquet")


# -- FASTA -----------------------------------------------------------------------------------------------


def test_fasta_joins_records_and_keeps_soft_masked_bases():
    text = load_text(FIXTURES / "genome.fasta")
    assert text == "ACGTACGTNNGGCCAATT\nACGTACGTACGT\nTTTT"
    # masking does not change the alphabet, and lower-case bases are kept, not dropped
    assert set(text) <= set("ACGTN\n")
    raw = (FIXTURES / "genome.fasta").read_text()
    bases = sum(len(line) for line in raw.splitlines() if line and line[0] not in ">;")
    assert len(text.replace("\n", "")) == bases


def test_fasta_keep_lines_keeps_the_source_s_60_base_lines(tmp_path):
    """`keep_lines` (config/barnett2024.yaml, after the paper's appendix F.4 sample): the source's sequence
    lines as they are, upper-cased, headers gone; the bases and their order are those of the joined text."""
    path = FIXTURES / "genome_60.fa"
    sequence = [line for line in path.read_text().splitlines() if not line.startswith(">")]
    kept = load_text(path, keep_lines=True)
    assert kept.split("\n") == [line.upper() for line in sequence]
    assert max(map(len, kept.split("\n"))) == 60 and kept.count("\n") == len(sequence) - 1
    joined = load_text(path)
    assert joined.count("\n") == 1  # by default: one line per record (two records)
    assert kept.replace("\n", "") == joined.replace("\n", "")
    # as a dataset block reads it (compressed, as Ensembl serves it), and only when asked for
    gz = compressed(path, ".gz", tmp_path)
    assert load_source(gz, {"format": "fasta", "keep_lines": True}) == kept
    assert load_source(gz, {"format": "fasta"}) == joined


# -- mail ------------------------------------------------------------------------------------------------

BODIES = [
    "Hi Bob,\nthe meeting is at noon.",
    "See you at the café, 5 € a coffee.",
    "La réponse est jointe, cher collègue.",
]


def test_mbox_plain_bodies_decoded_attachments_and_html_skipped():
    text = load_text(FIXTURES / "mail.mbox")
    assert text == "\n\n".join(BODIES)
    for marker in ("HTML-ONLY-MARKER", "ATTACHMENT-MARKER", "JVBER", "Subject:"):
        assert marker not in text


def test_mbox_headers_as_they_appear():
    text = load_text(FIXTURES / "mail.mbox", headers=True)
    assert text.startswith("From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: plain message\n")
    assert "Subject: =?utf-8?q?Re=3A_caf=C3=A9?=\n" in text  # raw, as in the message
    assert "Message-ID: <2@example.org>\nMIME-Version: 1.0\n" in text
    assert 'Content-Type: multipart/alternative; boundary="ALT"\n\nSee you at the café' in text
    # the html-only message keeps its header block, and nothing of its body
    assert text.endswith(
        "Message-ID: <4@example.org>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8"
    )
    assert "From alice@example.org Mon Jan" not in text  # the mbox separator line is not a header
    for body in BODIES:
        assert body in text


def test_maildir_reads_cur_and_new_in_name_order(tmp_path):
    raw = (FIXTURES / "mail.mbox").read_bytes()
    messages = [m.split(b"\n", 1)[1] for m in re.split(rb"\n(?=From \S+@)", raw)]  # drop the From_ lines
    assert len(messages) == 4
    box = tmp_path / "Maildir"
    for sub in ("cur", "new"):
        (box / sub).mkdir(parents=True)
    for i, message in enumerate(messages):
        if i % 2:
            (box / "cur" / f"100{i}.M1P1.host:2,S").write_bytes(message.replace(b"\n", b"\r\n"))
        else:
            (box / "new" / f"100{i}.M1P1.host").write_bytes(message)
    assert load_text(box) == "\n\n".join(BODIES)  # CRLF mail files give the same text
    assert load_text(box, headers=True) == load_text(FIXTURES / "mail.mbox", headers=True)


# -- every single-file format, compressed ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_files_give_the_same_text(tmp_path, suffix):
    table = pa.table({"text": ["row one", "row two"], "other": [1, 2]})
    files = [*sorted(FIXTURES.iterdir()), write_parquet(tmp_path / "t.parquet", table)]
    assert {detect_format(f) for f in files} == set(FORMATS) - {"maildir"}
    for path in files:
        packed = compressed(path, suffix, tmp_path)
        assert detect_format(packed) == detect_format(path)
        assert load_text(packed, headers=True) == load_text(path, headers=True), path.name


def test_corrupt_compressed_file_is_named(tmp_path):
    bad = tmp_path / "rows.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"text": "a"}\n' * 100)[:-20])
    with pytest.raises(DataError, match=r"rows\.jsonl\.gz: cannot read as UTF-8 jsonl"):
        load_text(bad)


def test_load_text_names_missing_files_and_unknown_formats(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.json: not found"):
        load_text(tmp_path / "nothere.json")
    with pytest.raises(DataError, match=r"genome.fasta: not a mail message"):
        load_text(FIXTURES, format="maildir")
    with pytest.raises(DataError, match=r"sources: format text reads a file"):
        load_text(FIXTURES, format="text")
    with pytest.raises(DataError, match=r"plain\.txt: format maildir reads a folder"):
        load_text(FIXTURES / "plain.txt", format="maildir")
    with pytest.raises(DataError, match=r"plain\.txt: unknown format 'csv'.*`format:`"):
        load_text(FIXTURES / "plain.txt", format="csv")
    # an explicit format overrides the extension
    assert load_text(FIXTURES / "plain.txt", format="fasta").startswith("PLAIN TEXT, KEPT AS IS.")


# -- the size bound --------------------------------------------------------------------------------------


def test_text_bytes_bound_holds_where_claimed(tmp_path):
    escapes = tmp_path / "escapes.jsonl"  # JSON escapes shrink when decoded, never grow
    escapes.write_text('{"text": "\\u00e9\\ud83d\\ude00\\n\\t"}\n{"text": "x"}\n{"text": "y"}\n')
    files = [*sorted(FIXTURES.iterdir()), escapes]
    for path in files:
        fmt = detect_format(path)
        if text_bytes_bound_ok(fmt):
            assert len(load_text(path).encode()) <= path.stat().st_size, path.name
    assert {detect_format(f) for f in files if text_bytes_bound_ok(detect_format(f))} == {
        "text",
        "markdown",
        "latex",
        "jsonl",
        "fasta",
    }


def test_text_bytes_bound_refused_where_it_fails(tmp_path):
    # html: a few entities decode to more bytes than they are written with
    page = tmp_path / "p.html"
    page.write_text("<p>" + "&nGt;" * 100 + "</p>")
    assert len(load_text(page).encode()) > page.stat().st_size and not text_bytes_bound_ok("html")
    # parquet compresses: the text can be far larger than the file
    path = write_parquet(tmp_path / "t.parquet", pa.table({"text": ["all work and no play " * 500]}))
    assert len(load_text(path).encode()) > path.stat().st_size and not text_bytes_bound_ok("parquet")
    # an 8-bit Latin-1 mail body doubles in UTF-8
    box = tmp_path / "latin.mbox"
    box.write_bytes(
        b"From x@example.org Mon Jan  7 10:00:00 2002\nFrom: x@example.org\n"
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
        + b"\xe9" * 500
        + b"\n"
    )
    assert len(load_text(box).encode()) > box.stat().st_size and not text_bytes_bound_ok("mbox")
    assert not text_bytes_bound_ok("maildir")


# -- Hugging Face datasets -------------------------------------------------------------------------------


def hub_repo(root: Path) -> Path:
    """A folder laid out like a hub dataset repo: data/<split>-0000x-of-0000n.parquet."""
    (root / "data").mkdir(parents=True)
    for split, n in (("train", 12), ("test", 3)):
        for shard in range(2):
            rows = range(shard * n, (shard + 1) * n)
            table = pa.table(
                {"text": [f"{split} doc {i}" for i in rows], "label": [f"SECRET-{i}" for i in rows]}
            )
            pq.write_table(table, root / "data" / f"{split}-{shard:05d}-of-00002.parquet")
    return root


@pytest.mark.slow  # the datasets library (seconds to import)
def test_hub_dataset_from_a_local_repo_folder(tmp_path):
    repo = hub_repo(tmp_path / "repo")
    cache = str(tmp_path / "cache")
    text = load_hub_text(str(repo), split="train", cache_dir=cache)
    assert sorted(text.split("\n\n")) == sorted(f"train doc {i}" for i in range(24))
    assert "SECRET" not in text
    assert sorted(load_hub_text(str(repo), split="test", cache_dir=cache).split("\n\n")) == sorted(
        f"test doc {i}" for i in range(6)
    )
    with pytest.raises(DataError, match=r"hub dataset .*repo.* has no field 'body'.*'text', 'label'"):
        load_hub_text(str(repo), text_field="body", cache_dir=cache)
    with pytest.raises(DataError, match=r"split 'validation'.*cannot load"):
        load_hub_text(str(repo), split="validation", cache_dir=cache)


@pytest.mark.slow  # the datasets library (seconds to import)
def test_hub_dataset_jsonl_repo(tmp_path):
    repo = tmp_path / "jsonrepo"
    repo.mkdir()
    (repo / "train.jsonl").write_text(
        '{"text": "alpha", "x": 1}\n{"text": null, "x": 2}\n{"text": "beta", "x": 3}\n'
    )
    assert load_hub_text(str(repo), cache_dir=str(tmp_path / "cache")) == "alpha\n\nbeta"


@pytest.mark.slow  # the datasets library (seconds to import)
def test_hub_dataset_offline_from_the_cache(tmp_path, monkeypatch):
    """A name that is not a local folder is looked up on the hub; offline (HF_HUB_OFFLINE=1, set by
    conftest) ``datasets`` falls back to what an earlier load left in the cache."""
    name = "transferlaw-cached-probe"
    repo = hub_repo(tmp_path / name)
    cache = str(tmp_path / "cache")
    first = load_hub_text(str(repo), cache_dir=cache)
    shutil.rmtree(repo)
    monkeypatch.chdir(tmp_path)  # no folder of that name here any more: the name goes to the hub
    assert load_hub_text(name, cache_dir=cache) == first
    with pytest.raises(DataError, match=r"hub dataset 'transferlaw-never-cached'.*cannot load"):
        load_hub_text("transferlaw-never-cached", cache_dir=cache)


# -- downloads from a real local HTTP server -------------------------------------------------------------


class Faults:
    """What the server does: ``fail`` 503s first, cut the next body after ``cut`` bytes, serve reversed
    (wrong) content ``wrong`` times, stall ``stall`` seconds once, honour Range only when ``ranges``."""

    def __init__(self, data: bytes):
        self.data = data
        self.fail = 0
        self.cut: int | None = None
        self.wrong = 0
        self.stall = 0.0
        self.ranges = True
        self.requests: list[str | None] = []  # the Range header of each request


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        faults: Faults = self.server.faults
        requested = self.headers.get("Range")
        faults.requests.append(requested)
        stall, faults.stall = faults.stall, 0.0  # once: the retry comes while this one sleeps
        time.sleep(stall)
        if self.path == "/missing":
            self.send_error(404)
            return
        if faults.fail:
            faults.fail -= 1
            self.send_error(503)
            return
        body = faults.data
        if faults.wrong:
            faults.wrong -= 1
            body = body[::-1]
        match = re.fullmatch(r"bytes=(\d+)-", requested or "")
        start = int(match[1]) if match and faults.ranges else 0
        if start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if faults.cut is not None:
            self.wfile.write(body[start : start + faults.cut])  # then the connection closes
            faults.cut = None
            return
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out or hung up: writing to it fails, as it should


@pytest.fixture
def server():
    data = random.Random(0).randbytes(300_000)
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.faults = Faults(data)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd.faults, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_plain_download(server, tmp_path):
    faults, base = server
    dest = tmp_path / "sub" / "data.bin"
    assert fetch_url(f"{base}/data.bin", dest, sha256=sha(faults.data)) == sha(faults.data)
    assert dest.read_bytes() == faults.data and faults.requests == [None]
    assert list(dest.parent.iterdir()) == [dest]


def test_fetch_retries_after_503(server, tmp_path):
    faults, base = server
    faults.fail = 2
    start = time.monotonic()
    assert fetch_url(f"{base}/d", tmp_path / "d", backoff=0.05) == sha(faults.data)
    assert time.monotonic() - start >= 0.05 + 0.1  # exponential back-off: 0.05 s, then 0.1 s
    assert faults.requests == [None, None, None]
    assert (tmp_path / "d").read_bytes() == faults.data


def test_fetch_gives_up_after_retries_and_on_404(server, tmp_path):
    faults, base = server
    faults.fail = 100
    with pytest.raises(DataError, match=r"http://127\.0\.0\.1:\d+/d: download failed after 3 attempts.*503"):
        fetch_url(f"{base}/d", tmp_path / "d", retries=2, backoff=0.001)
    assert len(faults.requests) == 3 and not (tmp_path / "d").exists()
    faults.requests.clear()
    with pytest.raises(DataError, match=r"/missing: HTTP 404"):
        fetch_url(f"{base}/missing", tmp_path / "m", backoff=0.001)
    assert len(faults.requests) == 1  # a 404 is not transient


def test_fetch_resumes_a_cut_transfer_with_range(server, tmp_path):
    faults, base = server
    faults.cut = 100_000
    dest = tmp_path / "d.bin"
    assert fetch_url(f"{base}/d", dest, sha256=sha(faults.data), backoff=0.001) == sha(faults.data)
    assert faults.requests == [None, "bytes=100000-"]
    assert dest.read_bytes() == faults.data
    assert not dest.with_suffix(".bin.part").exists()


def test_fetch_resumes_a_part_left_by_a_killed_job(server, tmp_path):
    faults, base = server
    dest = tmp_path / "d.bin"
    dest.with_suffix(".bin.part").write_bytes(faults.data[:12345])
    fetch_url(f"{base}/d", dest)
    assert faults.requests == ["bytes=12345-"] and dest.read_bytes() == faults.data


def test_fetch_takes_a_complete_part_as_it_is(server, tmp_path):
    faults, base = server
    dest = tmp_path / "d.bin"
    dest.with_suffix(".bin.part").write_bytes(faults.data)  # killed between the last byte and the rename
    assert fetch_url(f"{base}/d", dest, sha256=sha(faults.data)) == sha(faults.data)
    assert faults.requests == ["bytes=300000-"] and dest.read_bytes() == faults.data
    dest.unlink()
    dest.with_suffix(".bin.part").write_bytes(faults.data + b"longer than the file now")
    assert fetch_url(f"{base}/d", dest, backoff=0.001) == sha(faults.data)  # 416: start again
    assert faults.requests[1:] == ["bytes=300024-", None] and dest.read_bytes() == faults.data


def test_fetch_restarts_when_the_server_ignores_range(server, tmp_path):
    faults, base = server
    faults.cut, faults.ranges = 100_000, False
    dest = tmp_path / "d.bin"
    fetch_url(f"{base}/d", dest, sha256=sha(faults.data), backoff=0.001)
    assert faults.requests == [None, "bytes=100000-"]  # asked to resume, got the whole file (200)
    assert dest.read_bytes() == faults.data  # replaced, not appended


def test_fetch_retries_a_stalled_server(server, tmp_path):
    faults, base = server
    faults.stall = 1.0
    fetch_url(f"{base}/d", tmp_path / "d", timeout=0.2, backoff=0.001)
    assert len(faults.requests) == 2 and (tmp_path / "d").read_bytes() == faults.data


def test_fetch_refuses_a_sha256_mismatch(server, tmp_path):
    faults, base = server
    faults.wrong = 1
    dest = tmp_path / "d.bin"
    expected, served = sha(faults.data), sha(faults.data[::-1])
    with pytest.raises(DataError) as err:
        fetch_url(f"{base}/d", dest, sha256=expected)
    assert f"{base}/d" in str(err.value) and expected in str(err.value) and served in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither dest nor a .part
    assert fetch_url(f"{base}/d", dest, sha256=expected) == expected  # the next try gets the right file
    assert dest.read_bytes() == faults.data


def test_fetch_keeps_a_matching_file_and_replaces_a_wrong_one(server, tmp_path):
    faults, base = server
    dest = tmp_path / "d.bin"
    dest.write_bytes(faults.data)
    assert fetch_url(f"{base}/d", dest, sha256=sha(faults.data)) == sha(faults.data)
    assert fetch_url(f"{base}/d", dest) == sha(faults.data)  # no hash given: a complete file is kept
    assert faults.requests == []
    dest.write_bytes(b"stale")
    assert fetch_url(f"{base}/d", dest, sha256=sha(faults.data)) == sha(faults.data)
    assert faults.requests == [None] and dest.read_bytes() == faults.data


# -- html, archives, folders of messages -------------------------------------------------------------------


def test_html_keeps_the_visible_text_in_paragraphs():
    text = load_text(FIXTURES / "page.html")
    assert "script, not text" not in text and "Head title" not in text and "color" not in text
    paragraphs = text.split("\n\n")
    assert "Bootstrap procedure" in paragraphs
    sample = "If our sample data are representative of the population, we can use the distribution of"
    assert f"{sample} values in our sample & resample it." in paragraphs
    assert paragraphs[-2:] == ["A bootstrap sample", "A bootstrap statistic"]


def make_archive(path, files, kind):
    if kind == "zip":
        import zipfile

        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        import io
        import tarfile

        with tarfile.open(path, f"w:{kind}") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("kind", ["gz", "xz", "zip"])
def test_members_of_an_archive_are_read_one_by_one(tmp_path, kind):
    from transferlaw.data.sources import load_source

    files = {
        "paper/main.tex": b"\\documentclass{article}\n\\begin{document}\nMain body. % gone\n"
        b"\\end{document}\n",
        "paper/ch1.tex": b"Chapter one, 100\\% here.\n",
        "paper/figure.png": b"\x89PNG not text",
        "../escape.tex": b"never extracted",
    }
    archive = make_archive(tmp_path / f"eprint.{kind}", files, kind)
    text = load_source(archive, {"format": "latex", "members": "*.tex"})
    assert text == "Chapter one, 100\\% here.\n\nMain body. "
    assert not (tmp_path / "escape.tex").exists() and not list(tmp_path.glob(".members-*"))
    with pytest.raises(DataError, match="no member matches"):
        load_source(archive, {"format": "latex", "members": "*.md"})
    with pytest.raises(DataError, match="no tar or zip archive"):
        load_source(FIXTURES / "paper.tex", {"format": "latex", "members": "*.tex"})


def test_a_folder_of_one_message_files_is_read_as_maildir(tmp_path):
    """The CMU Enron corpus is no real maildir: maildir/<user>/<folder>/1., 2., ... one message each."""
    from transferlaw.data.sources import load_source

    folder = tmp_path / "maildir" / "taylor-m" / "all_documents"
    folder.mkdir(parents=True)
    for k in (2, 1, 10):
        (folder / f"{k}.").write_bytes(f"Message-ID: <{k}@enron>\nSubject: n{k}\n\nbody {k}\n".encode())
    assert load_text(folder, "maildir") == "body 1\n\nbody 10\n\nbody 2"
    archive = make_archive(
        tmp_path / "enron.tar.gz",
        {f"maildir/taylor-m/all_documents/{k}.": (folder / f"{k}.").read_bytes() for k in (1, 2)},
        "gz",
    )  # noqa: E501
    text = load_source(
        archive, {"format": "maildir", "members": "maildir/taylor-m/all_documents/*", "headers": True}
    )
    assert text.startswith("Message-ID: <1@enron>\nSubject: n1\n\nbody 1\n\nMessage-ID: <2@enron>")
