"""Integrity of what a job reads: every artifact growup writes records the sha256 of its files, and
every job that reads one checks them first, so a damaged file stops the job with a message that
names it and its rebuild, instead of silently changing a result.

- Packed datasets record their hashes in `manifest.json` (growup.data.packing).
- Checkpoints, merges and training states carry `checksums.sha256` (the `sha256sum` format, so
  `sha256sum -c checksums.sha256` checks one by hand).

Hashing hundreds of GB for every job would cost minutes, so a verdict is remembered: a file that
matched is not hashed again while its identity and stamps (device, inode, size, mtime and ctime in
ns, and the expected digest) stay the same. Any write to a file changes its ctime, which the
owner cannot set back, so a later edit is always hashed again. The verdicts are empty files in
`$GROWUP_VERIFY_CACHE` (default `~/.cache/growup/verified`; `off` keeps none), one per file, so
concurrent jobs never contend for one index.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from growup.errors import GrowupError
from growup.io import atomic_write_text

log = logging.getLogger(__name__)

CHECKSUMS = "checksums.sha256"
ENV_CACHE = "GROWUP_VERIFY_CACHE"
WEIGHTS = re.compile(r".*\.(safetensors|bin|pt|pth|ckpt)$")
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class IntegrityError(GrowupError):
    """A file differs from the digest recorded when it was written, or the record is missing."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_dir() -> Path | None:
    """Where verdicts are kept, or None when caching is off."""
    value = os.environ.get(ENV_CACHE)
    if value is not None and value.strip().lower() in ("", "off", "0", "none"):
        return None
    if value:
        return Path(value).expanduser()
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no home directory (some containers): hash every time
        return None
    return Path(base) / "growup" / "verified"


def _stamp(path: Path, expected: str) -> str:
    st = path.stat()
    ident = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, expected)
    return hashlib.sha256("\0".join(map(str, ident)).encode()).hexdigest()


def rebuild_hint(path: str | os.PathLike[str]) -> str:
    """How to rebuild the artifact a file belongs to: its Snakemake target, found from the path."""
    parts = Path(os.path.abspath(path)).parts
    for i in range(len(parts) - 1, -1, -1):
        head, rest = parts[i], parts[i + 1 :]
        if head == "packed" and i and parts[i - 1] == "data" and rest:
            target = f"data/packed/{rest[0]}"
        elif head == "tokenizer" and i and parts[i - 1] == "data":
            target = "data/tokenizer"
        elif head == "merges" and len(rest) >= 3:
            target = "/".join(("merges", *rest[:3]))
        elif head == "state" and len(rest) >= 2:
            return (
                f"delete {os.path.join(*parts[:-1])!r} (the run restarts from its --init), then "
                f"rerun `snakemake --cores all checkpoints/{rest[0]}`"
            )
        elif head == "checkpoints" and rest and i + 1 < len(parts) - 1:
            target = f"checkpoints/{rest[0]}"
        else:
            continue
        return f"rebuild it with `snakemake --cores all --forcerun {target}`"
    return "rebuild or re-download it"


def verify_file(path: str | os.PathLike[str], expected: str, record: str) -> None:
    """Raise IntegrityError unless `path` hashes to `expected` (as `record` states); a match is
    remembered until the file changes."""
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"{path} is missing ({record} lists it): {rebuild_hint(path)}")
    cache = cache_dir()
    key = _stamp(path, expected)
    if cache is not None and (cache / key[:2] / key).exists():
        return
    actual = sha256_file(path)
    if actual != expected:
        raise IntegrityError(
            f"{path} is corrupt: sha256 {actual[:12]}…, {record} records {expected[:12]}…; "
            f"{rebuild_hint(path)}"
        )
    if cache is not None and _stamp(path, expected) == key:  # unchanged while it was hashed
        try:
            (cache / key[:2]).mkdir(parents=True, exist_ok=True)
            (cache / key[:2] / key).touch()
        except OSError as exc:  # a read-only home: verify every time, still correct
            log.debug("cannot record verdict for %s: %s", path, exc)


