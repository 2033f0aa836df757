"""One training run: a plain PyTorch loop driven by accelerate (CPU, one GPU, DDP or FSDP).

- AdamW with the study's betas, eps and weight decay (on every parameter), gradient clipping,
  and gradient accumulation sized so that a step sees `training.global_batch` sequences whatever
  the number of devices; bf16 autocast on GPU, fp32 on CPU.
- Starts from a checkpoint with a fresh optimizer and schedule, as the study did.
- Saves Hugging Face checkpoints every `checkpoint_every` steps (atomically, with a card naming the
  lineage, step, tokens and FLOPs) and the full resumable state every `state_every` steps; SIGTERM
  saves the state and exits with status 143, so a preempted job loses nothing.
- Logs metrics as JSON lines (step, loss, lr, grad norm, tokens, FLOPs, tokens/s, MFU on GPU).
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
from torch.nn import functional as F
from tqdm import tqdm

from growup.config import Study
from growup.data.packing import PackedDataset
from growup.errors import GrowupError
from growup.io import atomic_dir
from growup.models.checkpoint import copy_tokenizer, load_checkpoint, read_card, save_checkpoint
from growup.models.flops import count_parameters, flops_per_token
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


def causal_lm_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over every position that has a next token (fp32)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten())


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
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=t.peak_lr, betas=t.betas, eps=t.eps, weight_decay=t.weight_decay
    )
    start = 0
    state = load_state(layout.state)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start = state["step"]
        log.info("resuming %s from step %d", run, start)
    if accelerator.is_main_process:
        layout.out.mkdir(parents=True, exist_ok=True)
        truncate_jsonl(layout.metrics, start)
    model.train()
    model, optimizer = accelerator.prepare(model, optimizer)

    fpt = flops_per_token(
        model.config if not hasattr(model, "module") else model.module.config, t.sequence_length
    )
    fpt_6n = 6.0 * count_parameters(accelerator.unwrap_model(model).config).total
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
            loss_sum = torch.zeros((), device=accelerator.device)
            for a in range(accum):
                first = (step - 1) * t.global_batch + (a * world + rank) * t.micro_batch
                tokens, positions = mixture.batch(first, t.micro_batch)
                tokens, positions = tokens.to(accelerator.device), positions.to(accelerator.device)
                sync = contextlib.nullcontext() if a == accum - 1 else accelerator.no_sync(model)
                with sync, accelerator.autocast():
                    # No attention mask: transformers then masks per document from the reset positions.
                    mask = None if t.document_attention_mask else torch.ones_like(tokens)
                    logits = model(input_ids=tokens, position_ids=positions, attention_mask=mask).logits
                    loss = causal_lm_loss(logits, tokens) / accum
                accelerator.backward(loss)
                loss_sum += loss.detach()
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), t.grad_clip or math.inf)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = accelerator.reduce(loss_sum, reduction="mean").item()
            elapsed = time.perf_counter() - began
            tokens_seen = step * t.tokens_per_step
            record = {
                "step": step,
                "loss": loss_value,
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens": tokens_seen,
                "flops": tokens_seen * fpt,
                "flops_6n": tokens_seen * fpt_6n,
                "tokens_per_s": t.tokens_per_step / elapsed,
            }
            if peak:
                record["mfu"] = fpt * t.tokens_per_step / elapsed / (peak * world)
            if accelerator.is_main_process:
                with layout.metrics.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, sort_keys=True) + "\n")
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{record['tokens_per_s']:,.0f}")
            bar.update(1)
            lineage = {
                **lineage_base,
                "step": step,
                "tokens": tokens_seen,
                "flops": record["flops"],
                "flops_6n": record["flops_6n"],
            }
            if step % spec.checkpoint_every == 0 or step == spec.schedule.steps:
                _save_checkpoint(accelerator, model, layout.step(step), lineage, init)
            if step % state_every == 0 or stop.raised or step == last:
                _save_state(accelerator, model, optimizer, layout.state, step, lineage)
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
                accelerator, model, final_step, {**lineage_base, "step": 0, "tokens": 0, "flops": 0}, init
            )
        with atomic_dir(layout.final) as tmp:
            shutil.copytree(final_step, tmp, dirs_exist_ok=True)
    accelerator.wait_for_everyone()
    return layout.final


def _save_checkpoint(accelerator: Any, model: Any, path: Path, lineage: dict, init: Any) -> None:
    accelerator.wait_for_everyone()
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        was_training = unwrapped.training
        save_checkpoint(unwrapped, path, lineage, tokenizer_src=init)
        unwrapped.train(was_training)
        del state
    accelerator.wait_for_everyone()


def _save_state(accelerator: Any, model: Any, optimizer: Any, path: Path, step: int, lineage: dict) -> None:
    accelerator.wait_for_everyone()
    model_state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        save_state(path, model_state, optimizer.state_dict(), step, {"tokens": lineage["tokens"]})
    accelerator.wait_for_everyone()


__all__ = ["FINAL", "METRICS", "PREEMPTED", "STATE", "Layout", "copy_tokenizer", "train"]
