"""The `growup data` steps, each from config to files on disk (called by the workflow's rules)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from growup.config import Study
from growup.data import replay, sources
from growup.data.packing import pack
from growup.data.rawstore import RawDataset, write_raw
from growup.data.tokenizer import (
    base_tokenizer,
    load_hub_tokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_digest,
    train_bpe,
)
from growup.data.unimax import epoch_stages, unimax
from growup.errors import GrowupError
from growup.io import atomic_write_json
from growup.study import CODE, ENGLISH_BASE, replay_dataset

log = logging.getLogger(__name__)

FETCHABLE = ("english", "code")


def fetch(study: Study, source: str, raw_dir: str | os.PathLike[str]) -> list[Path]:
    """Fetch one source into data/raw: `english` (both split halves), `code`, or a language code."""
    raw_dir = Path(raw_dir)
    if source == "english":
        parts = sources.english_split(study)
        return [write_raw(raw_dir / name, *part) for name, part in parts.items()]
    if source == "code":
        return [write_raw(raw_dir / CODE, *sources.code_documents(study))]
    if source in study.data.language_table:
        return [write_raw(raw_dir / source, *sources.language_documents(study, study.data.language(source)))]
    allowed = [*FETCHABLE, *study.data.language_codes]
    raise GrowupError(f"unknown source {source!r}; allowed: {allowed}")


def build_replay(study: Study, raw_dir: str | os.PathLike[str]) -> list[Path]:
    """Every language's replay set from english-80 and code, scaled by document counts."""
    raw_dir = Path(raw_dir)
    english, code = RawDataset.open(raw_dir / ENGLISH_BASE), RawDataset.open(raw_dir / CODE)
    counts = {lang: len(RawDataset.open(raw_dir / lang)) for lang in study.data.language_codes}
    fractions = replay.replay_fractions(counts, study.data.replay_fractions)
    eng_ids, eng_texts = english.ids(), english.texts()
    code_ids, code_texts = code.ids(), code.texts()
    seed, cfg = study.data.replay_seed, study.data
    written = []
    for lang, scale in fractions.items():
        e_idx = replay.replay_indices(len(eng_ids), cfg.replay_english_fraction, scale, seed)
        c_idx = replay.replay_indices(len(code_ids), cfg.replay_code_fraction, scale, seed + 1)
        source = {
            "replay_for": lang,
            "scale": scale,
            "document_counts": counts,
            "english": {"from": ENGLISH_BASE, "fraction": cfg.replay_english_fraction * scale, "docs": len(e_idx)},
            "code": {"from": CODE, "fraction": cfg.replay_code_fraction * scale, "docs": len(c_idx)},
            "seed": seed,
        }
        ids = replay.select(eng_ids, e_idx) + replay.select(code_ids, c_idx)
        texts = replay.select(eng_texts, e_idx) + replay.select(code_texts, c_idx)
        if not texts:
            raise GrowupError(
                f"replay set for {lang!r} is empty ({len(eng_ids)} English and {len(code_ids)} code documents × "
                f"fractions × {scale:.3f}): raise config keys 'data.replay.english_fraction'/'code_fraction'"
            )
        written.append(write_raw(raw_dir / replay_dataset(lang), ids, texts, source))
    return written


