"""One fine-tuning run: AdamW on a nested subset, evaluated every epoch, stopped early.

The paper trains every parameter (``method: full``) to convergence on the fine-tune data (early stopping with
patience 3) and records the *minimum* eval loss; weights are not saved (750 runs of a 2.8B model would need
terabytes). ``method: lora`` freezes the checkpoint and trains low-rank adapters instead (Hu et al. 2021,
through peft), which the paper names as future work; the adapters are removed again after the run, so that a
worker's next run starts from the pristine checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferlaw.defaults import default, keys
from transferlaw.schema import STATUS_DIVERGED, STATUS_MAX_EPOCHS, STATUS_OK


def _d(key: str) -> Any:
    """A fine-tuning setting's default: the config schema's (``finetune.<key>``), the one place it lives."""
    value = default(f"finetune.{key}")
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class FinetuneSettings:
    """Everything one fine-tuning run trains with, typed and frozen: the resolved config's ``finetune`` block
    with the dataset's and the method's overrides (:func:`transferlaw.config.run_settings`), as a job passes
    it (:meth:`from_config`). Defaults are the config schema's, most of them the paper's protocol."""

    # the data: shared by every method and replicate of a cell (a method cannot change them)
    unit: str = _d("unit")  # "sequences": the paper counts fine-tune data in sequences of context_length
    context_length: int = _d("context_length")  # 256 tokens per sequence, as the paper
    eval_sequences: int = _d("eval_sequences")  # 100: a held-out split every run of the dataset shares
    seed: int = _d("seed")  # the replicate: data order, dropout, initialisation of new parameters
    # the optimisation: the paper's AdamW, fine-tuned to convergence
    lr: float = float(_d("lr"))  # 1e-5, the paper's (the toy studies set their own)
    betas: tuple[float, float] = _d("betas")  # (0.9, 0.999): the paper's, PyTorch's defaults
    eps: float = float(_d("eps"))  # 1e-8, the paper's
    weight_decay: float = float(_d("weight_decay"))  # none, as the paper: runs are short and stopped early
    micro_batch: int = _d("micro_batch")  # 10 sequences per forward pass, the paper's
    grad_accum: int = _d("grad_accum")  # 25 micro-batches per step: the paper's effective batch of 250
    patience: int = _d("patience")  # 3 epochs without a new minimum stop the run (the paper's)
    max_epochs: int = _d("max_epochs")  # a cap, not a schedule: a run still improving there is flagged
    eval_batch: int = _d("eval_batch")  # 32: memory only; the eval loss is the same up to summation order
    # how it computes: what the machine allows, recorded per run (:class:`Numerics`)
    threads: int = _d("threads")  # 1 CPU thread per job: a node runs several jobs at once
    device: str = _d("device")  # "auto": the GPU where there is one
    dtype: str = _d("dtype")  # float32 master weights: bfloat16 ones would round away 1e-5 updates
    precision: str = _d("precision")  # "auto": bf16 autocast where the GPU has it, fp32 elsewhere
    attention: str = _d("attention")  # "sdpa": PyTorch's fused attention, the same result as eager
    fused_adamw: bool = _d("fused_adamw")  # one kernel launch per step on a GPU (ignored on the CPU)
    tf32: bool = _d("tf32")  # TF32 tensor cores for the float32 matmuls left on a GPU
    gradient_checkpointing: bool = _d("gradient_checkpointing")  # off: ~30% more compute for less memory
    # the method: every parameter (the paper), or LoRA adapters on the frozen checkpoint
    method: str = _d("method")  # "full": what the paper does; "lora" names future work it leaves open
    lora_rank: int = _d("lora_rank")  # 8: rank of each adapter, a common small default
    lora_alpha: float = float(_d("lora_alpha"))  # 16: the update scaled by alpha / rank = 2
    lora_dropout: float = float(_d("lora_dropout"))  # none: runs are stopped early instead
    lora_target_modules: tuple[str, ...] = _d("lora_target_modules")  # GPT-NeoX's fused attention projection

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> FinetuneSettings:
        """The settings of a run from its resolved config block (a job's ``params.settings`` with its
        ``threads``). Every key must be a ``finetune`` key of the config schema; the settings that size a
        job but cannot change its result (:data:`SIZING_KEYS`) are accepted and left out. Every field must
        be given, but the method's and LoRA's, which a full fine-tune's params leave out
        (:func:`transferlaw.config.job_params`) and which then keep their defaults. ValueError names the
        keys at fault."""
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = [k for k in settings if k not in fields and k not in SIZING_KEYS]
        if unknown:
            raise ValueError(
                f"fine-tuning settings: unknown key(s) {', '.join(map(repr, unknown))}; a `finetune` block "
                f"holds {', '.join(keys('finetune'))}"
            )
        lora = settings.get("method", cls.method) == "lora"
        optional = {"method"} | (set() if lora else set(LORA_FIELDS))
        missing = [k for k in fields if k not in settings and k not in optional]
        if missing:
            what = "a LoRA run's settings" if lora else "a run's settings"
            raise ValueError(
                f"fine-tuning settings: missing key(s) {', '.join(map(repr, missing))} from {what} "
                "(a resolved config's `finetune` block has them all: transferlaw.config.run_settings)"
            )
        return cls(**{k: _typed(k, v, fields[k]) for k, v in settings.items() if k in fields})

    def asdict(self) -> dict[str, Any]:
        """The settings as a config block (lists where the config has lists): what :meth:`from_config`
        reads back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


