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

from growup.accounting import Lineage, token_cost
from growup.config import Study
from growup.data.packing import PackedDataset
from growup.data.tokenizer import tokenizer_digest
from growup.errors import GrowupError
from growup.io import atomic_dir
from growup.models import attention
from growup.models.checkpoint import copy_tokenizer, load_checkpoint, read_card, save_checkpoint
from growup.study import run_seed
from growup.train.gpus import device_peak_flops
from growup.train.loss import causal_lm_loss, lm_loss
from growup.train.mixture import Mixture
from growup.train.runs import RunSpec, run_spec
from growup.train.schedule import wsd_lr
from growup.train.state import load_state, save_state, truncate_jsonl

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
    """The GPU's peak for MFU: config key training.peak_flops, else growup.train.gpus' table."""
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


def check_tokenizer(init: Path, datasets: dict[str, PackedDataset]) -> None:
    """Every dataset a run reads was packed with its start checkpoint's tokenizer (a fetched base
    brings its own: `growup data tokenizer --checkpoint`), else its ids would mean other tokens."""
    if not (init / "tokenizer.json").is_file():
        return  # load_checkpoint names the missing tokenizer
    digest = tokenizer_digest(init)
    for name, ds in datasets.items():
        packed = ds.manifest.get("tokenizer_sha256")
        if packed is not None and packed != digest:
            raise GrowupError(
                f"packed dataset {name!r} was tokenized by tokenizer sha256 {packed[:12]}..., but the start "
                f"checkpoint {str(init)!r} has tokenizer sha256 {digest[:12]}...: repack it with that "
                "tokenizer (snakemake --cores all --forcerun data/tokenizer)"
            )


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


@dataclass
class Run:
    """What every step of one run shares, made once by `setup` (litgpt's pretrain.py split:
    setup, fit, one training step, save)."""

    study: Study
    name: str
    spec: RunSpec
    init: Path
    layout: Layout
    accelerator: Any
    net: nn.Module
    optimizer: torch.optim.Optimizer
    mixture: Mixture
    accum: int
    start: int  # the last step already done (0, or the step of a resumed state)
    last: int  # the last step this call trains
    flops_per_token: float
    flops_6n_per_token: float
    lineage: dict[str, Any]  # the card fields every checkpoint of the run shares

    def batches(self, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This process's micro-batches of `step`: a function of the step alone, so a resumed
        run reads exactly what an uninterrupted one would."""
        t, world, rank = self.study.training, self.accelerator.num_processes, self.accelerator.process_index
        first = (step - 1) * t.global_batch
        return [
            self.mixture.batch(first + (a * world + rank) * t.micro_batch, t.micro_batch)
            for a in range(self.accum)
        ]


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
    r = setup(study, run, Path(init), Path(out), Path(data_dir), max_steps)
    fit(r, progress)
    return finish(r)


def setup(study: Study, run: str, init: Path, out: Path, data_dir: Path, max_steps: int | None) -> Run:
    """The run's data, model, optimizer and accelerator, resumed from `out/state` when there is one.

    Nothing here draws a random number (the weights come from `init`, the data order from the
    mixture's seeded generators), so no global RNG is seeded or restored."""
    from accelerate import Accelerator

    spec = run_spec(study, run, data_dir)
    t, layout = study.training, Layout(out)
    # Without CUDA, `cpu=True` makes processes started by `accelerate launch` (even with
    # --multi_gpu, as the multi-node launch passes) one gloo group, not independent runs.
    gpu = torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision=t.mixed_precision if gpu else "no", cpu=not gpu)
    accum = micro_steps(study, accelerator.num_processes)
    datasets = open_datasets(spec, data_dir, t.sequence_length)
    check_tokenizer(init, datasets)
    mixture = Mixture(spec.phases, datasets, reset_positions=t.reset_positions)
    needed = spec.schedule.steps * t.global_batch
    if needed > len(mixture):
        log.warning(
            "run %s needs %d sequences, its data schedule has %d: the schedule repeats",
            run,
            needed,
            len(mixture),
        )

    model = load_checkpoint(init, attn_implementation=t.attn_implementation, dtype=torch.float32)
    model.config.use_cache = False
    start, state = 0, load_state(layout.state)
    if state is not None:
        model.load_state_dict(state["model"])
    net, optimizer = setup_training(study, model)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        log.info("resuming %s from step %d", run, start)
    if accelerator.is_main_process:
        layout.out.mkdir(parents=True, exist_ok=True)
        truncate_jsonl(layout.metrics, start)
        log.info(
            "%s: %d process(es) (%s), %d micro-batch(es) of %d sequences each per step",
            run,
            accelerator.num_processes,
            accelerator.distributed_type.value,
            accum,
            t.micro_batch,
        )
    net.train()
    net, optimizer = accelerator.prepare(net, optimizer)
    cost = token_cost(model.config, t.sequence_length)
    parent = Lineage.from_card(read_card(init)).child()  # the init's totals: this run's parent_*
    return Run(
        study=study,
        name=run,
        spec=spec,
        init=init,
        layout=layout,
        accelerator=accelerator,
        net=net,
        optimizer=optimizer,
        mixture=mixture,
        accum=accum,
        start=start,
        last=spec.schedule.steps if max_steps is None else min(spec.schedule.steps, max_steps),
        flops_per_token=cost.flops,
        flops_6n_per_token=cost.flops_6n,
        lineage={
            "run": run,
            "operation": "train",
            "parent": str(init),
            "parent_tokens": parent.parent_tokens,
            "parent_flops": parent.parent_flops,
            "seed": run_seed(study, run),
            "study": study.name,
        },
    )


def fit(r: Run, progress: bool = True) -> None:
    """Steps `start + 1` to `last`: each step's metrics line, checkpoints and states as configured;
    SIGTERM saves the state after the current step and exits with status 143."""
    t, accelerator = r.study.training, r.accelerator
    peak, world = peak_flops(r.study), accelerator.num_processes
    state_every = t.state_every or r.spec.checkpoint_every
    stop = StopFlag()
    bar = tqdm(
        total=r.last,
        initial=r.start,
        desc=r.name,
        unit="step",
        disable=not (progress and accelerator.is_main_process),
    )
    try:
        for step in range(r.start + 1, r.last + 1):
            began = time.perf_counter()
            record = train_step(r, step)
            if accelerator.is_main_process:
                with r.layout.metrics.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, sort_keys=True) + "\n")
            # wall-clock figures: progress bar and log only, never metrics.jsonl
            tok_s = t.tokens_per_step / (time.perf_counter() - began)
            mfu = f"{r.flops_per_token * tok_s / (peak * world):.1%}" if peak else "n/a"
            bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{tok_s:,.0f}", mfu=mfu)
            bar.update(1)
            if step % r.spec.checkpoint_every == 0 or step == r.last:
                log.info(
                    "%s step %d: loss %.4f, %.0f tokens/s, MFU %s", r.name, step, record["loss"], tok_s, mfu
                )
            lineage = card(r, step, record)
            if step % r.spec.checkpoint_every == 0 or step == r.spec.schedule.steps:
                save_checkpoint_at(r, r.layout.step(step), lineage)
            if step % state_every == 0 or stop.raised or step == r.last:
                save_state_at(r, step, lineage)
            if stop.raised:
                log.warning("SIGTERM: saved state at step %d of %s; rerun to resume", step, r.name)
                raise SystemExit(PREEMPTED)
    finally:
        bar.close()
        stop.restore()


