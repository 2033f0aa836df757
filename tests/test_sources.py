"""The real loaders against the Hub or the mirror: FineWeb-2, smollm-corpus, Software Heritage, eval sets."""

from __future__ import annotations

import gzip
from dataclasses import replace

import pytest

from growup import hub
from growup.data import sources
from growup.data.rawstore import RawDataset
from growup.errors import GrowupError


def test_english_split_is_80_20_seeded_and_disjoint(mini_study):
    parts = sources.english_split(mini_study)
    train_ids, test_ids = parts["english-80"][0], parts["english-20"][0]
    total = len(train_ids) + len(test_ids)
    assert abs(len(test_ids) - 0.2 * total) <= 1
    assert not set(train_ids) & set(test_ids)
    assert sources.english_split(mini_study)["english-80"][0] == train_ids
    other = replace(mini_study, data=replace(mini_study.data, english_split_seed=7))
    assert sources.english_split(other)["english-80"][0] != train_ids


def test_languages_shuffle_as_configured(mini_study):
    ekk = mini_study.data.language("ekk")
    ids, texts, source = sources.language_documents(mini_study, ekk)
    plain_ids, _, _ = sources.language_documents(mini_study, replace(ekk, shuffle=False))
    assert sorted(ids) == sorted(plain_ids) and ids != plain_ids
    assert source["shuffled"] is True and source["hub_id"] == "HuggingFaceFW/fineweb-2"
    swe = mini_study.data.language("swe")
    assert swe.shuffle is False  # STUDY.md: Swedish is not shuffled
    assert all(texts)


def test_code_contents_come_from_software_heritage(mini_study, hub_root):
    blob_ids, texts, _ = sources.code_documents(mini_study)
    assert len(blob_ids) == len(texts) > 0
    base = sources.swh_base(mini_study)
    if hub_root is not None:
        assert base == str(hub_root.parent / "softwareheritage" / "content")
        first = gzip.decompress((hub_root.parent / "softwareheritage" / "content" / blob_ids[0]).read_bytes())
        assert texts[0] == first.decode("utf-8", errors="ignore")
    assert "def " in "".join(texts[:5])


def test_missing_blob_names_the_blob_and_setting(tmp_path):
    with pytest.raises(GrowupError, match=r"'abc123'.*GROWUP_SWH_URL"):
        sources.fetch_blob("abc123", str(tmp_path))


def test_max_docs_caps_by_streaming(mini_study):
    spec = replace(mini_study.data.fineweb2, max_docs=5)
    assert len(sources.load_rows(spec, "isl_Latn", mini_study.hub_root)) == 5


def test_unreachable_source_names_dataset_and_setting(mini_study, tmp_path, monkeypatch):
    monkeypatch.setenv(hub.ENV_ROOT, str(tmp_path))
    with pytest.raises(GrowupError) as info:
        sources.language_documents(mini_study, mini_study.data.language("fao"))
    assert "HuggingFaceFW/fineweb-2" in str(info.value) and hub.ENV_ROOT in str(info.value)


def test_hub_root_that_is_not_a_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(hub.ENV_ROOT, str(tmp_path / "missing"))
    with pytest.raises(GrowupError, match="GROWUP_HUB_ROOT"):
        hub.hub_root()


@pytest.mark.parametrize(("lang", "config"), [("ekk", "est"), ("fas", "fas"), ("eng", "eng")])
def test_multiblimp_by_study_language(mini_study, lang, config):
    ds = sources.load_eval_set(mini_study, "multiblimp", lang)
    assert {"sen", "wrong_sen"} <= set(ds.column_names) and len(ds) > 0


def test_blimp_single_error(mini_study):
    ds = sources.load_eval_set(mini_study, "blimp")
    assert {"sentence_good", "sentence_bad"} <= set(ds.column_names) and len(ds) > 0


def test_unconfigured_or_unknown_eval_sets_fail_clearly(mini_study):
    with pytest.raises(GrowupError, match="evaluation.mpararel"):
        sources.load_eval_set(mini_study, "mpararel")
    with pytest.raises(GrowupError, match="'xyz'"):
        sources.load_eval_set(mini_study, "multiblimp", "xyz")


def test_configured_but_unreachable_mpararel(mini_study):
    study = replace(
        mini_study,
        evaluation={
            **mini_study.evaluation,
            "mpararel": {"hub_id": "liu-nlp/minimal_pair_mpararel", "split": "train"},
        },
    )
    with pytest.raises(GrowupError, match="liu-nlp/minimal_pair_mpararel"):
        sources.load_eval_set(study, "mpararel")


def test_raw_dataset_records_provenance(mini_data):
    raw = RawDataset.open(mini_data / "raw" / "fas")
    source = raw.source
    assert source["hub_id"] == "HuggingFaceFW/fineweb-2" and source["config"] == "pes_Arab"
    assert source["documents"] == len(raw) and source["characters"] == sum(map(len, raw.texts()))
    with pytest.raises(GrowupError, match="growup data fetch"):
        RawDataset.open(mini_data / "raw" / "nope")
