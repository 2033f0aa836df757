"""The compute budget of a study: every training run's FLOPs and its GPU-hours on a stated GPU.

FLOPs come from the accounting in `growup.models.flops` (N counts every parameter, a tied
embedding once): 6N per trained token, and 6N + 12·L·H·Q·T with attention (PaLM, app. B). A run
trains steps × global batch × sequence length tokens. GPU-hours divide the 6N+attention FLOPs
(the FLOPs the training loop's logged MFU counts) by MFU × the GPU's peak dense bf16 FLOP/s.
"""

from __future__ import annotations

from dataclasses import dataclass

from growup.config import Study
from growup.errors import GrowupError

# Peak dense (no structured sparsity) bf16 tensor FLOP/s of one GPU, from the vendors' datasheets.
# NVIDIA states bf16 "with sparsity" for Hopper; the dense figure is half of it.
GPUS: dict[str, float] = {
    # NVIDIA H100 Tensor Core GPU datasheet, H100 SXM: BF16 Tensor Core 1,979 TFLOPS with sparsity.
    "h100-sxm": 989.4e12,
    # Same datasheet, H100 PCIe (later "H100 PCIe 80GB"): 1,513 TFLOPS with sparsity.
    "h100-pcie": 756.5e12,
    # NVIDIA H200 Tensor Core GPU datasheet, H200 SXM: 1,979 TFLOPS with sparsity (the H100's compute).
    "h200": 989.4e12,
    # NVIDIA A100 Tensor Core GPU datasheet: BF16 Tensor Core 312 TFLOPS (624 with sparsity).
    "a100": 312.0e12,
    # AMD Instinct MI250X datasheet: 383 TFLOPS peak bf16 per module (two GCDs; SLURM on LUMI counts a
    # GCD as one GPU, so there one "GPU" is half of this).
    "mi250x": 383.0e12,
    # AMD Instinct MI300X datasheet: 1,307.4 TFLOPS peak bf16 dense.
    "mi300x": 1307.4e12,
}
# torch.cuda.get_device_name() substrings (lower case, most specific first) -> GPUS key, for MFU.
DEVICE_NAMES = (
    ("h100 pcie", "h100-pcie"),
    ("h100", "h100-sxm"),
    ("h200", "h200"),
    ("a100", "a100"),
    ("mi250x", "mi250x"),
    ("mi300x", "mi300x"),
)
DEFAULT_GPU = "h100-sxm"
DEFAULT_MFU = 0.4


@dataclass(frozen=True)
class RunBudget:
    """One training run's compute."""

    run: str
    model: str  # 1x or clone-x<k>
    params: int
    steps: int
    tokens: int
    flops_6n: float
    flops_attn: float  # 6N + attention
    gpus: int  # from config key resources.gpus (0 = CPU)
    gpu_hours: float  # of the 6N+attention FLOPs at the stated MFU and GPU

    @property
    def wall_hours(self) -> float | None:
        """Hours on the run's configured number of GPUs (None for a CPU run)."""
        return self.gpu_hours / self.gpus if self.gpus > 0 else None


