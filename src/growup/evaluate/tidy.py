"""lm-eval results JSON → one tidy row per (model, step, task, metric), with tokens and FLOPs."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from growup.io import atomic_write_text

COLUMNS = (
    "model",
    "step",
    "task",
    "benchmark",
    "language",
    "metric",
    "value",
    "stderr",
    "n",
    "tokens",
    "flops",
    "total_tokens",
    "total_flops",
)
METRICS = ("acc", "acc_norm")


def benchmark_of(task: str, iso_to_code: dict[str, str]) -> tuple[str, str]:
    """(benchmark, study language) of a task name."""
    if task.startswith("multiblimp_"):
        iso = task.removeprefix("multiblimp_")
        return "multiblimp", iso_to_code.get(iso, iso)
    if task == "growup_blimp_single_error":
        return "blimp", "eng"
    return task.removeprefix("growup_"), ""


def rows_from_result(result: dict[str, Any], iso_to_code: dict[str, str]) -> list[dict[str, Any]]:
    meta = result["growup"]
    rows = []
    for task, values in sorted(result["results"].items()):
        benchmark, language = benchmark_of(task, iso_to_code)
        for metric in METRICS:
            if f"{metric},none" not in values:
                continue
            stderr = values.get(f"{metric}_stderr,none")
            rows.append(
                {
                    "model": meta["model"],
                    "step": meta["step"],
                    "task": task,
                    "benchmark": benchmark,
                    "language": language,
                    "metric": metric,
                    "value": values[f"{metric},none"],
                    "stderr": stderr if isinstance(stderr, float) else "",
                    "n": values.get("sample_len", ""),
                    "tokens": meta["tokens"],
                    "flops": meta["flops"],
                    "total_tokens": meta["tokens"] + meta["parent_tokens"],
                    "total_flops": meta["flops"] + meta["parent_flops"],
                }
            )
    return rows


def collect(evals_root: str | os.PathLike[str], iso_to_code: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of every results file under `evals_root` (at any depth), sorted for stable output."""
    rows = []
    for path in sorted(Path(evals_root).rglob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(result, dict) and "growup" in result and "results" in result:
            rows.extend(rows_from_result(result, iso_to_code))
    return sorted(rows, key=lambda r: (r["model"], _step_key(r["step"]), r["task"], r["metric"]))


def _step_key(step: Any) -> tuple[int, str]:
    return (int(step), "") if str(step).isdigit() else (1 << 62, str(step))


def write_csv(rows: list[dict[str, Any]], out: str | os.PathLike[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: (f"{v:.6f}" if isinstance(v, float) and k in ("value", "stderr") else v)
                for k, v in row.items()
            }
        )
    atomic_write_text(out, buf.getvalue())
