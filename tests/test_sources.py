"""The real loaders against the Hub or the mirror: FineWeb-2, smollm-corpus, Software Heritage, eval sets."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from growup import hub
from growup.config import Study
from growup.data import sources
from growup.data.rawstore import RawDataset
from growup.errors import GrowupError
from helpers import skip_or_fail


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
def test_multiblimp_by_study_language(mini_study, hub_root, lang, config):
    """A study language loads MultiBLiMP's file of its code (ekk: Estonian's `est`), row for row."""
    import csv

    ds = sources.load_eval_set(mini_study, "multiblimp", lang)
    assert {"sen", "wrong_sen"} <= set(ds.column_names) and len(ds) > 0
    if hub_root is None:
        skip_or_fail("the rows are compared with the local mirror's files")
    with (hub_root / "jumelet" / "multiblimp" / config / "data.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["sen"], r["wrong_sen"]) for r in rows] == list(zip(ds["sen"], ds["wrong_sen"], strict=True))


def test_blimp_single_error(mini_study):
    ds = sources.load_eval_set(mini_study, "blimp")
    assert {"sentence_good", "sentence_bad"} <= set(ds.column_names) and len(ds) > 0


def test_unconfigured_or_unknown_eval_sets_fail_clearly(mini_study):
    with pytest.raises(GrowupError, match="evaluation.mpararel"):
        sources.load_eval_set(mini_study, "mpararel")
    with pytest.raises(GrowupError, match="'xyz'"):
        sources.load_eval_set(mini_study, "multiblimp", "xyz")


def test_configured_but_unreachable_mpararel(mini_study):
    study = Study.from_mapping(
        {
            **mini_study.raw,
            "evaluation": {
                **mini_study.raw["evaluation"],
                "mpararel": {"hub_id": "liu-nlp/minimal_pair_mpararel", "split": "train"},
            },
        }
    )
    with pytest.raises(GrowupError, match="liu-nlp/minimal_pair_mpararel"):
        sources.load_eval_set(study, "mpararel")


def test_raw_dataset_records_provenance(mini_data):
    raw = RawDataset.open(mini_data / "raw" / "fas")
    source = raw.source
    assert source["hub_id"] == "HuggingFaceFW/fineweb-2" and source["config"] == "fas_Arab"
    assert source["documents"] == len(raw) and source["characters"] == sum(map(len, raw.texts()))
    with pytest.raises(GrowupError, match="growup data fetch"):
        RawDataset.open(mini_data / "raw" / "nope")


def split_stand_in(root, ids_80: list[str], ids_20: list[str]) -> None:
    """A local stand-in of liu-nlp/fineweb-data-80-20-split-indices: one split per part, each
    with the documents' UUID string ids in column `id` (its real layout is not mirrored)."""
    import datasets

    folder = root / "liu-nlp" / "fineweb-data-80-20-split-indices" / "data"
    folder.mkdir(parents=True)
    datasets.Dataset.from_dict({"id": ids_80}).to_parquet(str(folder / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_dict({"id": ids_20}).to_parquet(str(folder / "test-00000-of-00001.parquet"))


def test_released_split_reads_uuid_ids(mini_study, hub_root, tmp_path, monkeypatch):
    if hub_root is None:
        skip_or_fail("the stand-in sits next to a local mirror")
    corpus = hub.load_dataset("HuggingFaceTB/smollm-corpus", "fineweb-edu-dedup", "train", str(hub_root))
    ids = list(corpus["id"])
    assert ids[0].startswith("<urn:uuid:")
    order = [ids[i] for i in np.random.default_rng(3).permutation(len(ids))]
    cut = len(ids) * 4 // 5
    absent = "<urn:uuid:00000000-0000-0000-0000-000000000000>"  # an id the corpus lacks
    split_stand_in(tmp_path, [*order[:cut], absent], order[cut:])
    (tmp_path / "HuggingFaceTB").symlink_to(hub_root / "HuggingFaceTB")
    monkeypatch.setenv(hub.ENV_ROOT, str(tmp_path))
    released = {"hub_id": "liu-nlp/fineweb-data-80-20-split-indices", "id_column": "id"}
    study = replace(mini_study, data=replace(mini_study.data, english_released_split=released))
    parts = sources.english_split(study)
    train_ids, train_texts, source = parts["english-80"]
    assert train_ids == order[:cut] and parts["english-20"][0] == order[cut:]
    assert train_texts[0] == corpus[ids.index(order[0])]["text"]
    assert source["split"] == "released" and source["ids_not_in_corpus"] == {"english-80": 1, "english-20": 0}
    with pytest.raises(GrowupError, match="id_column"):
        sources.english_split(replace(study, data=replace(study.data, english_released_split={
            **released, "id_column": "uuid"})))  # fmt: skip


def test_paper_config_fetches_persian_from_fas_arab(hub_root, tmp_path, monkeypatch):
    """`growup data fetch --source fas` under config/paper.yaml asks the Hub for fineweb-2 fas_Arab."""
    from growup.data import prepare
    from growup.study import load_config

    paper = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    paper = replace(paper, data=replace(paper.data, fineweb2=replace(paper.data.fineweb2, max_docs=3)))
    asked = []
    real = hub.load_dataset

    def spy(repo_id, name=None, *args, **kwargs):
        asked.append((repo_id, name))
        return real(repo_id, name, *args, **kwargs)

    monkeypatch.setattr(hub, "load_dataset", spy)
    (path,) = prepare.fetch(paper, "fas", tmp_path)
    assert asked == [("HuggingFaceFW/fineweb-2", "fas_Arab")]
    raw = RawDataset.open(path)
    assert len(raw) == 3 and raw.source["config"] == "fas_Arab"
