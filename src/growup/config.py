"""The typed study config: load YAML, validate against the JSON schema, expose typed sections.

Every config (mini, paper, released) is checked against `schemas/config.schema.yaml` before any
work starts; an invalid value stops the run with an error naming the key, the value and what is
allowed. The Snakefile validates through the same function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
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


def schema_default(section: str, key: str) -> Any:
    """The `default` the schema states for `section.key` (a key's default is written there once)."""
    return load_schema()["properties"][section]["properties"][key]["default"]


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
    revision: str = "main"
    eos_token: str = "<|end_of_text|>"
    bos_token: str = "<|begin_of_text|>"
    train_on: tuple[str, ...] = ()
    min_frequency: int = 2


@dataclass(frozen=True)
class SourceSpec:
    """One Hub dataset (id, config, revision) and how many documents to read (None = all)."""

    hub_id: str
    config: str | None
    revision: str = "main"
    max_docs: int | None = None
    split: str = "train"


@dataclass(frozen=True)
class LanguageSpec:
    code: str
    subset: str
    shuffle: bool
    multiblimp: str


@dataclass(frozen=True)
class DataSpec:
    english: SourceSpec
    english_test_size: float
    english_split_seed: int
    english_released_split: Mapping[str, Any] | None
    code: SourceSpec
    softwareheritage_url: str | None
    fineweb2: SourceSpec
    languages: tuple[LanguageSpec, ...]
    shuffle_seed: int
    char_budget: float
    max_epochs: float
    epoch_seeds: tuple[int, ...]
    replay_english_fraction: float
    replay_code_fraction: float
    replay_seed: int
    replay_fractions: Mapping[str, float] | None
    tokens_per_shard: int
    batch_docs: int

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DataSpec:
        eng, code, fw2 = data["english"], data["code"], data["fineweb2"]
        return cls(
            english=SourceSpec(eng["hub_id"], eng["config"], eng["revision"], eng.get("max_docs")),
            english_test_size=eng["test_size"],
            english_split_seed=eng["split_seed"],
            english_released_split=eng.get("released_split"),
            code=SourceSpec(code["hub_id"], code["config"], code["revision"], code.get("max_docs")),
            softwareheritage_url=code.get("softwareheritage_url"),
            fineweb2=SourceSpec(fw2["hub_id"], None, fw2["revision"], fw2.get("max_docs")),
            languages=tuple(LanguageSpec(code=k, **v) for k, v in data["languages"].items()),
            shuffle_seed=data["shuffle_seed"],
            char_budget=float(data["unimax"]["char_budget"]),
            max_epochs=float(data["unimax"]["max_epochs"]),
            epoch_seeds=tuple(data["epoch_seeds"]),
            replay_english_fraction=data["replay"]["english_fraction"],
            replay_code_fraction=data["replay"]["code_fraction"],
            replay_seed=data["replay"]["seed"],
            replay_fractions=data["replay"].get("fractions"),
            tokens_per_shard=data["packing"]["tokens_per_shard"],
            batch_docs=data["packing"]["batch_docs"],
        )

    @property
    def language_codes(self) -> tuple[str, ...]:
        return tuple(lang.code for lang in self.languages)

    def language(self, code: str) -> LanguageSpec:
        for lang in self.languages:
            if lang.code == code:
                return lang
        raise GrowupError(
            f"unknown language {code!r}; config key 'data.languages' has {list(self.language_codes)}"
        )

    @property
    def raw_datasets(self) -> tuple[str, ...]:
        """Every raw dataset the study prepares, by name (the names of data/raw/<name>)."""
        return ("english-80", "english-20", "code", *self.language_codes, *self.replay_datasets)

    @property
    def replay_datasets(self) -> tuple[str, ...]:
        return tuple(f"replay-{code}" for code in self.language_codes)


@dataclass(frozen=True)
class ScheduleSpec:
    """A run's length and warmup-stable-decay learning-rate schedule (STUDY.md table)."""

    steps: int
    warmup: int
    decay_start: int
    decay_steps: int


@dataclass(frozen=True)
class TrainingSpec:
    sequence_length: int
    global_batch: int = 8
    micro_batch: int = 8
    peak_lr: float = 3e-3
    min_lr: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    checkpoint_every_base: int = 2500
    checkpoint_every_adaptation: int = 250
    state_every: int | None = None
    mixed_precision: str = "bf16"
    attn_implementation: str = "sdpa"
    document_attention_mask: bool = True
    peak_flops: float | None = None
    seed_code_epochs: int = 2
    # speed switches (growup.train.loop); their defaults live in the schema only
    compile: bool | str = field(default_factory=lambda: schema_default("training", "compile"))
    fused_adamw: bool | str = field(default_factory=lambda: schema_default("training", "fused_adamw"))
    chunked_loss: bool = field(default_factory=lambda: schema_default("training", "chunked_loss"))
    loss_chunk_size: int = field(default_factory=lambda: schema_default("training", "loss_chunk_size"))
    schedules: Mapping[str, ScheduleSpec] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> TrainingSpec:
        fields = {k: v for k, v in raw.items() if k not in {"checkpoint_every", "schedules", "betas"}}
        return cls(
            **fields,
            betas=tuple(raw["betas"]),
            checkpoint_every_base=raw["checkpoint_every"]["base"],
            checkpoint_every_adaptation=raw["checkpoint_every"]["adaptation"],
            schedules={k: ScheduleSpec(**v) for k, v in raw["schedules"].items()},
        )

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.sequence_length


@dataclass(frozen=True)
class Study:
    """A validated study config."""

    name: str
    seed: int
    hub_root: str | None
    tokenizer: TokenizerSpec
    model: ModelSpec
    training: TrainingSpec
    data: DataSpec
    evaluation: Mapping[str, Any]
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
        study = cls(
            name=config["study"],
            seed=config["seed"],
            hub_root=(config.get("hub") or {}).get("root"),
            tokenizer=TokenizerSpec(
                **{**config["tokenizer"], "train_on": tuple(config["tokenizer"].get("train_on", ()))}
            ),
            model=ModelSpec(**model),
            training=TrainingSpec.from_mapping(config["training"]),
            data=DataSpec.from_mapping(config["data"]),
            evaluation=config["evaluation"],
            raw=config,
        )
        missing = sorted(set(study.data.language_codes) - set(study.training.schedules))
        if missing:
            raise GrowupError(
                f"config key 'training.schedules' has no schedule for languages {missing}; "
                "add {steps, warmup, decay_start, decay_steps} for each"
            )
        for name, sched in study.training.schedules.items():
            if not sched.warmup <= sched.decay_start <= sched.steps:
                raise GrowupError(
                    f"config key 'training.schedules.{name}': warmup {sched.warmup} <= decay_start "
                    f"{sched.decay_start} <= steps {sched.steps} does not hold"
                )
        unknown = sorted(set(study.tokenizer.train_on) - set(study.data.raw_datasets))
        if unknown:
            raise GrowupError(
                f"config key 'tokenizer.train_on': value {unknown} names no raw dataset; "
                f"allowed: {list(study.data.raw_datasets)}"
            )
        return study


def _read_yaml(path: Path) -> Mapping[str, Any]:
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
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: mappings merge key by key, any other value replaces."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = deep_merge(out[key], value) if both else value
    return out


def resolve_config(path: str | os.PathLike[str], _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's mapping with its `extends:` chain applied (paths relative to the file), so
    a variant (e.g. config/released.yaml) states only what differs from the config it extends."""
    path = Path(path).resolve()
    if path in _seen:
        raise GrowupError(f"config key 'extends' loops: {' -> '.join(map(str, (*_seen, path)))}")
    data = dict(_read_yaml(path))
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not (path.parent / parent).is_file():
        raise GrowupError(
            f"config key 'extends' in {str(path)!r} is {parent!r}; expected the path of an existing "
            "config file, relative to this one (e.g. paper.yaml)"
        )
    return deep_merge(resolve_config(path.parent / parent, (*_seen, path)), data)


def config_chain(path: str | os.PathLike[str]) -> list[str]:
    """The files a config's `extends:` chain reads beyond the config itself (inputs of every job)."""
    chain, current = [], Path(path)
    while (parent := dict(_read_yaml(current)).get("extends")) is not None:
        current = current.parent / str(parent)
        if str(current) in chain or current.resolve() == Path(path).resolve():
            break
        chain.append(str(current))
    return chain


def load_config(path: str | os.PathLike[str]) -> Study:
    """Read, resolve (`extends:`) and validate a study config file."""
    return Study.from_mapping(resolve_config(path), source=str(path))
