"""Training throughput, MFU and peak memory of growup's training step, with an ablation of each
speed switch, for a study's two model sizes (1x and its clone).

    python benchmarks/bench_train.py                                # the mini models (CPU or GPU)
    python benchmarks/bench_train.py --configfile config/paper.yaml # 180M and 572M (a GPU)

It runs `growup.train.loop.optimizer_step`, the very step `growup train` runs, on synthetic packed
batches (random tokens; documents of exponentially distributed length, mean --doc-tokens, each
row restarting its positions), so no data is needed. Variants, each adding one switch to the one
above it, the last being every switch on:

  plain       transformers' attention (a dense per-document mask when document masking is on),
              full logits, AdamW for-each, eager
  +attention  growup_sdpa: SDPA's causal kernel, or varlen attention per document
  +fused      fused AdamW
  +chunked    chunked linear + cross-entropy
  +compile    torch.compile of the decoder layers and of the loss's per-chunk math

On CUDA each variant uses the largest micro-batch (a divisor of the global batch, at most
--max-micro-batch) that fits; gradient accumulation fills the rest. A timed optimizer step runs
min(global batch / micro-batch, --accum) micro-batches, so the optimizer's cost is amortised
over fewer tokens than in a real step (a conservative figure). MFU = (6N + 12·L·H·Q·T) × tokens/s
/ the GPU's dense bf16 peak (growup.models.flops, growup.train.budget); on CPU there is no peak
and MFU is left out. Peak memory: CUDA's allocator peak; on CPU the profiler's allocator total
over one extra step (growup.train.memory).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from growup.config import Study  # noqa: E402
from growup.models.build import study_configs  # noqa: E402
from growup.models.flops import count_parameters, flops_per_token  # noqa: E402
from growup.models.hyperllama import model_class  # noqa: E402
from growup.study import load_config  # noqa: E402
from growup.train.gpus import device_peak_flops  # noqa: E402
from growup.train.loop import optimizer_step, setup_training  # noqa: E402
from growup.train.memory import peak_bytes  # noqa: E402

VARIANTS: list[tuple[str, dict]] = [
    (
        "plain",
        {"attn_implementation": "eager", "fused_adamw": False, "chunked_loss": False, "compile": False},
    ),
    ("+attention", {"attn_implementation": "sdpa"}),
    ("+fused", {"fused_adamw": True}),
    ("+chunked", {"chunked_loss": True}),
    ("+compile", {"compile": True}),
]


def variants(study: Study) -> list[tuple[str, Study]]:
    """The cumulative ablation: each variant's study (training fields replaced)."""
    out, fields = [], {}
    for name, change in VARIANTS:
        fields.update(change)
        out.append((name, dataclasses.replace(study, training=dataclasses.replace(study.training, **fields))))
    return out


