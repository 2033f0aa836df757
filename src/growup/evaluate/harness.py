"""Minimal-pair evaluation through lm-eval's Python API and task YAMLs.

Tasks: lm-eval's built-in `multiblimp_<iso>` for every study language and English, growup's
`growup_blimp_single_error`, and `growup_mpararel` when configured (task YAMLs in `tasks/`).
Each task's `dataset_path` is routed through `growup.hub`, so a local mirror serves the same
tasks offline. A pair is correct when the grammatical sentence gets the higher total
log-probability (`acc`); `acc_norm` divides by the sentence's length in characters (lm-eval's
normalisation). What precedes a sentence is `evaluation.prefix`: `eos` (the document separator
growup's packing puts before every training document; default for the mini study), `bos` (the
tokenizer's BOS), or `none` (the first token is context, not scored).

Benchmark data is read by content: growup reads the task's data files itself (`read_benchmark`),
checks every pair, and hands lm-eval the rows in memory; the `datasets` cache, whose key does not
depend on the files' content, never serves a stale copy. The content's sha256 is part of the task
config written into every result. A non-finite log-likelihood (damaged or overflowing weights) is
an error, never a score.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import logging
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from growup import hub
from growup.config import EvalSetSpec, Study
from growup.errors import GrowupError
from growup.evaluate.sample import choose as choose_sample
from growup.integrity import IntegrityError
from growup.study import parse_run

log = logging.getLogger(__name__)

TASK_DIR = Path(str(resources.files("growup.evaluate") / "tasks"))
CPU_BATCH = 64  # pairs per batch on a CPU: lm-eval's auto batch size probes GPU memory only
PREFIXES = ("eos", "bos", "none")


def study_tasks(study: Study) -> list[str]:
    """The task names the study evaluates, from config."""
    ev = study.evaluation
    mb = [f"multiblimp_{lang.multiblimp}" for lang in study.data.languages if lang.multiblimp]
    mb.append("multiblimp_eng")
    if ev.multiblimp_languages is not None:
        mb = [f"multiblimp_{code}" for code in ev.multiblimp_languages]
    tasks = [*mb, "growup_blimp_single_error"]
    return [*tasks, "growup_mpararel"] if ev.mpararel else tasks


def run_tasks(study: Study, run: str) -> list[str]:
    """A trained run's tasks: every task, or, with `evaluation.every_language: false`, a language
    run's own MultiBLiMP and the English tasks (no figure, table or claim reads the others)."""
    kind, lang, _ = parse_run(study, run)
    if kind == "language" and not study.evaluation.every_language:
        return merge_tasks(study, (lang,))
    return study_tasks(study)


def merge_tasks(study: Study, languages: tuple[str, ...]) -> list[str]:
    """A merge's tasks: MultiBLiMP of its languages, and every English task."""
    iso = {lang.code: lang.multiblimp for lang in study.data.languages}
    wanted = {f"multiblimp_{iso[code]}" for code in languages if iso[code]}
    if unscored := [code for code in languages if not iso[code]]:
        log.warning(
            "no MultiBLiMP for %s (config key data.languages.<language>.multiblimp is null): scored on "
            "the English benchmarks (and the MultiBLiMP of any other language) only",
            ", ".join(unscored),
        )
    return [
        t for t in study_tasks(study) if t in wanted or not t.startswith("multiblimp_") or t.endswith("_eng")
    ]


@functools.cache
def task_manager() -> Any:
    """lm-eval's task index over lm-eval's own MultiBLiMP task folder and growup's tasks, built once
    per process (indexing all of lm-eval's task YAMLs would take seconds per call)."""
    import lm_eval.tasks
    from lm_eval.tasks import TaskManager

    multiblimp = Path(lm_eval.tasks.__file__).parent / "multiblimp"
    return TaskManager(include_path=[str(multiblimp), str(TASK_DIR)], include_defaults=False)


def task_source(study: Study, task: str) -> EvalSetSpec:
    """The evaluation set (config key `evaluation.<set>`) a task reads."""
    ev = study.evaluation
    if task.startswith("multiblimp_"):
        return ev.multiblimp
    source = ev.blimp if task == "growup_blimp_single_error" else ev.mpararel
    if source is None:
        raise GrowupError(f"task {task!r} needs config key 'evaluation.{task.split('_', 1)[1]}'")
    return source