def budgets(study: Study, raw_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Epochs and epoch stages per language, written as JSON: UniMax character budgets on the data
    at hand, or, for a language in `data.fixed_schedule`, the epochs the authors' configs fix."""
    chars = {lang: RawDataset.open(Path(raw_dir) / lang).source["characters"] for lang in study.data.language_codes}
    result = budget_table(study, chars)
    atomic_write_json(out, result)
    return result


def budget_table(study: Study, chars: dict[str, int]) -> dict[str, Any]:
    """The content of data/unimax.json from each language's character count (see `budgets`)."""
    alloc = unimax(chars, study.data.char_budget, study.data.max_epochs)
    fixed = study.data.fixed_schedule
    languages = {}
    for lang, a in alloc.items():
        entry = {"characters": a.characters, "budget": a.budget, "epochs": a.epochs, "source": "unimax"}
        if lang in fixed:
            full, partial = fixed_epochs(fixed[lang], lang)
            entry.update(epochs=full + partial, unimax_epochs=a.epochs, source="data.fixed_schedule")
            stages = [vars(s) for s in epoch_stages(full + partial, study.data.epoch_seeds)]
            if partial:  # exact: samples of the last stage / samples of an epoch, language and replay
                samples, last = fixed[lang]["samples"], fixed[lang]["partial"]
                stages[-1].update(fraction=partial, replay_fraction=sum(last[1:]) / sum(samples[1:]))
        else:
            stages = [vars(s) for s in epoch_stages(a.epochs, study.data.epoch_seeds)]
        languages[lang] = {**entry, "stages": stages}
    return {"char_budget": study.data.char_budget, "max_epochs": study.data.max_epochs, "languages": languages}


def fixed_epochs(entry: dict[str, Any], lang: str) -> tuple[int, float]:
    """(full epochs, fraction of a final partial epoch) of a `data.fixed_schedule` entry; the
    fraction is the language's samples in that stage over its samples in a full epoch."""
    full, partial = int(entry["epochs"]), entry.get("partial")
    fraction = partial[0] / entry["samples"][0] if partial else 0.0
    if not 0 <= fraction < 1 or full + fraction <= 0:
        raise GrowupError(
            f"config key 'data.fixed_schedule.{lang}': epochs {full} and partial {partial} of samples "
            f"{entry['samples']} must give a positive number of epochs with a partial stage below one epoch"
        )
    return full, fraction


def make_tokenizer(
    study: Study,
    raw_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
) -> Path:
    """The study's tokenizer: the fetched base checkpoint's own (`checkpoint`, copied byte for
    byte), else the Hub tokenizer (paper), else the mini BPE tokenizer trained on `tokenizer.train_on`."""
    spec = study.tokenizer
    if checkpoint is not None:
        return base_tokenizer(checkpoint, spec.vocab_size, out)
    if spec.hub_id:
        return save_tokenizer(load_hub_tokenizer(spec, study.hub_root), out)
    if not spec.train_on:
        raise GrowupError("config key 'tokenizer.train_on' is empty: name the raw datasets to train on")
    datasets = [RawDataset.open(Path(raw_dir) / name) for name in spec.train_on]
    texts = (text for ds in datasets for batch in ds.batches(1024) for text in batch)
    return save_tokenizer(train_bpe(texts, spec), out)


def pack_dataset(
    study: Study, raw: str | os.PathLike[str], tokenizer_dir: str | os.PathLike[str], out: str | os.PathLike[str]
) -> dict[str, Any]:
    """Tokenize and pack one raw dataset into data/packed/<name>."""
    ds = RawDataset.open(raw)
    tokenizer = load_tokenizer(tokenizer_dir)
    metadata = {
        "dataset": ds.name,
        "source": ds.source,
        "tokenizer_sha256": tokenizer_digest(tokenizer_dir),
        "config": {
            "study": study.name,
            "sequence_length": study.training.sequence_length,
            "tokens_per_shard": study.data.tokens_per_shard,
            "batch_docs": study.data.batch_docs,
            "eos_token": study.tokenizer.eos_token,
            "separator": packing_separator(study),
        },
    }
    return pack(
        ds.batches(study.data.batch_docs),
        tokenizer,
        out,
        seq_len=study.training.sequence_length,
        tokens_per_shard=study.data.tokens_per_shard,
        eos_token=study.tokenizer.eos_token,
        metadata=metadata,
        total_docs=len(ds),
        separator=packing_separator(study),
        bos_token=study.tokenizer.bos_token,
    )


def packing_separator(study: Study) -> str:
    """Config key `data.packing.separator`: eos after (default) or bos before every document."""
    return study.data.separator
