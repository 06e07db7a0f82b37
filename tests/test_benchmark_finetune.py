"""benchmarks/finetune.py on the CPU with a tiny GPT-NeoX: the figures a GPU run reports, present and sane."""

import json
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # trains a model (torch, transformers) in a subprocess


def test_finetune_benchmark_reports_throughput_memory_startup_and_the_protocol_projection(tmp_path):
    out = tmp_path / "figures.json"
    cmd = [sys.executable, str(REPO / "benchmarks/finetune.py"), "--model", "tiny", "--steps", "1"]
    proc = subprocess.run(
        [*cmd, "--eval-sequences", "4", "--threads", "1", "--peak-tflops", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads(out.read_text())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == m
    assert m["model"] == "pythia-tiny" and m["device"] == "cpu" and m["precision"] == "fp32"
    assert m["n_params"] > m["n_flop_params"] > 0
    # MFU is 6 N tokens/s over the peak given
    assert m["mfu"] == 6 * m["n_flop_params"] * m["tokens_per_s"] / 1e12
    assert m["tokens_per_s"] == 10 * 256 / m["fwd_bwd_s"]  # the paper's micro-batch x context
    assert m["first_step_s"] > m["load_s"] > 0 and m["peak_memory_mb"] > 0
    # the paper's protocol: 15 revisions x 5 datasets x 10 sizes, one group per revision, ~14 epochs a run
    p = m["projection"]
    assert (p["runs"], p["groups"]) == (750, 15)
    assert 13 < p["epochs_per_run"] < 15
    floor = 750 * (p["epochs_per_run"] + 1) * m["eval_s"] / 3600  # the evaluations alone
    assert p["hours"] > floor
