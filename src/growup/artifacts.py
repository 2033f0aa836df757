"""The artifact manifest: what `dvc pull` does not carry, and a check before Snakemake trusts a file.

Snakemake decides what to rebuild from modification times (an output older than an input is
stale). DVC restores content, not mtimes: after `dvc pull` into a fresh clone every file is as
new as the moment it was checked out, in no particular order, so Snakemake would rebuild at
random. `record` therefore writes `artifacts.json` next to dvc.lock after a run: every tracked
file in the order it was built, with its size and MD5. `restore`, run after `dvc pull`,
1. stamps every file with a fresh mtime in the recorded build order (10 µs apart, ending now),
   so every output is newer than the checkout and than its own inputs;
2. checks every file against the manifest, and marks the whole artifact (the Snakemake output
   unit, e.g. a run's checkpoint folder) around any file that differs as stale: its files get
   the mtime of 1970, older than any input, so Snakemake rebuilds it and, because it is rebuilt,
   everything downstream; nothing reads it in between. (Deleting it would not do: Snakemake does
   not rebuild a missing intermediate file while the outputs downstream of it are present.)
An artifact wholly absent is left absent (a partial pull, e.g. `dvc pull evals results`):
Snakemake rebuilds it only where something downstream has to be rebuilt. One partly present (an
interrupted pull) is stale like a corrupt one.
The tracked paths are the `outs` of dvc.yaml minus the patterns of `.dvcignore`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from growup.errors import GrowupError, PathEscapeError
from growup.io import atomic_write_json

log = logging.getLogger(__name__)

MANIFEST = "artifacts.json"
VERSION = 1
STEP_NS = 10_000  # 10 µs between consecutive build ranks: far above float mtime resolution
STALE_NS = 1_000_000_000  # 1970-01-01T00:00:01: older than any input, so Snakemake rebuilds
# Tracked files whose bytes may differ between two correct builds, with the reason (gitwildmatch
# pattern -> reason). Recorded in the manifest; `verify` reports them apart. None today: paths
# are checkout-relative or Hub ids, and timings go to logs, so a rebuild anywhere is identical.
VOLATILE: dict[str, str] = {}
# Snakemake output units by path prefix: a file under one of these belongs to the unit named by
# the prefix plus `depth` more components (e.g. checkpoints/<run>); others are their own unit.
UNITS = (
    ("evals/merges", 3),
    ("merges", 3),
    ("evals", 1),
    ("checkpoints", 1),
    ("data/raw", 1),
    ("data/packed", 1),
    ("data/tokenizer", 0),
)


def tracked_outs(repo: Path, dvc_yaml: str = "dvc.yaml") -> list[str]:
    """The `outs` of every stage in dvc.yaml, except the manifest itself."""
    path = repo / dvc_yaml
    if not path.is_file():
        raise GrowupError(f"no {dvc_yaml} in {str(repo)!r}: run from the repository root")
    stages = (yaml.safe_load(path.read_text()) or {}).get("stages") or {}
    outs = []
    for name, stage in stages.items():
        for out in stage.get("outs") or []:
            out = next(iter(out)) if isinstance(out, dict) else out
            if not isinstance(out, str):
                raise GrowupError(f"{dvc_yaml}: stage {name!r} has an out {out!r} that is not a path")
            if out != MANIFEST:
                outs.append(out)
    return outs


def _ignore_spec(repo: Path) -> Any:
    import pathspec

    lines = (repo / ".dvcignore").read_text().splitlines() if (repo / ".dvcignore").is_file() else []
    return pathspec.PathSpec.from_lines("gitwildmatch", lines)


def tracked_files(repo: Path, outs: list[str]) -> Iterator[str]:
    """Every file under the outs (repo-relative, POSIX), minus what .dvcignore excludes."""
    spec = _ignore_spec(repo)
    for out in outs:
        root = repo / out
        if root.is_file():
            candidates = [root]
        elif root.is_dir():
            candidates = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        else:
            continue
        for p in candidates:
            rel = p.relative_to(repo).as_posix()
            if not spec.match_file(rel):
                yield rel


def md5(path: Path) -> str:
    """MD5 of a file's bytes (DVC's hash, so the two agree on what counts as changed)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def _progress(items: list[Any], desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", disable=len(items) < 100)


def record(repo: Path, out: str = MANIFEST, dvc_yaml: str = "dvc.yaml") -> Path:
    """Write the manifest: tracked files in build (mtime) order with size and MD5."""
    files = list(tracked_files(repo, tracked_outs(repo, dvc_yaml)))
    if not files:
        raise GrowupError("no tracked artifacts to record: run the study first (snakemake --cores all)")
    stats = {f: (repo / f).stat() for f in files}
    ordered = sorted(files, key=lambda f: (stats[f].st_mtime_ns, f))
    rank, last, entries = -1, None, []
    for f in _progress(ordered, "hashing"):
        if stats[f].st_mtime_ns != last:
            rank, last = rank + 1, stats[f].st_mtime_ns
        entries.append({"path": f, "rank": rank, "size": stats[f].st_size, "md5": md5(repo / f)})
    target = repo / out
    atomic_write_json(target, {"version": VERSION, "volatile": VOLATILE, "files": entries})
    log.info("recorded %d artifacts (%d build ranks) -> %s", len(entries), rank + 1, target)
    return target


def load_manifest(path: Path) -> list[dict[str, Any]]:
    return _load(path)["files"]


def check_inside(files: list[dict[str, Any]], manifest: Path) -> None:
    """Every manifest path is relative and stays inside the repository (no absolute path, no
    `..`), so restore and verify never touch a file elsewhere; else the first offender, named.
    Checked on the path's text: a folder of the repository may be a link to a larger disk."""
    for entry in files:
        path = entry["path"]
        pure = PurePosixPath(path) if isinstance(path, str) else None
        escapes = pure is None or pure.is_absolute() or ".." in pure.parts or not path
        if escapes or "\\" in path or ":" in path:
            raise PathEscapeError(
                f"{str(manifest)!r}: entry path {path!r} leaves the repository; allowed: relative paths "
                "inside it, as `growup artifacts record` writes them (restore the manifest from git)"
            )


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise GrowupError(
            f"no artifact manifest at {str(path)!r}: it is written by `growup artifacts record` "
            "(the last command of dvc.yaml's stage) and committed with dvc.lock"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GrowupError(
            f"artifact manifest {str(path)!r} is not valid JSON ({exc}): restore it from git"
        ) from exc
    files = data.get("files") if isinstance(data, dict) else None
    keys = {"path", "rank", "size", "md5"}
    if (
        data.get("version") != VERSION
        or not isinstance(files, list)
        or not all(keys <= set(f) for f in files)
    ):
        raise GrowupError(
            f"{str(path)!r} is not a version-{VERSION} growup artifact manifest (entries need {sorted(keys)})"
        )
    return data


def unit_of(path: str) -> str:
    """The Snakemake output a file belongs to (what must be rebuilt when the file is bad)."""
    parts = path.split("/")
    for prefix, depth in UNITS:
        head = prefix.split("/")
        if parts[: len(head)] == head and len(parts) > len(head) + depth:
            return "/".join(parts[: len(head) + depth])
    return path


def check(repo: Path, entry: dict[str, Any], verify: bool) -> str | None:
    """Why a manifest entry cannot be trusted (None when it can)."""
    p = repo / entry["path"]
    if not p.is_file():
        return "missing"
    if p.stat().st_size != entry["size"]:
        return "size differs"
    if verify and md5(p) != entry["md5"]:
        return "content differs (MD5)"
    return None


def restore(repo: Path, manifest: str = MANIFEST, verify: bool = True) -> dict[str, str]:
    """Stamp every present artifact in build order and mark the units of files that differ from
    the manifest stale. Returns {stale unit: reason}."""
    entries = load_manifest(repo / manifest)
    check_inside(entries, repo / manifest)
    bad: dict[str, str] = {}
    missing: dict[str, str] = {}
    present: set[str] = set()
    for entry in _progress(entries, "verifying" if verify else "checking"):
        unit, reason = unit_of(entry["path"]), check(repo, entry, verify)
        if reason == "missing":
            missing.setdefault(unit, f"{entry['path']}: missing")
        elif reason:
            bad.setdefault(unit, f"{entry['path']}: {reason}")
        else:
            present.add(unit)
    # a unit partly there (an interrupted pull) is as untrusted as a corrupt one; one wholly
    # absent was not pulled
    bad.update({unit: reason for unit, reason in missing.items() if unit in present and unit not in bad})
    absent = sum(1 for e in entries if unit_of(e["path"]) in missing and unit_of(e["path"]) not in bad)
    top = max((e["rank"] for e in entries), default=0)
    now = time.time_ns()
    for e in entries:
        path = repo / e["path"]
        if path.is_file():
            stamp = STALE_NS if unit_of(e["path"]) in bad else now - (top - e["rank"]) * STEP_NS
            os.utime(path, ns=(stamp, stamp))
    for unit, reason in sorted(bad.items()):
        log.warning("%s is stale (%s): Snakemake will rebuild it and what depends on it", unit, reason)
    log.info(
        "stamped %d artifacts in build order; %d marked stale; %d absent (not pulled)",
        len(entries) - absent,
        len(bad),
        absent,
    )
    return bad


def verify(repo: Path, manifest: str = MANIFEST) -> dict[str, dict[str, list[str]]]:
    """Compare every tracked file with the manifest by MD5: {output: {identical, differing,
    missing, volatile, unrecorded: [paths]}}, output as named in dvc.yaml. A rebuild anywhere
    should give no differing, missing or unrecorded file (volatile ones are declared so)."""
    data = _load(repo / manifest)
    check_inside(data["files"], repo / manifest)
    volatile = _volatile_spec(data.get("volatile") or {})
    outs = tracked_outs(repo)
    report: dict[str, dict[str, list[str]]] = {
        out: {k: [] for k in ("identical", "differing", "missing", "volatile", "unrecorded")} for out in outs
    }
    recorded = set()
    for entry in _progress(data["files"], "verifying"):
        path = entry["path"]
        recorded.add(path)
        reason = check(repo, entry, verify=True)
        kind = "identical" if reason is None else "missing" if reason == "missing" else "differing"
        if kind == "differing" and volatile.match_file(path):
            kind = "volatile"
        report[_out_of(path, outs)][kind].append(path)
    for path in tracked_files(repo, outs):
        if path not in recorded:
            report[_out_of(path, outs)]["unrecorded"].append(path)
    return report


def _volatile_spec(patterns: dict[str, str]) -> Any:
    import pathspec

    return pathspec.PathSpec.from_lines("gitwildmatch", list(patterns))


def _out_of(path: str, outs: list[str]) -> str:
    for out in outs:
        if path == out or path.startswith(out.rstrip("/") + "/"):
            return out
    raise GrowupError(f"manifest path {path!r} is under none of dvc.yaml's outs {outs}")


def format_verify(report: dict[str, dict[str, list[str]]], show: int = 10) -> str:
    """The comparison as a table by output, then the first differing, missing and unrecorded files."""
    kinds = ("identical", "differing", "missing", "volatile", "unrecorded")
    lines = [f"{'output':<20}" + "".join(f"{k:>12}" for k in kinds)]
    for out, groups in report.items():
        lines.append(f"{out:<20}" + "".join(f"{len(groups[k]):>12}" for k in kinds))
    totals = {k: sum(len(g[k]) for g in report.values()) for k in kinds}
    lines.append(f"{'all':<20}" + "".join(f"{totals[k]:>12}" for k in kinds))
    for kind in ("differing", "missing", "unrecorded"):
        paths = [p for g in report.values() for p in g[kind]]
        for p in paths[:show]:
            lines.append(f"{kind}: {p}")
        if len(paths) > show:
            lines.append(f"{kind}: ... and {len(paths) - show} more")
    return "\n".join(lines)


def record_command(args: argparse.Namespace) -> None:
    """`growup artifacts record`."""
    record(Path(args.repo), args.manifest)


def verify_command(args: argparse.Namespace) -> None:
    """`growup artifacts verify`: the report, and an error when any tracked file is off."""
    report = verify(Path(args.repo), args.manifest)
    print(format_verify(report))
    bad = sum(len(g[k]) for g in report.values() for k in ("differing", "missing", "unrecorded"))
    if bad:
        raise GrowupError(f"{bad} tracked files differ from {args.manifest}, are missing or unrecorded")


def restore_command(args: argparse.Namespace) -> None:
    """`growup artifacts restore`: stamp what `dvc pull` brought, mark what differs stale."""
    stale = restore(Path(args.repo), args.manifest, verify=not args.no_verify)
    for unit, reason in sorted(stale.items()):
        print(f"stale {unit}: {reason}; snakemake rebuilds it")
