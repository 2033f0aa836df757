"""Tokenization throughput: the packing pipeline against the tokenizer alone, on the same batches.

    GROWUP_HUB_ROOT=../shared/data/hub-mirror HF_HUB_OFFLINE=1 python benchmarks/bench_packing.py

Prepares the mini raw data and tokenizer in a temporary folder (or uses --data), then times
(a) `encode_batch` on every batch and (b) `growup.data.packing.pack` (encode, EOS, shards,
hashes, manifest) on the same batches, and prints tokens/s/core for both and their ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from transformers import AutoTokenizer

from growup.data import prepare
from growup.data.packing import pack
from growup.data.rawstore import RawDataset
from growup.study import load_config

REPO = Path(__file__).resolve().parents[1]


def corpus(raw: Path, names: list[str], repeat: int, batch_docs: int) -> list[list[str]]:
    texts = [t for name in names for t in RawDataset.open(raw / name).texts()] * repeat
    return [texts[i : i + batch_docs] for i in range(0, len(texts), batch_docs)]


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a prepared data folder (raw/ and tokenizer/)")
    parser.add_argument("--repeat", type=int, default=4, help="repeat the corpus this many times")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    study = load_config(REPO / "config" / "config.yaml")
    tmp = Path(tempfile.mkdtemp(prefix="bench-packing-"))
    data = args.data or tmp
    if args.data is None:
        for source in ("english", "code", *study.data.language_codes):
            prepare.fetch(study, source, data / "raw")
        prepare.make_tokenizer(study, data / "raw", data / "tokenizer")
    tok = AutoTokenizer.from_pretrained(data / "tokenizer")
    batches = corpus(
        data / "raw", ["english-80", "code", *study.data.language_codes], args.repeat, study.data.batch_docs
    )
    backend = tok.backend_tokenizer
    n_tokens = sum(len(e.ids) for b in batches for e in backend.encode_batch(b, add_special_tokens=False))
    cores = len(os.sched_getaffinity(0))

    direct = best_of(args.runs, lambda: [backend.encode_batch(b, add_special_tokens=False) for b in batches])
    piped = best_of(
        args.runs,
        lambda: pack(
            iter(batches),
            tok,
            tmp / "packed",
            study.training.sequence_length,
            study.data.tokens_per_shard,
            study.tokenizer.eos_token,
            {},
        ),
    )
    print(f"corpus: {sum(map(len, batches))} documents, {n_tokens} tokens, {cores} cores")
    print(f"tokenizer alone : {n_tokens / direct / cores:12,.0f} tokens/s/core ({direct:.3f} s)")
    print(f"packing pipeline: {n_tokens / piped / cores:12,.0f} tokens/s/core ({piped:.3f} s)")
    print(f"pipeline / tokenizer: {direct / piped:.1%}")


if __name__ == "__main__":
    main()
