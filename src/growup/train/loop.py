"""One training run: a plain PyTorch loop driven by accelerate (CPU, one GPU, DDP or FSDP).

- AdamW with the study's betas, eps and weight decay (on every parameter), gradient clipping,
  and gradient accumulation sized so that a step sees `training.global_batch` sequences whatever
  the number of devices; bf16 autocast on GPU, fp32 on CPU.
- Speed switches that change no result beyond floating-point rounding (each tested against the
  plain path): `training.compile` (torch.compile of the decoder layers), `training.fused_adamw`,
  `training.chunked_loss` (growup.train.loss), and, with `attn_implementation: sdpa`, growup's
  attention (growup.models.attention): SDPA's causal kernel, or variable-length attention per
  document when `document_attention_mask` is on, never a dense (T x T) mask.
- Starts from a checkpoint with a fresh optimizer and schedule, as the study did.
- Saves Hugging Face checkpoints every `checkpoint_every` steps (atomically, with a card naming the
  lineage, step, tokens and FLOPs) and the full resumable state every `state_every` steps; SIGTERM
  saves the state and exits with status 143, so a preempted job loses nothing.
- Records metrics as JSON lines (step, loss, lr, grad norm, tokens, FLOPs): only what the run
  computed, so `metrics.jsonl` is the same bytes on every machine. Wall-clock figures (tokens/s,
  MFU on GPU) go to the log and the progress bar.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from growup.accounting import token_cost
from growup.config import Study
from growup.data.packing import PackedDataset
from growup.errors import GrowupError
from growup.io import atomic_dir
from growup.models import attention
from growup.models.checkpoint import copy_tokenizer, load_checkpoint, read_card, save_checkpoint
from growup.train.loss import causal_lm_loss, lm_loss
from growup.train.mixture import Mixture
from growup.train.runs import RunSpec, run_spec
from growup.train.schedule import wsd_lr
from growup.train.state import load_state, save_state, set_rng_state, truncate_jsonl

log = logging.getLogger(__name__)

METRICS = "metrics.jsonl"
STATE = "state"
FINAL = "final"
PREEMPTED = 143  # 128 + SIGTERM


@dataclass
class Layout:
    """Where a run writes: checkpoints/<run>/step-N, final, state, metrics.jsonl."""

    out: Path

    def step(self, n: int) -> Path:
        return self.out / f"step-{n}"

    @property
    def final(self) -> Path:
        return self.out / FINAL

    @property
    def state(self) -> Path:
        return self.out / STATE

    @property
    def metrics(self) -> Path:
        return self.out / METRICS


class StopFlag:
    """Set by SIGTERM; the loop saves its state after the current step and exits."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.raised = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def peak_flops(study: Study) -> float | None:
    """The GPU's peak for MFU: config key training.peak_flops, else growup.train.budget's table."""
    from growup.train.budget import device_peak_flops

    if study.training.peak_flops:
        return study.training.peak_flops
    return device_peak_flops(torch.cuda.get_device_name()) if torch.cuda.is_available() else None


def micro_steps(study: Study, world: int) -> int:
    """Gradient-accumulation steps so one optimizer step sees `global_batch` sequences."""
    t = study.training
    per_pass = world * t.micro_batch
    if t.global_batch % per_pass:
        raise GrowupError(
            f"config key 'training.global_batch' = {t.global_batch} is not a multiple of "
            f"training.micro_batch ({t.micro_batch}) x devices ({world}); change one of them"
        )
    return t.global_batch // per_pass


def open_datasets(spec: RunSpec, data_dir: Path, seq_len: int) -> dict[str, PackedDataset]:
    datasets = {name: PackedDataset.open(data_dir / "packed" / name) for name in spec.datasets}
    for name, ds in datasets.items():
        if ds.seq_len != seq_len:
            raise GrowupError(
                f"packed dataset {name!r} has sequence length {ds.seq_len}, config key "
                f"'training.sequence_length' is {seq_len}: repack it"
            )
    return datasets


def switch(value: bool | str, key: str) -> bool:
    """A speed switch's value: true, false, or auto (on where CUDA is available)."""
    if value == "auto":
        return torch.cuda.is_available()
    if isinstance(value, bool):
        return value
    raise GrowupError(f"config key 'training.{key}' is {value!r}; allowed: auto, true, false")


