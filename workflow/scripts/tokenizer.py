"""Snakemake entry point: the study's tokenizer (built locally, or read from a hub model's pinned commit)."""

from transferlaw.train.hub import use_offline_mode

use_offline_mode(True)  # a hub model's tokenizer comes from its verified, pinned commit in the cache

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from transferlaw.io import atomic_path  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402

with log_to(snakemake.log[0]):
    out = Path(snakemake.output[0])
    if snakemake.params.source == "pretrain":
        from transferlaw.data.prepare import read_text
        from transferlaw.train.pretrain import build_tokenizer

        tokenizer = build_tokenizer(read_text(snakemake.input.corpus), snakemake.params.vocab_size)
    else:
        from transferlaw.train.checkpoints import check_pin
        from transferlaw.train.hub import load_tokenizer

        pin = json.loads(Path(snakemake.input.pin).read_text())
        check_pin(pin)
        tokenizer = load_tokenizer(pin["repo_id"], pin["commit"], pin["cache_dir"])
    tokenizer.save_pretrained(out.parent)
    # tokenizer.json is the declared output: rewrite it atomically last, so its presence means complete
    with atomic_path(out) as tmp:
        tmp.write_bytes(out.read_bytes())
    print(f"tokenizer with {len(tokenizer)} tokens -> {out.parent}")
