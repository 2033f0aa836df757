"""Runs fetched instead of trained (config key `released.models`, `growup.study.run_source`).

A fetched run is a checkpoint from a Hub id (through the Hub root in force, so a local folder laid
out like the Hub serves it offline) or from a local folder. It is checked against the study's
architecture, and gets the lineage that training would have recorded (steps, tokens and FLOPs by
the study's schedules), so every figure, table and claim reads it exactly like a run trained here.
The released study (config/released.yaml) fetches every run; a study that fetches only its English
base trains its languages from it, with its tokenizer (`growup data tokenizer --checkpoint`).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from transformers import AutoConfig, LlamaConfig

from growup import hub
from growup.accounting import Lineage, planned_lineage, start_lineage
from growup.config import Study, schema_default
from growup.errors import GrowupError
from growup.integrity import write_checksums
from growup.io import atomic_dir
from growup.models.build import study_configs
from growup.models.checkpoint import add_lineage, read_card, verify_checkpoint
from growup.models.hyperllama import normalization_factor
from growup.study import RunSource, clone_of, is_folder_source, run_model, run_source

log = logging.getLogger(__name__)
# what a checkpoint needs (weights, config, tokenizer, card), not other formats and never code: a
# repository's `hyperllama.py` is not copied (growup's own HyperLlama class loads the weights)
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.md"]
CODE_FILES = ["*.py", "*.pyc", "*.so", "*.pyd", "*.sh", "*.exe", "*.dll", "*.dylib"]
CHECKSUMS = "checksums.sha256"


def fetched_source(study: Study, run: str) -> RunSource:
    """The source of a run the study fetches; a run it makes itself is an error naming the key."""
    source = run_source(study, run)
    if not source.fetched:
        raise GrowupError(
            f"--run is {run!r}, which this study trains (or clones): config key 'released.models' "
            "names no source for it"
        )
    return source


def planned_run(study: Study, run: str) -> Lineage:
    """What making `run` by the study's schedule records (`growup.accounting`); a clone records
    nothing of its own (written as floats, as a trained run's FLOPs are)."""
    if clone_of(run):
        return replace(start_lineage(study, run), flops=0.0, flops_6n=0.0)
    return planned_lineage(study, run)


def head_dim(config: Any) -> int | None:
    dim = getattr(config, "head_dim", None)
    heads = getattr(config, "num_attention_heads", None)
    return dim or (config.hidden_size // heads if heads else None)


def shape(config: Any) -> str:
    """A model config's shape in one phrase (what a fetched checkpoint must agree on)."""

    def get(key: str) -> Any:
        return getattr(config, key, None)

    tied = "tied" if get("tie_word_embeddings") in (True, None) else "untied"
    return (
        f"vocab {get('vocab_size')}, hidden {get('hidden_size')}, ffn {get('intermediate_size')}, "
        f"layers {get('num_hidden_layers')}, heads {get('num_attention_heads')}/{get('num_key_value_heads')} "
        f"x {head_dim(config)}, {tied} head, head factor {normalization_factor(config):g}"
    )


def check_architecture(study: Study, run: str, folder: Path, location: str) -> None:
    """The fetched config must be a Llama-family model of the study's shape for the run (width,
    depth, heads, head size, vocabulary, head tying, head factor): one line naming both shapes."""
    if not (folder / "config.json").is_file():
        raise GrowupError(f"fetched checkpoint {location!r} for run {run!r} has no config.json")
    got = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    if not isinstance(got, LlamaConfig):
        raise GrowupError(
            f"fetched checkpoint {location!r} for run {run!r} is a {got.model_type!r} model; growup "
            "adapts Llama-family checkpoints (LlamaForCausalLM, HyperLlama)"
        )
    want = study_configs(study)[run_model(study, run)]
    if shape(got) != shape(want):
        raise GrowupError(
            f"fetched checkpoint {location!r} for run {run!r} has shape {shape(got)}; config keys "
            f"'model' and 'tokenizer.vocab_size' make it {shape(want)} (`growup model shape {location}` "
            "prints the config of the checkpoint's shape)"
        )


def source_folder(study: Study, location: str, is_folder: bool) -> Path | None:
    """The local folder a source is copied from: the folder itself, or the Hub id under the local
    Hub root; None when the Hub itself serves it."""
    if is_folder:
        folder = Path(location).expanduser()
        if not (folder / "config.json").is_file():
            raise GrowupError(
                f"config key 'released.models' names the folder {location!r}, which holds no checkpoint "
                f"(no config.json at {str(folder.resolve())!r})"
            )
        return folder
    root = hub.hub_root(study.hub_root)
    if root is None:
        return None
    folder = root / location
    if not folder.is_dir():
        raise GrowupError(
            f"checkpoint {location!r} is not under the Hub root {str(root)!r} "
            f"(expected {str(folder)!r}); unset {hub.ENV_ROOT} to use the Hub"
        )
    return folder


def revision(study: Study) -> str:
    return study.released.revision if study.released is not None else schema_default("released", "revision")


def download(study: Study, source: RunSource, dest: Path) -> None:
    """A checkpoint's files into dest: copied from a folder (or the local Hub root), or
    downloaded from the Hub; never code. A folder that carries growup's checksums is verified first."""
    location = str(source.location)
    folder = source_folder(study, location, source.is_folder)
    if folder is not None:
        if (folder / CHECKSUMS).is_file():
            verify_checkpoint(folder, tokenizer=False)
        shutil.copytree(
            folder, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git*", ".cache", *CODE_FILES)
        )
        skipped = sorted(p.name for p in folder.iterdir() if any(fnmatch(p.name, c) for c in CODE_FILES))
        if skipped:
            log.info("%s: not copied (code; growup's own HyperLlama class loads it): %s", location, skipped)
        return
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(
            location,
            revision=revision(study),
            local_dir=str(dest),
            allow_patterns=HUB_FILES,
            ignore_patterns=CODE_FILES,
        )
        shutil.rmtree(dest / ".cache", ignore_errors=True)  # huggingface_hub's download metadata
    except Exception as exc:  # network, auth or missing repository: say which and how to fix
        raise GrowupError(
            f"cannot download checkpoint {location!r}@{revision(study)} ({exc}); check Hub access "
            f"or set {hub.ENV_ROOT} to a local folder laid out like the Hub"
        ) from exc


def fetch(study: Study, run: str, out: str | os.PathLike[str]) -> Path:
    """Fetch `run`'s checkpoint into out/step-<N> (the run's last step, evaluated like a trained
    run's) and out/final; a clone gets out/final only. Returns out/final."""
    source = fetched_source(study, run)
    location = str(source.location)
    plan = planned_run(study, run)
    out = Path(out)
    for old in out.glob("step-*"):  # a schedule changed since the last fetch: no phantom steps
        shutil.rmtree(old)
    where = {"source": location} if source.is_folder else {"hub_id": location}
    lineage = {"run": run, "operation": "released", **where, "study": study.name, **plan.card()}
    first = out / ("final" if clone_of(run) else f"step-{plan.step}")
    with atomic_dir(first) as tmp:
        download(study, source, tmp)
        check_architecture(study, run, tmp, location)
        (tmp / CHECKSUMS).unlink(missing_ok=True)
        add_lineage(tmp, lineage)
        write_checksums(tmp)  # growup.integrity: what was fetched, checked by every reader
    if not clone_of(run):
        with atomic_dir(out / "final") as tmp:
            shutil.copytree(first, tmp, dirs_exist_ok=True)
    log.info(
        "fetched %s (%s) -> %s: %s tokens", run, location, out, f"{read_card(out / 'final')['tokens']:,}"
    )
    return out / "final"


def rope_theta(config: Any) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    return float(params.get("rope_theta") or getattr(config, "rope_theta", 10000.0))


def model_section(config: LlamaConfig, clone_factor: int = 2) -> dict[str, Any]:
    """The `model:` and `tokenizer.vocab_size` keys of a study whose base has this config."""
    return {
        "tokenizer": {"vocab_size": config.vocab_size},
        "model": {
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "num_key_value_heads": config.num_key_value_heads,
            "head_dim": head_dim(config),
            "hidden_act": config.hidden_act,
            "rope_theta": rope_theta(config),
            "rms_norm_eps": config.rms_norm_eps,
            "max_position_embeddings": config.max_position_embeddings,
            "initializer_range": config.initializer_range,
            "tie_word_embeddings": bool(config.tie_word_embeddings),
            "clone_factor": clone_factor,
        },
    }


def source_config(location: str, hub_root: str | None = None, rev: str = "main") -> LlamaConfig:
    """The config of a checkpoint named as `released.models` names one (a folder or a Hub id)."""
    path = Path(location).expanduser()
    if not is_folder_source(location):
        root = hub.hub_root(hub_root)
        if root is not None:
            path = root / location
        else:
            from huggingface_hub import hf_hub_download

            try:
                path = Path(hf_hub_download(location, "config.json", revision=rev)).parent
            except Exception as exc:
                raise GrowupError(f"cannot read config.json of {location!r} from the Hub ({exc})") from exc
    if not (path / "config.json").is_file():
        raise GrowupError(f"{location!r}: no config.json at {str(path)!r}")
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    if not isinstance(config, LlamaConfig):
        raise GrowupError(f"{location!r} is a {config.model_type!r} model, not a Llama-family checkpoint")
    return config