class LossModel(nn.Module):
    """A causal LM and its next-token loss as one module, so the forward that DDP or FSDP wraps
    ends in the loss (the chunked loss starts from the decoder's hidden states, not the logits)."""

    def __init__(self, lm: nn.Module, chunk_size: int | None, compiled: bool) -> None:
        super().__init__()
        self.lm = lm
        self.chunk_size = chunk_size
        self.compiled = compiled
        self._no_split_modules = getattr(lm, "_no_split_modules", None)  # FSDP's wrap policy

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return lm_loss(self.lm, tokens, positions, self.chunk_size, self.compiled, **kwargs)


def setup_training(study: Study, model: nn.Module) -> tuple[LossModel, torch.optim.Optimizer]:
    """The loss module and AdamW for `model`, with the config's attention and speed switches."""
    t = study.training
    if t.attn_implementation == "sdpa":
        attention.register()
        model.set_attn_implementation(attention.NAME)
    compiled = switch(t.compile, "compile")
    if compiled:
        for layer in model.model.layers:  # in place: parameter names and state dicts stay the same
            layer.compile()
    net = LossModel(model, t.loss_chunk_size if t.chunked_loss else None, compiled)
    optimizer = torch.optim.AdamW(
        net.parameters(),
        lr=t.peak_lr,
        betas=t.betas,
        eps=t.eps,
        weight_decay=t.weight_decay,
        fused=switch(t.fused_adamw, "fused_adamw") or None,
    )
    return net, optimizer


def attention_inputs(study: Study, tokens: torch.Tensor, positions: torch.Tensor) -> dict[str, Any]:
    """Model keyword arguments that select the attention of one micro-batch (host tensors in)."""
    t = study.training
    if t.attn_implementation != "sdpa":  # transformers' own path: it builds a mask from the positions
        return {} if t.document_attention_mask else {"attention_mask": torch.ones_like(tokens)}
    if not t.document_attention_mask:
        return {}
    cu, _ = attention.document_boundaries(positions)
    # the sequence length bounds every document: a constant, so compiled graphs are not rebuilt
    return {"cu_seq_lens_q": cu, "max_length_q": tokens.shape[1]}


def optimizer_step(
    study: Study,
    accelerator: Any,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[float, float]:
    """Forward and backward over the micro-batches (host tensors), clip, step: (mean loss, grad norm)."""
    loss_sum = torch.zeros((), device=accelerator.device)
    accum = len(batches)
    for a, (tokens, positions) in enumerate(batches):
        kwargs = attention_inputs(study, tokens, positions)  # from host positions: no device sync
        kwargs = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in kwargs.items()}
        tokens, positions = tokens.to(accelerator.device), positions.to(accelerator.device)
        sync = contextlib.nullcontext() if a == accum - 1 else accelerator.no_sync(net)
        with sync, accelerator.autocast():
            loss = net(tokens, positions, **kwargs) / accum
        accelerator.backward(loss)
        loss_sum += loss.detach()
    grad_norm = accelerator.clip_grad_norm_(net.parameters(), study.training.grad_clip or math.inf)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return accelerator.reduce(loss_sum, reduction="mean").item(), float(grad_norm)


