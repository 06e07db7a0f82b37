"""Benchmark: reading the text field of local JSON Lines and parquet files, as :mod:`transferlaw.data.sources`
does (stdlib json line by line; pyarrow reading one column) against ``pyarrow.json`` and
``datasets.load_dataset`` (first load, into a fresh cache folder). Writes a JSON Lines and a parquet file of
``--records`` records (a text field, an id, a score and a long metadata field that must not be read) to a
temporary folder, checks that every reader gives the same text, and prints wall and CPU seconds.

    python benchmarks/sources.py [--records 50000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pyarrow as pa  # noqa: E402
import pyarrow.json as pj  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from transferlaw.data.sources import _join_column, load_text  # noqa: E402

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "café", "naïve", "données"]


def timed(label: str, fn) -> str:
    wall, cpu = time.perf_counter(), time.process_time()
    text = fn()
    print(f"{label:46s} wall {time.perf_counter() - wall:6.2f} s   cpu {time.process_time() - cpu:6.2f} s")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import datasets

    datasets.disable_progress_bars()
    rng = random.Random(args.seed)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(50, 300))) for _ in range(args.records)]
    meta = [" ".join(rng.choices(WORDS, k=100)) for _ in range(args.records)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jsonl, parquet = tmp / "d.jsonl", tmp / "d.parquet"
        with open(jsonl, "w") as fh:
            for i, (t, m) in enumerate(zip(texts, meta, strict=True)):
                fh.write(json.dumps({"id": i, "text": t, "meta": m, "score": rng.random()}) + "\n")
        pq.write_table(pa.table({"id": range(args.records), "text": texts, "meta": meta}), parquet)
        print(
            f"{args.records} records: JSON Lines {jsonl.stat().st_size / 1e6:.1f} MB, "
            f"parquet {parquet.stat().st_size / 1e6:.1f} MB"
        )

        def hub(kind: str, path: Path) -> str:
            cache = tempfile.mkdtemp(dir=tmp)
            try:
                ds = datasets.load_dataset(kind, data_files=str(path), split="train", cache_dir=cache)
                return _join_column(ds.with_format("arrow")["text"], kind, "text")
            finally:
                shutil.rmtree(cache)

        results = [
            timed("jsonl: load_text (stdlib json, streamed)", lambda: load_text(jsonl)),
            timed(
                "jsonl: pyarrow.json.read_json", lambda: _join_column(pj.read_json(jsonl)["text"], "", "text")
            ),
            timed("jsonl: datasets.load_dataset (first load)", lambda: hub("json", jsonl)),
            timed("parquet: load_text (pyarrow, one column)", lambda: load_text(parquet)),
            timed("parquet: datasets.load_dataset (first load)", lambda: hub("parquet", parquet)),
        ]
        assert all(r == results[0] for r in results), "the readers disagree"


if __name__ == "__main__":
    main()
