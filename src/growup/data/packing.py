"""Packing: tokenized documents, each marked by a separator token, concatenated into one token
stream and cut into fixed-length sequences, stored as uint32 memory-mapped shards.

The separator (config key `data.packing.separator`) is either `eos` (EOS after every document,
growup's mini default) or `bos` (BOS before every document: what the authors' preprocessing,
datatrove's DocumentTokenizer with no eos_token and the Llama-3 tokenizer's own post-processor,
wrote; see README "Fidelity").

Layout of data/packed/<dataset>/:
- `shard-NNNNN.bin`: raw little-endian uint32 tokens; every shard but the last holds a whole
  number of sequences, so no sequence spans two shards;
- `doc_starts.npy`: uint64 offset of each document's first token in the stream (for position
  resets at document boundaries);
- `manifest.json`: counts, sha256 of every file, the tokenizer digest, the source and config.
The stream keeps every token: the `tail_tokens` after the last full sequence stay in the last shard.
Epochs and their shuffles are a property of the training schedule, never copies of this data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from tqdm import tqdm

from growup.errors import GrowupError
from growup.integrity import IntegrityError, rebuild_hint, sha256_file, verify_files
from growup.io import atomic_dir, atomic_write_json

FORMAT = "growup-packed-v1"
DTYPE = np.dtype("<u4")
MANIFEST = "manifest.json"
DOC_STARTS = "doc_starts.npy"


def shard_capacity(tokens_per_shard: int, seq_len: int) -> int:
    """Tokens per shard, rounded down to whole sequences (at least one)."""
    return max(seq_len, tokens_per_shard - tokens_per_shard % seq_len)


class ShardWriter:
    """Appends token arrays to numbered shards of a fixed capacity."""

    def __init__(self, folder: Path, capacity: int) -> None:
        self.folder, self.capacity = folder, capacity
        self.sizes: list[int] = []
        self._fh: BinaryIO | None = None

    def _open_next(self) -> None:
        self.close()
        self._fh = (self.folder / f"shard-{len(self.sizes):05d}.bin").open("wb")
        self.sizes.append(0)

    def write(self, tokens: np.ndarray) -> None:
        start = 0
        while start < len(tokens):
            if self._fh is None or self.sizes[-1] == self.capacity:
                self._open_next()
            take = min(self.capacity - self.sizes[-1], len(tokens) - start)
            self._fh.write(tokens[start : start + take].tobytes())
            self.sizes[-1] += take
            start += take

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


SEPARATORS = ("eos", "bos")


def encode_batches(
    tokenizer: Any, batches: Iterable[list[str]], sep_id: int, separator: str = "eos"
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per batch: the token stream with `sep_id` after (eos) or before (bos) each document, and
    each document's length (separator included).

    Encoding is the Rust tokenizer's `encode_batch` (all cores, GIL released); the next batch is
    encoded in the background while this one is flattened and written.
    """
    backend = tokenizer.backend_tokenizer

    def encode(texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in backend.encode_batch(texts, add_special_tokens=False)]

    with ThreadPoolExecutor(max_workers=1) as pool:
        it = iter(batches)
        first = next(it, None)
        pending = pool.submit(encode, first) if first is not None else None
        while pending is not None:
            ids = pending.result()
            following = next(it, None)
            pending = pool.submit(encode, following) if following is not None else None
            if separator == "bos":
                ids = [[sep_id, *doc] for doc in ids]
            else:
                for doc in ids:
                    doc.append(sep_id)
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            yield np.fromiter(chain.from_iterable(ids), dtype=DTYPE, count=int(lengths.sum())), lengths


def pack(
    batches: Iterable[list[str]],
    tokenizer: Any,
    out: str | os.PathLike[str],
    seq_len: int,
    tokens_per_shard: int,
    eos_token: str,
    metadata: dict[str, Any],
    total_docs: int | None = None,
    separator: str = "eos",
    bos_token: str | None = None,
) -> dict[str, Any]:
    """Tokenize, pack and write a dataset atomically; returns its manifest.

    `separator` eos appends `eos_token` to every document; bos puts `bos_token` before each one.
    """
    if separator not in SEPARATORS:
        raise GrowupError(
            f"config key 'data.packing.separator' is {separator!r}; allowed: {list(SEPARATORS)}"
        )
    key, sep_token = (
        ("tokenizer.eos_token", eos_token) if separator == "eos" else ("tokenizer.bos_token", bos_token)
    )
    sep_id = tokenizer.convert_tokens_to_ids(sep_token) if sep_token else None
    if sep_id is None or sep_id == tokenizer.unk_token_id:
        raise GrowupError(f"config key {key!r} = {sep_token!r} is not in the tokenizer's vocabulary")
    if len(tokenizer) > np.iinfo(DTYPE).max:
        raise GrowupError(f"vocabulary of {len(tokenizer)} does not fit uint32")
    capacity = shard_capacity(tokens_per_shard, seq_len)
    with atomic_dir(out) as tmp:
        writer = ShardWriter(tmp, capacity)
        doc_lengths: list[np.ndarray] = []
        bar = tqdm(total=total_docs, desc=f"pack {Path(out).name}", unit="doc")
        try:
            for stream, lengths in encode_batches(tokenizer, batches, sep_id, separator):
                writer.write(stream)
                doc_lengths.append(lengths)
                bar.update(len(lengths))
        finally:
            writer.close()
            bar.close()
        lengths = np.concatenate(doc_lengths) if doc_lengths else np.zeros(0, np.int64)
        doc_starts = (np.cumsum(lengths) - lengths).astype(np.uint64)
        np.save(tmp / DOC_STARTS, doc_starts, allow_pickle=False)
        tokens = int(lengths.sum())
        manifest = {
            "format": FORMAT,
            "dtype": "uint32",
            "sequence_length": seq_len,
            "documents": len(lengths),
            "tokens": tokens,
            "sequences": tokens // seq_len,
            "tail_tokens": tokens % seq_len,
            "shard_capacity": capacity,
            "separator": separator,
            "separator_token": sep_token,
            "separator_token_id": int(sep_id),
            **({"eos_token": eos_token, "eos_token_id": int(sep_id)} if separator == "eos" else {}),
            "shards": [
                {"file": f"shard-{i:05d}.bin", "tokens": n, "sha256": sha256_file(tmp / f"shard-{i:05d}.bin")}
                for i, n in enumerate(writer.sizes)
            ],
            "doc_starts": {"file": DOC_STARTS, "sha256": sha256_file(tmp / DOC_STARTS)},
            **metadata,
        }
        atomic_write_json(tmp / MANIFEST, manifest)
    return manifest