def task_config(manager: Any, study: Study, task: str) -> dict[str, Any]:
    """The task's own YAML config with its dataset routed through the Hub root in force."""
    entry = manager.task_index.get(task)
    if entry is None or not entry.cfg:
        raise GrowupError(
            f"lm-eval has no task {task!r}: check the language codes in config key 'data.languages'"
        )
    cfg = copy.deepcopy(entry.cfg)
    source = task_source(study, task)
    if not task.startswith("multiblimp_"):
        cfg["dataset_name"] = source.config
        cfg["doc_to_choice"] = "{{[" + source.good_column + ", " + source.bad_column + "]}}"
    cfg["dataset_path"] = hub.resolve(source.hub_id, study.hub_root)
    cfg["test_split"] = source.split
    revision = source.revision if cfg["dataset_path"] == source.hub_id else None
    cfg["custom_dataset"] = read_benchmark(
        task, cfg["dataset_path"], cfg.get("dataset_name"), cfg["test_split"], choice_columns(cfg), revision
    )
    cfg.pop("include", None)
    if not cfg.get("num_fewshot"):
        # zero-shot: an empty few-shot pool, else lm-eval copies the whole test split into one
        cfg["fewshot_config"] = {"samples": []}
    return cfg


def choice_columns(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The columns a minimal-pair task scores, from its `doc_to_choice` template `{{[good, bad]}}`."""
    match = re.fullmatch(r"\{\{\s*\[([\w\s,]+)\]\s*\}\}", str(cfg.get("doc_to_choice", "")).strip())
    if not match:
        raise GrowupError(
            f"task {cfg.get('task')!r}: doc_to_choice {cfg.get('doc_to_choice')!r} is not [col, col]"
        )
    return tuple(c.strip() for c in match.group(1).split(",") if c.strip())


class BenchmarkData:
    """A task's rows, read by growup and passed to lm-eval as its `custom_dataset` (a callable).
    Its repr, which lm-eval writes into the results' task config, names the content's sha256."""

    def __init__(self, dataset: Any, split: str, sha256: str, files: list[str]) -> None:
        self.dataset, self.split, self.sha256, self.files = dataset, split, sha256, files

    def __call__(self, **_: Any) -> Any:
        import datasets

        return datasets.DatasetDict({self.split: self.dataset})

    def __repr__(self) -> str:
        return f"growup benchmark data sha256:{self.sha256} ({len(self.files)} files)"


def _front_matter(readme: Path) -> dict[str, Any]:
    import yaml

    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if not text.startswith("---"):
        return {}
    return dict(yaml.safe_load(text[3:].split("\n---", 1)[0]) or {})


def benchmark_files(root: Path, name: str | None, split: str, task: str = "") -> list[Path]:
    """The data files of subset `name` (None: the default one), split `split`, of a dataset folder
    laid out like a Hub dataset repository (the `configs` of its README, else `<name>/`)."""
    configs = _front_matter(root / "README.md").get("configs") or []
    chosen = next(
        (c for c in configs if c.get("config_name") == name or (name is None and c.get("default"))), None
    )
    if name is None and chosen is None and len(configs) == 1:
        chosen = configs[0]
    if chosen is not None:
        patterns = [
            f["path"] if isinstance(f, dict) else f
            for f in (chosen.get("data_files") or [])
            if not isinstance(f, dict) or f.get("split", "train") == split
        ]
        patterns = [p for item in patterns for p in ([item] if isinstance(item, str) else item)]
        files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    elif name is not None and (root / name).is_dir():
        files = sorted(p for p in (root / name).rglob(f"{split}*") if p.is_file())
    else:
        files = []
    if not files:
        known = [c.get("config_name") for c in configs] or sorted(
            p.name for p in root.iterdir() if p.is_dir()
        )
        raise GrowupError(
            f"task {task!r}: benchmark {str(root)!r} has no files for subset {name!r}, split {split!r} "
            f"(a missing benchmark language?); subsets: {known}"
        )
    return files


def _read_table(path: Path) -> Any:
    """One data file as a pandas frame, parsed the way `datasets` parses it."""
    import pandas as pd

    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    try:
        if suffix in (".tsv", ".csv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=suffix == ".jsonl")
    except Exception as exc:  # pandas' parser errors name the line: pass that on
        raise IntegrityError(f"benchmark file {path} cannot be parsed: {exc}") from exc
    raise GrowupError(f"benchmark file {path} has an unsupported format {suffix!r} (tsv, csv, parquet, json)")


def check_pairs(frame: Any, path: Path, columns: tuple[str, ...]) -> None:
    """Raise naming the file and row when a pair lacks a sentence (a malformed row)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise IntegrityError(
            f"benchmark file {path} has no column {missing[0]!r}; columns: {list(frame.columns)}"
        )
    for column in columns:
        bad = [i for i, v in enumerate(frame[column].tolist()) if not isinstance(v, str) or not v.strip()]
        if bad:
            line = f", line {bad[0] + 2}" if path.suffix in (".tsv", ".csv") else ""
            raise IntegrityError(
                f"benchmark file {path}: row {bad[0] + 1}{line} has no text in column {column!r} "
                f"({frame[column].iloc[bad[0]]!r}; {len(bad)} such rows): fix or restore the file"
            )


@functools.cache
def _read_benchmark_cached(stamp: tuple, columns: tuple[str, ...]) -> BenchmarkData:
    import datasets
    import pandas as pd

    files = [Path(f) for f, *_ in stamp]
    digest = hashlib.sha256()
    frames = []
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        frame = _read_table(path)
        check_pairs(frame, path, columns)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    dataset = datasets.Dataset.from_pandas(frame, preserve_index=False)
    return BenchmarkData(dataset, "", digest.hexdigest(), [str(f) for f in files])


def read_benchmark(
    task: str, path: str, name: str | None, split: str, columns: tuple[str, ...], revision: str | None = None
) -> BenchmarkData:
    """The rows of a task's data, read from the files themselves (a local folder, or the Hub
    repository's files, fetched by their content addresses), every pair checked."""
    root = Path(path)
    if not root.is_dir():
        from huggingface_hub import snapshot_download

        try:
            only = ["README.md", f"{name}/*"] if name else None  # one language, not all of them
            root = Path(snapshot_download(path, repo_type="dataset", revision=revision, allow_patterns=only))
        except Exception as exc:
            raise GrowupError(
                f"task {task!r}: dataset {path!r} is unreachable ({exc}); set {hub.ENV_ROOT} "
                "(or config key 'hub.root') to a local mirror, or check Hub access"
            ) from exc
    files = benchmark_files(root, name, split, task)
    # memoised per file version (path, size, mtime, ctime): a sweep reads each file once, an edit is re-read
    stamp = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns, f.stat().st_ctime_ns) for f in files)
    data = _read_benchmark_cached(stamp, columns)
    return BenchmarkData(data.dataset, split, data.sha256, data.files)


