"""Snakemake entry point: pre-train the tiny GPT-NeoX and publish its revisions."""

from transferlaw.train.hub import use_offline_mode

use_offline_mode(True)

from pathlib import Path  # noqa: E402

from transferlaw.data.prepare import read_text, tokenize  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402
from transferlaw.train.pretrain import pretrain  # noqa: E402

with log_to(snakemake.log[0]):
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(Path(snakemake.input.tokenizer).parent))
    tokens = tokenize(read_text(snakemake.input.corpus), tokenizer)
    cache_dir = Path(snakemake.output.refs[0]).parents[2]
    settings = {**snakemake.params.settings, "threads": snakemake.threads}
    pretrain(tokens, tokenizer, settings, cache_dir, snakemake.params.repo_id)
