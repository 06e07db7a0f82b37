"""Snakemake entry point: fetch a hub model's revisions into its cache (or describe a cache filled by hand)
and write its manifest. Runs where Snakemake runs; offline when HF_HUB_OFFLINE=1."""

import os

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from transferlaw.io import write_json  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402
from transferlaw.train.checkpoints import prefetch  # noqa: E402

with log_to(snakemake.log[0]):
    s = snakemake.params.source
    pinned = {
        rev: json.loads(Path(path).read_text())["commit"]
        for rev, path in snakemake.params.pins.items()
        if Path(path).is_file()
    }
    manifest = prefetch(
        s["repo_id"],
        s["revisions"],
        s["cache_dir"],
        allow_identical=s["allow_identical"],
        key=s["key"],
        pinned=pinned,
    )
    write_json(manifest, snakemake.output[0])
    print(f"{s['repo_id']}: {len(manifest['revisions'])} revision(s) from the {manifest['source']}")