#: the fields of a LoRA run that a full fine-tune ignores
LORA_FIELDS = ("lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules")
#: ``finetune`` keys that size a job (memory, minutes, GPUs, whether a worker runs it) but cannot change its
#: result: the scheduler's, not the run's
SIZING_KEYS = tuple(
    k for k in keys("finetune") if k not in {f.name for f in dataclasses.fields(FinetuneSettings)}
)


def _typed(name: str, value: Any, kind: str) -> Any:
    """``value`` as the type of field ``name`` (``kind``, its annotation), or ValueError naming it."""

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": number(value),
        "tuple[float, float]": isinstance(value, (list, tuple))
        and len(value) == 2
        and all(map(number, value)),
        "tuple[str, ...]": isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        raise ValueError(f"fine-tuning setting {name!r}: expected {kind}, got {value!r}")
    if kind == "float":
        return float(value)
    if kind == "tuple[float, float]":
        return tuple(float(v) for v in value)
    if kind == "tuple[str, ...]":
        return tuple(value)
    return value


@dataclass
class EarlyStopping:
    """Stop after ``patience`` consecutive evaluations without a new minimum (strictly lower loss)."""

    patience: int
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[float] = field(default_factory=list)

    def update(self, loss: float) -> bool:
        """Record the loss of the next epoch; return True when training should stop."""
        self.history.append(loss)
        if loss < self.best:
            self.best, self.best_epoch, self.bad_epochs = loss, len(self.history), 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    @property
    def stopped(self) -> bool:
        return self.bad_epochs >= self.patience


