"""The mini tokenizer trains deterministically; the paper's gated tokenizer fails with login help."""

from __future__ import annotations

from dataclasses import replace

import pytest

from growup.data import tokenizer as tk
from growup.data.prepare import make_tokenizer
from growup.errors import GrowupError


def test_training_is_byte_for_byte_deterministic(mini_study, mini_data, tmp_path):
    make_tokenizer(mini_study, mini_data / "raw", tmp_path / "again")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (mini_data / "tokenizer" / name).read_bytes()


def test_vocabulary_and_special_tokens(mini_study, mini_data):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(mini_data / "tokenizer")
    assert len(tok) == mini_study.tokenizer.vocab_size
    assert tok.eos_token == mini_study.tokenizer.eos_token
    text = "Þetta er íslenska. Det här är svenska. این فارسی است."
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text  # byte-level: lossless


def test_too_small_corpus_names_the_key(mini_study):
    with pytest.raises(GrowupError, match="tokenizer.vocab_size"):
        tk.train_bpe(["tiny corpus"] * 3, mini_study.tokenizer)


def test_gated_tokenizer_says_how_to_log_in(mini_study, monkeypatch):
    def refuse(*args, **kwargs):  # what transformers raises for a gated repo without a token
        raise OSError(
            "You are trying to access a gated repo.\nMake sure to have access to it at "
            "https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct.\n401 Client Error."
        )

    import transformers

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    monkeypatch.delenv("GROWUP_HUB_ROOT", raising=False)
    spec = replace(mini_study.tokenizer, hub_id="meta-llama/Llama-3.3-70B-Instruct")
    with pytest.raises(GrowupError, match=r"gated.*hf auth login.*HF_TOKEN"):
        tk.load_hub_tokenizer(spec, None)


def test_missing_hub_tokenizer_names_it(mini_study, hub_root):
    spec = replace(mini_study.tokenizer, hub_id="meta-llama/Llama-3.3-70B-Instruct")
    with pytest.raises(GrowupError, match="meta-llama/Llama-3.3-70B-Instruct"):
        tk.load_hub_tokenizer(spec, str(hub_root) if hub_root else None)
