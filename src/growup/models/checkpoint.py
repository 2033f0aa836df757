"""Hugging Face checkpoints as growup writes them: weights, config, tokenizer and a model card whose
YAML front matter records the lineage (parent, operation, step, tokens and FLOPs seen), and
`checksums.sha256` with the digest of every file, which every reader checks (growup.integrity)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml
from transformers import AutoModelForCausalLM, PreTrainedModel

from growup.errors import GrowupError
from growup.integrity import TOKENIZER, verify_folder, write_checksums
from growup.io import atomic_dir

CARD = "README.md"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)
# what a usable checkpoint must hold: label -> alternative file names (growup.integrity.verify_folder)
REQUIRED = {
    "config": ("config.json",),
    "weights": ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"),
}


def write_card(folder: Path, lineage: dict[str, Any]) -> None:
    """A model card with the lineage as YAML front matter (readable by the Hub and by `read_card`)."""
    front = yaml.safe_dump(
        {"library_name": "transformers", "tags": ["growup"], "growup": lineage}, sort_keys=True
    )
    body = "\n".join(f"- **{k}**: {v}" for k, v in lineage.items())
    (folder / CARD).write_text(f"---\n{front}---\n\n# growup checkpoint\n\n{body}\n", encoding="utf-8")


def add_lineage(folder: Path, lineage: dict[str, Any]) -> None:
    """Record growup's lineage in an existing model card (e.g. a Hub model's README), keeping its
    front matter and text; a folder without a card gets growup's own."""
    card = folder / CARD
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        write_card(folder, lineage)  # a card without front matter keeps its text below growup's
        if text:
            card.write_text(card.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")
        return
    front, body = text[4:].split("\n---", 1)
    meta = dict(yaml.safe_load(front) or {})
    meta["growup"] = lineage
    card.write_text(f"---\n{yaml.safe_dump(meta, sort_keys=True)}---{body}", encoding="utf-8")


def read_card(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The lineage recorded in a checkpoint's card ({} when it has none)."""
    card = Path(folder) / CARD
    if not card.is_file():
        return {}
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    front = text[4:].split("\n---", 1)[0]
    return dict((yaml.safe_load(front) or {}).get("growup") or {})


def copy_tokenizer(src: str | os.PathLike[str] | None, dst: Path) -> None:
    """Copy whichever tokenizer files `src` holds into `dst`."""
    if src is None:
        return
    for name in TOKENIZER_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, dst / name)


def save_checkpoint(
    model: PreTrainedModel,
    out: str | os.PathLike[str],
    lineage: dict[str, Any],
    tokenizer_src: str | os.PathLike[str] | None = None,
    state_dict: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (safetensors; `state_dict` when given, e.g. gathered from FSDP shards), its
    tokenizer, card and checksums to `out`, atomically."""
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict)
        copy_tokenizer(tokenizer_src, tmp)
        write_card(tmp, lineage)
        write_checksums(tmp)
    return Path(out)


def verify_checkpoint(path: str | os.PathLike[str], tokenizer: bool = True) -> None:
    """Raise unless `path` is a checkpoint whose files match its checksums and that has config,
    weights and (with `tokenizer`) a tokenizer: every reader calls this before loading."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise GrowupError(f"no checkpoint at {str(path)!r}: expected a folder with config.json and weights")
    verify_folder(path, {**REQUIRED, **(TOKENIZER if tokenizer else {})}, what="checkpoint")


def load_checkpoint(path: str | os.PathLike[str], tokenizer: bool = True, **kwargs: Any) -> PreTrainedModel:
    """Load a verified local checkpoint (plain Llama or HyperLlama) in eval mode; never falls back
    to the Hub. `tokenizer` requires its tokenizer files (evaluation and training need them)."""
    verify_checkpoint(path, tokenizer)
    return AutoModelForCausalLM.from_pretrained(
        str(Path(path).resolve()), local_files_only=True, **kwargs
    ).eval()