@dataclass(frozen=True)
class Numerics:
    """How a run computes, resolved for the device at hand from the study's settings (``precision``,
    ``attention``, ``fused_adamw``, ``tf32``, ``gradient_checkpointing``), and recorded with every run.

    Mixed precision is bfloat16 *autocast* over float32 master weights and optimizer state: matmuls run on
    the tensor cores in bfloat16 with float32 accumulation, the loss is computed in float32 from the logits,
    and the updates land on float32 weights. The alternative, bfloat16 weights with float32 optimizer state,
    halves weight memory but loses the paper's updates: at lr 1e-5 an AdamW step moves a weight by ~1e-5,
    while bfloat16 resolves ~4e-3 of a weight's magnitude (~1e-2 for Pythia), so most updates round away.
    Pythia-2.8B's full fine-tune in float32 (weights, gradients, two moments: 45 GB) fits an 80 GB GPU.
    """

    device: str  # "cpu", "cuda", "cuda:N"
    precision: str  # "fp32" or "bf16"
    fused_adamw: bool
    tf32: bool
    gradient_checkpointing: bool

    @classmethod
    def resolve(cls, settings: FinetuneSettings, device: str | None = None) -> Numerics:
        import torch

        device = device or resolve_device(settings.device)
        gpu = device.startswith("cuda")
        precision = settings.precision
        if precision == "auto":
            precision = "bf16" if gpu and torch.cuda.is_bf16_supported() else "fp32"
        return cls(
            device=device,
            precision=precision,
            fused_adamw=gpu and settings.fused_adamw,
            tf32=gpu and settings.tf32,
            gradient_checkpointing=settings.gradient_checkpointing,
        )

    def autocast(self):
        """The context every forward pass runs in (train and eval)."""
        import torch

        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def prepare(self, model: Any) -> None:
        """Set the process-wide and per-model switches (a worker's next run may ask for others)."""
        import torch

        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        # transformers 5 renamed gradient checkpointing to activation checkpointing (the old name warns)
        if self.gradient_checkpointing:
            enable = (
                getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            )
            enable({"use_reentrant": False})
        else:
            disable = getattr(model, "activation_checkpointing_disable", None)
            (disable or model.gradient_checkpointing_disable)()

    def optimizer(self, params: Any, settings: FinetuneSettings):
        import torch

        return torch.optim.AdamW(
            params,
            lr=settings.lr,
            betas=settings.betas,
            eps=settings.eps,
            weight_decay=settings.weight_decay,
            **({"fused": True} if self.fused_adamw else {}),
        )

    def record(self, model: Any) -> dict[str, Any]:
        """The record's columns that say how the run computed."""
        import platform

        import torch
        import transformers

        gpu = self.device.startswith("cuda")
        weights = next(model.parameters()).dtype
        versions = f"torch={torch.__version__} transformers={transformers.__version__}"
        if gpu:
            versions += f" cuda={torch.version.cuda} cudnn={torch.backends.cudnn.version()}"
        return {
            "device_name": torch.cuda.get_device_name(self.device) if gpu else f"cpu {platform.machine()}",
            "precision": self.precision,
            "weights_dtype": str(weights).removeprefix("torch."),
            "attention": str(model.config._attn_implementation),
            "optimizer": "adamw-fused" if self.fused_adamw else "adamw",
            "tf32": self.tf32,
            "gradient_checkpointing": self.gradient_checkpointing,
            "versions": versions,
        }


def _batches(seqs: Sequence[np.ndarray], order: np.ndarray, size: int) -> list[list[np.ndarray]]:
    return [[seqs[i] for i in order[k : k + size]] for k in range(0, len(order), size)]


