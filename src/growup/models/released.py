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
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path

from transformers import AutoConfig

from growup import hub
from growup.accounting import Lineage, planned_lineage, start_lineage
from growup.config import Study, schema_default
from growup.errors import GrowupError
from growup.integrity import write_checksums
from growup.io import atomic_dir
from growup.models.build import study_configs
from growup.models.checkpoint import add_lineage, read_card
from growup.study import ENGLISH_CLONE, released_runs, run_model

log = logging.getLogger(__name__)
CLONE = ENGLISH_CLONE  # the one clone a released study fetches
# what a checkpoint needs (weights, config, tokenizer, card), not other formats and never code: a
# repository's `hyperllama.py` is not copied (growup's own HyperLlama class loads the weights)
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.md"]
CODE_FILES = ["*.py", "*.pyc", "*.so", "*.pyd", "*.sh", "*.exe", "*.dll", "*.dylib"]


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


def planned_run(study: Study, run: str) -> Lineage:
    """What training `run` by the study's schedule records (`growup.accounting`); the English
    clone records nothing of its own (written as floats, as a trained run's FLOPs are)."""
    if run == CLONE:
        return replace(start_lineage(study, CLONE), flops=0.0, flops_6n=0.0)
    return planned_lineage(study, run)


def check_architecture(study: Study, run: str, folder: Path, hub_id: str) -> None:
    """The fetched config must be the study's model for the run (width, depth, head factor)."""
    if not (folder / "config.json").is_file():
        raise GrowupError(f"released checkpoint {hub_id!r} for run {run!r} has no config.json")
    got = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    model = run_model(study, run)
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
        shutil.copytree(
            src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git*", ".cache", *CODE_FILES)
        )
        skipped = sorted(p.name for p in src.iterdir() if any(fnmatch(p.name, c) for c in CODE_FILES))
        if skipped:
            log.info("%s: not copied (code; growup's own HyperLlama class loads it): %s", hub_id, skipped)
        return
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(
            hub_id,
            revision=revision,
            local_dir=str(dest),
            allow_patterns=HUB_FILES,
            ignore_patterns=CODE_FILES,
        )
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
    lineage = {"run": run, "operation": "released", "hub_id": hub_id, "study": study.name, **plan.card()}
    first = out / (f"step-{plan.step}" if run != CLONE else "final")
    with atomic_dir(first) as tmp:
        download(study, hub_id, tmp)
        check_architecture(study, run, tmp, hub_id)
        add_lineage(tmp, lineage)
        write_checksums(tmp)  # growup.integrity: what was fetched, checked by every reader
    if run != CLONE:
        with atomic_dir(out / "final") as tmp:
            shutil.copytree(first, tmp, dirs_exist_ok=True)
    log.info("fetched %s (%s) -> %s: %s tokens", run, hub_id, out, f"{read_card(out / 'final')['tokens']:,}")
    return out / "final"
