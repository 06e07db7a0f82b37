"""Snakemake entry point: the study's tokenizer (built locally, or copied from the first hub model)."""

from transferlaw.hub import use_offline_mode

source = snakemake.params.source
use_offline_mode(source["offline"])

from pathlib import Path  # noqa: E402

from transferlaw.io import atomic_path  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402

with log_to(snakemake.log[0]):
    out = Path(snakemake.output[0])
    if source["source"] == "pretrain":
        from transferlaw.data import read_text
        from transferlaw.pretrain import build_tokenizer

        tokenizer = build_tokenizer(read_text(snakemake.input.corpus), snakemake.params.vocab_size)
    else:
        from transferlaw.hub import load_tokenizer

        tokenizer = load_tokenizer(
            source["repo_id"], source["revision"], source["cache_dir"], source["offline"]
        )
    tokenizer.save_pretrained(out.parent)
    # tokenizer.json is the declared output: rewrite it atomically last, so its presence means complete
    with atomic_path(out) as tmp:
        tmp.write_bytes(out.read_bytes())
    print(f"tokenizer with {len(tokenizer)} tokens -> {out.parent}")
