"""Run a mergekit config in-process through mergekit's Python API: offline, local paths only,
seeded, written atomically, and with HyperLlama known to mergekit as a Llama variant."""

from __future__ import annotations

import json
import logging
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file

import growup.models  # noqa: F401  (registers hyperllama with transformers)
from growup.errors import GrowupError
from growup.integrity import write_checksums
from growup.io import atomic_dir, atomic_write_text
from growup.merge.grid import referenced_paths, to_yaml
from growup.mergekit_registry import register_plugins
from growup.models.checkpoint import verify_checkpoint

log = logging.getLogger(__name__)


def register_hyperllama_architecture() -> None:
    """Tell mergekit that HyperLlamaForCausalLM has Llama's tensors (its own llama definition,
    renamed), so HyperLlama models merge tensor by tensor like any Llama."""
    from mergekit._data import architectures
    from mergekit.architecture.json_definitions import NAME_TO_ARCH, _load_architecture_json

    if "HyperLlamaForCausalLM" in NAME_TO_ARCH:
        return
    llama = json.loads((resources.files(architectures) / "llama.json").read_text())
    llama.update(model_type="hyperllama", architectures=["HyperLlamaForCausalLM"])
    NAME_TO_ARCH["HyperLlamaForCausalLM"] = [_load_architecture_json(json.dumps(llama))]


def resolve_paths(config: dict[str, Any], root: Path) -> dict[str, Any]:
    """`config` with every model path made absolute against `root` (the checkout), checked to be
    an existing local checkpoint: mergekit would read a relative path that is missing as a Hub id."""

    def local(path: str) -> str:
        full = (root / path).resolve()
        if not (full / "config.json").is_file():
            raise GrowupError(f"merge model {path!r} does not exist (no config.json): train or pull it first")
        verify_checkpoint(full)  # growup.integrity: a damaged input is never merged
        return str(full)

    out = dict(config, models=[dict(m, model=local(m["model"])) for m in config["models"]])
    if "base_model" in config:
        out["base_model"] = local(config["base_model"])
    return out


def _unresolve(folder: Path, config: dict[str, Any], resolved: dict[str, Any], name: str) -> None:
    """Write the checkout-relative paths back into the files mergekit writes beside the weights
    (its config copy and model card, titled by the folder it wrote: the temporary one), so a
    merge is the same bytes wherever it was built."""
    pairs = sorted(
        zip(referenced_paths(resolved), referenced_paths(config), strict=True), key=lambda p: -len(p[0])
    )
    for name in ("mergekit_config.yml", "README.md"):
        path = folder / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for absolute, relative in [*pairs, (folder.name, name)]:
                text = text.replace(absolute, relative)
            text = _sorted_lists(text)
            path.write_text(text, encoding="utf-8")


def _sorted_lists(text: str) -> str:
    """Markdown bullet lists in sorted order: mergekit lists the merged models from a set, whose
    order changes with Python's string hashing from one process to the next."""
    lines, out, run = text.split("\n"), [], []
    for line in [*lines, None]:
        if line is not None and line.startswith("* "):
            run.append(line)
            continue
        out.extend(sorted(run))
        run = []
        if line is not None:
            out.append(line)
    return "\n".join(out)


def check_finite(folder: Path, method: Any) -> None:
    """Refuse a merge whose weights hold NaN or inf (mergekit can divide by a zero-norm task
    vector): evaluated, it would only fail later, as log-likelihoods no number can be."""
    for weights in sorted(Path(folder).glob("*.safetensors")):
        tensors = load_file(weights)
        bad = sorted(
            name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()
        )
        if bad:
            raise GrowupError(
                f"merge method {method!r} gave non-finite weights in {len(bad)} tensor(s) of {weights.name}, "
                f"e.g. {bad[:3]}: the merge is not written; try another method or check the models merged"
            )


def run_merge(
    config: dict[str, Any],
    out: str | os.PathLike[str],
    random_seed: int | None = 0,
    yaml_out: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] = ".",
) -> Path:
    """Merge per `config` (model paths relative to `root`) into `out` atomically; also write the
    YAML if `yaml_out` is given. Stored files keep the relative paths."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions
    from mergekit.merge import run_merge as mergekit_run

    resolved = resolve_paths(config, Path(root))
    if yaml_out is not None:
        atomic_write_text(yaml_out, to_yaml(config, random_seed))
    register_hyperllama_architecture()
    register_plugins()  # growup's own methods (growup.merge.methods) in mergekit's registry
    merge_config = MergeConfiguration.model_validate(resolved)
    options = MergeOptions(
        cuda=torch.cuda.is_available(),
        copy_tokenizer=True,
        random_seed=random_seed,
        lazy_unpickle=True,
        quiet=True,
        trust_remote_code=False,
    )
    # offline without touching the process environment: resolve_paths checked that every model
    # is a local folder, and mergekit asks the Hub only for a path that does not exist
    with atomic_dir(out) as tmp:
        mergekit_run(merge_config, str(tmp), options=options)
        check_finite(tmp, config.get("merge_method"))
        _unresolve(tmp, config, resolved, Path(out).name)
        write_checksums(tmp)
    return Path(out)


SEED_IN_HEADER = re.compile(r"^#.*--random-seed (\d+)", re.MULTILINE)


def rerun(
    yaml_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    random_seed: int | None = None,
    root: str | os.PathLike[str] = ".",
) -> Path:
    """Rerun one merge YAML (growup's, or any mergekit config of local checkpoints) into `out`:
    mergekit's Python API with HyperLlama registered by growup, never `trust_remote_code`, so a
    `hyperllama.py` shipped in a checkpoint is not run. The seed defaults to the one the file's
    header states."""
    path = Path(yaml_file)
    if not path.is_file():
        raise GrowupError(f"merge YAML {str(path)!r} does not exist (merges/<setup>/<method>/<subset>.yaml)")
    text = path.read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GrowupError(f"merge YAML {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("models"), list) or not config["models"]:
        raise GrowupError(f"merge YAML {str(path)!r} is not a mergekit config (it needs a list 'models')")
    if random_seed is None and (found := SEED_IN_HEADER.search(text)):
        random_seed = int(found.group(1))
    return run_merge(config, out, random_seed, root=root)
