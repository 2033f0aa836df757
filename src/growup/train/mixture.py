"""The data schedule of a run: phases of portions, read as one deterministic stream of sequences.

A portion is (dataset, fraction of its sequences, seed): one epoch (or part of one) in its own
random order. A phase shuffles the union of its portions with the phase seed, so datasets mix in
proportion to their sample counts. Phases follow one another. Epochs are therefore orders of
indices into the packed shards, never copies of the data. The stream is a pure function of the
schedule and the dataset sizes, so step k always reads the same sequences (resumable, identical).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from growup.data.packing import PackedDataset
from growup.errors import GrowupError
from growup.train.runs import Phase, Portion

log = logging.getLogger(__name__)


def portion_indices(size: int, portion: Portion) -> np.ndarray:
    """The sequences a portion reads: the first round(fraction · size) of a seeded permutation."""
    count = round(portion.fraction * size)
    return np.random.default_rng(portion.seed).permutation(size)[:count]


def stream_order(
    phases: Sequence[Phase], sizes: Mapping[str, int]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(dataset id, sequence index) of every sequence of the schedule, in reading order."""
    names = sorted({p.dataset for phase in phases for p in phase.portions})
    missing = [n for n in names if n not in sizes]
    if missing:
        raise GrowupError(f"the data schedule needs packed datasets {missing} that are not available")
    dataset_ids, seq_ids = [], []
    for phase in phases:
        parts = [portion_indices(sizes[p.dataset], p) for p in phase.portions]
        ids = np.concatenate(
            [
                np.full(len(ix), names.index(p.dataset), np.int16)
                for p, ix in zip(phase.portions, parts, strict=True)
            ]
        )
        seqs = np.concatenate(parts).astype(np.int64)
        order = np.random.default_rng(phase.seed).permutation(len(seqs))
        dataset_ids.append(ids[order])
        seq_ids.append(seqs[order])
    return np.concatenate(dataset_ids), np.concatenate(seq_ids), names


class Mixture:
    """Batches of (input ids, position ids) for any range of the stream; wraps around if needed.

    Position ids restart at every document start (`reset_positions`, growup's default) or run
    0..L-1 over the whole packed row, as the authors' nanotron Llama runs did (config key
    `training.reset_positions`).
    """

    def __init__(
        self, phases: Sequence[Phase], datasets: Mapping[str, PackedDataset], reset_positions: bool = True
    ) -> None:
        self.reset_positions = reset_positions
        sizes = {name: len(ds) for name, ds in datasets.items()}
        self.dataset_ids, self.seq_ids, names = stream_order(phases, sizes)
        if len(self.seq_ids) == 0:
            raise GrowupError("the data schedule is empty: its datasets have no full sequence")
        self.datasets = [datasets[n] for n in names]
        self.names = names

    def __len__(self) -> int:
        return len(self.seq_ids)

    def counts(self) -> dict[str, int]:
        """Sequences per dataset in one pass of the stream (the mixing proportions)."""
        ids, n = np.unique(self.dataset_ids, return_counts=True)
        return {self.names[i]: int(c) for i, c in zip(ids, n, strict=True)}

    def batch(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [(start + i) % len(self) for i in range(count)]
        tokens = [self.datasets[self.dataset_ids[r]].sequence(int(self.seq_ids[r])) for r in rows]
        if self.reset_positions:
            positions = [self.datasets[self.dataset_ids[r]].positions(int(self.seq_ids[r])) for r in rows]
        else:
            positions = [np.arange(self.datasets[0].seq_len, dtype=np.int64)] * len(rows)
        return (
            torch.from_numpy(np.stack(tokens).astype(np.int64)),
            torch.from_numpy(np.stack(positions)),
        )
