"""Snakemake entry point: one fine-tuning run (dataset, checkpoint, size) -> one parquet record."""

from transferlaw.hub import use_offline_mode

use_offline_mode(True)  # before transformers is imported: jobs load pinned commits from the cache only

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from tqdm import tqdm  # noqa: E402

from transferlaw.finetune import run  # noqa: E402
from transferlaw.runlog import log_to  # noqa: E402
from transferlaw.schema import records_frame, write_records  # noqa: E402

with log_to(snakemake.log[0]):
    w = snakemake.wildcards
    record = run(
        dataset=w.dataset,
        model_settings=snakemake.params.model,
        pin=json.loads(Path(snakemake.input.pin).read_text()),
        size=int(w.size),
        settings={**snakemake.params.settings, "threads": snakemake.threads},
        data_path=snakemake.input.data,
        progress=lambda it, **kw: tqdm(it, mininterval=1.0, **kw),
    )
    print({k: v for k, v in record.items() if k != "eval_curve"})
    write_records(records_frame([record], snakemake.output[0]), snakemake.output[0])
