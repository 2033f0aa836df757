"""The typed study config: load YAML, validate against the JSON schema, expose typed sections.

Every config (mini, paper, released) is checked against `schemas/config.schema.yaml` before any
work starts; an invalid value stops the run with an error naming the key, the value and what is
allowed. The Snakefile validates through the same function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from growup.errors import GrowupError

SCHEMA_PATH = Path(str(resources.files("growup") / "schemas" / "config.schema.yaml"))


def load_schema() -> dict[str, Any]:
    """The JSON schema every study config must satisfy."""
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    allowed = {
        k: error.schema[k]
        for k in ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "required", "pattern")
        if isinstance(error.schema, dict) and k in error.schema
    }
    hint = f"; allowed: {allowed}" if allowed else ""
    if error.validator == "additionalProperties":
        names = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return (
            f"config key {key!r}: unknown key(s) {names}; "
            f"allowed keys: {sorted(error.schema.get('properties', {}))}"
        )
    return f"config key {key!r}: value {error.instance!r} is not allowed ({error.message}){hint}"


def validate_config(config: Mapping[str, Any], source: str = "config") -> None:
    """Raise `GrowupError` listing every schema violation of `config`, each with key, value and rule."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise GrowupError(f"invalid study config {source}:\n  {lines}")


@dataclass(frozen=True)
class ModelSpec:
    """The base (1x) architecture and the HyperCloning factor of the study."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    hidden_act: str
    rope_theta: float
    rms_norm_eps: float
    max_position_embeddings: int
    initializer_range: float
    tie_word_embeddings: bool
    clone_factor: int


@dataclass(frozen=True)
class TokenizerSpec:
    vocab_size: int
    hub_id: str | None = None


@dataclass(frozen=True)
class TrainingSpec:
    sequence_length: int


@dataclass(frozen=True)
class Study:
    """A validated study config."""

    name: str
    seed: int
    hub_root: str | None
    tokenizer: TokenizerSpec
    model: ModelSpec
    training: TrainingSpec
    raw: Mapping[str, Any]

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], source: str = "config") -> Study:
        validate_config(config, source)
        model = dict(config["model"])
        if model["num_attention_heads"] % model["num_key_value_heads"]:
            raise GrowupError(
                f"config key 'model.num_attention_heads': value {model['num_attention_heads']} is not a "
                f"multiple of model.num_key_value_heads={model['num_key_value_heads']} "
                "(GQA groups must be whole)"
            )
        if model["hidden_size"] % model["num_attention_heads"]:
            raise GrowupError(
                f"config key 'model.hidden_size': value {model['hidden_size']} is not a multiple of "
                f"model.num_attention_heads={model['num_attention_heads']} (transformers' Llama requires it)"
            )
        return cls(
            name=config["study"],
            seed=config["seed"],
            hub_root=(config.get("hub") or {}).get("root"),
            tokenizer=TokenizerSpec(**config["tokenizer"]),
            model=ModelSpec(**model),
            training=TrainingSpec(**config["training"]),
            raw=config,
        )


def load_config(path: str | os.PathLike[str]) -> Study:
    """Read and validate a study config file."""
    path = Path(path)
    if not path.is_file():
        raise GrowupError(
            f"config file {str(path)!r} does not exist (try config/config.yaml or config/paper.yaml)"
        )
    with path.open(encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise GrowupError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise GrowupError(f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return Study.from_mapping(data, source=str(path))