def device_peak_flops(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s of a device by its torch name (None when the table lacks it)."""
    name = device_name.lower()
    return next((GPUS[key] for part, key in DEVICE_NAMES if part in name), None)


def gpu_hours(flops: float, mfu: float, peak_flops: float) -> float:
    """GPU-hours to execute `flops` at model FLOPs utilisation `mfu` of a GPU's `peak_flops` per second."""
    return flops / (mfu * peak_flops) / 3600.0


def check(gpu: str, mfu: float) -> float:
    """The peak FLOP/s of `gpu`; an unknown GPU or an MFU outside (0, 1] is an error."""
    if gpu not in GPUS:
        raise GrowupError(f"unknown GPU {gpu!r}; known: {', '.join(GPUS)}")
    if not 0 < mfu <= 1:
        raise GrowupError(f"MFU must be in (0, 1], got {mfu}")
    return GPUS[gpu]


def study_budget(study: Study, gpu: str = DEFAULT_GPU, mfu: float = DEFAULT_MFU) -> list[RunBudget]:
    """Every trained run of the study (the growup.train.runs grid) with its FLOPs and GPU-hours."""
    from growup.models.build import study_configs
    from growup.models.flops import (
        attention_flops_per_token,
        count_parameters,
        flops_per_token_6n,
        training_flops,
    )
    from growup.train.runs import run_gpus, run_model, run_schedule, trained_runs

    peak = check(gpu, mfu)
    configs = study_configs(study)
    t = study.training
    rows = []
    for run in trained_runs(study):
        model = run_model(study, run)
        config = configs[model]
        params = count_parameters(config).total
        steps = run_schedule(study, run).steps
        six_n = flops_per_token_6n(params)
        attn = six_n + attention_flops_per_token(config, t.sequence_length)
        flops_attn = training_flops(attn, t.tokens_per_step, steps)
        rows.append(
            RunBudget(
                run=run,
                model=model,
                params=params,
                steps=steps,
                tokens=t.tokens_per_step * steps,
                flops_6n=training_flops(six_n, t.tokens_per_step, steps),
                flops_attn=flops_attn,
                gpus=run_gpus(study, run),
                gpu_hours=gpu_hours(flops_attn, mfu, peak),
            )
        )
    return rows


HEADER = (
    "run",
    "model",
    "params",
    "steps",
    "tokens",
    "6N FLOPs",
    "6N+attn FLOPs",
    "GPUs",
    "GPU-hours",
    "hours",
)


def _cells(rows: list[RunBudget]) -> list[tuple[str, ...]]:
    cells = [
        (
            r.run,
            r.model,
            f"{r.params / 1e6:.2f}M",
            f"{r.steps:,}",
            f"{r.tokens / 1e9:,.2f}B",
            f"{r.flops_6n:.3e}",
            f"{r.flops_attn:.3e}",
            str(r.gpus),
            f"{r.gpu_hours:,.1f}",
            "-" if r.wall_hours is None else f"{r.wall_hours:,.1f}",
        )
        for r in rows
    ]
    cells.append(
        (
            "total",
            "",
            "",
            f"{sum(r.steps for r in rows):,}",
            f"{sum(r.tokens for r in rows) / 1e9:,.2f}B",
            f"{sum(r.flops_6n for r in rows):.3e}",
            f"{sum(r.flops_attn for r in rows):.3e}",
            "",
            f"{sum(r.gpu_hours for r in rows):,.1f}",
            "",
        )
    )
    return cells


def _note(study: Study, gpu: str, mfu: float) -> str:
    return (
        f"Study {study.name!r}: GPU-hours of the 6N+attn FLOPs at MFU {mfu:g} on {gpu} "
        f"({GPUS[gpu] / 1e12:,.1f} TFLOP/s peak dense bf16); hours = GPU-hours / the run's GPUs. "
        f"Tokens = steps x {study.training.global_batch:,} x {study.training.sequence_length:,}; "
        "N counts every parameter (tied embedding once); attention term 12·L·H·Q·T (PaLM, app. B)."
    )


def format_markdown(study: Study, rows: list[RunBudget], gpu: str, mfu: float) -> str:
    """The budget as a Markdown table, the study total last, the assumptions underneath."""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|" + "---:|" * (len(HEADER) - 2)]
    for cells in _cells(rows):
        if cells[0] == "total":
            cells = tuple(f"**{c}**" if c else c for c in cells)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", _note(study, gpu, mfu)])


def format_text(study: Study, rows: list[RunBudget], gpu: str, mfu: float) -> str:
    """The budget as a fixed-width table (text columns left, numbers right)."""
    body = _cells(rows)
    widths = [max(len(x) for x in col) for col in zip(HEADER, *body, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [line(HEADER), "  ".join("-" * w for w in widths)]
    lines += [line(c) for c in body[:-1]]
    lines += ["  ".join("-" * w for w in widths), line(body[-1])]
    return "\n".join([*lines, "", _note(study, gpu, mfu)])


FORMATS = {"markdown": format_markdown, "text": format_text}
