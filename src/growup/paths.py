"""Names that become path parts, and written paths, kept inside their root (issue 16).

Every writer that builds a path from a name (a run, model, merge method, subset, step) checks the
name with `path_part` and the result with `under_root`, so `../../x` or a linked folder never
sends a file outside the output root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from growup.errors import PathEscapeError

# A name that becomes one path component (run, model, merge method, subset, language): no
# separator, no leading dot, so never `..`, `/x` or a hidden file.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*(?:\.[A-Za-z0-9_+-]+)*")
# A merge method entry of config key `merging.methods` (a folder of merges/<setup>/<method>/)
METHOD_NAME = re.compile(r"[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*")


def path_part(value: Any, what: str, pattern: re.Pattern[str] = NAME) -> str:
    """`value` if it is safe as one path component, else a `PathEscapeError` naming `what`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PathEscapeError(
            f"{what} {value!r} cannot be a file or folder name; allowed: {pattern.pattern} "
            "(letters, digits, '_', '+', '-', inner '.'; no '/', no '..')"
        )
    return value


def under_root(path: str | os.PathLike[str], root: str | os.PathLike[str], what: str) -> Path:
    """`path` if it resolves (links followed) inside `root`, else a `PathEscapeError`."""
    full, base = Path(path).resolve(), Path(root).resolve()
    if full != base and base not in full.parents:
        raise PathEscapeError(f"{what} {str(path)!r} leaves its root {str(root)!r}; allowed: paths under it")
    return Path(path)


def eval_dir(
    out_root: str | os.PathLike[str], model: str, step: str, out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where one evaluation is written: <out_dir>/<step>, or <out_root>/<model>/<step>; the model
    name and step must be plain names and the folder must stay under its root."""
    path_part(model, "--model (model name in evals/)")
    path_part(str(step), "--step")
    root = Path(out_dir) if out_dir is not None else Path(out_root)
    folder = root / str(step) if out_dir is not None else root / model / str(step)
    return under_root(folder, root, "evaluation folder")
