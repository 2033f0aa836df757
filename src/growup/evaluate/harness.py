"""Minimal-pair evaluation through lm-eval's Python API and task YAMLs.

Tasks: lm-eval's built-in `multiblimp_<iso>` for every study language and English, growup's
`growup_blimp_single_error`, and `growup_mpararel` when configured (task YAMLs in `tasks/`).
Each task's `dataset_path` is routed through `growup.hub`, so a local mirror serves the same
tasks offline. A pair is correct when the grammatical sentence gets the higher total
log-probability (`acc`); `acc_norm` divides by the sentence's length in characters (lm-eval's
normalisation). What precedes a sentence is `evaluation.prefix`: `eos` (the document separator
growup's packing puts before every training document; default for the mini study), `bos` (the
tokenizer's BOS), or `none` (the first token is context, not scored).
"""

from __future__ import annotations

import copy
import functools
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from growup import hub
from growup.config import Study
from growup.errors import GrowupError

log = logging.getLogger(__name__)

TASK_DIR = Path(str(resources.files("growup.evaluate") / "tasks"))
PREFIXES = ("eos", "bos", "none")


def study_tasks(study: Study) -> list[str]:
    """The task names the study evaluates, from config."""
    ev = study.evaluation
    mb = [f"multiblimp_{lang.multiblimp}" for lang in study.data.languages] + ["multiblimp_eng"]
    if ev.multiblimp_languages is not None:
        mb = [f"multiblimp_{code}" for code in ev.multiblimp_languages]
    tasks = [*mb, "growup_blimp_single_error"]
    return [*tasks, "growup_mpararel"] if ev.mpararel else tasks


def run_tasks(study: Study, run: str) -> list[str]:
    """A trained run's tasks: every task, or, with `evaluation.every_language: false`, a language
    run's own MultiBLiMP and the English tasks (no figure, table or claim reads the others)."""
    from growup.train.runs import parse_run

    kind, lang, _ = parse_run(study, run)
    if kind == "language" and not study.evaluation.every_language:
        return merge_tasks(study, (lang,))
    return study_tasks(study)


def merge_tasks(study: Study, languages: tuple[str, ...]) -> list[str]:
    """A merge's tasks: MultiBLiMP of its languages, and every English task."""
    iso = {lang.code: lang.multiblimp for lang in study.data.languages}
    wanted = {f"multiblimp_{iso[code]}" for code in languages}
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


def task_config(manager: Any, study: Study, task: str) -> dict[str, Any]:
    """The task's own YAML config with its dataset routed through the Hub root in force."""
    entry = manager.task_index.get(task)
    if entry is None or not entry.cfg:
        raise GrowupError(
            f"lm-eval has no task {task!r}: check the language codes in config key 'data.languages'"
        )
    cfg = copy.deepcopy(entry.cfg)
    ev = study.evaluation
    if task.startswith("multiblimp_"):
        source = ev.multiblimp
    else:
        source = ev.blimp if task == "growup_blimp_single_error" else ev.mpararel
        if source is None:
            raise GrowupError(f"task {task!r} needs config key 'evaluation.{task.split('_', 1)[1]}'")
        cfg["dataset_name"] = source.config
        cfg["doc_to_choice"] = "{{[" + source.good_column + ", " + source.bad_column + "]}}"
    cfg["dataset_path"] = hub.resolve(source.hub_id, study.hub_root)
    cfg["test_split"] = source.split
    if source.revision and cfg["dataset_path"] == source.hub_id:
        cfg.setdefault("dataset_kwargs", {})["revision"] = source.revision
    cfg.pop("include", None)
    if not cfg.get("num_fewshot"):
        # zero-shot: an empty few-shot pool, else lm-eval copies the whole test split into one
        cfg["fewshot_config"] = {"samples": []}
    return cfg


def check_datasets(configs: list[dict[str, Any]]) -> None:
    """Fail before any scoring when a task's dataset or subset (a benchmark language) is missing."""
    import datasets

    available: dict[str, list[str]] = {}
    for cfg in configs:
        path, name = cfg["dataset_path"], cfg.get("dataset_name")
        if path not in available:
            try:
                available[path] = datasets.get_dataset_config_names(path)
            except Exception as exc:
                raise GrowupError(
                    f"task {cfg['task']!r}: dataset {path!r} is unreachable ({exc}); set {hub.ENV_ROOT} "
                    "(or config key 'hub.root') to a local mirror, or check Hub access"
                ) from exc
        if name and name not in available[path]:
            raise GrowupError(
                f"task {cfg['task']!r}: {path!r} has no subset {name!r} (a missing benchmark language); "
                f"available: {available[path]}"
            )


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
        batch = 64  # lm-eval's auto batch size probes GPU memory; a fixed size suits CPUs
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


def build_tasks(study: Study, tasks: list[str]) -> list[Any]:
    """lm-eval Task objects for `tasks`, each built (its dataset loaded) once per process and then
    reused, so a sweep over many checkpoints pays for dataset loading once."""
    import json

    manager = task_manager()
    configs = {task: task_config(manager, study, task) for task in tasks}
    keys = {task: json.dumps(cfg, sort_keys=True, default=str) for task, cfg in configs.items()}
    missing = [task for task in tasks if keys[task] not in _TASKS]
    if missing:
        check_datasets([configs[t] for t in missing])
        try:
            loaded = manager.load([configs[t] for t in missing])["tasks"]
        except (ConnectionError, FileNotFoundError, OSError) as exc:
            raise GrowupError(
                f"an evaluation dataset of tasks {missing} is unreachable ({exc}); set {hub.ENV_ROOT} "
                "(or config key 'hub.root') to a local mirror, or check Hub access"
            ) from exc
        _TASKS.update({keys[t]: loaded[t] for t in missing})
    return [_TASKS[keys[t]] for t in tasks]


def evaluate(lm: Any, study: Study, tasks: list[str], limit: int | None = None) -> dict[str, Any]:
    """Run lm-eval on `tasks`; returns its results dict (with per-pair samples), minus timings."""
    import lm_eval

    results = lm_eval.simple_evaluate(
        model=lm,
        tasks=build_tasks(study, tasks),
        task_manager=task_manager(),
        limit=limit,
        log_samples=True,
        bootstrap_iters=1000,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        fewshot_random_seed=0,
    )
    for key in VOLATILE:
        results.pop(key, None)
    for cfg in results.get("configs", {}).values():  # Hub ids, not where the mirror lives
        if isinstance(cfg.get("dataset_path"), str):
            cfg["dataset_path"] = hub.unresolve(cfg["dataset_path"], study.hub_root)
    return results
