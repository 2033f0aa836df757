"""The `growup model` verbs through the installed console script, as a user or a rule calls them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from growup.models.checkpoint import read_card
from helpers import REPO

GROWUP = str(Path(sys.executable).parent / "growup")
MINI = str(REPO / "config" / "config.yaml")


def growup(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([GROWUP, *args], capture_output=True, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_count_paper_config():
    out = growup("model", "count", "--configfile", str(REPO / "config" / "paper.yaml")).stdout
    assert "180.08M" in out and "572.49M" in out
    assert "1.080G" in out and "3.435G" in out  # 6N per token
    assert "1.505G" in out and "4.284G" in out  # 6N + attention at 2,048


def test_count_json_matches_checkpoint_count(tmp_path):
    growup("model", "init", "--configfile", MINI, "--out", str(tmp_path / "seed"))
    by_config = json.loads(growup("model", "count", "--configfile", MINI, "--json").stdout)
    by_ckpt = json.loads(growup("model", "count", "--checkpoint", str(tmp_path / "seed"), "--json").stdout)
    assert by_ckpt[0]["params"] == by_config[0]["params"]


def test_init_is_deterministic_and_plain_llama(tmp_path):
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        growup("model", "init", "--configfile", MINI, "--out", str(tmp_path / name), "--seed", seed)
    weights = {n: (tmp_path / n / "model.safetensors").read_bytes() for n in "abc"}
    assert weights["a"] == weights["b"] and weights["a"] != weights["c"]
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (
        config["model_type"] == "llama" and config["hidden_act"] == "gelu" and config["tie_word_embeddings"]
    )
    assert config["rope_parameters"]["rope_theta"] == 10000.0
    assert read_card(tmp_path / "a") == {
        "operation": "init",
        "seed": 3,
        "step": 0,
        "tokens": 0,
        "flops": 0,
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_clone_cli_preserves_logits(tmp_path, real_tokens):
    growup("model", "init", "--configfile", MINI, "--out", str(tmp_path / "seed"))
    growup(
        "model",
        "clone",
        "--checkpoint",
        str(tmp_path / "seed"),
        "--out",
        str(tmp_path / "wide"),
        "--configfile",
        MINI,
    )
    source = AutoModelForCausalLM.from_pretrained(tmp_path / "seed").eval()
    clone = AutoModelForCausalLM.from_pretrained(tmp_path / "wide").eval()
    assert clone.config.model_type == "hyperllama" and clone.config.lm_head_normalization_factor == 2
    with torch.no_grad():
        delta = (source(real_tokens).logits - clone(real_tokens).logits).abs().max().item()
    assert delta <= 1e-5
    card = read_card(tmp_path / "wide")
    assert card["operation"] == "hyperclone x2" and card["parent"] == str(tmp_path / "seed")


def test_clone_rejects_bad_factor(tmp_path):
    growup("model", "init", "--configfile", MINI, "--out", str(tmp_path / "seed"))
    proc = growup(
        "model",
        "clone",
        "--checkpoint",
        str(tmp_path / "seed"),
        "--out",
        str(tmp_path / "w"),
        "--factor",
        "2.5",
        ok=False,
    )
    assert proc.returncode == 2 and "2.5" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists()


def test_missing_checkpoint_is_named(tmp_path):
    proc = growup(
        "model", "clone", "--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "w"), ok=False
    )
    assert proc.returncode == 2 and str(tmp_path / "nope") in proc.stderr


def _tokenizer(folder: Path) -> int:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from growup.data.tokenizer import save_tokenizer

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>"], show_progress=False)
    tok.train_from_iterator(["growing up and merging models"] * 10, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    save_tokenizer(fast, folder)  # growup's writer: the files and their checksums
    return len(fast)


def test_init_takes_vocab_from_tokenizer(tmp_path):
    size = _tokenizer(tmp_path / "tok")
    proc = growup(
        "model",
        "init",
        "--configfile",
        MINI,
        "--out",
        str(tmp_path / "m"),
        "--tokenizer",
        str(tmp_path / "tok"),
        ok=False,
    )
    assert (
        proc.returncode == 2 and f"has {size} tokens" in proc.stderr and "tokenizer.vocab_size" in proc.stderr
    )

    raw = yaml.safe_load(Path(MINI).read_text())
    raw["tokenizer"]["vocab_size"] = size
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    growup(
        "model",
        "init",
        "--configfile",
        str(tmp_path / "cfg.yaml"),
        "--out",
        str(tmp_path / "m"),
        "--tokenizer",
        str(tmp_path / "tok"),
    )
    assert json.loads((tmp_path / "m" / "config.json").read_text())["vocab_size"] == size
    assert (tmp_path / "m" / "tokenizer.json").is_file()


def test_invalid_config_stops_with_key(tmp_path):
    raw = yaml.safe_load(Path(MINI).read_text())
    raw["model"]["num_hidden_layers"] = 0
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    proc = growup("model", "count", "--configfile", str(tmp_path / "cfg.yaml"), ok=False)
    assert proc.returncode == 2 and "'model.num_hidden_layers'" in proc.stderr and "0" in proc.stderr


@pytest.mark.parametrize("fail", [False, True])
def test_atomic_dir(tmp_path, fail):
    from growup.io import atomic_dir

    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    try:
        with atomic_dir(final) as tmp:
            (tmp / "new.txt").write_text("new")
            if fail:
                raise RuntimeError("killed")
    except RuntimeError:
        pass
    names = sorted(p.name for p in final.iterdir())
    assert names == (["old.txt"] if fail else ["new.txt"])
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027])
def test_atomic_writes_get_the_modes_plain_writes_would(tmp_path, umask):
    """Each atomic writer gives the mode open()/mkdir() give under the umask in force at write
    time (set here after growup.io was imported), compared with a plain write in the same folder."""
    from growup.io import atomic_dir, atomic_file, atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_file(tmp_path / "b.csv") as tmp:
            tmp.write_text("y")
        with atomic_dir(tmp_path / "c") as tmp:
            (tmp / "f").write_text("z")
        (tmp_path / "plain.txt").write_text("p")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    assert (modes["plain.txt"], modes["plain"]) == (file_mode, dir_mode)
    assert modes == {
        "a.txt": file_mode,
        "b.csv": file_mode,
        "c": dir_mode,
        "plain.txt": file_mode,
        "plain": dir_mode,
    }
