"""Evaluate checkpoints and write lm-eval results: evals/<model>/<step>/<task>.json (+ samples).

A sweep evaluates every saved `step-N` of a run in one process, loading each model once and
running all tasks on it, so learning curves cost one model load per point.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from tqdm import tqdm
from transformers import AutoTokenizer

from growup.config import Study
from growup.errors import GrowupError
from growup.evaluate.harness import evaluate, make_lm, run_tasks, study_tasks
from growup.io import atomic_dir, atomic_write_json
from growup.models.checkpoint import load_checkpoint, read_card
from growup.paths import eval_dir

log = logging.getLogger(__name__)
STEP_DIR = re.compile(r"^step-(\d+)$")


def run_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """(step label, folder) of every `step-N` checkpoint of a run, by step."""
    found = [
        (int(m.group(1)), p) for p in Path(run_dir).iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()
    ]
    if not found:
        raise GrowupError(f"no step-N checkpoints in {str(run_dir)!r}: train the run first")
    return [(str(step), path) for step, path in sorted(found)]


def _task_files(results: dict[str, Any], task: str, meta: dict[str, Any]) -> tuple[dict, list[dict]]:
    keep = ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples")
    one = {k: {task: results[k][task]} for k in keep if task in results.get(k, {})}
    one["config"] = {k: v for k, v in results.get("config", {}).items() if k != "model"}
    one["growup"] = meta
    if task in results.get("growup_samples", {}):  # the items a limit scored (lm-eval's --samples)
        one["growup"] = {**meta, "sample": results["growup_samples"][task]}
    samples = [
        {
            "doc_id": s["doc_id"],
            "loglikelihoods": [r[0] for r in s["filtered_resps"]],
            "target": s["target"],
            "acc": s["acc"],
            "acc_norm": s.get("acc_norm"),
        }
        for s in results["samples"][task]
    ]
    return one, samples


def evaluate_checkpoint(
    study: Study,
    checkpoint: str | os.PathLike[str],
    model_name: str,
    step: str,
    out_root: str | os.PathLike[str],
    tasks: list[str] | None = None,
    limit: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Evaluate one checkpoint on every task; write evals/<model>/<step>/ (or `out_dir`/<step>)
    atomically."""
    out = eval_dir(out_root, model_name, step, out_dir)  # names checked, stays under its root
    tasks = tasks or study_tasks(study)
    limit = limit if limit is not None else study.evaluation.limit
    model = load_checkpoint(checkpoint, dtype=study.evaluation.dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    results = evaluate(make_lm(model, tokenizer, study), study, tasks, limit)
    card = read_card(checkpoint)
    meta = {
        "model": model_name,
        "step": step,
        "checkpoint": str(checkpoint),
        "tokens": card.get("tokens", 0),
        "flops": card.get("flops", 0),
        "parent_tokens": card.get("parent_tokens", 0),
        "parent_flops": card.get("parent_flops", 0),
        "prefix": study.evaluation.prefix,
        "limit": limit,
    }
    with atomic_dir(out) as tmp:
        for task in tasks:
            one, samples = _task_files(results, task, meta)
            atomic_write_json(tmp / f"{task}.json", one, lenient=True)
            (tmp / f"{task}.samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return out


def sweep(
    study: Study,
    run_dir: str | os.PathLike[str],
    model_name: str,
    out_root: str | os.PathLike[str],
    init: str | os.PathLike[str] | None = None,
    tasks: list[str] | None = None,
    limit: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Evaluate every checkpoint of a run (and its starting point as step 0, if given) on the
    run's tasks (`run_tasks`), unless `tasks` names others."""
    tasks = tasks or run_tasks(study, model_name)
    points = ([("0", Path(init))] if init else []) + run_checkpoints(run_dir)
    written = []
    for step, path in tqdm(points, desc=f"eval {model_name}", unit="ckpt"):
        written.append(evaluate_checkpoint(study, path, model_name, step, out_root, tasks, limit, out_dir))
    return written