def _lm_class() -> type:
    from lm_eval.models.huggingface import HFLM

    class PairLM(HFLM):
        """HFLM whose empty-context scoring can leave the first token unscored (`prefix: none`)."""

        def __init__(self, *args: Any, score_first_token: bool = True, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.score_first_token = score_first_token

        def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
            if self.score_first_token:
                return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
            new = []
            for req in requests:
                context, continuation = req.args
                if context:
                    ctx, cont = self._encode_pair(context, continuation)
                else:
                    enc = self.tok_encode(continuation, add_special_tokens=False)
                    ctx, cont = enc[:1], enc[1:]
                new.append(((context, continuation), ctx, cont))
            return self._loglikelihood_tokens(new, disable_tqdm=disable_tqdm)

    return PairLM


def make_lm(model: Any, tokenizer: Any, study: Study) -> Any:
    """An lm-eval LM around an in-memory model, with the configured prefix and batch size."""
    prefix = study.evaluation.prefix
    if prefix not in PREFIXES:
        raise GrowupError(f"config key 'evaluation.prefix' is {prefix!r}; allowed: {list(PREFIXES)}")
    prefix_id = {"eos": tokenizer.eos_token_id, "bos": tokenizer.bos_token_id, "none": None}[prefix]
    if prefix != "none" and prefix_id is None:
        raise GrowupError(f"config key 'evaluation.prefix' is {prefix!r} but the tokenizer has no such token")
    batch = study.evaluation.batch_size
    if batch == "auto" and not torch.cuda.is_available():
        batch = CPU_BATCH
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return _lm_class()(
        pretrained=model.to(device),
        tokenizer=tokenizer,
        batch_size=batch,
        # on a GPU, "auto" probes down from here on OOM at the longest pair's length; lm-eval's
        # default cap of 64 short sentences leaves a GPU mostly idle. CPU: the fixed size above.
        max_batch_size=512,
        device=device,
        prefix_token_id=prefix_id,
        score_first_token=prefix != "none",
        # whole sentences are scored even past the trained context (rare; lm-eval would truncate)
        max_length=max(model.config.max_position_embeddings, 2048),
    )


VOLATILE = (
    "date",
    "start_time",
    "end_time",
    "total_evaluation_time_seconds",
    "pretty_env_info",
    "git_hash",
    "upper_git_hash",
    "transformers_version",
    "lm_eval_version",
)


_TASKS: dict[str, Any] = {}


class Rows(list):
    """A task's rows as plain dicts, with the `datasets.Dataset` column access the sampler reads.
    lm-eval walks a task's whole split several times per checkpoint, even to score a sample of
    it; a Dataset formats every row it yields (about 50 us a row), a list yields it at once."""

    def __init__(self, dataset: Any) -> None:
        super().__init__(dataset.to_list())
        self.column_names = list(dataset.column_names)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return [row[key] for row in self]
        return super().__getitem__(key)


def _as_rows(task: Any) -> Any:
    """`task` reading its splits from `Rows` (its features were read from the Dataset at set-up)."""
    task.dataset = {split: Rows(docs) for split, docs in task.dataset.items()}
    return task


def build_tasks(study: Study, tasks: list[str]) -> list[Any]:
    """lm-eval Task objects for `tasks`, each built (its dataset loaded) once per process and then
    reused, so a sweep over many checkpoints pays for dataset loading once."""
    import json

    manager = task_manager()
    configs = {task: task_config(manager, study, task) for task in tasks}
    keys = {task: json.dumps(cfg, sort_keys=True, default=str) for task, cfg in configs.items()}
    missing = [task for task in tasks if keys[task] not in _TASKS]
    if missing:
        try:
            loaded = manager.load([configs[t] for t in missing])["tasks"]
        except (ConnectionError, FileNotFoundError, OSError) as exc:
            raise GrowupError(
                f"an evaluation dataset of tasks {missing} is unreachable ({exc}); set {hub.ENV_ROOT} "
                "(or config key 'hub.root') to a local mirror, or check Hub access"
            ) from exc
        _TASKS.update({keys[t]: _as_rows(loaded[t]) for t in missing})
    return [_TASKS[keys[t]] for t in tasks]


@functools.cache
def _template(text: str) -> Any:
    import lm_eval.utils

    return lm_eval.utils.env.from_string(text)


def _apply_template(template: str, doc: dict[str, Any]) -> str:
    return _template(template).render(**doc)


@contextlib.contextmanager
def lean_lm_eval() -> Any:
    """lm-eval with two costs per checkpoint taken out, its results unchanged: git and torch's
    environment report (about 20 subprocesses, 0.7 s) for keys growup drops (VOLATILE), and the
    compiling of a Jinja template for every field of every pair (lm-eval's `apply_template`; the
    few templates of a task are compiled once here, in lm-eval's own environment)."""
    import lm_eval.evaluator
    import lm_eval.utils

    swaps = [
        (lm_eval.evaluator, "add_env_info", lambda results: None),
        (lm_eval.evaluator, "get_git_commit_hash", lambda: None),
        (lm_eval.utils, "apply_template", _apply_template),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in swaps]
    for module, name, value in swaps:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def check_finite(results: dict[str, Any], model: str) -> None:
    """Raise on a non-finite log-likelihood: damaged weights or an overflow, never a score."""
    for task, samples in results.get("samples", {}).items():
        for sample in samples:
            values = [r[0] for r in sample.get("filtered_resps", [])]
            if not all(math.isfinite(v) for v in values):
                raise IntegrityError(
                    f"{model}: task {task!r} pair {sample.get('doc_id')} has log-likelihoods {values}: the "
                    "weights are damaged or overflow in config key 'evaluation.dtype'; check the "
                    "checkpoint (sha256sum -c checksums.sha256) or evaluate in float32"
                )


def evaluate(lm: Any, study: Study, tasks: list[str], limit: int | None = None) -> dict[str, Any]:
    """Run lm-eval on `tasks`; returns its results dict (with per-pair samples), minus timings.
    With a `limit`, each task scores its stratified sample (`growup.evaluate.sample`), recorded
    under `growup_samples`."""
    import lm_eval

    built = build_tasks(study, tasks)
    strata = {task: task_source(study, task).strata for task in tasks}
    chosen = choose_sample(tasks, built, limit, strata, study.evaluation.sample_seed)
    with lean_lm_eval():
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=built,
            task_manager=task_manager(),
            samples={task: list(s.ids) for task, s in chosen.items()} if chosen else None,
            log_samples=True,
            bootstrap_iters=1000,
            random_seed=0,
            numpy_random_seed=0,
            torch_random_seed=0,
            fewshot_random_seed=0,
        )
    check_finite(results, getattr(getattr(lm, "model", None), "name_or_path", "the model"))
    if chosen:
        results["growup_samples"] = {task: s.record() for task, s in chosen.items()}
    for key in VOLATILE:
        results.pop(key, None)
    for cfg in results.get("configs", {}).values():  # Hub ids, not where the mirror lives
        if isinstance(cfg.get("dataset_path"), str):
            cfg["dataset_path"] = hub.unresolve(cfg["dataset_path"], study.hub_root)
    return results