def _collate(batch: Sequence[np.ndarray], device: Any):
    """Right-pad a micro-batch; padded positions are masked out of attention and loss (label -100)."""
    import torch

    width = max(len(s) for s in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, s in enumerate(batch):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return ids.to(device), mask.to(device), labels.to(device)


def token_losses(model: Any, ids: Any, mask: Any, labels: Any):
    """Summed next-token cross-entropy (nats) and the number of predicted tokens of one micro-batch."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss, int((target != -100).sum())


def evaluate(
    model: Any, sequences: np.ndarray, batch_size: int, device: Any, numerics: Numerics | None = None
) -> tuple[float, int]:
    """Mean token cross-entropy (nats) of ``model`` on ``sequences``, and the number of tokens scored."""
    import torch

    model.eval()
    total, count = 0.0, 0
    autocast = numerics.autocast() if numerics else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        for batch in _batches(list(sequences), np.arange(len(sequences)), batch_size):
            loss, n = token_losses(model, *_collate(batch, device))
            total += loss.item()
            count += n
    model.train()
    return total / count, count


def finetune(
    model: Any,
    train: Sequence[np.ndarray],
    eval_data: np.ndarray,
    settings: FinetuneSettings,
    progress: Callable[..., Any] | None = None,
    numerics: Numerics | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place until early stopping (or ``max_epochs``); return the run's outcome.

    An optimizer step is taken every ``grad_accum`` micro-batches and at the end of each epoch, so a
    subset smaller than one effective batch still gets one update per epoch (as with the paper's smallest
    sizes). Losses are averaged per token over the accumulation window. ``numerics`` (default: resolved
    from ``settings`` for the model's device) sets precision, kernels and checkpointing.
    """
    import torch

    device = next(model.parameters()).device
    numerics = numerics or Numerics.resolve(settings, str(device))
    numerics.prepare(model)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    # only what is trained: every parameter in a full fine-tune (the same list, in the same order, as before
    # methods existed), the adapters in a LoRA run (AdamW keeps no moments for the frozen checkpoint)
    opt = numerics.optimizer([p for p in model.parameters() if p.requires_grad], settings)
    initial, eval_tokens = evaluate(model, eval_data, settings.eval_batch, device, numerics)
    stopper = EarlyStopping(settings.patience)
    train_losses: list[float] = []
    steps, status = 0, STATUS_OK
    epochs = range(1, settings.max_epochs + 1)
    bar = progress(epochs, desc="epochs", unit="epoch") if progress else epochs
    for _epoch in bar:
        order = rng.permutation(len(train))
        batches = _batches(train, order, settings.micro_batch)
        windows = [batches[k : k + settings.grad_accum] for k in range(0, len(batches), settings.grad_accum)]
        epoch_loss, epoch_tokens = 0.0, 0
        for window in windows:
            collated = [_collate(b, device) for b in window]
            n_window = sum(int((c[2][:, 1:] != -100).sum()) for c in collated)
            for ids, mask, labels in collated:
                with numerics.autocast():
                    loss, n = token_losses(model, ids, mask, labels)
                (loss / n_window).backward()
                epoch_loss += loss.item()
                epoch_tokens += n
            opt.step()
            opt.zero_grad(set_to_none=True)
            steps += 1
        train_losses.append(epoch_loss / epoch_tokens)
        eval_loss, _ = evaluate(model, eval_data, settings.eval_batch, device, numerics)
        if not (math.isfinite(eval_loss) and math.isfinite(train_losses[-1])):
            status = STATUS_DIVERGED
            stopper.history.append(eval_loss)
            break
        stop = stopper.update(eval_loss)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(
                eval=f"{eval_loss:.4f}",
                best=f"{stopper.best:.4f}",
                train=f"{train_losses[-1]:.4f}",
                refresh=False,  # the bar redraws at its own interval; a redraw per epoch floods the log
            )
        if stop:
            break
    if status == STATUS_OK and not stopper.stopped:
        status = STATUS_MAX_EPOCHS
    best = stopper.best_epoch
    return {
        "eval_loss": stopper.best if best else math.nan,
        "initial_eval_loss": initial,
        "eval_tokens": eval_tokens,
        "best_epoch": best,
        "epochs": len(train_losses),
        "optimizer_steps": steps,
        "train_loss": train_losses[best - 1] if best else math.nan,
        "status": status,
        "eval_curve": [float(x) for x in stopper.history],
    }


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class CheckpointCache:
    """The checkpoint a process loaded last, with a copy of its pristine weights (on the CPU).

    A worker fine-tunes one checkpoint many times: loading it again for each run would cost more than the
    run. Instead its weights are restored from the copy, which makes the next run start from exactly the
    loaded checkpoint (bit for bit, as a test checks). One checkpoint is kept: a worker's runs are grouped
    by checkpoint, and two copies of Pythia-2.8B would not fit next to its optimizer state.
    """

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.model: Any = None
        self.pristine: dict[str, Any] = {}

    def load(self, pin: dict[str, Any], **kwargs: Any):
        from transferlaw.train.checkpoints import load_pinned

        key = (pin["repo_id"], pin["commit"], pin["cache_dir"], sorted(kwargs.items(), key=str))
        if key == self.key:
            # strict: a module left behind by the last run (a LoRA adapter not removed) fails here, loudly
            self.model.load_state_dict(self.pristine, strict=True)
            for p in self.model.parameters():
                p.requires_grad_(True)  # a LoRA run froze them
            self.model.zero_grad(set_to_none=True)
            return self.model
        self.key, self.model, self.pristine = None, None, {}  # free the old one before loading
        model = load_pinned(pin, **kwargs)
        self.pristine = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.key, self.model = key, model
        return model


@dataclass(frozen=True)
class Method:
    """How a run trains, from its settings: every parameter (``full``), or LoRA adapters on the frozen
    checkpoint (``lora``: rank, alpha, dropout and target modules, as peft's ``LoraConfig`` takes them)."""

    name: str  # the study's name for it (config key under `methods`)
    kind: str = FinetuneSettings.method  # "full" or "lora"
    rank: int = FinetuneSettings.lora_rank  # r: adapters are B (out x r) @ A (r x in), B starting at zero
    alpha: float = FinetuneSettings.lora_alpha  # the update B A is scaled by alpha / r
    dropout: float = FinetuneSettings.lora_dropout  # on the adapter's input, train mode only
    target_modules: tuple[str, ...] = FinetuneSettings.lora_target_modules

    @classmethod
    def from_settings(cls, name: str, settings: FinetuneSettings) -> Method:
        kind = settings.method
        if kind == "full":
            return cls(name=name)
        if kind != "lora":
            raise ValueError(f"method {name!r}: unknown fine-tuning method {kind!r} (full or lora)")
        return cls(
            name=name,
            kind=kind,
            rank=settings.lora_rank,
            alpha=settings.lora_alpha,
            dropout=settings.lora_dropout,
            target_modules=settings.lora_target_modules,
        )

    @contextlib.contextmanager
    def applied(self, model: Any):
        """The model to train: ``model`` itself, or ``model`` with adapters, removed again on the way out
        (even when the run fails), leaving its own modules, weights and ``requires_grad`` as they were."""
        if self.kind == "full":
            yield model
            return
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
        )
        try:
            wrapped = get_peft_model(model, config)
        except ValueError as err:  # peft's own message names the modules it did not find
            raise ValueError(f"method {self.name!r}: lora_target_modules: {err}") from err
        try:
            yield wrapped
        finally:
            wrapped.unload()  # the base modules back in place, without merging the adapters into them
            for p in model.parameters():
                p.requires_grad_(True)

    def record(self) -> dict[str, Any]:
        lora = self.kind == "lora"
        return {
            "method": self.name,
            "finetune_method": self.kind,
            "lora_rank": self.rank if lora else 0,
            "lora_alpha": self.alpha if lora else 0.0,
            "lora_dropout": self.dropout if lora else 0.0,
            "lora_target_modules": ",".join(self.target_modules) if lora else "",
        }