def synthetic_batch(
    rows: int, length: int, vocab: int, doc_tokens: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tokens and packed position ids (documents of exponential length, mean doc_tokens)."""
    tokens = torch.randint(0, vocab, (rows, length), generator=gen)
    positions = torch.empty(rows, length, dtype=torch.long)
    for r in range(rows):
        start = 0
        while start < length:
            size = max(1, int(torch.empty(1).exponential_(1 / doc_tokens, generator=gen)))
            end = min(length, start + size)
            positions[r, start:end] = torch.arange(end - start)
            start = end
    return tokens, positions


def measure(study: Study, config, micro: int, args: argparse.Namespace) -> dict:
    """Time `args.steps` optimizer steps after `args.warmup`; tokens/s, peak memory and the loss."""
    from accelerate import Accelerator

    t = study.training
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision=t.mixed_precision if cuda else "no")
    # the model as `growup train` loads it (sdpa: growup_sdpa replaces it when configured)
    config = copy.deepcopy(config)
    torch.manual_seed(study.seed)
    model = model_class(config)(config)  # a clone's HyperLlama head divides by the clone factor
    model.set_attn_implementation("sdpa")
    model.config.use_cache = False
    net, optimizer = setup_training(study, model)
    net.train()
    net, optimizer = accelerator.prepare(net, optimizer)
    accum = min(t.global_batch // micro, args.accum)
    gen = torch.Generator().manual_seed(0)
    shape = (micro, t.sequence_length, config.vocab_size, args.doc_tokens)
    steps = [
        [synthetic_batch(*shape, gen) for _ in range(accum)] for _ in range(args.warmup + args.steps + 1)
    ]

    def step(batches: list) -> float:
        return optimizer_step(study, accelerator, net, optimizer, batches)[0]

    for batches in steps[: args.warmup]:
        step(batches)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for batches in steps[args.warmup : args.warmup + args.steps]:
        began = time.perf_counter()
        loss = step(batches)  # .item() inside synchronises
        times.append(time.perf_counter() - began)
    peak = torch.cuda.max_memory_allocated() if cuda else peak_bytes(lambda: step(steps[-1]))
    tokens = accum * micro * t.sequence_length
    tok_s = tokens / statistics.median(times)
    return {"tok_s": tok_s, "peak": peak, "loss": loss, "micro": micro, "accum": accum}


def largest_micro_batch(study: Study, config, args: argparse.Namespace) -> dict:
    """Measure at the largest micro-batch that fits (CUDA), or the configured one (CPU)."""
    t = study.training
    if not torch.cuda.is_available():
        return measure(study, config, t.micro_batch, args)
    sizes = [m for m in range(min(args.max_micro_batch, t.global_batch), 0, -1) if t.global_batch % m == 0]
    sizes = [m for m in sizes if m & (m - 1) == 0] or sizes  # powers of two first
    for micro in sizes:
        try:
            return measure(study, config, micro, args)
        except torch.cuda.OutOfMemoryError:
            pass
        torch.cuda.empty_cache()  # after the failed model is gone
    raise RuntimeError("not even a micro-batch of 1 fits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--models", nargs="+", help="model names (default: 1x and its clone)")
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    parser.add_argument("--accum", type=int, default=4, help="most micro-batches per timed step")
    parser.add_argument("--max-micro-batch", type=int, default=64)
    parser.add_argument("--doc-tokens", type=float, default=512.0, help="mean document length")
    parser.add_argument("--only", nargs="+", help="variant names to run (default: all)")
    args = parser.parse_args()

    study = load_config(args.configfile)
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    peak_flops = study.training.peak_flops or (device_peak_flops(device) if cuda else None)
    t = study.training
    print(
        f"device: {device}; study {study.name!r}; sequence length {t.sequence_length}, global batch "
        f"{t.global_batch}; document masking {'on' if t.document_attention_mask else 'off'}; "
        f"{'bf16 autocast' if cuda and t.mixed_precision == 'bf16' else 'fp32'}; torch {torch.__version__}"
    )
    if peak_flops:
        print(f"MFU against {peak_flops / 1e12:,.1f} TFLOP/s (dense bf16 peak)")
    header = f"{'model':<10} {'params':>8} {'variant':<11} {'micro':>5} {'accum':>5} {'tokens/s':>11} "
    header += f"{'x plain':>7} {'MFU':>6} {'peak mem':>10} {'loss':>7}"
    print(header + "\n" + "-" * len(header))
    configs = study_configs(study)
    for name in args.models or list(configs):
        config = configs[name]
        params = count_parameters(config).total
        fpt = flops_per_token(config, t.sequence_length)
        base = None
        for variant, vstudy in variants(study):
            if args.only and variant not in args.only:
                continue
            r = largest_micro_batch(vstudy, config, args)
            base = base or r["tok_s"]
            mfu = f"{fpt * r['tok_s'] / peak_flops:.1%}" if peak_flops else "-"
            print(
                f"{name:<10} {params / 1e6:>7.1f}M {variant:<11} {r['micro']:>5} {r['accum']:>5} "
                f"{r['tok_s']:>11,.0f} {r['tok_s'] / base:>6.2f}x {mfu:>6} {r['peak'] / 2**30:>7.2f} GiB "
                f"{r['loss']:>7.3f}",
                flush=True,
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
