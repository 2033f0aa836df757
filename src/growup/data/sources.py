"""The study's sources by their real Hub ids: FineWeb-2 subsets, smollm-corpus English and code
(whose contents live in the Software Heritage bucket), and the English 80/20 split.

Every loader goes through `growup.hub`, so the same code reads the Hub or a local mirror.
"""

from __future__ import annotations

import gzip
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

from tqdm import tqdm

from growup import hub
from growup.config import LanguageSpec, SourceSpec, Study
from growup.errors import GrowupError
from growup.study import ENGLISH_ADAPTATION, ENGLISH_BASE

SWH_ENV = "GROWUP_SWH_URL"
SWH_PUBLIC = "https://softwareheritage.s3.amazonaws.com/content"


def load_rows(spec: SourceSpec, config: str | None, hub_root: str | None) -> Any:
    """A `datasets.Dataset` of the source's split; the first `max_docs` rows when capped.

    A cap streams, so a small sample of a terabyte-scale Hub dataset downloads only that sample.
    """
    import datasets

    if spec.max_docs is None:
        return hub.load_dataset(spec.hub_id, config, spec.split, hub_root, spec.revision)
    stream = hub.load_dataset(spec.hub_id, config, spec.split, hub_root, spec.revision, streaming=True)
    try:
        rows = list(islice(stream, spec.max_docs))
    except Exception as exc:
        raise GrowupError(
            f"cannot read dataset {spec.hub_id!r} (config {config!r}): {exc}. "
            f"Set {hub.ENV_ROOT} (or config key 'hub.root') to a local mirror, or check Hub access."
        ) from exc
    return datasets.Dataset.from_list(rows)


def provenance(spec: SourceSpec, config: str | None, hub_root: str | None, **extra: Any) -> dict[str, Any]:
    """Where a raw dataset came from: id, config, split, revision, and whether the Hub or a local
    mirror was read (no machine paths, so the same data gives the same bytes on every machine)."""
    root = hub.hub_root(hub_root)
    return {
        "hub_id": spec.hub_id,
        "config": config,
        "split": spec.split,
        "revision": spec.revision,
        "max_docs": spec.max_docs,
        "root": "hub" if root is None else "local mirror",
        **extra,
    }


def language_documents(study: Study, lang: LanguageSpec) -> tuple[list[str], list[str], dict[str, Any]]:
    """A language's FineWeb-2 training documents, shuffled with `datasets.shuffle` if configured."""
    ds = load_rows(study.data.fineweb2, lang.subset, study.hub_root)
    if lang.shuffle:
        ds = ds.shuffle(seed=study.data.shuffle_seed)
    source = provenance(
        study.data.fineweb2, lang.subset, study.hub_root, shuffled=lang.shuffle, shuffle_seed=study.data.shuffle_seed
    )
    return list(ds["id"]), list(ds["text"]), source


def english_split(study: Study) -> dict[str, tuple[list[str], list[str], dict[str, Any]]]:
    """The English corpus split 80/20: seeded `train_test_split`, or the published split's ids."""
    spec = study.data.english
    ds = load_rows(spec, spec.config, study.hub_root)
    released = study.data.english_released_split
    if released:
        (train_idx, test_idx), missing = released_split_rows(released, list(ds["id"]), study.hub_root)
        parts = {ENGLISH_BASE: ds.select(train_idx), ENGLISH_ADAPTATION: ds.select(test_idx)}
        how = {"split": "released", "split_ids": released["hub_id"], "ids_not_in_corpus": missing}
    else:
        split = ds.train_test_split(test_size=study.data.english_test_size, seed=study.data.english_split_seed)
        parts = {ENGLISH_BASE: split["train"], ENGLISH_ADAPTATION: split["test"]}
        how = {"split": "train_test_split", "test_size": study.data.english_test_size,
               "split_seed": study.data.english_split_seed}
    return {
        name: (list(part["id"]), list(part["text"]), provenance(spec, spec.config, study.hub_root, part=name, **how))
        for name, part in parts.items()
    }


def released_split_ids(released: Mapping[str, Any], hub_root: str | None) -> tuple[list[str], list[str]]:
    """The document ids (UUID strings such as `<urn:uuid:...>`) of the published 80% and 20% parts.

    Layout (config keys under `data.english.released_split`): one split per part (`train_split`,
    `test_split`, default train/test), each with the ids in column `id_column` (default id).
    """
    column = released.get("id_column", "id")
    parts = []
    for key, default in (("train_split", "train"), ("test_split", "test")):
        split = released.get(key, default)
        ds = hub.load_dataset(released["hub_id"], released.get("config"), split, hub_root, released.get("revision"))
        if column not in ds.column_names:
            raise GrowupError(
                f"split dataset {released['hub_id']!r} (split {split!r}) has columns {ds.column_names}, not "
                f"{column!r}: set config key 'data.english.released_split.id_column'"
            )
        parts.append([str(i) for i in ds[column] if i is not None])
    return parts[0], parts[1]


