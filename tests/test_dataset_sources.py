"""Dataset blocks of every kind through the real workflow, up to prepared data: a URL (an archive served by a
local HTTP server, read member by member), a hub dataset (`datasets.load_dataset` on a folder laid out like a
hub repo), a local folder of one-message files; the fetch is pinned by sha256 or trusted and logged."""

import functools
import hashlib
import io
import json
import shutil
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import SMALL_CONFIG, make_study_dir, planned_outputs, snakemake

from transferlaw.data.prepare import read_text

PREAMBLE = "\\documentclass{book}\n\\usepackage{secret-preamble}\n\\begin{document}\n"


def prose(n: int, seed: int) -> str:
    words = read_text("resources/datasets/devils_dictionary.txt.xz").split()
    return " ".join(words[seed * n : (seed + 1) * n])


def eprint(path):
    """An arXiv-style e-print: a gzipped tar of LaTeX files (a main file with a preamble, a chapter)."""
    main = PREAMBLE + "% a comment that must go\n" + prose(3000, 0) + "\n\\input{chapter}\n\\end{document}\n"
    chapter = "\\chapter{Two}\n" + prose(3000, 1) + " 100\\% kept\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in {
            "paper/main.tex": main,
            "paper/chapter.tex": chapter,
            "paper/fig.png": "x",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture()
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_every_source_kind_reaches_prepared_data(served, tmp_path):
    root, base = served
    archive = eprint(root / "2212.11323v1")  # no extension, as arXiv serves it
    workdir = make_study_dir(tmp_path / "study")
    hub = workdir / "hubdata" / "docs" / "data"
    hub.mkdir(parents=True)
    rows = [{"text": prose(400, k), "meta": "NEVER-IN-TEXT"} for k in range(2, 8)]
    (hub / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    mail = workdir / "mail" / "taylor-m" / "all_documents"
    mail.mkdir(parents=True)
    for k in range(6):
        (mail / f"{k + 1}.").write_text(f"Message-ID: <{k}@enron>\nSubject: s{k}\n\n{prose(400, 10 + k)}\n")
    cfg = yaml.safe_load(SMALL_CONFIG.read_text())
    sizes = [4, 8]
    cfg["datasets"] = {
        "arxiv": {"url": f"{base}/{archive.name}", "members": "*.tex", "format": "latex", "sizes": sizes},
        "docs": {"hub": {"name": "hubdata/docs", "revision": "main"}, "sizes": sizes},
        "mail": {"path": "mail", "format": "maildir", "headers": True, "sizes": sizes},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results/data/{d}.json" for d in cfg["datasets"]]
    snakemake(workdir, "--cores", "2", *targets)

    arxiv = (workdir / "results/corpora/arxiv.txt").read_text()
    assert "secret-preamble" not in arxiv and "a comment that must go" not in arxiv
    assert "100\\% kept" in arxiv and "\\chapter{Two}" in arxiv
    provenance = json.loads((workdir / "results/corpora/arxiv.txt.json").read_text())
    assert provenance["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    log = (workdir / "logs/fetch/arxiv.log").read_text()
    assert f"sha256: {provenance['sha256']}" in log and "not pinned" in log
    assert "NEVER-IN-TEXT" not in (workdir / "results/corpora/docs.txt").read_text()
    for d in cfg["datasets"]:
        manifest = json.loads((workdir / f"results/data/{d}.json").read_text())
        assert manifest["train_pool_sequences"] >= max(sizes), d

    # pinning the file as the log says reruns nothing: the pin is checked against the recorded download
    before = (workdir / "results/data/arxiv.npz").read_bytes()
    cfg["datasets"]["arxiv"]["sha256"] = provenance["sha256"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert planned_outputs(workdir, "results/data/arxiv.json", "results/corpora/arxiv.txt") == []
    # a pin that is not the downloaded file's stops the study at once, naming the key
    cfg["datasets"]["arxiv"]["sha256"] = "0" * 64
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    bad = snakemake(workdir, "-n", "results/data/arxiv.json", check=False)
    assert bad.returncode != 0 and "datasets.arxiv.sha256" in bad.stdout + bad.stderr
    # a download that does not match the pin is refused (the file on the server changed), the data stays
    archive.write_bytes(archive.read_bytes() + b"changed upstream")
    shutil.rmtree(workdir / ".cache")  # not in the cache any more: it must be downloaded again
    cfg["datasets"]["arxiv"]["sha256"] = provenance["sha256"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    bad = snakemake(
        workdir, "--cores", "2", "results/corpora/arxiv.txt", "--forcerun", "fetch_dataset", check=False
    )
    assert bad.returncode != 0 and "sha256 mismatch" in bad.stdout + bad.stderr
    assert (workdir / "results/data/arxiv.npz").read_bytes() == before
