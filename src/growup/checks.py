"""Every study-config value that can be checked without running a job, checked at config load.

`check_config` runs before the DAG is built (`growup.study.load_config` and the workflow's
`workflow/rules/common.smk` call it once each), so a value that would fail hours into a study
fails at once: schema violations, batch divisibility, FineWeb-2 subsets, MultiBLiMP tasks,
mergekit methods and the parameters each reads (`growup.mergekit_registry`), and run names.
Each problem is one short line naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from growup import hub, mergekit_registry
from growup.config import Study, load_schema
from growup.errors import ConfigError, GrowupError
from growup.mergekit_registry import GLOBAL, MODEL
from growup.paths import METHOD_NAME

log = logging.getLogger(__name__)

SCHEMA_FILE = "src/growup/schemas/config.schema.yaml"
MAX_VALUE = 60  # characters of a value shown in an error line


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
    if v == "uniqueItems":
        return "allowed: no item twice"
    return error.message if len(error.message) <= 2 * MAX_VALUE else error.message[: 2 * MAX_VALUE] + "..."


def schema_problems(raw: Mapping[str, Any]) -> list[str]:
    """One short line per schema violation: key, value, what is allowed (a missing required key
    by its full dotted name, not after the whole section's value)."""
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
        elif "propertyNames" in error.schema_path:  # a key of a mapping (e.g. a language key)
            why = error.schema.get("description", "not allowed") if isinstance(error.schema, dict) else ""
            key = _key([*where, error.instance])
            lines.append(
                f"config key {key!r} = {_short(error.instance)}: {' '.join(why.split())}; {_rule(error)}"
            )
        else:
            lines.append(f"config key {_key(where)!r} = {_short(error.instance)}: {_rule(error)}")
    return lines


def problem_line(key: str, value: Any, problem: str, allowed: str) -> str:
    return f"config key {key!r} = {_short(value)}: {problem}; allowed: {allowed}"


def _batch_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    t, gpus = raw["training"], raw["resources"]["gpus"]
    devices = sorted({max(count, 1) for count in gpus.values()})
    bad = [n for n in devices if t["global_batch"] % (t["micro_batch"] * n)]
    if bad:
        per_pass = t["micro_batch"] * math.lcm(*devices)
        yield problem_line(
            "training.global_batch",
            t["global_batch"],
            f"not a multiple of training.micro_batch ({t['micro_batch']}) x devices (resources.gpus: {bad})",
            f"multiples of {per_pass}",
        )


def few(items: Iterable[Any], show: int = 12) -> str:
    items = list(items)
    return f"{items}" if len(items) <= show else f"{items[:show]} ... ({len(items)} in all)"


def _card_configs(card: Path) -> list[str]:
    """`config_name`s of a Hub dataset card's YAML front matter (the dataset's subsets)."""
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    return [c["config_name"] for c in meta.get("configs") or [] if "config_name" in c]


def fineweb2_subsets(hub_id: str, revision: str, config_root: str | None) -> tuple[list[str], str] | None:
    """The subsets of the FineWeb-2 dataset in force and where the list came from: the dataset
    card at the local Hub root, else the card in the Hugging Face cache; None when neither is
    at hand (no network at config load: `growup data fetch` then names a missing subset)."""
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


def mergekit_methods() -> tuple[str, ...]:
    """Names in mergekit's merge-method registry, growup's plugin methods included
    (`growup.mergekit_registry`; cached per installed mergekit, so no torch import at load)."""
    return tuple(sorted(mergekit_registry.method_table()))


def _language_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    data, ev = raw["data"], raw["evaluation"]
    languages = data["languages"]
    fw2 = data["fineweb2"]
    found = fineweb2_subsets(fw2["hub_id"], fw2["revision"], (raw.get("hub") or {}).get("root"))
    if found is not None:
        subsets, card = found
        for code, entry in languages.items():
            if entry["subset"] not in subsets:
                yield problem_line(
                    f"data.languages.{code}.subset",
                    entry["subset"],
                    f"no such subset of {fw2['hub_id']} (its card {card})",
                    few(subsets),
                )
    codes = multiblimp_codes()
    if codes:
        where = "lm-eval's tasks/multiblimp"
        for code, entry in languages.items():
            if entry["multiblimp"] is not None and entry["multiblimp"] not in codes:
                yield problem_line(
                    f"data.languages.{code}.multiblimp",
                    entry["multiblimp"],
                    f"no task multiblimp_{entry['multiblimp']} in {where}",
                    f"{len(codes)} codes, e.g. {list(codes[:6])}",
                )
        for i, code in enumerate(ev.get("multiblimp_languages") or []):
            if code not in codes:
                yield problem_line(
                    f"evaluation.multiblimp_languages[{i}]",
                    code,
                    f"no task multiblimp_{code} in {where}",
                    f"{len(codes)} codes, e.g. {list(codes[:6])}",
                )


def _merge_problems(raw: Mapping[str, Any]) -> Iterator[str]:
    merging = raw["merging"]
    table = mergekit_registry.method_table()
    known = sorted(table)
    for name, entry in merging["methods"].items():
        entry = entry or {}
        if not METHOD_NAME.fullmatch(name):
            yield problem_line(
                "merging.methods", name, "not a method name (it names a folder)", METHOD_NAME.pattern
            )
            continue
        method = entry.get("method") or name
        if known and method not in known:
            key = f"merging.methods.{name}" + (".method" if entry.get("method") else "")
            # growup's own methods are entry points of its package metadata: an install writes them
            hint = " (growup's own are missing: reinstall growup)" if not mergekit_registry.plugins() else ""
            yield problem_line(key, method, "not a mergekit merge method" + hint, few(known, 20))
        elif method in table:
            yield from _parameter_problems(table[method], name, entry, merging.get("parameters") or {})


def _parameter_problems(
    reads: mergekit_registry.MethodReads, name: str, entry: Mapping[str, Any], shared: Mapping[str, Any]
) -> Iterator[str]:
    """A parameter the config gives a method that the merge never reads: an error naming it and
    what the method does read (`merging.weight` goes only to methods that declare a weight)."""
    given = [
        *((f"merging.parameters.{p}", p, v, GLOBAL) for p, v in shared.items()),
        *(
            (f"merging.methods.{name}.parameters.{p}", p, v, GLOBAL)
            for p, v in (entry.get("parameters") or {}).items()
        ),
        *(
            (f"merging.methods.{name}.model_parameters.{p}", p, v, MODEL)
            for p, v in (entry.get("model_parameters") or {}).items()
        ),
    ]
    for key, parameter, value, level in given:
        if (why := reads.no_effect(parameter, level)) is not None:
            yield problem_line(
                key,
                value,
                f"no effect in mergekit's {reads.name}: {why}",
                f"{reads.reads(level)} (declared: {list(reads.declared)})",
            )


def reference_warnings(folder: str | os.PathLike[str], table: Mapping[str, Any] | None = None) -> list[str]:
    """The parameters without effect in a folder of mergekit configs (the authors' files of the
    released study), one line per method and parameter with the number of files that give it."""
    table = mergekit_registry.method_table() if table is None else table
    found: dict[tuple[str, str, str], list[str]] = {}
    for path in sorted(Path(folder).glob("*.y*ml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        reads = table.get(config.get("merge_method"))
        if reads is None:
            continue
        given = [(p, GLOBAL) for p in config.get("parameters") or {}]
        given += [(p, MODEL) for m in config.get("models") or [] for p in m.get("parameters") or {}]
        for parameter, level in dict.fromkeys(given):
            if reads.no_effect(parameter, level) is not None:
                found.setdefault((reads.name, parameter, level), []).append(path.name)
    return [
        f"{len(files)} file(s) (e.g. {files[0]}) give {method} {parameter!r} "
        f"{'per model' if level == MODEL else 'for the merge'}, with no effect: "
        f"{table[method].no_effect(parameter, level)} (it reads {table[method].reads(level)})"
        for (method, parameter, level), files in sorted(found.items())
    ]


def check_config(raw: Mapping[str, Any], source: str) -> None:
    """Raise `ConfigError` listing, one short line each, every value of the resolved config `raw`
    (file `source`) that a job would reject: schema first, then what needs the whole config."""
    problems = schema_problems(raw)
    if not problems:
        try:
            Study.from_mapping(raw, source)  # its own cross-key checks (heads, schedules)
        except GrowupError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        problems = [*_batch_problems(raw), *_language_problems(raw), *_merge_problems(raw)]
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    folder = raw["merging"].get("reference_configs")
    if folder and Path(str(folder)).expanduser().is_dir():  # files a user cannot fix: warnings
        for line in reference_warnings(Path(str(folder)).expanduser()):
            log.warning("%s: merging.reference_configs: %s", source, line)
