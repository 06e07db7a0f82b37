"""Snakemake entry point: tokenize one dataset, cut it into sequences, split eval / training pool."""

from transferlaw.hub import use_offline_mode

use_offline_mode(True)

from pathlib import Path  # noqa: E402

from transferlaw.data import prepare, read_text  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402

with log_to(snakemake.log[0]):
    from transformers import PreTrainedTokenizerFast

    s = snakemake.params.settings
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(Path(snakemake.input.tokenizer).parent))
    data, manifest = prepare(
        read_text(snakemake.input.text),
        tokenizer,
        context_length=s["context_length"],
        eval_sequences=s["eval_sequences"],
        seed=s["seed"],
        name=s["dataset"],
    )
    manifest["source"] = str(snakemake.input.text)
    data.save(snakemake.output.data, manifest)
    print(manifest)
