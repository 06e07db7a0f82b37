"""Snakemake entry point: the model-wide verdict on its revisions' pins
(transferlaw.train.checkpoints.verify_pins): all pinned, and no two serving the same weights unless the config
accepts them. The aggregate reads it."""

from transferlaw.warm import run_warm

run_warm(snakemake, __file__)  # the rest runs in a warm process that has imported what it needs

import json
from pathlib import Path

from transferlaw.io import write_json
from transferlaw.runlog import log_to
from transferlaw.train.checkpoints import verify_pins

with log_to(snakemake.log[0]):
    s = snakemake.params.source
    pins = {p["revision"]: p for p in (json.loads(Path(f).read_text()) for f in snakemake.input.pins)}
    verified = verify_pins(s, pins)
    write_json(verified, snakemake.output[0])
    for rev, entry in verified["revisions"].items():
        print(rev, entry["commit"], *(f"{n}={f['sha256'][:12]}" for n, f in entry["files"].items()))
    if verified["accepted_identical"]:
        print(f"accepted as identical ({s['key']}.allow_identical): {verified['accepted_identical']}")
