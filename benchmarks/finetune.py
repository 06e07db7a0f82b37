"""What one fine-tuning run of a Pythia model costs on this machine, and what the paper's 750 runs would.

    python benchmarks/finetune.py --model 2.8b                 # on a GPU node (no download: random weights)
    python benchmarks/finetune.py --model 70m --steps 2        # what a CPU can do
    python benchmarks/finetune.py --model tiny --steps 2       # seconds; what the test suite runs

A model is built from the published Pythia configuration (GPT-NeoX, 70m ... 2.8b) with random weights, saved
as safetensors in a Hugging Face cache layout and then, in a fresh process, loaded the way a fine-tuning job
loads a pinned checkpoint (:class:`transferlaw.train.finetune.CheckpointCache`), trained with the study's
numerics (:class:`transferlaw.train.finetune.Numerics`: bf16 autocast over float32 weights on a GPU, SDPA
attention, fused AdamW, TF32; from ``config/barnett2024.yaml`` unless overridden). It prints:

- training tokens/s at micro-batch x context (forward + backward, and with an optimizer step per micro-batch),
- model-FLOPs utilisation, MFU = 6 N tokens/s over the device's dense bf16 peak (N: parameters less the input
  embedding, which is a lookup; attention's own FLOPs are not counted),
- peak memory (GPU: allocated by torch; CPU: the process's resident set),
- the time from process start to the first optimizer step (imports, device start, checkpoint load),
- the projected wall time of the paper's protocol (the config's datasets x revisions x sizes), from these
  measurements: per run the pristine weights restored, per epoch one training micro-batch of the run's
  tokens (the paper's runs are 10-1,100 tokens: at most 5 sequences of 256, one micro-batch) and an optimizer
  step, and an evaluation of the eval split after each epoch and before the first; one start-up per group of
  runs sharing a checkpoint (one per revision, the profile's grouping). Epochs per run are not known before
  the study runs: the paper's compute estimate (4.77e16 FLOP = 6 N sum(epochs x tokens), section 5.2) gives
  its average, 14 epochs for N = 2.8e9, used for every run.

The last line is one JSON object with every figure. ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

#: the published Pythia configurations (EleutherAI/pythia-*: config.json): hidden, layers, heads, intermediate
PYTHIA = {
    "70m": (512, 6, 8, 2048),
    "160m": (768, 12, 12, 3072),
    "410m": (1024, 24, 16, 4096),
    "1b": (2048, 16, 8, 8192),
    "1.4b": (2048, 24, 16, 8192),
    "2.8b": (2560, 32, 32, 10240),
    "tiny": (32, 2, 4, 64),  # not Pythia: for the test suite
}
PYTHIA_VOCAB = 50304
#: dense bf16 tensor-core peak (FLOP/s) by a substring of the device name, most specific first
PEAKS = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
]
#: the paper's compute estimate (section 5.2) and model size: the average epochs per run follows from them
PAPER_FLOP, PAPER_N = 4.77e16, 2.8e9


def gpt_neox_config(name: str, context: int):
    from transformers import GPTNeoXConfig

    hidden, layers, heads, inter = PYTHIA[name]
    return GPTNeoXConfig(
        vocab_size=512 if name == "tiny" else PYTHIA_VOCAB,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=max(2048, context),
        rotary_pct=0.25,
        rotary_emb_base=10000,
        use_parallel_residual=True,
        layer_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )


def build_checkpoint(name: str, context: int, cache: Path) -> dict:
    """Random weights in Pythia's shape, published as a revision in a Hugging Face cache; returns its pin."""
    import torch
    from transformers import GPTNeoXForCausalLM
    from transformers.utils import logging

    from transferlaw.train.hub import publish_revision, snapshot_path

    logging.disable_progress_bar()

    repo_id = f"bench/pythia-{name}"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(device):  # initialising 2.8B parameters on the CPU takes minutes
        model = GPTNeoXForCausalLM(gpt_neox_config(name, context))
    ref = publish_revision(lambda folder: model.save_pretrained(folder), cache, repo_id, "step0")
    commit = ref.read_text().strip()
    snap = snapshot_path(cache, repo_id, commit)
    files = {p.name: {"size": p.stat().st_size} for p in snap.glob("*.safetensors")}
    return {
        "model": name,
        "repo_id": repo_id,
        "cache_dir": str(cache),
        "revision": "step0",
        "commit": commit,
        "format": "safetensors",
        "files": files,
    }


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str, repeats: int) -> float:
    """Mean seconds of ``fn()`` over ``repeats`` calls, after one untimed call."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def measure(pin: dict, config: dict, steps: int) -> dict:
    """In a fresh process: load the checkpoint as a job does and time its pieces of a run."""
    import psutil

    started = psutil.Process().create_time()
    import numpy as np
    import torch

    from transferlaw.train.finetune import CheckpointCache, FinetuneSettings, Numerics, evaluate, token_losses
    from transferlaw.train.hub import use_offline_mode

    use_offline_mode(True)
    settings = FinetuneSettings.from_config(config)
    from transformers import AutoModelForCausalLM  # noqa: F401 (imported here, not inside the load's timing)

    numerics = Numerics.resolve(settings)
    dev = numerics.device
    if not dev.startswith("cuda"):
        torch.set_num_threads(settings.threads)
    cache = CheckpointCache()
    kwargs = {"dtype": getattr(torch, settings.dtype), "attn_implementation": settings.attention}
    t0 = time.time()
    model = cache.load(pin, **kwargs).to(dev)
    load_s = time.time() - t0
    model.train()
    numerics.prepare(model)
    opt = numerics.optimizer(model.parameters(), settings)
    rng = np.random.default_rng(0)
    vocab = model.get_input_embeddings().num_embeddings
    ctx, mb = settings.context_length, settings.micro_batch

    def batch(n: int, length: int):
        ids = torch.as_tensor(rng.integers(0, vocab, size=(n, length)), device=dev)
        return ids, torch.ones_like(ids), ids.clone()

    def fwd_bwd(b) -> None:
        with numerics.autocast():
            loss, n = token_losses(model, *b)
        (loss / n).backward()

    def step() -> None:
        opt.step()
        opt.zero_grad(set_to_none=True)

    full = batch(mb, ctx)
    fwd_bwd(full)
    step()
    _sync(dev)
    first_step_s = time.time() - started
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    fb_full = _timed(lambda: fwd_bwd(full), dev, steps)
    opt_s = 0.0  # a step needs gradients (zero_grad drops them): each timed step follows an untimed backward
    for _ in range(steps):
        fwd_bwd(full)
        _sync(dev)
        t0 = time.perf_counter()
        step()
        _sync(dev)
        opt_s += (time.perf_counter() - t0) / steps
    # the paper's runs: 10 to 1,100 tokens, i.e. one sequence of 10 tokens to 5 sequences (4 x 256 + 76)
    small, largest = batch(1, 10), batch(math.ceil(1100 / ctx), ctx)
    fb_small = _timed(lambda: fwd_bwd(small), dev, steps)
    fb_largest = _timed(lambda: fwd_bwd(largest), dev, steps)
    opt.zero_grad(set_to_none=True)
    eval_seqs = rng.integers(0, vocab, size=(settings.eval_sequences, ctx))
    eval_s = _timed(lambda: evaluate(model, eval_seqs, settings.eval_batch, dev, numerics), dev, 1)
    restore_s = _timed(lambda: cache.load(pin, **kwargs), dev, 1)
    if dev.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        import resource

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in model.parameters())
    return {
        "device": dev,
        **numerics.record(model),
        "n_params": params,
        "n_flop_params": params - model.get_input_embeddings().weight.numel(),
        "load_s": load_s,
        "first_step_s": first_step_s,
        "fwd_bwd_s": fb_full,
        "optimizer_step_s": opt_s,
        "fwd_bwd_1x10_s": fb_small,
        "fwd_bwd_1100_tokens_s": fb_largest,
        "eval_s": eval_s,
        "restore_s": restore_s,
        "peak_memory_mb": peak_mb,
    }


def project(m: dict, study: dict) -> dict:
    """Projected wall time of a study's fine-tuning runs from the measurements ``m`` (see the docstring)."""
    import numpy as np

    from transferlaw.config import finetune_settings

    # a revision rule resolves to its `count` revisions (transferlaw.train.revisions)
    groups = sum(
        b["revisions"]["log_spaced"]["count"] if isinstance(b["revisions"], dict) else len(b["revisions"])
        for b in study["models"].values()
    )
    runs, seconds = 0, groups * m["first_step_s"]
    epochs = PAPER_FLOP / (6 * PAPER_N * groups * _paper_tokens(study))
    for ds, block in study["datasets"].items():
        ft = finetune_settings(study, ds)
        sizes = np.asarray(block["sizes"], float)
        tokens = sizes if ft["unit"] == "tokens" else sizes * ft["context_length"]
        n_runs = len(sizes) * groups
        runs += n_runs
        # a run's micro-batch time between the smallest (10 tokens) and largest (1,100 tokens) measured
        frac = np.clip((tokens - 10) / (1100 - 10), 0, None)
        fb = m["fwd_bwd_1x10_s"] + frac * (m["fwd_bwd_1100_tokens_s"] - m["fwd_bwd_1x10_s"])
        eval_s = m["eval_s"] * ft["eval_sequences"] / m["eval_sequences"]
        per_run = m["restore_s"] + epochs * (fb + m["optimizer_step_s"]) + (epochs + 1) * eval_s
        seconds += groups * float(per_run.sum())
    return {"runs": runs, "groups": groups, "epochs_per_run": epochs, "hours": seconds / 3600}


