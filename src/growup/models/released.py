"""The authors' published checkpoints as the study's starting point (config key `released`).

A released study (config/released.yaml) trains nothing: every run the study evaluates or merges
is fetched from its Hub id (through the Hub root in force, so a local folder laid out like the
Hub serves it offline), checked against the study's architecture, and given the lineage that
training would have recorded (steps, tokens and FLOPs by the study's schedules), so every
figure, table and claim reads it exactly like a run trained here.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from growup import hub
from growup.config import Study, schema_default
from growup.errors import GrowupError
from growup.io import atomic_dir
from growup.models.checkpoint import add_lineage, read_card

log = logging.getLogger(__name__)
CLONE = "english-1x-cloned"
# what a checkpoint needs (weights, config, tokenizer, card, remote code), not other formats
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.md", "*.py"]


def released_runs(study: Study) -> list[str]:
    """The runs a released study fetches: every trained run but `seed`, and the English clone."""
    from growup.train.runs import trained_runs

    return [r for r in trained_runs(study) if r != "seed"] + [CLONE]


def released_models(study: Study) -> dict[str, str]:
    """Run name -> Hub id from config key `released.models`; every needed run must have one."""
    section = study.released
    if section is None:
        raise GrowupError("config key 'released' is not set: use config/released.yaml (or extend it)")
    models = dict(section.models)
    needed = released_runs(study)
    missing = [r for r in needed if r not in models]
    unknown = sorted(set(models) - set(needed))
    if missing or unknown:
        raise GrowupError(
            f"config key 'released.models' must name a Hub id for exactly the runs {needed}; "
            f"missing: {missing}, unknown: {unknown}"
        )
    return models


def _trained_totals(study: Study, checkpoint: str) -> tuple[int, float]:
    """Cumulative (tokens, FLOPs) behind `<run>/final`, `<run>-cloned/final` or `init/final`."""
    run = checkpoint.split("/")[0]
    if checkpoint == "init/final":
        return 0, 0.0
    if run.endswith("-cloned"):
        return _trained_totals(study, f"{run.removesuffix('-cloned')}/final")
    own = planned_run(study, run)
    return own["tokens"] + own["parent_tokens"], own["flops"] + own["parent_flops"]


def planned_run(study: Study, run: str) -> dict[str, Any]:
    """What training `run` by the study's schedule records: step, tokens, FLOPs, and its parent's."""
    from growup.models.build import study_configs
    from growup.models.flops import count_parameters, flops_per_token
    from growup.train.runs import run_model, run_schedule, start_checkpoint

    if run == CLONE:
        tokens, flops = _trained_totals(study, "english-1x/final")
        return {
            "step": 0,
            "tokens": 0,
            "flops": 0.0,
            "flops_6n": 0.0,
            "parent_tokens": tokens,
            "parent_flops": flops,
        }
    config = study_configs(study)[run_model(study, run)]
    steps = run_schedule(study, run).steps
    tokens = steps * study.training.tokens_per_step
    parent_tokens, parent_flops = _trained_totals(study, start_checkpoint(study, run))
    return {
        "step": steps,
        "tokens": tokens,
        "flops": tokens * flops_per_token(config, study.training.sequence_length),
        "flops_6n": tokens * 6.0 * count_parameters(config).total,
        "parent_tokens": parent_tokens,
        "parent_flops": parent_flops,
    }


def check_architecture(study: Study, run: str, folder: Path, hub_id: str) -> None:
    """The fetched config must be the study's model for the run (width, depth, head factor)."""
    from transformers import AutoConfig

    from growup.models.build import study_configs
    from growup.train.runs import run_model

    if not (folder / "config.json").is_file():
        raise GrowupError(f"released checkpoint {hub_id!r} for run {run!r} has no config.json")
    got = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    model = f"clone-x{study.model.clone_factor}" if run == CLONE else run_model(study, run)
    want = study_configs(study)[model]
    for key in (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
    ):
        if getattr(got, key, None) != getattr(want, key):
            raise GrowupError(
                f"released checkpoint {hub_id!r} for run {run!r} has {key}={getattr(got, key, None)}; "
                f"config key 'model' makes it {getattr(want, key)}: is this the right Hub id or config?"
            )
    factor = getattr(got, "lm_head_normalization_factor", 1)
    if factor != getattr(want, "lm_head_normalization_factor", 1):
        raise GrowupError(
            f"released checkpoint {hub_id!r} for run {run!r} has lm_head_normalization_factor={factor}; "
            f"expected {getattr(want, 'lm_head_normalization_factor', 1)} (model.clone_factor)"
        )


def download(study: Study, hub_id: str, dest: Path) -> None:
    """A Hub model repository's files into dest: copied from the local root, or downloaded."""
    root = hub.hub_root(study.hub_root)
    revision = (
        study.released.revision if study.released is not None else schema_default("released", "revision")
    )
    if root is not None:
        src = root / hub_id
        if not src.is_dir():
            raise GrowupError(
                f"released checkpoint {hub_id!r} is not under the Hub root {str(root)!r} "
                f"(expected {str(src)!r}); unset {hub.ENV_ROOT} to use the Hub"
            )
        shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git*", ".cache"))
        return
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(hub_id, revision=revision, local_dir=str(dest), allow_patterns=HUB_FILES)
        shutil.rmtree(dest / ".cache", ignore_errors=True)  # huggingface_hub's download metadata
    except Exception as exc:  # network, auth or missing repository: say which and how to fix
        raise GrowupError(
            f"cannot download released checkpoint {hub_id!r}@{revision} ({exc}); check Hub access "
            f"or set {hub.ENV_ROOT} to a local folder laid out like the Hub"
        ) from exc


def fetch(study: Study, run: str, out: str | os.PathLike[str]) -> Path:
    """Fetch `run`'s published checkpoint into out/step-<N> (the run's last step, evaluated like a
    trained run's) and out/final; the English clone gets out/final only. Returns out/final."""
    models = released_models(study)
    if run not in models:
        raise GrowupError(f"--run is {run!r}; a released study fetches one of {sorted(models)}")
    hub_id = models[run]
    plan = planned_run(study, run)
    out = Path(out)
    for old in out.glob("step-*"):  # a schedule changed since the last fetch: no phantom steps
        shutil.rmtree(old)
    lineage = {"run": run, "operation": "released", "hub_id": hub_id, "study": study.name, **plan}
    first = out / (f"step-{plan['step']}" if run != CLONE else "final")
    with atomic_dir(first) as tmp:
        download(study, hub_id, tmp)
        check_architecture(study, run, tmp, hub_id)
        add_lineage(tmp, lineage)
    if run != CLONE:
        with atomic_dir(out / "final") as tmp:
            shutil.copytree(first, tmp, dirs_exist_ok=True)
    log.info("fetched %s (%s) -> %s: %s tokens", run, hub_id, out, f"{read_card(out / 'final')['tokens']:,}")
    return out / "final"
