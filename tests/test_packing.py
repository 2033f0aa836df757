"""Packed shards decode back to the original documents; the preparation is byte-for-byte repeatable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from growup.data.packing import PackedDataset, pack
from growup.data.rawstore import RawDataset
from growup.errors import GrowupError
from helpers import prepare_mini_data


@pytest.fixture(scope="module")
def tokenizer(mini_data):
    return AutoTokenizer.from_pretrained(mini_data / "tokenizer")


def test_decoding_the_stream_gives_back_every_document_in_order(mini_data, tokenizer):
    packed = PackedDataset.open(mini_data / "packed" / "isl")
    m = packed.manifest
    assert len(m["shards"]) > 1, "the test must cross shard boundaries"
    stream = packed.tokens(0, m["tokens"])
    eos = m["eos_token_id"]
    docs = np.split(stream, np.flatnonzero(stream == eos) + 1)[:-1]
    texts = RawDataset.open(mini_data / "raw" / "isl").texts()
    assert len(docs) == len(texts) == m["documents"]
    for doc, text in zip(docs, texts, strict=True):
        assert doc[-1] == eos and eos not in doc[:-1]
        assert tokenizer.decode(doc[:-1]) == text
    starts = np.asarray(packed.doc_starts)
    assert starts[0] == 0 and np.all(stream[starts[1:] - 1] == eos)


def test_sequences_tile_the_stream_across_shards(mini_data):
    packed = PackedDataset.open(mini_data / "packed" / "isl")
    m = packed.manifest
    seqs = np.concatenate([packed.sequence(i) for i in range(len(packed))])
    assert len(seqs) == m["sequences"] * m["sequence_length"] == m["tokens"] - m["tail_tokens"]
    on_disk = np.concatenate(
        [np.fromfile(mini_data / "packed" / "isl" / s["file"], dtype="<u4") for s in m["shards"]]
    )
    assert np.array_equal(seqs, on_disk[: len(seqs)]) and len(on_disk) == m["tokens"]
    assert all(s["tokens"] % m["sequence_length"] == 0 for s in m["shards"][:-1])
    with pytest.raises(IndexError):
        packed.sequence(len(packed))


def test_positions_reset_at_document_and_sequence_starts(mini_data):
    packed = PackedDataset.open(mini_data / "packed" / "isl")
    eos = packed.manifest["eos_token_id"]
    for i in (0, 1, len(packed) // 2, len(packed) - 1):
        seq, pos = packed.sequence(i), packed.positions(i)
        assert pos[0] == 0
        for t in range(1, len(seq)):
            assert pos[t] == (0 if seq[t - 1] == eos else pos[t - 1] + 1)


def test_manifest_records_counts_hashes_source_and_config(mini_data):
    m = json.loads((mini_data / "packed" / "fao" / "manifest.json").read_text())
    assert m["source"]["hub_id"] == "HuggingFaceFW/fineweb-2" and m["source"]["config"] == "fao_Latn"
    assert m["config"]["sequence_length"] == 256 and len(m["tokenizer_sha256"]) == 64
    assert all(len(s["sha256"]) == 64 for s in m["shards"])


def test_corruption_is_detected(mini_data, tmp_path):
    import shutil

    copy = tmp_path / "fao"
    shutil.copytree(mini_data / "packed" / "fao", copy)
    PackedDataset.open(copy).verify()
    with (copy / "shard-00000.bin").open("r+b") as fh:
        fh.seek(8)
        fh.write(b"\xff\xff\xff\xff")
    with pytest.raises(GrowupError, match="corrupt"):
        PackedDataset.open(copy).verify()


def test_unknown_eos_token_is_an_error(mini_data, tokenizer, tmp_path):
    with pytest.raises(GrowupError, match="tokenizer.eos_token"):
        pack([["a b"]], tokenizer, tmp_path / "x", 16, 64, "<|nope|>", {})
    assert not (tmp_path / "x").exists()


def test_preparation_twice_is_byte_identical(mini_data, tmp_path):
    again = prepare_mini_data(tmp_path / "again")
    first = sorted(p.relative_to(mini_data) for p in mini_data.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second and len(first) > 40
    different = [str(p) for p in first if (mini_data / p).read_bytes() != (again / p).read_bytes()]
    assert different == []


def test_bos_separator_starts_every_document(mini_data, tokenizer, tmp_path):
    """separator bos (the authors' packing): BOS before each document, no EOS, and positions
    restart at each BOS."""
    docs = ["Hej hopp i lingonskogen.", "Ein annar tekstur her.", "Kolmas dokumentti on tämä."] * 6
    m = pack([docs], tokenizer, tmp_path / "b", 16, 64, "<|end_of_text|>", {}, separator="bos",
             bos_token="<|begin_of_text|>")  # fmt: skip
    bos, eos = tokenizer.convert_tokens_to_ids("<|begin_of_text|>"), tokenizer.eos_token_id
    packed = PackedDataset.open(tmp_path / "b")
    stream = packed.tokens(0, m["tokens"])
    starts = np.asarray(packed.doc_starts).astype(np.int64)
    assert m["separator"] == "bos" and m["separator_token_id"] == bos and "eos_token_id" not in m
    assert len(starts) == len(docs) and np.all(stream[starts] == bos)
    assert int((stream == bos).sum()) == len(docs) and eos not in stream
    for i, doc in enumerate(np.split(stream, starts[1:])):
        assert tokenizer.decode(doc[1:]) == docs[i]
    for i in range(len(packed)):
        seq, pos = packed.sequence(i), packed.positions(i)
        assert all(pos[t] == 0 for t in range(1, len(seq)) if seq[t] == bos)


def test_unknown_separator_or_bos_token_is_an_error(mini_data, tokenizer, tmp_path):
    with pytest.raises(GrowupError, match="data.packing.separator"):
        pack([["a b"]], tokenizer, tmp_path / "x", 16, 64, "<|end_of_text|>", {}, separator="sep")
    with pytest.raises(GrowupError, match="tokenizer.bos_token"):
        pack(
            [["a b"]],
            tokenizer,
            tmp_path / "x",
            16,
            64,
            "<|end_of_text|>",
            {},
            separator="bos",
            bos_token="<|no|>",
        )


def test_positions_over_the_whole_row_when_not_reset(mini_data):
    """training.reset_positions false (the authors' Llama runs): positions 0..L-1 in every row."""
    from growup.train.mixture import Mixture, Phase, Portion

    ds = {"fao": PackedDataset.open(mini_data / "packed" / "fao")}
    phases = [Phase((Portion("fao", 1.0, 42),), 42)]
    tokens, positions = Mixture(phases, ds, reset_positions=False).batch(0, 4)
    reset_tokens, reset = Mixture(phases, ds).batch(0, 4)
    assert (tokens == reset_tokens).all() and (positions == np.arange(tokens.shape[1])).all()
    assert (reset != positions).any()  # documents start inside these rows