def train_step(r: Run, step: int) -> dict[str, Any]:
    """One optimizer step at the scheduled learning rate: its metrics record (no wall-clock figure)."""
    t = r.study.training
    lr = wsd_lr(step, r.spec.schedule, t.peak_lr, t.min_lr)
    for group in r.optimizer.param_groups:
        group["lr"] = lr
    loss, grad_norm = optimizer_step(r.study, r.accelerator, r.net, r.optimizer, r.batches(step))
    tokens = step * t.tokens_per_step
    return {
        "step": step,
        "loss": loss,
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens": tokens,
        "flops": tokens * r.flops_per_token,
        "flops_6n": tokens * r.flops_6n_per_token,
    }


def card(r: Run, step: int, record: dict[str, Any]) -> dict[str, Any]:
    """The lineage a checkpoint at `step` records on its card."""
    counts = {k: record[k] for k in ("tokens", "flops", "flops_6n") if k in record}  # zero steps: no flops_6n
    return {**r.lineage, "step": step, **counts}


def finish(r: Run) -> Path:
    """Copy the last scheduled step to `final` (a zero-step run saves the start checkpoint as it)."""
    steps = r.spec.schedule.steps
    if r.last == steps and r.accelerator.is_main_process:
        final_step = r.layout.step(steps)
        if not final_step.is_dir():  # a zero-step run: the start checkpoint, unchanged
            save_checkpoint_at(r, final_step, card(r, 0, {"tokens": 0, "flops": 0}))
        with atomic_dir(r.layout.final) as tmp:
            shutil.copytree(final_step, tmp, dirs_exist_ok=True)
    r.accelerator.wait_for_everyone()
    return r.layout.final


def _lm_state(accelerator: Any, net: Any) -> dict[str, torch.Tensor]:
    """The language model's full state dict (gathered under FSDP), without LossModel's prefix."""
    state = accelerator.get_state_dict(net)
    return {k.removeprefix("lm."): v for k, v in state.items()} if state is not None else {}


def save_checkpoint_at(r: Run, path: Path, lineage: dict[str, Any]) -> None:
    """A Hugging Face checkpoint of the language model from its gathered state dict (whole under
    FSDP, where the wrapped module holds only this process's shard), written by the main process."""
    accelerator = r.accelerator
    accelerator.wait_for_everyone()
    state = _lm_state(accelerator, r.net)
    if accelerator.is_main_process:
        save_checkpoint(
            accelerator.unwrap_model(r.net).lm, path, lineage, tokenizer_src=r.init, state_dict=state
        )
    del state
    accelerator.wait_for_everyone()


def save_state_at(r: Run, step: int, lineage: dict[str, Any]) -> None:
    """The resumable state (weights, optimizer, step) after `step`, replacing the previous one."""
    accelerator = r.accelerator
    accelerator.wait_for_everyone()
    model_state = _lm_state(accelerator, r.net)
    if accelerator.is_main_process:
        save_state(r.layout.state, model_state, r.optimizer.state_dict(), step, {"tokens": lineage["tokens"]})
    accelerator.wait_for_everyone()


__all__ = [
    "FINAL",
    "METRICS",
    "PREEMPTED",
    "STATE",
    "Layout",
    "LossModel",
    "Run",
    "causal_lm_loss",
    "copy_tokenizer",
    "optimizer_step",
    "setup_training",
    "train",
]
