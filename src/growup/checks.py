"""Every study-config value that can be checked without running a job, checked at config load.

`check_config` runs before the DAG is built (`growup.config.load_config` and the workflow's
`workflow/rules/common.smk` call it once each), so a value that would fail hours into a study
fails at once: schema violations, batch divisibility, FineWeb-2 subsets, MultiBLiMP tasks,
mergekit methods, and run names. Each problem is one short line naming the file, the key, the
value and what is allowed.

It also holds the two path guards every writer uses: `path_part` (a name that becomes one path
component) and `under_root` (a written path stays inside its output root).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from growup.errors import ConfigError, PathEscapeError

log = logging.getLogger(__name__)

# A name that becomes one path component (run, model, merge method, subset, language): no
# separator, no leading dot, so never `..`, `/x` or a hidden file.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*(?:\.[A-Za-z0-9_+-]+)*")
# A merge method entry of config key `merging.methods` (a folder of merges/<setup>/<method>/)
METHOD_NAME = re.compile(r"[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*")
SCHEMA_FILE = "src/growup/schemas/config.schema.yaml"
MAX_VALUE = 60  # characters of a value shown in an error line


def path_part(value: Any, what: str, pattern: re.Pattern[str] = NAME) -> str:
    """`value` if it is safe as one path component, else a `PathEscapeError` naming `what`."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PathEscapeError(
            f"{what} {value!r} cannot be a file or folder name; allowed: {pattern.pattern} "
            "(letters, digits, '_', '+', '-', inner '.'; no '/', no '..')"
        )
    return value


def under_root(path: str | os.PathLike[str], root: str | os.PathLike[str], what: str) -> Path:
    """`path` if it resolves (links followed) inside `root`, else a `PathEscapeError`."""
    full, base = Path(path).resolve(), Path(root).resolve()
    if full != base and base not in full.parents:
        raise PathEscapeError(f"{what} {str(path)!r} leaves its root {str(root)!r}; allowed: paths under it")
    return Path(path)


def eval_dir(
    out_root: str | os.PathLike[str], model: str, step: str, out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where one evaluation is written: <out_dir>/<step>, or <out_root>/<model>/<step>; the model
    name and step must be plain names and the folder must stay under its root."""
    path_part(model, "--model (model name in evals/)")
    path_part(str(step), "--step")
    root = Path(out_dir) if out_dir is not None else Path(out_root)
    folder = root / str(step) if out_dir is not None else root / model / str(step)
    return under_root(folder, root, "evaluation folder")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE else f"<{type(value).__name__} of {len(value)}>"


def _key(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _rule(error: Any) -> str:
    """What the schema allows, in a few words."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    v = error.validator
    if v == "enum":
        return f"allowed: {schema['enum']}"
    if v == "type":
        return f"allowed type: {schema['type']}"
    if v == "pattern":
        return f"allowed: strings matching {schema['pattern']}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if v in bounds:
        return f"allowed: {bounds[v]} {schema[v]}"
    if v in ("minItems", "maxItems", "minProperties"):
        return f"allowed: {v} {schema[v]}"
    return error.message if len(error.message) <= 2 * MAX_VALUE else error.message[: 2 * MAX_VALUE] + "..."


def schema_problems(raw: Mapping[str, Any]) -> list[str]:
    """One short line per schema violation: key, value, what is allowed (a missing required key
    by its full dotted name, not after the whole section's value)."""
    import jsonschema

    from growup.config import load_schema

    lines = []
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(dict(raw)), key=lambda e: list(map(str, e.absolute_path)))
    for error in errors:
        where = list(error.absolute_path)
        if error.validator == "required":
            for name in sorted(set(error.validator_value) - set(error.instance)):
                key = _key([*where, name])
                lines.append(f"config key {key!r}: missing; a required key (see {SCHEMA_FILE})")
        elif error.validator == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            unknown = sorted(set(error.instance) - set(known))
            lines.append(f"config key {_key(where)!r}: unknown key(s) {unknown}; allowed: {known}")
        elif error.validator == "propertyNames":
            lines.append(f"config key {_key(where)!r}: key {error.instance!r} not allowed ({error.message})")
        else:
            lines.append(f"config key {_key(where)!r} = {_short(error.instance)}: {_rule(error)}")
    return lines


def _line(key: str, value: Any, problem: str, allowed: str) -> str:
    return f"config key {key!r} = {_short(value)}: {problem}; allowed: {allowed}"


def _batch_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    t, gpus = raw["training"], raw["resources"]["gpus"]
    devices = sorted({max(count, 1) for count in gpus.values()})
    bad = [n for n in devices if t["global_batch"] % (t["micro_batch"] * n)]
    if bad:
        per_pass = t["micro_batch"] * math.lcm(*devices)
        yield _line(
            "training.global_batch",
            t["global_batch"],
            f"not a multiple of training.micro_batch ({t['micro_batch']}) x devices (resources.gpus: {bad})",
            f"multiples of {per_pass}",
        )


def _few(items: Iterable[Any], show: int = 12) -> str:
    items = list(items)
    return f"{items}" if len(items) <= show else f"{items[:show]} ... ({len(items)} in all)"


def _card_configs(card: Path) -> list[str]:
    """`config_name`s of a Hub dataset card's YAML front matter (the dataset's subsets)."""
    import yaml

    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    return [c["config_name"] for c in meta.get("configs") or [] if "config_name" in c]


