"""Cost of integrity verification (growup.integrity) on a built study: first and remembered.

    python benchmarks/bench_integrity.py --study /work/baseline

Times, with a fresh verdict cache: (a) verifying every packed dataset against its manifest
(`PackedDataset.open`, what a training job does for the datasets it reads), first (hashing every
byte) and again (verdicts remembered); (b) verifying every checkpoint and merge folder the same
way. A study built before checksums existed has no `checksums.sha256`: the digests are then
computed here in memory (not timed) and verified like the recorded ones. Also times reading
every benchmark file by content (`read_benchmark`, once per evaluation process). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from growup import integrity
from growup.data.packing import MANIFEST, PackedDataset


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def checkpoint_expectations(study: Path) -> list[tuple[Path, str, str]]:
    folders = {p.parent for root in ("checkpoints", "merges") for p in (study / root).rglob("config.json")}
    items = []
    for folder in sorted(folders):
        if (folder / integrity.CHECKSUMS).is_file():
            sums = integrity.read_checksums(folder)
        else:  # built before checksums: what write_checksums would record
            sums = {n: integrity.sha256_file(folder / n) for n in integrity.folder_files(folder)}
        items += [(folder / n, h, str(folder / integrity.CHECKSUMS)) for n, h in sums.items()]
    return items


def size_gb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--study", type=Path, default=Path("."), help="a built study (data/packed, checkpoints)"
    )
    args = parser.parse_args()
    study = args.study.resolve()
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ[integrity.ENV_CACHE] = cache
        datasets = sorted(p.parent for p in (study / "data" / "packed").glob(f"*/{MANIFEST}"))
        files = [
            d / e["file"]
            for d in datasets
            for e in [*PackedDataset(d).manifest["shards"], PackedDataset(d).manifest["doc_starts"]]
        ]
        first = timed(lambda: [PackedDataset.open(d) for d in datasets])
        again = timed(lambda: [PackedDataset.open(d) for d in datasets])
        report["packed"] = {"datasets": len(datasets), "files": len(files), "GB": size_gb(files)}
        report["packed"].update(first_s=first, cached_s=again)

        items = checkpoint_expectations(study)
        first = timed(lambda: integrity.verify_files(items))
        again = timed(lambda: integrity.verify_files(items))
        folders = len({p.parent for p, _, _ in items})
        report["checkpoints"] = {
            "folders": folders,
            "files": len(items),
            "GB": size_gb([p for p, _, _ in items]),
        }
        report["checkpoints"].update(first_s=first, cached_s=again)
    for part in report.values():
        part["first_GB_per_s"] = part["GB"] / part["first_s"]
    from growup.evaluate.harness import read_benchmark

    root = Path(os.environ.get("GROWUP_HUB_ROOT", study / "hub-mirror"))
    if (root / "jumelet" / "multiblimp").is_dir():
        langs = sorted(p.name for p in (root / "jumelet" / "multiblimp").iterdir() if p.is_dir())
        cols = ("sen", "wrong_sen")

        def read() -> list:
            return [read_benchmark("t", str(root / "jumelet/multiblimp"), n, "train", cols) for n in langs]

        blimp = root / "liu-nlp" / "blimp-single-error"
        report["benchmarks"] = {"multiblimp_subsets_s": timed(read)}
        if blimp.is_dir():
            good = ("sentence_good", "sentence_bad")
            report["benchmarks"]["blimp_single_error_s"] = timed(
                lambda: read_benchmark("t", str(blimp), None, "train", good)
            )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