@dataclass
class PackedDataset:
    """Read access to a packed dataset: sequences, their position ids, and integrity checks."""

    path: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = True) -> PackedDataset:
        """Open a packed dataset; `verify` checks every file against the manifest first (sizes
        always; sha256 once per file version, growup.integrity), so a job never reads damaged data."""
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise GrowupError(f"no packed dataset at {str(path)!r}: run `growup data pack` for it first")
        ds = cls(path)
        if ds.manifest.get("format") != FORMAT:
            raise GrowupError(f"{str(path)!r} has format {ds.manifest.get('format')!r}, expected {FORMAT!r}")
        ds.check_sizes()
        if verify:
            ds.verify()
        return ds

    @cached_property
    def manifest(self) -> dict[str, Any]:
        file = self.path / MANIFEST
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
            entries = [*manifest["shards"], manifest["doc_starts"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{file} is damaged ({exc!r}): {rebuild_hint(file)}") from exc
        if not all(isinstance(e, dict) and {"file", "sha256"} <= e.keys() for e in entries):
            raise IntegrityError(f"{file} lists a file without its sha256: {rebuild_hint(file)}")
        return manifest

    @cached_property
    def shards(self) -> list[np.ndarray]:
        return [
            np.memmap(self.path / s["file"], dtype=DTYPE, mode="r", shape=(s["tokens"],))
            if s["tokens"]
            else np.zeros(0, DTYPE)
            for s in self.manifest["shards"]
        ]

    @cached_property
    def doc_starts(self) -> np.ndarray:
        return np.load(self.path / DOC_STARTS, mmap_mode="r")

    @property
    def seq_len(self) -> int:
        return self.manifest["sequence_length"]

    def __len__(self) -> int:
        return self.manifest["sequences"]

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the whole stream, across shards."""
        cap = self.manifest["shard_capacity"]
        parts, pos = [], start
        while pos < stop:
            shard, offset = divmod(pos, cap)
            take = min(stop - pos, cap - offset)
            parts.append(np.asarray(self.shards[shard][offset : offset + take]))
            pos += take
        return np.concatenate(parts) if parts else np.zeros(0, DTYPE)

    def sequence(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"sequence {index} out of range [0, {len(self)})")
        return self.tokens(index * self.seq_len, (index + 1) * self.seq_len)

    def positions(self, index: int) -> np.ndarray:
        """Position ids of a sequence, restarting at 0 at the sequence start and every document start."""
        start = index * self.seq_len
        offsets = np.arange(start, start + self.seq_len, dtype=np.uint64)
        doc = np.searchsorted(self.doc_starts, offsets, side="right") - 1
        origin = np.maximum(np.asarray(self.doc_starts)[doc], np.uint64(start))
        return (offsets - origin).astype(np.int64)

    def check_sizes(self) -> None:
        """Raise if a shard is missing or its size is not the manifest's token count (a truncated
        or extended file), before numpy maps it."""
        for entry in self.manifest["shards"]:
            file = self.path / entry["file"]
            want = entry["tokens"] * DTYPE.itemsize
            size = file.stat().st_size if file.is_file() else None
            if size != want:
                found = "missing" if size is None else f"{size} bytes"
                raise IntegrityError(
                    f"{file} is {found}, {self.path / MANIFEST} records {want} bytes "
                    f"({entry['tokens']} tokens): {rebuild_hint(file)}"
                )

    def verify(self) -> None:
        """Raise if any file differs from the sha256 its manifest records (each file version is
        hashed once; growup.integrity remembers a match)."""
        record = str(self.path / MANIFEST)
        verify_files(
            (self.path / entry["file"], entry["sha256"], record)
            for entry in [*self.manifest["shards"], self.manifest["doc_starts"]]
        )