def run(
    *,
    dataset: str,
    model_settings: dict[str, Any],
    pin: dict[str, Any],
    size: int,
    settings: FinetuneSettings,
    data_path: str,
    progress: Callable[..., Any] | None = None,
    cache: CheckpointCache | None = None,
    method: str = "full",
) -> dict[str, Any]:
    """Load the pinned checkpoint (:func:`transferlaw.train.checkpoints.pin`; from ``cache`` when given) and
    the prepared data, fine-tune on the nested subset of ``size`` with the study's ``method`` (its kind and
    LoRA settings are in ``settings``), and return the run record (a dict with every column of
    :data:`transferlaw.schema.RECORD_COLUMNS`)."""
    import torch

    from transferlaw.data.prepare import PreparedData, subset
    from transferlaw.schema import revision_step

    t0 = time.time()
    torch.set_num_threads(settings.threads)
    data = PreparedData.load(data_path)
    train = subset(data.train, size, settings.unit)
    model = (cache or CheckpointCache()).load(
        pin, dtype=getattr(torch, settings.dtype), attn_implementation=settings.attention
    )
    vocab = model.get_input_embeddings().num_embeddings
    top = max(int(data.eval.max()), int(data.train.max()))
    if top >= vocab:
        raise ValueError(
            f"dataset {dataset!r} was tokenized with a vocabulary larger than model "
            f"{model_settings['model']!r} has ({top} >= {vocab}): models of one study must share a tokenizer"
        )
    numerics = Numerics.resolve(settings)
    model.to(numerics.device)
    model.train()
    how = Method.from_settings(method, settings)
    n_params = sum(p.numel() for p in model.parameters())  # the checkpoint's N, without adapters
    torch.manual_seed(settings.seed)  # a replicate's adapters start from its own draw
    with how.applied(model) as trained:
        trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
        outcome = finetune(trained, train, data.eval, settings, progress=progress, numerics=numerics)
    revision = pin["revision"]
    step = revision_step(revision)
    tokens = int(sum(len(s) for s in train))
    return {
        "dataset": dataset,
        "model": model_settings["model"],
        "revision": revision,
        "revision_sha": pin["commit"],
        "pretrain_step": step,
        "pretrain_tokens": step * int(model_settings["tokens_per_step"]),
        "finetune_unit": settings.unit,
        "finetune_size": int(size),
        "finetune_sequences": len(train),
        "finetune_tokens": tokens,
        "context_length": int(data.eval.shape[1]),
        "seed": int(settings.seed),
        **how.record(),
        "n_params": int(n_params),
        "trainable_params": int(trainable),
        # forward (2N) and input gradients (2N) through every weight, weight gradients (2 per weight) for the
        # trained ones: 6 N D for a full fine-tune, as before
        "flops": float((4 * n_params + 2 * trainable) * tokens * outcome["epochs"]),
        "wall_seconds": time.time() - t0,
        **numerics.record(model),
        **outcome,
    }