def verify_files(expected: Iterable[tuple[Path, str, str]], threads: int | None = None) -> None:
    """verify_file over (path, sha256, record) triples, in parallel (hashlib releases the GIL)."""
    items = list(expected)
    workers = max(1, min(len(items), threads or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(verify_file, *item) for item in items]:
            future.result()


def folder_files(folder: Path) -> list[str]:
    """Every regular file under `folder` (relative POSIX paths), the checksums file excluded."""
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS
    )


def write_checksums(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Record the sha256 of every file in `folder` in `folder/checksums.sha256`; returns them."""
    folder = Path(folder)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        names = folder_files(folder)
        sums = dict(zip(names, pool.map(lambda n: sha256_file(folder / n), names), strict=True))
    atomic_write_text(folder / CHECKSUMS, "".join(f"{h}  {n}\n" for n, h in sums.items()))
    return sums


def read_checksums(folder: str | os.PathLike[str], what: str = "checkpoint") -> dict[str, str]:
    """The recorded digests of a folder; an IntegrityError when it has none or it is unreadable."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.is_file():
        hint = rebuild_hint(folder / CHECKSUMS)
        if hint == rebuild_hint("/"):  # not a study artifact: a folder from elsewhere the user may trust
            hint += f" (or record the files you trust: cd {str(folder)!r} && sha256sum * > {CHECKSUMS})"
        raise IntegrityError(
            f"{what} {str(folder)!r} has no {CHECKSUMS} (written by growup with every {what}), so its "
            f"files cannot be checked: {hint}"
        )
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        match = _LINE.match(line)
        if not match or ".." in Path(match.group(2)).parts or Path(match.group(2)).is_absolute():
            raise IntegrityError(f"{path} line {number} is not '<sha256>  <file>': {rebuild_hint(path)}")
        sums[match.group(2)] = match.group(1)
    return sums


def verify_folder(
    folder: str | os.PathLike[str],
    required: Mapping[str, Iterable[str]] | None = None,
    what: str = "checkpoint",
) -> dict[str, str]:
    """Check every file `checksums.sha256` lists; every weights file must be listed, and for each
    entry of `required` (a label and alternative names) one of the names must be. Returns the sums."""
    folder = Path(folder)
    sums = read_checksums(folder, what)
    record = str(folder / CHECKSUMS)
    for label, names in (required or {}).items():
        names = tuple(names)
        if not any(n in sums for n in names):
            raise IntegrityError(
                f"{what} {str(folder)!r} has no {label} ({' or '.join(names)} not among its files): "
                f"{rebuild_hint(folder / names[0])}"
            )
    unlisted = [n for n in folder_files(folder) if WEIGHTS.match(n) and n not in sums]
    if unlisted:
        raise IntegrityError(
            f"{folder / unlisted[0]} is not in {record} (added after the {what} was written): "
            f"{rebuild_hint(folder / unlisted[0])}"
        )
    verify_files((folder / name, digest, record) for name, digest in sums.items())
    return sums


# what a usable tokenizer folder must hold (label -> alternative file names), for verify_folder
TOKENIZER = {"tokenizer": ("tokenizer.json", "tokenizer.model")}


def verify_tokenizer(folder: str | os.PathLike[str]) -> Path:
    """The tokenizer folder (`data/tokenizer`), after checking its files against the hashes
    recorded when it was written: packing and model init read it, and a damaged one would
    silently change every token."""
    verify_folder(folder, TOKENIZER, what="tokenizer")
    return Path(folder)


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


def copy_tokenizer(src: str | os.PathLike[str] | None, dst: Path) -> None:
    """Copy whichever tokenizer files `src` holds into `dst`."""
    if src is None:
        return
    for name in TOKENIZER_FILES:
        if (Path(src) / name).is_file():
            shutil.copy2(Path(src) / name, dst / name)


def verify_checkpoint(path: str | os.PathLike[str], tokenizer: bool = True) -> None:
    """Raise unless `path` is a checkpoint whose files match its checksums and that has config,
    weights and (with `tokenizer`) a tokenizer: every reader calls this before loading."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise GrowupError(f"no checkpoint at {str(path)!r}: expected a folder with config.json and weights")
    verify_folder(path, {**REQUIRED, **(TOKENIZER if tokenizer else {})}, what="checkpoint")
