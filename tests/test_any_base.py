"""Any Llama-family checkpoint as the English base: a tiny Hugging Face LlamaForCausalLM with an
untied head, GQA, silu and a tokenizer of its own, written as a stand-in Hub model. Its shape comes
into the config from `growup model shape`; it is fetched, cloned with its logits kept, and one
language is trained and evaluated from it with its tokenizer. A config of another shape is
refused with one line naming both shapes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from growup.config import resolve_config
from growup.models.checkpoint import read_card
from helpers import REPO, copy_repo, linked_hub, planned_resources, randomize, run_tool

ORG, NAME = "someone-else", "tiny-llama"
FP32_BOUND = 1e-5  # tests/test_cloning.py's bound
LANG = "fao"
GROWUP = str(Path(sys.executable).parent / "growup")


def own_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE of 320 tokens with special tokens of its own names (not growup's)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


def write_base(folder: Path, mirror: Path) -> None:
    """A plain Hugging Face Llama checkpoint as the Hub serves one: no growup card, no checksums."""
    texts = pq.read_table(next((mirror / "HuggingFaceFW/fineweb-2/data/swe_Latn/train").glob("*.parquet")))
    tokenizer = own_tokenizer(texts.column("text").to_pylist())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # GQA 2:1
        head_dim=8,
        hidden_act="silu",
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = randomize(LlamaForCausalLM(config), seed=11)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def base_config(shape: dict) -> dict:
    """The mini study's config on two languages, with the base's shape and tokenizer."""
    config = resolve_config(REPO / "config" / "config.yaml")
    config.update(study="any-base", model=shape["model"])
    config["tokenizer"].update(shape["tokenizer"], eos_token="</s>", bos_token="<s>", train_on=[])
    languages = config["data"]["languages"]
    config["data"]["languages"] = {lang: languages[lang] for lang in ("fao", "swe")}
    config["training"]["schedules"][LANG] = {"steps": 3, "warmup": 1, "decay_start": 2, "decay_steps": 1}
    config["evaluation"]["limit"] = 10
    config["merging"]["subsets"] = ["fao+swe"]
    config["released"] = {"models": {"english-1x": f"{ORG}/{NAME}"}}
    return config


@pytest.fixture(scope="module")
def base_repo(hub_root, tmp_path_factory) -> tuple[Path, dict[str, str], dict]:
    if hub_root is None:
        pytest.skip("the stand-in base sits beside a local Hub mirror")
    work = tmp_path_factory.mktemp("any-base")
    hub = linked_hub(Path(hub_root), work / "hub")
    write_base(hub / ORG / NAME, Path(hub_root))
    env = {"GROWUP_HUB_ROOT": str(hub)}
    repo = copy_repo(work / "repo")
    proc = subprocess.run(
        [GROWUP, "model", "shape", f"{ORG}/{NAME}"], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert proc.returncode == 0, proc.stderr
    shape = yaml.safe_load(proc.stdout)
    (repo / "config" / "base-test.yaml").write_text(yaml.safe_dump(base_config(shape), sort_keys=False))
    return repo, env, shape


def test_the_shape_is_taken_from_the_base(base_repo):
    _, _, shape = base_repo
    assert shape["model"]["hidden_size"] == 32 and shape["model"]["num_key_value_heads"] == 2
    assert shape["model"]["tie_word_embeddings"] is False and shape["model"]["hidden_act"] == "silu"
    assert shape["tokenizer"]["vocab_size"] == 320 and shape["model"]["rope_theta"] == 100000.0


def test_a_config_of_another_shape_is_refused_with_both_shapes(base_repo, tmp_path):
    repo, env, shape = base_repo
    bad = base_config(shape)
    bad["model"] = {**shape["model"], "num_key_value_heads": 4}  # 4/4 heads: no GQA
    (repo / "config" / "bad-shape.yaml").write_text(yaml.safe_dump(bad))
    argv = [GROWUP, "model", "fetch", "--configfile", "config/bad-shape.yaml", "--run", "english-1x"]
    proc = subprocess.run(
        [*argv, "--out", str(tmp_path / "out")],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("growup: error:")]
    assert "has shape vocab 320, hidden 32, ffn 64, layers 2, heads 4/2 x 8, untied head" in line, line
    assert "make it vocab 320, hidden 32, ffn 64, layers 2, heads 4/4 x 8, untied head" in line, line
    assert not (tmp_path / "out" / "step-0").exists()


@pytest.mark.slow
def test_a_hugging_face_llama_becomes_the_base_its_clone_keeps_logits_and_a_language_adapts(
    base_repo, real_tokens
):
    repo, env, _ = base_repo
    args = ("--configfile", "config/base-test.yaml")
    targets = (f"evals/{LANG}-1x", f"checkpoints/{LANG}-1x-cloned")
    dry = run_tool(repo, "snakemake", "-n", *targets, *args, env=env)
    assert set(planned_resources(dry, "train")) == {f"run={LANG}-1x", f"run={LANG}-1x-cloned"}
    assert set(planned_resources(dry, "fetch_checkpoint")) == {"model=english-1x"}
    run_tool(repo, "snakemake", "--cores", "2", *targets, *args, env=env)

    ck = repo / "checkpoints"
    base = AutoModelForCausalLM.from_pretrained(ck / "english-1x" / "final", dtype=torch.float32).eval()
    clone = AutoModelForCausalLM.from_pretrained(ck / "english-1x-cloned" / "final", dtype=torch.float32)
    assert type(clone) is LlamaForCausalLM and not clone.config.tie_word_embeddings  # still a plain Llama
    assert clone.config.hidden_size == 64 and clone.config.num_key_value_heads == 4
    tokens = real_tokens % base.config.vocab_size
    with torch.no_grad():
        logits = base(tokens).logits
        delta = (logits - clone.eval()(tokens).logits).abs().max().item()
    assert logits.abs().max() > 1.0 and delta <= FP32_BOUND, delta
    # the base's tokenizer packs the data and travels with every run trained from it
    base_tok = (ck / "english-1x" / "final" / "tokenizer.json").read_bytes()
    assert (repo / "data" / "tokenizer" / "tokenizer.json").read_bytes() == base_tok
    for setup in ("1x", "1x-cloned"):
        assert (ck / f"{LANG}-{setup}" / "final" / "tokenizer.json").read_bytes() == base_tok
        assert read_card(ck / f"{LANG}-{setup}" / "final")["step"] == 3
    assert sorted(p.name for p in (repo / "evals" / f"{LANG}-1x" / "3").glob("*.json")) == [
        "growup_blimp_single_error.json",
        "multiblimp_eng.json",
        f"multiblimp_{LANG}.json",
    ]
