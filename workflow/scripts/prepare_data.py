"""Snakemake entry point: read one dataset's text, tokenize it, cut it into sequences, split eval / pool."""

from transferlaw.train.hub import use_offline_mode

use_offline_mode(True)

from pathlib import Path  # noqa: E402

from transferlaw.data.prepare import prepare, read_text  # noqa: E402
from transferlaw.data.sources import load_source  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402

with log_to(snakemake.log[0]):
    from transformers import PreTrainedTokenizerFast

    s = snakemake.params.settings
    src = s["source"]
    if "path" in src:  # a local file in any supported format; fetched and generated text is plain
        text = load_source(snakemake.input.text, src)
    else:
        text = read_text(snakemake.input.text)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(Path(snakemake.input.tokenizer).parent))
    data, manifest = prepare(
        text,
        tokenizer,
        context_length=s["context_length"],
        eval_sequences=s["eval_sequences"],
        seed=s["seed"],
        name=s["dataset"],
    )
    manifest["source"] = str(snakemake.input.text)
    data.save(snakemake.output.data, manifest)
    print(manifest)
