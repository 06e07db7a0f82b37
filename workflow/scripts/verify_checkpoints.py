"""Snakemake entry point: the integrity gate of one model's revisions (transferlaw.checkpoints.verify)."""

import json
from pathlib import Path

from transferlaw.checkpoints import scan_cache, verify
from transferlaw.io import write_json
from transferlaw.runlog import log_to

with log_to(snakemake.log[0]):
    s = snakemake.params.source
    if s["source"] == "hub":
        manifest = json.loads(Path(snakemake.input[0]).read_text())
    else:  # the workflow's own model: what its pretrain job published
        manifest = scan_cache(s["repo_id"], s["revisions"], s["cache_dir"])
    missing = sorted(set(s["revisions"]) - set(manifest["revisions"]))
    if missing:
        raise RuntimeError(
            f"{s['key']}: revisions {', '.join(missing)} are not in the manifest; rerun prefetch"
        )
    manifest["revisions"] = {r: manifest["revisions"][r] for r in s["revisions"]}
    verified = verify(manifest, allow_identical=s["allow_identical"], key=s["key"])
    write_json(verified, snakemake.output[0])
    for rev, entry in verified["revisions"].items():
        print(rev, entry["commit"], *(f"{n}={f['sha256'][:12]}" for n, f in entry["files"].items()))
    if verified["accepted_identical"]:
        print(f"accepted as identical ({s['key']}.allow_identical): {verified['accepted_identical']}")