def _paper_tokens(study: dict) -> float:
    """Fine-tune tokens of one epoch of every run at one checkpoint (the sum over datasets and sizes)."""
    from transferlaw.config import finetune_settings

    total = 0.0
    for ds, block in study["datasets"].items():
        ft = finetune_settings(study, ds)
        scale = 1 if ft["unit"] == "tokens" else ft["context_length"]
        total += sum(block["sizes"]) * scale
    return total


def peak_flops(device_name: str, given: float | None) -> float | None:
    if given:
        return given * 1e12
    return next((peak for key, peak in PEAKS if key in device_name), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=list(PYTHIA), default="70m")
    ap.add_argument("--config", default=str(REPO / "config" / "barnett2024.yaml"), help="study to project")
    ap.add_argument("--steps", type=int, default=5, help="timed repeats of each measurement")
    ap.add_argument("--device", default=None, help="override finetune.device (auto, cpu, cuda)")
    ap.add_argument("--precision", default=None, help="override finetune.precision (auto, fp32, bf16)")
    ap.add_argument("--micro-batch", type=int, default=None)
    ap.add_argument("--eval-sequences", type=int, default=None, help="override finetune.eval_sequences")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    ap.add_argument("--out", default=None, help="also write the JSON figures here")
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()

    if args.measure:
        job = json.loads(Path(args.measure).read_text())
        print(json.dumps(measure(job["pin"], job["settings"], job["steps"])))
        return

    import yaml

    from transferlaw.config import resolve

    study = resolve(yaml.safe_load(Path(args.config).read_text()))
    settings = dict(study["finetune"])
    overrides = {
        "device": args.device,
        "precision": args.precision,
        "micro_batch": args.micro_batch,
        "eval_sequences": args.eval_sequences,
        "threads": args.threads or len(os.sched_getaffinity(0)),
    }
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings["gradient_checkpointing"] = args.gradient_checkpointing or settings["gradient_checkpointing"]
    with tempfile.TemporaryDirectory(prefix="tl-bench-") as tmp:
        t0 = time.time()
        pin = build_checkpoint(args.model, settings["context_length"], Path(tmp) / "hub")
        build_s = time.time() - t0
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"pin": pin, "settings": settings, "steps": args.steps}))
        proc = subprocess.run(
            [sys.executable, __file__, "--measure", str(job)], capture_output=True, text=True, check=False
        )
        if proc.returncode:
            raise SystemExit(f"the measuring process failed:\n{proc.stderr[-4000:]}")
        m = json.loads(proc.stdout.strip().splitlines()[-1])
    tokens = settings["micro_batch"] * settings["context_length"]
    m.update(
        model=f"pythia-{args.model}",
        build_s=build_s,
        micro_batch=settings["micro_batch"],
        context_length=settings["context_length"],
        eval_sequences=settings["eval_sequences"],
        tokens_per_s=tokens / m["fwd_bwd_s"],
        tokens_per_s_with_step=tokens / (m["fwd_bwd_s"] + m["optimizer_step_s"]),
    )
    peak = peak_flops(m["device_name"], args.peak_tflops)
    m["peak_flops"] = peak
    m["mfu"] = 6 * m["n_flop_params"] * m["tokens_per_s"] / peak if peak else None
    m["projection"] = project(m, study)
    p = m["projection"]
    print(f"{m['model']} on {m['device_name']} ({m['precision']}, {m['attention']}, {m['optimizer']})")
    print(f"  parameters                {m['n_params']:,} ({m['n_flop_params']:,} in matmuls)")
    print(
        f"  training tokens/s         {m['tokens_per_s']:,.0f} at {settings['micro_batch']} x "
        f"{settings['context_length']} ({m['tokens_per_s_with_step']:,.0f} with a step per micro-batch)"
    )
    print(
        "  MFU                       " + (f"{m['mfu']:.1%}" if peak else "n/a (no known peak; --peak-tflops)")
    )
    print(f"  peak memory               {m['peak_memory_mb']:,.0f} MB")
    print(f"  process start to 1st step {m['first_step_s']:.1f} s (checkpoint load {m['load_s']:.1f} s)")
    print(
        f"  eval of {settings['eval_sequences']} sequences   {m['eval_s']:.2f} s; restore weights "
        f"{m['restore_s']:.2f} s"
    )
    print(
        f"  projected protocol        {p['runs']} runs in {p['groups']} groups, {p['epochs_per_run']:.1f} "
        f"epochs each: {p['hours']:.2f} h of this device"
    )
    line = json.dumps(m)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