def released_split_rows(
    released: Mapping[str, Any], corpus_ids: Sequence[str], hub_root: str | None
) -> tuple[tuple[list[int], list[int]], dict[str, int]]:
    """Row indices of the corpus in each published part, in the part's order, and how many of each
    part's ids the corpus lacks (a `max_docs` sample holds only some of them)."""
    train_ids, test_ids = released_split_ids(released, hub_root)
    overlap = set(train_ids) & set(test_ids)
    if overlap:
        raise GrowupError(
            f"split dataset {released['hub_id']!r} puts {len(overlap)} ids in both parts, e.g. {sorted(overlap)[0]!r}"
        )
    row = {doc_id: i for i, doc_id in enumerate(corpus_ids)}
    rows = ([row[i] for i in train_ids if i in row], [row[i] for i in test_ids if i in row])
    missing = {ENGLISH_BASE: len(train_ids) - len(rows[0]), ENGLISH_ADAPTATION: len(test_ids) - len(rows[1])}
    if not rows[0] or not rows[1]:
        raise GrowupError(
            f"no document of the English corpus is in the published split {released['hub_id']!r} "
            f"({len(train_ids)} + {len(test_ids)} ids, {len(corpus_ids)} corpus rows): check config keys "
            "'data.english.released_split' and 'data.english.max_docs'"
        )
    return rows, missing


def swh_base(study: Study) -> str:
    """Where Software Heritage contents live: env, config, the mirror's store, or the public bucket."""
    explicit = os.environ.get(SWH_ENV) or study.data.softwareheritage_url
    if explicit:
        return explicit
    root = hub.hub_root(study.hub_root)
    return SWH_PUBLIC if root is None else str(root.parent / "softwareheritage" / "content")


def fetch_blob(blob_id: str, base: str, timeout: float = 60) -> str:
    """One file's text from `<base>/<blob_id>` (gzip), a URL or a local folder."""
    try:
        if base.startswith(("http://", "https://")):
            with urllib.request.urlopen(f"{base.rstrip('/')}/{blob_id}", timeout=timeout) as resp:
                data = resp.read()
        else:
            data = (Path(base) / blob_id).read_bytes()
        return gzip.decompress(data).decode("utf-8", errors="ignore")
    except (OSError, urllib.error.URLError, EOFError) as exc:
        raise GrowupError(
            f"cannot fetch Software Heritage blob {blob_id!r} from {base!r}: {exc}. "
            f"Set {SWH_ENV} (or config key 'data.code.softwareheritage_url') to the content store."
        ) from exc


def code_documents(study: Study, workers: int = 16) -> tuple[list[str], list[str], dict[str, Any]]:
    """python-edu rows (blob ids) with their contents fetched from Software Heritage, in row order."""
    spec = study.data.code
    ds = load_rows(spec, spec.config, study.hub_root)
    base = swh_base(study)
    blob_ids = list(ds["blob_id"])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        texts = list(tqdm(pool.map(lambda b: fetch_blob(b, base), blob_ids), total=len(blob_ids),
                          desc="python-edu contents", unit="file"))
    where = base if base.startswith(("http://", "https://")) else "local store"
    source = provenance(spec, spec.config, study.hub_root, softwareheritage=where)
    return blob_ids, texts, source


EVAL_SETS = ("multiblimp", "blimp", "mpararel")


def load_eval_set(study: Study, name: str, language: str | None = None) -> Any:
    """An evaluation set by its config entry (`evaluation.<name>`): MultiBLiMP for a language code
    (a study language or `eng`), English BLiMP single-error, or minimal-pair mParaRel."""
    if name not in EVAL_SETS:
        raise GrowupError(f"unknown evaluation set {name!r}; allowed: {list(EVAL_SETS)}")
    entry = study.evaluation.dataset(name)
    if entry is None:
        raise GrowupError(f"evaluation set {name!r} is not configured (config key 'evaluation.{name}' is null)")
    config = entry.config
    if name == "multiblimp":
        if language is None:
            raise GrowupError("MultiBLiMP needs a language: a study language code or 'eng'")
        codes = {"eng": "eng", **{lang.code: lang.multiblimp for lang in study.data.languages}}
        if language not in codes:
            raise GrowupError(f"no MultiBLiMP language for {language!r}; configured: {sorted(codes)}")
        config = codes[language]
    return hub.load_dataset(entry.hub_id, config, entry.split, study.hub_root, entry.revision)
