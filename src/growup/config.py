"""The typed study config: load YAML, validate against the JSON schema, expose typed sections.

Every config (mini, paper, released) is checked against `schemas/config.schema.yaml` before any
work starts; an invalid value stops the run with an error naming the key, the value and what is
allowed. The Snakefile validates through the same function.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import yaml

from growup.errors import GrowupError

# raw dataset names (data/raw/<name>) the tokenizer.train_on check needs; growup.study owns the grid
ENGLISH_DATASETS = ("english-80", "english-20")  # the English split: seed training, adaptation
CODE_DATASET = "code"


def replay_dataset(lang: str) -> str:
    """The raw dataset of a language's English and code replay set."""
    return f"replay-{lang}"


SCHEMA_PATH = Path(str(resources.files("growup") / "schemas" / "config.schema.yaml"))


@functools.cache
def load_schema() -> dict[str, Any]:
    """The JSON schema every study config must satisfy (read once; treat it as read-only). Parsed
    by libyaml where PyYAML has it: the pure-Python parser takes half a second per job."""
    return yaml.load(
        SCHEMA_PATH.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )


def schema_node(*path: str) -> dict[str, Any]:
    """The schema of the config key at `path` (`*` = any entry of a mapping, e.g. a method)."""
    schema = load_schema()
    node = schema
    for key in path:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
        if "$ref" in node:  # "#/$defs/<name>": a block several keys share
            node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def schema_default(*path: str) -> Any:
    """The `default` the schema states for the key at `path`: each default is written there once,
    and a typed section takes it for a key its config leaves out."""
    node = schema_node(*path)
    if "default" not in node:
        raise GrowupError(f"config key {'.'.join(path)!r} is optional but the schema states no default")
    return copy.deepcopy(node["default"])


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