def train(
    study: Study,
    run: str,
    init: str | os.PathLike[str],
    out: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] = "data",
    max_steps: int | None = None,
    progress: bool = True,
) -> Path:
    """Train `run` from checkpoint `init` into `out`; resume from `out/state` if present."""
    from accelerate import Accelerator

    spec = run_spec(study, run, data_dir)
    t, layout = study.training, Layout(Path(out))
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision=t.mixed_precision if cuda else "no")
    accum = micro_steps(study, accelerator.num_processes)
    datasets = open_datasets(spec, Path(data_dir), t.sequence_length)
    mixture = Mixture(spec.phases, datasets, reset_positions=t.reset_positions)
    needed = spec.schedule.steps * t.global_batch
    if needed > len(mixture):
        log.warning(
            "run %s needs %d sequences, its data schedule has %d: the schedule repeats",
            run,
            needed,
            len(mixture),
        )

    torch.manual_seed(study.seed)
    model = load_checkpoint(init, attn_implementation=t.attn_implementation, dtype=torch.float32)
    model.config.use_cache = False
    start = 0
    state = load_state(layout.state)
    if state is not None:
        model.load_state_dict(state["model"])
    net, optimizer = setup_training(study, model)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start = state["step"]
        log.info("resuming %s from step %d", run, start)
    if accelerator.is_main_process:
        layout.out.mkdir(parents=True, exist_ok=True)
        truncate_jsonl(layout.metrics, start)
    net.train()
    net, optimizer = accelerator.prepare(net, optimizer)

    cost = token_cost(model.config, t.sequence_length)
    fpt, fpt_6n = cost.flops, cost.flops_6n
    parent = read_card(init)
    lineage_base = {
        "run": run,
        "operation": "train",
        "parent": str(init),
        "parent_tokens": parent.get("tokens", 0) + parent.get("parent_tokens", 0),
        "parent_flops": parent.get("flops", 0) + parent.get("parent_flops", 0),
        "seed": study.seed,
        "study": study.name,
    }
    peak = peak_flops(study)
    last = spec.schedule.steps if max_steps is None else min(spec.schedule.steps, max_steps)
    state_every = t.state_every or spec.checkpoint_every
    stop = StopFlag()
    bar = tqdm(
        total=last,
        initial=start,
        desc=run,
        unit="step",
        disable=not (progress and accelerator.is_main_process),
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    try:
        for step in range(start + 1, last + 1):
            began = time.perf_counter()
            lr = wsd_lr(step, spec.schedule, t.peak_lr, t.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batches = [
                mixture.batch((step - 1) * t.global_batch + (a * world + rank) * t.micro_batch, t.micro_batch)
                for a in range(accum)
            ]
            loss_value, grad_norm = optimizer_step(study, accelerator, net, optimizer, batches)
            tokens_seen = step * t.tokens_per_step
            record = {
                "step": step,
                "loss": loss_value,
                "lr": lr,
                "grad_norm": grad_norm,
                "tokens": tokens_seen,
                "flops": tokens_seen * fpt,
                "flops_6n": tokens_seen * fpt_6n,
            }
            if accelerator.is_main_process:
                with layout.metrics.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, sort_keys=True) + "\n")
            # wall-clock figures: progress bar and log only, never metrics.jsonl
            tok_s = t.tokens_per_step / (time.perf_counter() - began)
            mfu = f"{fpt * tok_s / (peak * world):.1%}" if peak else "n/a"
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tok_s:,.0f}", mfu=mfu)
            bar.update(1)
            if step % spec.checkpoint_every == 0 or step == last:
                log.info("%s step %d: loss %.4f, %.0f tokens/s, MFU %s", run, step, loss_value, tok_s, mfu)
            lineage = {
                **lineage_base,
                "step": step,
                "tokens": tokens_seen,
                "flops": record["flops"],
                "flops_6n": record["flops_6n"],
            }
            if step % spec.checkpoint_every == 0 or step == spec.schedule.steps:
                _save_checkpoint(accelerator, net, layout.step(step), lineage, init)
            if step % state_every == 0 or stop.raised or step == last:
                _save_state(accelerator, net, optimizer, layout.state, step, lineage)
            if stop.raised:
                log.warning("SIGTERM: saved state at step %d of %s; rerun to resume", step, run)
                raise SystemExit(PREEMPTED)
    finally:
        bar.close()
        stop.restore()
    if last == spec.schedule.steps and accelerator.is_main_process:
        final_step = layout.step(spec.schedule.steps)
        if not final_step.is_dir():  # a zero-step run: the start checkpoint, unchanged
            _save_checkpoint(
                accelerator, net, final_step, {**lineage_base, "step": 0, "tokens": 0, "flops": 0}, init
            )
        with atomic_dir(layout.final) as tmp:
            shutil.copytree(final_step, tmp, dirs_exist_ok=True)
    accelerator.wait_for_everyone()
    return layout.final


def _lm_state(accelerator: Any, net: Any) -> dict[str, torch.Tensor]:
    """The language model's full state dict (gathered under FSDP), without LossModel's prefix."""
    state = accelerator.get_state_dict(net)
    return {k.removeprefix("lm."): v for k, v in state.items()} if state is not None else {}


def _save_checkpoint(accelerator: Any, net: Any, path: Path, lineage: dict, init: Any) -> None:
    accelerator.wait_for_everyone()
    state = _lm_state(accelerator, net)
    if accelerator.is_main_process:
        lm = accelerator.unwrap_model(net).lm
        was_training = lm.training
        save_checkpoint(lm, path, lineage, tokenizer_src=init)
        lm.train(was_training)
        del state
    accelerator.wait_for_everyone()


def _save_state(accelerator: Any, net: Any, optimizer: Any, path: Path, step: int, lineage: dict) -> None:
    accelerator.wait_for_everyone()
    model_state = _lm_state(accelerator, net)
    if accelerator.is_main_process:
        save_state(path, model_state, optimizer.state_dict(), step, {"tokens": lineage["tokens"]})
    accelerator.wait_for_everyone()


__all__ = [
    "FINAL",
    "METRICS",
    "PREEMPTED",
    "STATE",
    "Layout",
    "LossModel",
    "causal_lm_loss",
    "copy_tokenizer",
    "optimizer_step",
    "setup_training",
    "train",
]
