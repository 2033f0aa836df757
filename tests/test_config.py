"""Config validation: both shipped configs pass; bad values fail naming key, value and the rule."""

from __future__ import annotations

import copy

import pytest
import yaml

from growup.config import Study
from growup.errors import GrowupError
from growup.study import load_config
from helpers import REPO


@pytest.fixture(scope="module")
def paper_raw() -> dict:
    return yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_validate(name):
    study = load_config(REPO / "config" / name)
    assert study.model.num_attention_heads % study.model.num_key_value_heads == 0


def test_paper_config_holds_study_numbers():
    m = load_config(REPO / "config" / "paper.yaml").model
    assert (m.hidden_size, m.intermediate_size, m.num_hidden_layers) == (576, 1536, 30)
    assert (m.num_attention_heads, m.num_key_value_heads, m.head_dim) == (9, 3, 64)
    assert (m.hidden_act, m.rope_theta, m.tie_word_embeddings) == ("gelu", 10000.0, True)
    assert m.initializer_range == pytest.approx(1 / 24)


def _with(raw: dict, path: str, value) -> dict:
    raw = copy.deepcopy(raw)
    *parents, last = path.split(".")
    node = raw
    for p in parents:
        node = node[p]
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("model.hidden_size", -3, "minimum"),
        ("model.hidden_act", "swish", "enum"),
        ("model.clone_factor", 1, "minimum"),
        ("model.clone_factor", 2.5, "integer"),
        ("tokenizer.vocab_size", "big", "integer"),
        ("study", "Huge Study", "pattern"),
    ],
)
def test_invalid_value_names_key_value_and_rule(paper_raw, path, value, needle):
    with pytest.raises(GrowupError) as info:
        Study.from_mapping(_with(paper_raw, path, value))
    message = str(info.value)
    assert repr(path) in message and repr(value) in message and needle in message


def test_unknown_key_is_named(paper_raw):
    raw = _with(paper_raw, "model.hiden_size", 5)
    with pytest.raises(GrowupError, match=r"unknown key\(s\) \['hiden_size'\]"):
        Study.from_mapping(raw)


def test_gqa_groups_must_be_whole(paper_raw):
    with pytest.raises(GrowupError, match="num_key_value_heads=4"):
        Study.from_mapping(_with(paper_raw, "model.num_key_value_heads", 4))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(GrowupError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(GrowupError, match="not valid YAML"):
        load_config(bad)


def test_tokenizer_train_on_must_name_raw_datasets():
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["tokenizer"]["train_on"] = ["code", "klingon"]
    with pytest.raises(GrowupError, match=r"tokenizer.train_on.*klingon"):
        Study.from_mapping(raw)


def test_yaml_exponent_without_sign_is_caught(paper_raw):
    # PyYAML reads 6e9 as a string: the schema stops it instead of a crash later.
    with pytest.raises(GrowupError, match=r"data.unimax.char_budget.*'6e9'"):
        Study.from_mapping(_with(paper_raw, "data.unimax.char_budget", "6e9"))


def _schema_defaults(node: dict, path: str = "") -> dict[str, object]:
    """Every `default` the schema states, by dotted key (`*` = any entry of a mapping)."""
    from growup.config import load_schema

    if "$ref" in node:
        node = load_schema()["$defs"][node["$ref"].removeprefix("#/$defs/")]
    found = {path: node["default"]} if "default" in node else {}
    for key, child in node.get("properties", {}).items():
        found.update(_schema_defaults(child, f"{path}.{key}" if path else key))
    if isinstance(node.get("additionalProperties"), dict):
        found.update(_schema_defaults(node["additionalProperties"], f"{path}.*"))
    return found


def _required(path: str) -> bool:
    from growup.config import schema_node

    *parent, key = path.split(".")
    return key in schema_node(*parent).get("required", []) if parent else False


def test_every_default_lives_in_the_schema_and_none_is_dead():
    """A typed section's optional field takes its default from the schema (never from code), and
    the schema states no default for a key every config must give (it could never apply)."""
    import dataclasses

    from growup import config

    defaults = _schema_defaults(config.load_schema())
    assert [key for key in defaults if _required(key)] == []
    for cls in vars(config).values():
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and hasattr(cls, "SCHEMA")):
            continue
        node = config.schema_node(*cls.SCHEMA)
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (
                cls,
                f.name,
            )
            if f.name in node.get("properties", {}) and f.name not in node.get("required", []):
                assert "default" in node["properties"][f.name] or "$ref" in node["properties"][f.name], (
                    f"{'.'.join(cls.SCHEMA)}.{f.name} is optional but the schema states no default"
                )


def test_left_out_keys_take_the_schema_default(paper_raw):
    """Every optional key dropped from the paper config reads back as the schema's default."""
    from growup.config import schema_default

    raw = copy.deepcopy(paper_raw)
    del (
        raw["hub"],
        raw["evaluation"]["batch_size"],
        raw["evaluation"]["mpararel"],
        raw["training"]["state_every"],
    )
    del raw["merging"]["min_languages"], raw["resources"]["mem_mb"], raw["data"]["packing"]["separator"]
    del raw["training"]["checkpoint_every"]["languages"], raw["evaluation"]["multiblimp"]["split"]
    raw["evaluation"]["multiblimp"]["split"] = "train"
    study = Study.from_mapping(raw)
    assert study.hub_root is None
    assert study.evaluation.batch_size == schema_default("evaluation", "batch_size") == "auto"
    assert study.evaluation.mpararel is None and study.training.state_every is None
    assert study.merging.min_languages == 2 and study.resources.mem_mb == 8000
    assert study.data.separator == "eos" and study.training.checkpoint_every_languages == {}
    assert study.evaluation.multiblimp.good_column == "sentence_good"
    assert study.merging.methods["linear"].base is False and study.merging.methods["ties"].base is True


def test_a_value_left_out_of_a_jobs_spec_is_withheld(paper_raw):
    """A typed section built from a job's spec holds only the declared values; any other one is a
    `Withheld` that fails when read, typed sections and schema defaults included."""
    from growup.config import project

    reads = ["study", "seed", "tokenizer", "model", "training", "data", "evaluation.limit"]
    study = Study.from_spec({"values": project(paper_raw, reads), "reads": reads})
    assert study.evaluation.limit is None  # declared, absent from paper.yaml: the schema default
    for read in (
        lambda: study.evaluation.prefix == "bos",
        lambda: bool(study.evaluation.mpararel),
        lambda: study.merging.methods["ties"].base or 1,
        lambda: study.report.confidence + 0,
        lambda: int(study.resources.mem_mb),
    ):
        with pytest.raises(GrowupError, match="not in this job's spec"):
            read()
