"""Shared test constants and helpers (imported as `helpers`; conftest.py holds fixtures only):
the repository root, the CI switch, random tiny Llama models and tiny study configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest
import torch
import yaml
from transformers import LlamaConfig, LlamaForCausalLM

from growup.models.hyperllama import llama_config, model_class

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str, in_ci: str = "in CI this skip is an error") -> NoReturn:
    """Skip a test whose inputs are missing, except under CI, where a skip would hide them."""
    if IN_CI:
        pytest.fail(f"{reason} ({in_ci})")
    pytest.skip(reason)


def prepare_mini_data(root: Path) -> Path:
    """Run the whole mini data preparation in-process into `root` (real loaders, the mirror)."""
    from growup.data import prepare
    from growup.study import load_config

    study = load_config(REPO / "config" / "config.yaml")
    raw = root / "raw"
    for source in ("english", "code", *study.data.language_codes):
        prepare.fetch(study, source, raw)
    prepare.build_replay(study, raw)
    prepare.budgets(study, raw, root / "unimax.json")
    prepare.make_tokenizer(study, raw, root / "tokenizer")
    for name in study.data.raw_datasets:
        prepare.pack_dataset(study, raw / name, root / "tokenizer", root / "packed" / name)
    return root


def tiny_config(
    heads: int = 6, kv_heads: int = 2, head_dim: int = 8, factor: float = 1, tied: bool = True, **kw
) -> LlamaConfig:
    """A small Llama config with the study's deviations (gelu, rope 10,000) and 3:1 GQA by default."""
    args = dict(
        vocab_size=260,
        hidden_size=heads * head_dim,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        hidden_act="gelu",
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        rms_norm_eps=1e-5,
        max_position_embeddings=128,
        tie_word_embeddings=tied,
    )
    args.update(kw)
    return llama_config(factor=factor, **args)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (norm gains around 1), so no rule can pass by accident."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(1 + 0.3 * noise if name.endswith("norm.weight") else 0.1 * noise)
    return model.eval()


def random_model(seed: int = 0, **kw) -> LlamaForCausalLM:
    config = tiny_config(**kw)
    return randomize(model_class(config)(config), seed)


def released_config_dict(config: LlamaConfig, factor: int) -> dict:
    """config.json as the released liu-nlp 572M checkpoints write it (transformers 4.x keys:
    top-level rope_theta, torch_dtype, auto_map to their remote code, `hyperllama` type and factor)."""
    return {
        "architectures": ["HyperLlamaForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_hyperllama.HyperLlamaConfig",
            "AutoModelForCausalLM": "modeling_hyperllama.HyperLlamaForCausalLM",
        },
        "model_type": "hyperllama",
        "lm_head_normalization_factor": factor,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": config.head_dim,
        "hidden_act": config.hidden_act,
        "hidden_size": config.hidden_size,
        "initializer_range": 1 / 24,
        "intermediate_size": config.intermediate_size,
        "max_position_embeddings": config.max_position_embeddings,
        "mlp_bias": False,
        "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers,
        "num_key_value_heads": config.num_key_value_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.0",
        "use_cache": True,
        "vocab_size": config.vocab_size,
    }


REPO = Path(__file__).resolve().parents[1]


def tiny_raw(**training) -> dict:
    """The mini config with a smaller model and short schedules, for tests."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["model"].update(
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=8,
    )
    raw["training"].update(global_batch=4, micro_batch=4, checkpoint_every={"base": 10, "adaptation": 10})
    raw["training"]["schedules"]["english"] = {"steps": 30, "warmup": 3, "decay_start": 24, "decay_steps": 6}
    raw["training"].update(training)
    return raw


def linked_hub(mirror: Path, root: Path, skip: tuple[str, ...] = ()) -> Path:
    """A Hub root whose organisations link to the mirror's (all but `skip`), with the mirror's
    Software Heritage contents beside it, where growup looks for them for a local mirror."""
    root.mkdir(parents=True)
    for org in mirror.iterdir():
        if org.name not in skip:
            (root / org.name).symlink_to(org, target_is_directory=True)
    contents = mirror.parent / "softwareheritage"
    (root.parent / "softwareheritage").symlink_to(contents, target_is_directory=True)
    return root


def copy_repo(dest: Path) -> Path:
    """The repository's tracked and untracked-but-not-ignored files, copied to dest (no outputs)."""
    import shutil
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def run_tool(cwd: Path, *cmd: str, timeout: int = 3600, env: dict | None = None) -> str:
    """Run a command of the test's environment (snakemake, dvc, git, growup) in cwd; its output.
    `env` adds variables. A non-zero exit fails the test with the tail of the output."""
    import os
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    full = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "growup tests",
        "GIT_AUTHOR_EMAIL": "tests@growup.invalid",
        "GIT_COMMITTER_NAME": "growup tests",
        "GIT_COMMITTER_EMAIL": "tests@growup.invalid",
        **(env or {}),
    }
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, env=full, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def git_repo(path: Path) -> Path:
    """A fresh git repository of path's files, everything committed on branch main."""
    run_tool(path, "git", "init", "-q", "-b", "main")
    run_tool(path, "git", "add", "-A")
    run_tool(path, "git", "commit", "-q", "-m", "growup test copy")
    return path


def planned_resources(output: str, rule: str) -> dict[str, dict[str, int | str]]:
    """A dry run's jobs of `rule` by their wildcards (`run=seed`): each job's resources, ints where
    numeric, read from the job blocks, never from a substring of the whole output."""
    found: dict[str, dict[str, int | str]] = {}
    current: dict | None = None
    for line in [*output.splitlines(), "rule <end>:"]:
        if line.startswith(("rule ", "[")) and current is not None:
            if current["rule"] == rule:
                found[current["wildcards"]] = current["resources"]
            current = None
        if line.startswith("rule "):
            current = {"rule": line[5:].rstrip(":"), "wildcards": "", "resources": {}}
        elif current is not None and line.strip().startswith("wildcards:"):
            current["wildcards"] = line.split(":", 1)[1].strip()
        elif current is not None and line.strip().startswith("resources:"):
            for item in line.split(":", 1)[1].split(", "):
                key, _, value = item.strip().partition("=")
                current["resources"][key] = int(value) if value.isdigit() else value
    return found


def planned(output: str) -> dict[str, int]:
    """Job counts per rule from a dry run's summary table."""
    counts, inside = {}, False
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            inside = True
            continue
        if inside and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
        elif inside and counts and not parts:
            break
    return counts
