"""The compute budget of a study: every training run's FLOPs and its GPU-hours on a stated GPU,
and how many merges (and merge evaluations) its grid holds.

FLOPs come from `growup.accounting.run_cost` (N counts every parameter, a tied
embedding once): 6N per trained token, and 6N + 12·L·H·Q·T with attention (PaLM, app. B). A run
trains steps × global batch × sequence length tokens. GPU-hours divide the 6N+attention FLOPs
(the FLOPs the training loop's logged MFU counts) by MFU × the GPU's peak dense bf16 FLOP/s.
"""

from __future__ import annotations

from dataclasses import dataclass

from growup.accounting import RunCost, run_cost
from growup.config import Study
from growup.errors import GrowupError
from growup.study import PAPER_METHODS, fetched_runs, merge_grid, runs_to_train
from growup.train.gpus import DEFAULT_GPU, DEFAULT_MFU, GPUS
from growup.train.runs import run_gpus


@dataclass(frozen=True)
class RunBudget(RunCost):
    """One training run's compute (`growup.accounting.run_cost`) and its GPU time."""

    gpus: int  # from config key resources.gpus (0 = CPU)
    gpu_hours: float  # of the 6N+attention FLOPs at the stated MFU and GPU

    @property
    def flops_attn(self) -> float:
        """6N + attention FLOPs."""
        return self.flops

    @property
    def wall_hours(self) -> float | None:
        """Hours on the run's configured number of GPUs (None for a CPU run)."""
        return self.gpu_hours / self.gpus if self.gpus > 0 else None


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
    """Every run the study trains (`growup.study.runs_to_train`: fetched runs cost nothing here)
    with its FLOPs and GPU-hours."""
    peak = check(gpu, mfu)
    rows = []
    for run in runs_to_train(study):
        cost = run_cost(study, run)
        rows.append(
            RunBudget(**vars(cost), gpus=run_gpus(study, run), gpu_hours=gpu_hours(cost.flops, mfu, peak))
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


def merge_counts(study: Study) -> dict[str, int]:
    """Merges of the grid per `merging.methods` entry (each merge is evaluated once)."""
    counts: dict[str, int] = {}
    for merge in merge_grid(study):
        counts[merge.method] = counts.get(merge.method, 0) + 1
    return counts


def _merges(study: Study) -> str:
    counts = merge_counts(study)
    paper = sum(n for m, n in counts.items() if m in PAPER_METHODS)
    beyond = {m: n for m, n in counts.items() if m not in PAPER_METHODS}
    listed = ", ".join(f"{m} {n}" for m, n in beyond.items()) or "none; see merging.methods"
    return (
        f"Merges (not in the table): {sum(counts.values()):,}, each evaluated once: {paper:,} with the "
        f"paper's methods, {sum(beyond.values()):,} beyond the paper ({listed})."
    )


def _note(study: Study, gpu: str, mfu: float) -> str:
    fetched = fetched_runs(study)
    also = f" {len(fetched)} runs are fetched (config key released.models), not trained." if fetched else ""
    return (
        f"Study {study.name!r}: GPU-hours of the 6N+attn FLOPs at MFU {mfu:g} on {gpu} "
        f"({GPUS[gpu] / 1e12:,.1f} TFLOP/s peak dense bf16); hours = GPU-hours / the run's GPUs. "
        f"Tokens = steps x {study.training.global_batch:,} x {study.training.sequence_length:,}; "
        "N counts every parameter (tied embedding once); attention term 12·L·H·Q·T (PaLM, app. B)."
        + also
        + " "
        + _merges(study)
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