class Withheld:
    """A config value a job did not declare it reads: inert until used, then an error.

    A job's spec (`growup.study.job_spec`) carries only the values the job declares; the rest of
    the typed `Study` is built from these placeholders, so a verb that reads an undeclared value
    fails loudly instead of depending on a value Snakemake does not track."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        object.__setattr__(self, "path", path)

    def _fail(self, *_: Any, **__: Any) -> Any:
        raise GrowupError(
            f"config key {self.path!r} is not in this job's spec: the job read a value it does not "
            "declare; add it to the job's reads in growup.study.job_reads"
        )

    def __getitem__(self, key: Any) -> Withheld:
        return Withheld(f"{self.path}.{key}")

    def get(self, key: Any, default: Any = None) -> Withheld:
        return Withheld(f"{self.path}.{key}")

    def __getattr__(self, name: str) -> Any:
        # a typed section's field (schedules["ekk"].steps) names its key; a mapping's method
        # (.items(), .keys()) names the withheld value itself
        Withheld(self.path if hasattr(dict, name) else f"{self.path}.{name}")._fail()

    def __repr__(self) -> str:
        return f"<withheld {self.path}>"

    __bool__ = __int__ = __float__ = __index__ = __str__ = __format__ = __iter__ = __len__ = _fail
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = __contains__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _fail
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __abs__ = _fail
    __fspath__ = _fail


KEYS_ONLY = "[]"  # a read pattern ending in `[]` (e.g. `data.languages[]`) keeps a mapping's keys only


def _parse_patterns(reads: Sequence[str]) -> dict[str, Any]:
    """Read patterns as a tree: a node maps a key (or `*`, any key) to its subtree, `True` (the
    whole value) or `KEYS_ONLY` (a mapping's key set, no values)."""
    tree: dict[str, Any] = {}
    for pattern in reads:
        keys_only = pattern.endswith(KEYS_ONLY)
        *parents, last = pattern.removesuffix(KEYS_ONLY).split(".")
        node = tree
        for part in parents:
            child = node.get(part)
            if child is True:
                break
            if not isinstance(child, dict):
                child = node[part] = {"*": KEYS_ONLY} if child == KEYS_ONLY else {}
            node = child
        else:
            current = node.get(last)
            if not keys_only:
                node[last] = True
            elif current is None:
                node[last] = KEYS_ONLY
            elif isinstance(current, dict):
                current.setdefault("*", KEYS_ONLY)
    return tree


def project(config: Mapping[str, Any], reads: Sequence[str]) -> dict[str, Any]:
    """`config` restricted to the values the read patterns name (same nesting, nothing else)."""
    return _project(config, _parse_patterns(reads))


def _project(config: Mapping[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        rule = tree.get(key, tree.get("*"))
        if rule is None:
            continue
        if rule is True:
            out[key] = value
        elif rule == KEYS_ONLY:
            out[key] = {k: None for k in value} if isinstance(value, Mapping) else None
        elif isinstance(value, Mapping):
            out[key] = _project(value, rule)
    return out


class SpecView(Mapping[str, Any]):
    """A job's projected config with the read patterns that made it: declared values read as
    usual, undeclared ones come back as `Withheld`, and a mapping can be iterated only where
    the job declared all of its keys."""

    def __init__(self, values: Mapping[str, Any], tree: Any, path: str = "") -> None:
        self._values, self._tree, self._path = values, tree, path

    @classmethod
    def of(cls, values: Mapping[str, Any], reads: Sequence[str]) -> SpecView:
        return cls(values, _parse_patterns(reads))

    def _where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else str(key)

    def _rule(self, key: str) -> Any:
        if self._tree is True:
            return True
        if self._tree == KEYS_ONLY:
            return None
        return self._tree.get(key, self._tree.get("*"))

    def _wrap(self, key: str, value: Any, rule: Any) -> Any:
        if isinstance(value, Mapping):
            return SpecView(value, rule, self._where(key))
        if rule == KEYS_ONLY:
            return Withheld(self._where(key))
        return value

    def __getitem__(self, key: str) -> Any:
        rule = self._rule(key)
        if rule is None:
            return Withheld(self._where(key))
        return self._wrap(key, self._values[key], rule)

    def get(self, key: str, default: Any = None) -> Any:
        rule = self._rule(key)
        if rule is None:
            return Withheld(self._where(key))
        return self._wrap(key, self._values[key], rule) if key in self._values else default

    def __contains__(self, key: object) -> bool:
        if self._tree != KEYS_ONLY and self._rule(str(key)) is None:
            Withheld(self._where(str(key)))._fail()
        return key in self._values

    def _check_complete(self) -> None:
        if not (self._tree is True or self._tree == KEYS_ONLY or "*" in self._tree):
            raise GrowupError(
                f"config key {self._path or '<top level>'!r} is iterated, but this job's spec holds "
                f"only {sorted(self._values)} of it; declare it whole in growup.study.job_reads"
            )

    def __iter__(self) -> Iterator[str]:
        self._check_complete()
        return iter(self._values)

    def __len__(self) -> int:
        self._check_complete()
        return len(self._values)


def _tuple(value: Any) -> Any:
    return value if isinstance(value, Withheld) or value is None else tuple(value)


def _float(value: Any) -> Any:
    return value if isinstance(value, Withheld) else float(value)


def _build(cls: type, section: Mapping[str, Any] | None, **given: Any) -> Any:
    """A config dataclass from a (possibly projected) mapping, field by field: a key the config
    leaves out takes the schema's default (`cls.SCHEMA` is the section's path there), a withheld
    one stays `Withheld`; a section the job's spec withholds whole stays one `Withheld`, so even
    its truth value (e.g. `if evaluation.mpararel`) fails instead of reading as configured."""
    if isinstance(section, Withheld):
        return section
    section = {} if section is None else section
    values = {}
    for f in fields(cls):
        if f.name in given:
            values[f.name] = given[f.name]
            continue
        value = section.get(f.name, _ABSENT)
        values[f.name] = schema_default(*cls.SCHEMA, f.name) if value is _ABSENT else value
    return cls(**values)


def _optional(cls: type, value: Any) -> Any:
    """A nested section that may be null: None stays None, anything else is built."""
    return None if value is None else _build(cls, value)


def _mapping(value: Any) -> Any:
    """A mapping key whose null means empty."""
    return {} if value is None else value


_ABSENT = object()


# Each typed section below holds exactly its schema keys; a key the config leaves out takes the
# schema's `default` (written once, there), never a default here.


@dataclass(frozen=True)
class ModelSpec:
    """The base (1x) architecture and the HyperCloning factor of the study."""

    SCHEMA: ClassVar[tuple[str, ...]] = ("model",)
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
    init_scaling: str  # num_layers: o_proj/down_proj std / sqrt(2 layers), as nanotron


@dataclass(frozen=True)
class TokenizerSpec:
    SCHEMA: ClassVar[tuple[str, ...]] = ("tokenizer",)
    vocab_size: int
    hub_id: str | None
    revision: str
    eos_token: str
    bos_token: str
    train_on: tuple[str, ...]
    min_frequency: int


@dataclass(frozen=True)
class SourceSpec:
    """One Hub dataset (id, config, revision) and how many documents to read (None = all)."""

    hub_id: str
    config: str | None
    revision: str
    max_docs: int | None
    split: str = "train"  # not a config key: every source reads its train split

    @classmethod
    def of(cls, source: str, section: Mapping[str, Any]) -> SourceSpec:
        """`data.<source>` (english, code, fineweb2) as a source spec."""
        config = section["config"] if "config" in schema_node("data", source)["properties"] else None
        return cls(section["hub_id"], config, section["revision"], _key(section, "data", source, "max_docs"))


def _key(section: Mapping[str, Any], *path: str) -> Any:
    """`section[path[-1]]`, or the schema's default for the key at `path` when it is left out."""
    value = section.get(path[-1], _ABSENT)
    return schema_default(*path) if value is _ABSENT else value


@dataclass(frozen=True)
class LanguageSpec:
    SCHEMA: ClassVar[tuple[str, ...]] = ("data", "languages", "*")
    code: str
    subset: str
    shuffle: bool
    multiblimp: str | None  # None: MultiBLiMP has no such language


@dataclass(frozen=True)
class DataSpec:
    english: SourceSpec
    english_test_size: float
    english_split_seed: int
    english_released_split: Mapping[str, Any] | None
    code: SourceSpec
    softwareheritage_url: str | None
    fineweb2: SourceSpec
    language_table: Mapping[str, Any]  # data.languages: code -> {subset, shuffle, multiblimp}
    shuffle_seed: int
    char_budget: float
    max_epochs: float
    epoch_seeds: tuple[int, ...]
    base_stage_seeds: Mapping[str, Any]  # run kind (seed, english) -> stage seeds; empty = epoch_seeds
    fixed_schedule: Mapping[str, Any]  # language -> the authors' fixed epochs; empty = UniMax
    replay_english_fraction: float
    replay_code_fraction: float
    replay_seed: int
    replay_fractions: Mapping[str, float] | None
    tokens_per_shard: int
    batch_docs: int
    separator: str  # data.packing.separator: eos after or bos before every document

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DataSpec:
        eng, code, replay, packing = data["english"], data["code"], data["replay"], data["packing"]
        return cls(
            english=SourceSpec.of("english", eng),
            english_test_size=eng["test_size"],
            english_split_seed=eng["split_seed"],
            english_released_split=_key(eng, "data", "english", "released_split"),
            code=SourceSpec.of("code", code),
            softwareheritage_url=_key(code, "data", "code", "softwareheritage_url"),
            fineweb2=SourceSpec.of("fineweb2", data["fineweb2"]),
            language_table=data["languages"],
            shuffle_seed=data["shuffle_seed"],
            char_budget=_float(data["unimax"]["char_budget"]),
            max_epochs=_float(data["unimax"]["max_epochs"]),
            epoch_seeds=_tuple(data["epoch_seeds"]),
            base_stage_seeds=_mapping(_key(data, "data", "base_stage_seeds")),
            fixed_schedule=_mapping(_key(data, "data", "fixed_schedule")),
            replay_english_fraction=replay["english_fraction"],
            replay_code_fraction=replay["code_fraction"],
            replay_seed=replay["seed"],
            replay_fractions=_key(replay, "data", "replay", "fractions"),
            tokens_per_shard=packing["tokens_per_shard"],
            batch_docs=packing["batch_docs"],
            separator=_key(packing, "data", "packing", "separator"),
        )

    @property
    def languages(self) -> tuple[LanguageSpec, ...]:
        return tuple(self.language(code) for code in self.language_codes)

    @property
    def language_codes(self) -> tuple[str, ...]:
        return tuple(self.language_table)

    def language(self, code: str) -> LanguageSpec:
        if code not in self.language_table:
            raise GrowupError(
                f"unknown language {code!r}; config key 'data.languages' has {list(self.language_codes)}"
            )
        return _build(LanguageSpec, self.language_table[code], code=code)

    @property
    def raw_datasets(self) -> tuple[str, ...]:
        """Every raw dataset the study prepares, by name (the names of data/raw/<name>)."""
        return (*ENGLISH_DATASETS, CODE_DATASET, *self.language_codes, *self.replay_datasets)

    @property
    def replay_datasets(self) -> tuple[str, ...]:
        return tuple(replay_dataset(code) for code in self.language_codes)


@dataclass(frozen=True)
class ScheduleSpec:
    """A run's length and warmup-stable-decay learning-rate schedule (STUDY.md table)."""

    SCHEMA: ClassVar[tuple[str, ...]] = ("training", "schedules", "*")
    steps: int
    warmup: int
    decay_start: int
    decay_steps: int


@dataclass(frozen=True)
class TrainingSpec:
    SCHEMA: ClassVar[tuple[str, ...]] = ("training",)
    sequence_length: int
    global_batch: int
    micro_batch: int
    peak_lr: float
    min_lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    grad_clip: float | None
    checkpoint_every_base: int
    checkpoint_every_adaptation: int
    checkpoint_every_languages: Mapping[str, int]  # language -> its runs' checkpoint interval
    state_every: int | None
    mixed_precision: str
    attn_implementation: str
    document_attention_mask: bool
    reset_positions: bool  # false: positions 0..L-1 over the packed row, as the authors' Llama runs
    peak_flops: float | None
    seed_code_epochs: int
    # speed switches (growup.train.loop)
    compile: bool | str
    fused_adamw: bool | str
    chunked_loss: bool
    loss_chunk_size: int
    replicates: tuple[int, ...] | None  # training seeds of every adaptation run; None: (seed,)
    schedules: Mapping[str, ScheduleSpec]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> TrainingSpec:
        every = raw["checkpoint_every"]
        return _build(
            cls,
            raw,
            betas=_tuple(raw["betas"]),
            checkpoint_every_base=every["base"],
            checkpoint_every_adaptation=every["adaptation"],
            checkpoint_every_languages=_mapping(_key(every, "training", "checkpoint_every", "languages")),
            replicates=_tuple(_key(raw, "training", "replicates")),
            schedules=Table(raw["schedules"], lambda _, v: _build(ScheduleSpec, v)),
        )

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.sequence_length


@dataclass(frozen=True)
class EvalSetSpec:
    """A minimal-pair dataset on the Hub (evaluation.multiblimp, .blimp, .mpararel)."""

    SCHEMA: ClassVar[tuple[str, ...]] = ("evaluation", "blimp")  # the same keys for every set
    hub_id: str
    split: str
    config: str | None
    revision: str | None
    good_column: str
    bad_column: str
    strata: tuple[str, ...]  # columns a limited evaluation's sample is stratified by, in order


def _eval_set(raw: Any) -> EvalSetSpec:
    spec = _build(EvalSetSpec, raw)
    return spec if isinstance(spec, Withheld) else replace(spec, strata=_tuple(spec.strata))


@dataclass(frozen=True)
class EvaluationSpec:
    SCHEMA: ClassVar[tuple[str, ...]] = ("evaluation",)
    prefix: str
    batch_size: int | str
    every_language: bool
    dtype: str
    limit: int | None
    sample_seed: int  # seed of the stratified sample a limit scores (growup.evaluate.sample)
    multiblimp_languages: tuple[str, ...] | None
    multiblimp: EvalSetSpec
    blimp: EvalSetSpec
    mpararel: EvalSetSpec | None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> EvaluationSpec:
        return _build(
            cls,
            raw,
            multiblimp_languages=_tuple(_key(raw, "evaluation", "multiblimp_languages")),
            multiblimp=_eval_set(raw["multiblimp"]),
            blimp=_eval_set(raw["blimp"]),
            mpararel=None if (m := _key(raw, "evaluation", "mpararel")) is None else _eval_set(m),
        )

    def dataset(self, name: str) -> EvalSetSpec | None:
        """The evaluation set `name` (multiblimp, blimp, mpararel); None when not configured."""
        return {"multiblimp": self.multiblimp, "blimp": self.blimp, "mpararel": self.mpararel}[name]


@dataclass(frozen=True)
class MethodSpec:
    """One entry of `merging.methods`: a mergekit method (or an ablation of one) by name."""

    SCHEMA: ClassVar[tuple[str, ...]] = ("merging", "methods", "*")
    name: str
    base: bool
    parameters: Mapping[str, Any] | None
    model_parameters: Mapping[str, Any] | None
    method: str | None
    base_runs: Mapping[str, str]
    setups: tuple[str, ...] | None

    @property
    def merge_method(self) -> str:
        """mergekit's merge_method: the entry's `method`, else its name."""
        return self.method or self.name


@dataclass(frozen=True)
class MergingSpec:
    SCHEMA: ClassVar[tuple[str, ...]] = ("merging",)
    methods: Mapping[str, MethodSpec]
    setups: tuple[str, ...]
    min_languages: int
    subsets: tuple[str, ...] | None
    must_include: tuple[str, ...] | None
    weight: float
    dtype: str
    parameters: Mapping[str, Any]
    base: Mapping[str, str]
    reference_configs: str | None
    random_seed: int | None
    replicates: str  # one: merge the study seed's runs; all: every seed replicate's runs, each a merge

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> MergingSpec:
        def method(name: str, entry: Any) -> MethodSpec:
            spec = _build(MethodSpec, entry, name=name)
            return replace(spec, base_runs=_mapping(spec.base_runs), setups=_tuple(spec.setups))

        return _build(
            cls,
            raw,
            methods=Table(raw["methods"], method),
            setups=_tuple(raw["setups"]),
            subsets=_tuple(_key(raw, "merging", "subsets")),
            must_include=_tuple(_key(raw, "merging", "must_include")),
        )


@dataclass(frozen=True)
class ReportSpec:
    SCHEMA: ClassVar[tuple[str, ...]] = ("report",)
    method_spread: float
    margin: float  # the non-inferiority margin δ of "match or surpass", in accuracy points
    confidence: float
    bootstrap_resamples: int
    bootstrap_seed: int


@dataclass(frozen=True)
class ReleasedSpec:
    """Runs fetched instead of trained (published checkpoints, a Hub base, folders): `study.run_source`."""

    SCHEMA: ClassVar[tuple[str, ...]] = ("released",)
    revision: str
    models: Mapping[str, str | None]  # run, setup or english -> Hub id or folder (None: made here)


@dataclass(frozen=True)
class ResourcesSpec:
    SCHEMA: ClassVar[tuple[str, ...]] = ("resources",)
    gpus: Mapping[str, int]  # training job kind (base, language, multilingual) -> GPUs (0 = CPU)
    flops_per_second: float
    threads: int
    mem_mb: int


@dataclass(frozen=True)
class Study:
    """A validated study config, every section typed. `raw` is the validated mapping itself, kept
    only to project job specs from (growup.study.job_spec); no verb reads values from it."""

    name: str
    seed: int
    hub_root: str | None
    tokenizer: TokenizerSpec
    model: ModelSpec
    training: TrainingSpec
    data: DataSpec
    evaluation: EvaluationSpec
    merging: MergingSpec
    report: ReportSpec
    released: ReleasedSpec | None
    resources: ResourcesSpec
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
        study = cls._build(config)
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

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Study:
        """The study as one job sees it: only the values its spec (`growup.study.job_spec`)
        carries; reading any other value is an error (the config was validated when the spec
        was made)."""
        return cls._build(SpecView.of(spec["values"], spec["reads"]))

    @classmethod
    def _build(cls, config: Mapping[str, Any]) -> Study:
        tokenizer = config["tokenizer"]
        return cls(
            name=config["study"],
            seed=config["seed"],
            hub_root=_key(_mapping(_key(config, "hub")), "hub", "root"),
            tokenizer=_build(
                TokenizerSpec, tokenizer, train_on=_tuple(_key(tokenizer, "tokenizer", "train_on"))
            ),
            model=_build(ModelSpec, config["model"]),
            training=TrainingSpec.from_mapping(config["training"]),
            data=DataSpec.from_mapping(config["data"]),
            evaluation=EvaluationSpec.from_mapping(config["evaluation"]),
            merging=MergingSpec.from_mapping(config["merging"]),
            report=_build(ReportSpec, config["report"]),
            released=_optional(ReleasedSpec, _key(config, "released")),
            resources=_build(ResourcesSpec, config["resources"]),
            raw=config,
        )


class Table(Mapping[str, Any]):
    """A config mapping whose entries become typed specs when read (so a job spec that holds
    only some entries still builds)."""

    def __init__(self, source: Mapping[str, Any], build: Callable[[str, Any], Any]) -> None:
        self._source, self._build = source, build

    def __getitem__(self, key: str) -> Any:
        return self._build(key, self._source[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)


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


def config_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Snakemake's `--config` values, typed as in a config file. Snakemake reads a nested value
    (`--config 'report={method_spread: 0.5}'`) with YAML's base loader, which keeps every leaf a
    string; each leaf is read again as YAML, so 0.5 is a number and null is None."""

    def typed(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: typed(v) for key, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        return yaml.safe_load(value) if isinstance(value, str) else value

    return {key: typed(value) for key, value in values.items()}


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
