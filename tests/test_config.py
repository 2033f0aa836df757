"""Config validation: both shipped configs pass; bad values fail naming key, value and the rule."""

from __future__ import annotations

import copy

import pytest
import yaml

from growup.config import Study, load_config
from growup.errors import GrowupError
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
        ("study", "huge", "enum"),
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
