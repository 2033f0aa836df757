"""lm-eval results JSON → one tidy row per (model, step, task, metric), with tokens and FLOPs,
and the accuracy's interval from a seeded bootstrap over the per-pair verdicts (`*.samples.jsonl`),
which are also kept in one per-pair table for the paired comparisons of the claims."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from growup.accounting import Lineage
from growup.io import atomic_write_text
from growup.report.power import SeedBootstrap
from growup.report.stats import Bootstrap, Pairs, interval
from growup.study import split_replicate

COLUMNS = (
    "model",
    "step",
    "task",
    "benchmark",
    "language",
    "metric",
    "value",
    "stderr",
    "ci_low",
    "ci_high",
    "n",
    "tokens",
    "flops",
    "total_tokens",
    "total_flops",
)
METRICS = ("acc", "acc_norm")
# with seed replicates (training.replicates), every row of a replicated run also carries its
# recipe's mean over seeds and that mean's two-level interval (seeds and pairs resampled)
SEED_COLUMNS = ("seeds", "seed_mean", "seed_ci_low", "seed_ci_high")
FLOATS = ("value", "stderr", "ci_low", "ci_high", *SEED_COLUMNS[1:])  # written with 6 decimals


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
    lineage = Lineage.from_card(meta)
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
                    "tokens": lineage.tokens,
                    "flops": lineage.flops,
                    "total_tokens": lineage.total_tokens,
                    "total_flops": lineage.total_flops,
                }
            )
    return rows


def read_samples(path: Path, result: dict[str, Any], pairs: Pairs) -> None:
    """Add the per-pair verdicts of each task of `result` (its `<task>.samples.jsonl` beside
    `path`) to `pairs`; a results file without samples adds nothing (its rows get no interval)."""
    meta = result["growup"]
    for task in result["results"]:
        samples = path.parent / f"{task}.samples.jsonl"
        if not samples.is_file():
            continue
        rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line]
        for metric in METRICS:
            if rows and all(r.get(metric) is not None for r in rows):
                key = (meta["model"], str(meta["step"]), task, metric)
                pairs.add(key, (r["doc_id"] for r in rows), (float(r[metric]) for r in rows))


def collect(
    evals_root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    iso_to_code: dict[str, str],
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[list[dict[str, Any]], Pairs]:
    """Every row of every results file under `evals_root` (a folder, or the study's evaluation
    folders, so a stale folder, e.g. of a seed no longer configured, is never read; at any depth),
    sorted for stable output, each with its `confidence` bootstrap interval; and the per-pair
    verdicts behind them."""
    roots = [evals_root] if isinstance(evals_root, (str, os.PathLike)) else list(evals_root)
    rows, pairs = [], Pairs()
    for path in sorted({p for root in roots for p in Path(root).rglob("*.json")}):
        result = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(result, dict) and "growup" in result and "results" in result:
            rows.extend(rows_from_result(result, iso_to_code))
            read_samples(path, result, pairs)
    boot = Bootstrap(pairs, resamples, seed)
    for row in rows:
        key = (row["model"], str(row["step"]), row["task"], row["metric"])
        row["ci_low"], row["ci_high"] = (
            interval(boot.replicates(key), confidence) if key in pairs else ("", "")
        )
        if key in pairs and row["n"] == "":
            row["n"] = len(pairs.cells[key].doc_ids)
    add_seed_means(rows, SeedBootstrap(boot, seed), confidence)
    return sorted(rows, key=lambda r: (r["model"], _step_key(r["step"]), r["task"], r["metric"])), pairs


def add_seed_means(rows: list[dict[str, Any]], seeds: SeedBootstrap, confidence: float) -> None:
    """Each row of a run with seed replicates gets its recipe's seed count, mean over seeds and
    two-level interval (`SEED_COLUMNS`); a study of one seed gets no such columns."""
    replicated = {recipe for recipe, members in seeds.groups.items() if len(members) > 1}
    if not replicated:
        return
    for row in rows:
        recipe = (split_replicate(row["model"])[0], str(row["step"]), row["task"], row["metric"])
        if recipe in replicated:
            low, high = interval(seeds.replicates(recipe), confidence)
            row.update(
                seeds=seeds.seeds(recipe), seed_mean=seeds.point(recipe), seed_ci_low=low, seed_ci_high=high
            )
        else:
            row.update(dict.fromkeys(SEED_COLUMNS, ""))


def _step_key(step: Any) -> tuple[int, str]:
    return (int(step), "") if str(step).isdigit() else (1 << 62, str(step))


def write_csv(rows: list[dict[str, Any]], out: str | os.PathLike[str]) -> None:
    buf = io.StringIO()
    columns = COLUMNS + (SEED_COLUMNS if rows and "seeds" in rows[0] else ())
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: (
                    f"{v:.6f}"
                    if isinstance(v, float)
                    and k in ("value", "stderr", "ci_low", "ci_high", *SEED_COLUMNS[1:])
                    else v
                )
                for k, v in row.items()
            }
        )
    atomic_write_text(out, buf.getvalue())
