"""Snakemake entry point: one fine-tuning run (dataset, checkpoint, size, method, seed) -> one parquet record.

A thin client: the run itself happens in a long-lived worker process on this node that has torch imported
and the checkpoint loaded already (transferlaw.train.worker). This process imports neither, and writes the
record into place, atomically, only once the run has succeeded.
"""

import json
import os
from pathlib import Path

from transferlaw.config import resolve, run_settings
from transferlaw.train.worker import run_task

os.environ["HF_HUB_OFFLINE"] = "1"  # jobs (and the workers they start) load pinned commits from the cache
s, w = snakemake, snakemake.wildcards
# the method's name is the job's wildcard, not a param, so that a full fine-tune has the params it had before
# methods existed
method = w.method
out = Path(s.output[0])
pin = json.loads(Path(s.input.pin).read_text())
settings = {**s.params.settings, "threads": s.threads}
request = {
    "dataset": w.dataset,
    "model": s.params.model,
    "method": method,
    "pin": pin,
    "size": int(w.size),
    "settings": settings,
    "data": s.input.data,
    "log": s.log[0],
    "record": str(out.parent / f".{out.name}.{os.getpid()}.tmp"),
}
# whether to use a worker changes no result, so it is read from the config here, not passed as a param
if run_settings(resolve(s.config), w.dataset, method)["worker"]:
    key = f"{pin['commit']}:{settings['dtype']}:{settings['attention']}"
    summary = run_task("finetune", request, key=key, device=settings["device"], threads=s.threads)
else:
    from transferlaw.train.finetune import run_job

    summary = run_job(request)
os.replace(request["record"], out)
with open(s.log[0], "a") as log:
    print(summary, file=log)