def fineweb2_subsets(hub_id: str, revision: str, config_root: str | None) -> tuple[list[str], str] | None:
    """The subsets of the FineWeb-2 dataset in force and where the list came from: the dataset
    card at the local Hub root, else the card in the Hugging Face cache; None when neither is
    at hand (no network at config load: `growup data fetch` then names a missing subset)."""
    from growup import hub

    root = hub.hub_root(config_root)
    card: Path | str | None
    if root is not None:
        card = root / hub_id / "README.md"
    else:
        from huggingface_hub import try_to_load_from_cache

        card = try_to_load_from_cache(hub_id, "README.md", revision=revision, repo_type="dataset")
    if not isinstance(card, (str, Path)) or not Path(card).is_file():
        log.info("no dataset card of %s at hand: FineWeb-2 subsets are checked when fetched", hub_id)
        return None
    return _card_configs(Path(card)), str(card)


@cache
def multiblimp_codes() -> tuple[str, ...]:
    """Language codes of lm-eval's MultiBLiMP tasks (`multiblimp_<code>`), from its task YAMLs
    (found without importing lm-eval)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return ()
    folder = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "multiblimp"
    return tuple(sorted(p.stem.removeprefix("multiblimp_") for p in folder.glob("multiblimp_*.yaml")))


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "growup"


@cache
def mergekit_methods() -> tuple[str, ...]:
    """Names in mergekit's merge-method registry. Importing it loads torch (about 1.5 s), so the
    list is cached per installed mergekit (version and registry file's mtime)."""
    from importlib.metadata import version

    spec = importlib.util.find_spec("mergekit")
    if spec is None or not spec.submodule_search_locations:
        return ()
    registry = Path(next(iter(spec.submodule_search_locations))) / "merge_methods" / "registry.py"
    key = f"mergekit-{version('mergekit')}-{registry.stat().st_mtime_ns}"
    cached = _cache_dir() / f"{key}-methods.json"
    try:
        return tuple(json.loads(cached.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    from mergekit.merge_methods import registry as mk

    names = tuple(sorted(m.spec.name for m in mk.registered_methods()))
    try:
        from growup.io import atomic_write_text

        atomic_write_text(cached, json.dumps(names))
    except OSError:  # a read-only home: check again next time
        pass
    return names


def _language_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    data, ev = raw["data"], raw["evaluation"]
    languages = data["languages"]
    fw2 = data["fineweb2"]
    found = fineweb2_subsets(fw2["hub_id"], fw2["revision"], (raw.get("hub") or {}).get("root"))
    if found is not None:
        subsets, card = found
        for code, entry in languages.items():
            if entry["subset"] not in subsets:
                yield _line(
                    f"data.languages.{code}.subset",
                    entry["subset"],
                    f"no such subset of {fw2['hub_id']} (its card {card})",
                    _few(subsets),
                )
    codes = multiblimp_codes()
    if codes:
        where = "lm-eval's tasks/multiblimp"
        for code, entry in languages.items():
            if entry["multiblimp"] not in codes:
                yield _line(
                    f"data.languages.{code}.multiblimp",
                    entry["multiblimp"],
                    f"no task multiblimp_{entry['multiblimp']} in {where}",
                    f"{len(codes)} codes, e.g. {list(codes[:6])}",
                )
        for i, code in enumerate(ev.get("multiblimp_languages") or []):
            if code not in codes:
                yield _line(
                    f"evaluation.multiblimp_languages[{i}]",
                    code,
                    f"no task multiblimp_{code} in {where}",
                    f"{len(codes)} codes, e.g. {list(codes[:6])}",
                )


def _merge_problems(raw: Mapping[str, Any], study: Any) -> Iterator[str]:
    from growup.train.runs import trained_runs

    merging = raw["merging"]
    known = mergekit_methods()
    for name, entry in merging["methods"].items():
        entry = entry or {}
        if not METHOD_NAME.fullmatch(name):
            yield _line("merging.methods", name, "not a method name (it names a folder)", METHOD_NAME.pattern)
            continue
        method = entry.get("method") or name
        if known and method not in known:
            key = f"merging.methods.{name}" + (".method" if entry.get("method") else "")
            yield _line(key, method, "not a mergekit merge method", _few(known, 20))
    if raw.get("released"):
        # growup.models.released.released_runs, without importing transformers at config load
        runs = [r for r in trained_runs(study) if r != "seed"] + ["english-1x-cloned"]
        models = raw["released"]["models"]
        missing, unknown = [r for r in runs if r not in models], sorted(set(models) - set(runs))
        if missing or unknown:
            yield _line(
                "released.models",
                f"missing {missing}, unknown {unknown}",
                "must name a Hub id for each run",
                _few(runs),
            )
    else:
        runs = [*trained_runs(study), "english-1x-cloned"]
    for setup, run in merging["base"].items():
        if run not in runs:
            yield _line(f"merging.base.{setup}", run, "not a run of this study", _few(runs))
    for name, entry in merging["methods"].items():
        for setup, run in ((entry or {}).get("base_runs") or {}).items():
            if run not in runs:
                yield _line(
                    f"merging.methods.{name}.base_runs.{setup}", run, "not a run of this study", _few(runs)
                )
    langs = list(raw["data"]["languages"])
    for i, subset in enumerate(merging.get("subsets") or []):
        parts = subset.split("+")
        if any(p not in langs for p in parts) or len(set(parts)) != len(parts):
            yield _line(
                f"merging.subsets[{i}]",
                subset,
                "must join two or more distinct study languages with '+'",
                f"languages {langs}",
            )


def check_config(raw: Mapping[str, Any], source: str) -> None:
    """Raise `ConfigError` listing, one short line each, every value of the resolved config `raw`
    (file `source`) that a job would reject: schema first, then what needs the whole config."""
    problems = schema_problems(raw)
    if not problems:
        from growup.config import Study
        from growup.errors import GrowupError

        try:
            study = Study.from_mapping(raw, source)  # its own cross-key checks (heads, schedules)
        except GrowupError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        problems = [*_batch_problems(raw), *_language_problems(raw), *_merge_problems(raw, study)]
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
