"""Hugging Face checkpoints as growup writes them: weights, config, tokenizer and a model card whose
YAML front matter records the lineage (parent, operation, step, tokens and FLOPs seen), and
`checksums.sha256` with the digest of every file, which every reader checks (growup.integrity)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from transformers import AutoModelForCausalLM, PreTrainedModel

from growup.integrity import copy_tokenizer, verify_checkpoint, write_checksums
from growup.io import atomic_dir

CARD = "README.md"


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


def load_checkpoint(path: str | os.PathLike[str], tokenizer: bool = True, **kwargs: Any) -> PreTrainedModel:
    """Load a verified local checkpoint (plain Llama or HyperLlama) in eval mode; never falls back
    to the Hub. `tokenizer` requires its tokenizer files (evaluation and training need them)."""
    verify_checkpoint(path, tokenizer)
    return AutoModelForCausalLM.from_pretrained(
        str(Path(path).resolve()), local_files_only=True, **kwargs
    ).eval()