#: what a worker process keeps between runs (see :mod:`transferlaw.train.worker`)
_CACHE = CheckpointCache()


class _Epochs:
    """The epochs of a run, with a progress bar, abandoned when the job that asked for the run has gone."""

    def __init__(self, epochs: Any, cancelled: Callable[[], bool], **kwargs: Any) -> None:
        from tqdm import tqdm

        self.bar = tqdm(epochs, mininterval=1.0, **kwargs)
        self.cancelled = cancelled

    def __iter__(self):
        from transferlaw.train.worker import Cancelled

        for epoch in self.bar:
            if self.cancelled():
                raise Cancelled
            yield epoch

    def set_postfix(self, **kwargs: Any) -> None:
        self.bar.set_postfix(**kwargs)


def run_job(request: dict[str, Any], cancelled: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """One fine-tuning job's run, in a worker (:func:`transferlaw.train.worker.run_task`) or in the job's
    process: progress goes to the job's log, the record to ``request["record"]`` (a temporary path next to the
    job's output, which the job renames into place). Returns a summary for the job's own log."""
    from transferlaw.runlog import log_to
    from transferlaw.train.hub import use_offline_mode

    use_offline_mode(True)  # (a no-op after the first run: the worker imported huggingface_hub already)
    from transferlaw.schema import records_frame, write_records
    from transferlaw.train.worker import Cancelled

    with log_to(request["log"]):
        record = run(
            dataset=request["dataset"],
            model_settings=request["model"],
            pin=request["pin"],
            size=request["size"],
            settings=FinetuneSettings.from_config(request["settings"]),
            data_path=request["data"],
            progress=lambda epochs, **kw: _Epochs(epochs, cancelled, **kw),
            cache=_CACHE,
            method=request.get("method", "full"),
        )
        print({k: v for k, v in record.items() if k != "eval_curve"})
        if cancelled():
            raise Cancelled
        write_records(records_frame([record], request["record"]), request["record"])
    return {k: record[k] for k in ("eval_loss", "status", "epochs", "wall_seconds")}
