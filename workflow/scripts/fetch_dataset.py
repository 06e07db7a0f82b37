"""Snakemake entry point: download one dataset (a URL, pinned by sha256 where the config gives one, or a hub
dataset at a pinned revision) into the data cache, and write its training text with a provenance file."""

import os

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import hashlib  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

from transferlaw.config import resolve  # noqa: E402
from transferlaw.data.sources import fetch_url, load_hub_text, load_source  # noqa: E402
from transferlaw.io import write_json, write_text  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402

with log_to(snakemake.log[0]):
    src = snakemake.params.source
    study = resolve(snakemake.config)
    # where downloads go is not a parameter of the result: moving the cache must not rerun anything
    cache = Path(study["data_cache"])
    if "url" in src:
        # the pin is read here, not passed as a param: pinning a download (adding its sha256) checks the text,
        # and must not re-fetch and re-prepare it (the workflow compares a new pin with the recorded sha256)
        pinned = study["datasets"][snakemake.wildcards.dataset].get("sha256")
        # stored by the URL's hash: pinning a file later checks the copy already downloaded
        folder = hashlib.sha256(src["url"].encode()).hexdigest()[:16]
        dest = cache / "url" / folder / (Path(urlparse(src["url"]).path).name or "download")
        sha = fetch_url(src["url"], dest, sha256=pinned)
        if not pinned:
            logging.warning(
                "%s is not pinned: its sha256 is %s. Add `sha256: %s` to datasets.%s so that a later "
                "download must match it",
                src["url"],
                sha,
                sha,
                snakemake.wildcards.dataset,
            )
        text = load_source(dest, src)
        provenance = {**src, "file": str(dest), "sha256": sha, "pinned": bool(pinned)}
    else:
        hub = src["hub"]
        text = load_hub_text(
            hub["name"],
            config=hub["config"],
            split=hub["split"],
            text_field=hub["text_field"],
            revision=hub["revision"],
            cache_dir=str(cache / "hub"),
        )
        provenance = dict(src)
    provenance["text_bytes"] = len(text.encode())
    write_text(text, snakemake.output.text)
    write_json(provenance, snakemake.output.provenance)
    print(provenance)
