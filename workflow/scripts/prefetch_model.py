"""Snakemake entry point: fetch a hub model's revisions into its cache (or describe a cache filled by hand)
and write its manifest. Runs where Snakemake runs; offline when HF_HUB_OFFLINE=1."""

import os

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from transferlaw.io import write_json  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402
from transferlaw.train.checkpoints import prefetch  # noqa: E402
from transferlaw.train.revisions import resolution_table  # noqa: E402

with log_to(snakemake.log[0]):
    s = snakemake.params.source
    pinned = {
        path.stem: json.loads(path.read_text())["commit"]
        for path in sorted(Path(snakemake.params.pin_dir).glob("step*.json"))
    }
    out = Path(snakemake.output[0])  # an `update` output: the previous manifest, if any, is still there
    previous = json.loads(out.read_text()) if out.is_file() else None
    manifest = prefetch(
        s["repo_id"],
        s["revisions"],
        s["cache_dir"],
        allow_identical=s["allow_identical"],
        key=s["key"],
        pinned=pinned,
        previous=previous,
    )
    write_json(manifest, out)
    print(f"{s['repo_id']}: {len(manifest['revisions'])} revision(s) from the {manifest['source']}")
    if manifest.get("rule"):
        print(f"{s['key']}.revisions resolved (read by every later run):")
        print("\n".join(resolution_table(manifest["resolution"])))
