"""The one place that turns a Hugging Face Hub id into something loadable: the Hub, or a local
folder laid out like the Hub (a mirror). The loading code is the same either way.

The root comes from the environment variable `GROWUP_HUB_ROOT` if set, else from the config key
`hub.root`; unset (or empty) means the real Hub.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from growup.errors import GrowupError

ENV_ROOT = "GROWUP_HUB_ROOT"


def hub_root(config_root: str | None = None) -> Path | None:
    """The local Hub root in force, or None for the real Hub. The environment wins over config."""
    root = os.environ.get(ENV_ROOT) or config_root
    if not root:
        return None
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        source = f"environment variable {ENV_ROOT}" if os.environ.get(ENV_ROOT) else "config key 'hub.root'"
        raise GrowupError(
            f"{source} points at {str(path)!r}, which is not a folder; fix it or unset it to use the Hub"
        )
    return path


def resolve(repo_id: str, config_root: str | None = None) -> str:
    """`repo_id` itself for the Hub, or its folder under the local root."""
    root = hub_root(config_root)
    return repo_id if root is None else str(root / repo_id)


def unresolve(path: str, config_root: str | None = None) -> str:
    """The Hub id of a path `resolve` returned: what an artifact records, so it does not depend on
    where the local mirror lives."""
    root = hub_root(config_root)
    if root is not None and Path(path).is_relative_to(root):
        return Path(path).relative_to(root).as_posix()
    return path


def load_dataset(
    repo_id: str,
    name: str | None = None,
    split: str = "train",
    config_root: str | None = None,
    revision: str | None = None,
    streaming: bool = False,
) -> Any:
    """`datasets.load_dataset` for a Hub dataset id, through the root in force, with a clear failure.

    `revision` applies to the Hub only (a local mirror has one version).
    """
    import datasets

    path = resolve(repo_id, config_root)
    kwargs: dict[str, Any] = {"name": name, "split": split, "streaming": streaming}
    if path == repo_id and revision:
        kwargs["revision"] = revision
    try:
        return datasets.load_dataset(path, **kwargs)
    except Exception as exc:  # the datasets library raises many types for "not reachable"
        where = f"local root {path!r}" if path != repo_id else "the Hugging Face Hub"
        raise GrowupError(
            f"cannot load dataset {repo_id!r} (config {name!r}, split {split!r}) from {where}: {exc}. "
            f"Set {ENV_ROOT} (or config key 'hub.root') to a local mirror, or unset it and check Hub access."
        ) from exc
