"""Raw datasets on disk (data/raw/<name>/): documents as parquet plus a JSON record of their source.

A raw dataset is the boundary between fetching (Hub, mirror, Software Heritage) and everything
after it (tokenizer training, replay sampling, packing), so those steps never touch the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from growup.errors import GrowupError
from growup.io import atomic_dir, atomic_write_json

DATA_FILE = "data.parquet"
SOURCE_FILE = "source.json"


@dataclass(frozen=True)
class RawDataset:
    """A folder holding `data.parquet` (columns id, text) and `source.json`."""

    path: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RawDataset:
        path = Path(path)
        if not (path / DATA_FILE).is_file() or not (path / SOURCE_FILE).is_file():
            raise GrowupError(f"no raw dataset at {str(path)!r}: run `growup data fetch` for it first")
        return cls(path)

    @property
    def source(self) -> dict[str, Any]:
        return json.loads((self.path / SOURCE_FILE).read_text(encoding="utf-8"))

    @property
    def name(self) -> str:
        return self.path.name

    def __len__(self) -> int:
        return pq.ParquetFile(self.path / DATA_FILE).metadata.num_rows

    def batches(self, size: int) -> Iterator[list[str]]:
        """The texts in order, `size` documents at a time."""
        for batch in pq.ParquetFile(self.path / DATA_FILE).iter_batches(batch_size=size, columns=["text"]):
            yield batch.column(0).to_pylist()

    def ids(self) -> list[str]:
        return pq.read_table(self.path / DATA_FILE, columns=["id"]).column(0).to_pylist()

    def texts(self) -> list[str]:
        return pq.read_table(self.path / DATA_FILE, columns=["text"]).column(0).to_pylist()


def write_raw(out: str | os.PathLike[str], ids: Sequence[str], texts: Sequence[str], source: dict[str, Any]) -> Path:
    """Write a raw dataset atomically; `source` gains document and character counts."""
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
    table = pa.table({"id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())})
    record = {**source, "documents": len(texts), "characters": sum(len(t) for t in texts)}
    with atomic_dir(out) as tmp:
        pq.write_table(table, tmp / DATA_FILE, compression="zstd")
        atomic_write_json(tmp / SOURCE_FILE, record)
    return Path(out)
