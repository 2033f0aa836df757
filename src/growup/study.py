"""The study's grid, and each job's resolved spec.

The grid: which runs the study trains, what their names mean (`parse_name`, the one parser of
run and merge names), each run's parent and starting checkpoint, which model it trains (the
`1x` / `clone-x<k>` key), the raw datasets, the figures. Every other module asks this one.

Each job's resolved spec: exactly the config values one `growup` verb reads, and nothing else.
A Snakemake rule passes `spec_json(STUDY, job, **args)` as a param and the verb builds its
`Study` from that spec alone (`Study.from_spec`); a verb run by hand with `--configfile` goes
through the same projection. So Snakemake reruns a job when, and only when, a value the job
reads changes (params are a rerun trigger), and a value a job does not declare cannot affect it:
reading it raises. Read patterns are dotted config keys: `*` is any key, a trailing `[]` keeps a
mapping's keys without their values, and a key keeps everything below it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from growup.checks import check_config, few, problem_line
from growup.config import (
    CODE_DATASET,
    ENGLISH_DATASETS,
    MergingSpec,
    Study,
    project,
    replay_dataset,
    resolve_config,
)
from growup.errors import ConfigError, GrowupError
from growup.paths import METHOD_NAME, path_part, under_root

# --- the grid -------------------------------------------------------------------------------
SETUPS = ("1x", "1x-cloned", "2x")  # STUDY.md: three starting points for every language
BASE_SETUP, CLONED_SETUP, WIDE_SETUP = SETUPS  # the 1x baseline, english-1x widened, trained wide
UPSCALED = (CLONED_SETUP, WIDE_SETUP)  # the setups that train the wide (cloned) model
SEED = "seed"
ENGLISH = "english"
MULTILINGUAL = "multilingual"
MERGE = "merge"  # merge names: merge-<setup>-<method>-<subset>
KINDS = (SEED, ENGLISH, "language", MULTILINGUAL, MERGE)  # what a name can be
CLONED = "-cloned"  # a clone of a run's final checkpoint: checkpoints/<run>-cloned
INIT = "init"  # checkpoints/init: the freshly initialised seed model
BASE_MODEL = "1x"  # the model key of the 1x model (`clone_model` names the wide one)
ENGLISH_BASE, ENGLISH_ADAPTATION = ENGLISH_DATASETS  # english-80 trains the seed, english-20 the 1x/2x
CODE = CODE_DATASET
FIGURES = (
    "data_efficiency",
    "english_retention",
    "merge_heatmaps",
    "merged_vs_joint",
    "merge_leaderboard",
)  # results/figures/<name>
LEADERBOARD = "merge_leaderboard"  # results/tables/<this>.csv|md, and the figure drawn from it
# STUDY.md "Merging (mergekit)": the paper's five methods (any other is beyond the paper)
PAPER_METHODS = ("linear", "multislerp", "task_arithmetic", "ties", "dare_ties")
SUBSET_SEPARATOR = "+"  # a merge's languages joined in the config's order: ekk+fao+isl
# a seed replicate of a language or multilingual run (or of a merge of replicates): `<name>-s<seed>`;
# the replicate of the study's own `seed` keeps the plain name. No run or subset ends in `-s<digits>`
REPLICATE = re.compile(r"^(?P<name>.+)-s(?P<seed>\d+)$")


def run_name(prefix: str, setup: str) -> str:
    """`<prefix>-<setup>`: a language, `english` or `multilingual` run of one setup."""
    return f"{prefix}-{setup}"


def merge_name(setup: str, method: str, subset: str) -> str:
    """`merge-<setup>-<method>-<subset>`: how the evaluation table names a merged model."""
    return f"{MERGE}-{setup}-{method}-{subset}"


def subset_languages(subset: str) -> tuple[str, ...]:
    """The languages of a subset name (`ekk+fao` -> ("ekk", "fao"))."""
    return tuple(subset.split(SUBSET_SEPARATOR))


@dataclass(frozen=True)
class Name:
    """What a run or merge name says, by its shape alone (`parse_name`)."""

    kind: str  # one of KINDS
    prefix: str | None  # the part before the setup: seed, english, a language, multilingual
    setup: str | None
    method: str | None = None  # merges only
    subset: str | None = None  # merges only
    replicate: int | None = None  # the seed of a replicate (`-s<seed>`); None: the study's seed

    @property
    def language(self) -> str | None:
        """The study language of a language run (None otherwise)."""
        return self.prefix if self.kind == "language" else None


def replicate_name(name: str, seed: int | None) -> str:
    """The name of seed `seed`'s replicate of run (or merge) `name`; None: `name` itself."""
    return name if seed is None else f"{name}-s{seed}"


def split_replicate(name: str) -> tuple[str, int | None]:
    """(`name` without its replicate suffix, the replicate's seed or None), by shape."""
    match = REPLICATE.match(name)
    return (match["name"], int(match["seed"])) if match else (name, None)


def parse_name(name: str) -> Name:
    """`ekk-2x` → a language run; `merge-2x-ties-ekk+fao` → a merge; `english-1x` → English;
    `ekk-2x-s1` → seed 1's replicate of ekk-2x. By shape alone (no config): the evaluation table
    names every model this way."""
    base, seed = split_replicate(name)
    if seed is not None:
        return replace(_parse_plain(base), replicate=seed)
    return _parse_plain(name)


def _parse_plain(name: str) -> Name:
    if name.startswith(f"{MERGE}-"):
        rest = name.removeprefix(f"{MERGE}-")
        setup = next((s for s in sorted(SETUPS, key=len, reverse=True) if rest.startswith(s + "-")), None)
        if setup is not None and "-" in rest[len(setup) + 1 :]:
            method, subset = rest[len(setup) + 1 :].rsplit("-", 1)
            return Name(MERGE, None, setup, method, subset)
        raise GrowupError(f"merge name {name!r} is not merge-<setup>-<method>-<subset>; setups: {SETUPS}")
    if name == SEED:
        return Name(SEED, SEED, None)
    prefix, _, setup = name.partition("-")
    kind = {ENGLISH: ENGLISH, MULTILINGUAL: MULTILINGUAL}.get(prefix, "language")
    return Name(kind, prefix, setup or None)


def trained_runs(study: Study) -> list[str]:
    """Every run the study trains (each seed replicate is a run of its own)."""
    langs = [*study.data.language_codes, MULTILINGUAL]
    setups = [s for s in SETUPS if s != CLONED_SETUP]
    return [
        SEED,
        *(run_name(ENGLISH, s) for s in setups),
        *(run_name(lang, s) for lang in langs for s in SETUPS),
        *replicate_runs(study),
    ]


# --- seed replicates: config key `training.replicates` (default: the study's `seed` alone) -------


def replicate_seeds(study: Study) -> tuple[int, ...]:
    """The training seeds every language and multilingual run is trained with."""
    seeds = study.training.replicates
    return tuple(seeds) if seeds is not None else (study.seed,)


def replicate_runs(study: Study) -> list[str]:
    """The extra replicates: every language and multilingual run once per seed other than the
    study's `seed` (whose runs keep their plain names). The base runs (seed, english) and the
    clone are shared starting points, trained once."""
    extra = [seed for seed in replicate_seeds(study) if seed != study.seed]
    langs = [*study.data.language_codes, MULTILINGUAL]
    return [replicate_name(run_name(lang, s), seed) for seed in extra for lang in langs for s in SETUPS]


def run_seed(study: Study, name: str) -> int:
    """The training seed of a run: its replicate's seed, else the study's `seed`."""
    seed = parse_name(name).replicate
    return study.seed if seed is None else seed


def replicate_problems(study: Study) -> list[str]:
    """`training.replicates` must hold the study's seed: its runs are the plain-named ones, which
    merges use unless `merging.replicates` is `all`."""
    seeds = study.training.replicates
    if seeds is None or study.seed in seeds:
        return []
    return [
        problem_line(
            "training.replicates",
            list(seeds),
            f"must include the study's seed {study.seed} (its runs keep their plain names)",
            f"lists of distinct seeds holding {study.seed}",
        )
    ]


def parse_run(study: Study, name: str) -> tuple[str, str | None, str | None]:
    """(kind, language, setup) of a trained run's name; an unknown name is an error listing the
    valid ones. Parsed by shape and one language lookup, so a job that declares one language can
    parse it. The language is the multilingual run's prefix too (`multilingual`)."""
    parsed = parse_name(name) if not name.startswith(f"{MERGE}-") else None
    if parsed is not None and parsed.replicate is not None and parsed.kind not in ("language", MULTILINGUAL):
        parsed = None  # only adaptation runs have replicates
    if parsed is not None:
        if parsed.kind == SEED:
            return SEED, None, None
        if parsed.setup in SETUPS:
            if parsed.kind == ENGLISH and parsed.setup != CLONED_SETUP:
                return ENGLISH, None, parsed.setup
            if parsed.kind == MULTILINGUAL:
                return MULTILINGUAL, MULTILINGUAL, parsed.setup
            if parsed.kind == "language" and parsed.prefix in study.data.language_table:
                return "language", parsed.prefix, parsed.setup
    raise GrowupError(f"unknown run {name!r}; runs of this study: {trained_runs(study)}")


def setup_start(setup: str) -> str:
    """The model an adaptation run of `setup` starts from (its step 0): english-1x,
    english-1x-cloned (english-1x widened) or english-2x."""
    if setup not in SETUPS:
        raise GrowupError(f"setup {setup!r} is not one of {list(SETUPS)}")
    return run_name(ENGLISH, setup)


def start_run(study: Study, name: str) -> str:
    """The checkpoint folder (checkpoints/<this>) whose final/ a run starts from."""
    kind, _, setup = parse_run(study, name)
    if kind == SEED:
        return INIT
    if kind == ENGLISH:
        return SEED if setup == BASE_SETUP else SEED + CLONED
    return setup_start(setup)


def start_checkpoint(study: Study, name: str) -> str:
    """The checkpoint a run starts from, by the study's lineage: `<start_run>/final`."""
    return f"{start_run(study, name)}/final"


# the clones the study makes (checkpoints/<clone>), each of a run's final checkpoint
ENGLISH_CLONE = run_name(ENGLISH, CLONED_SETUP)  # the 1x-cloned setup's start: english-1x widened
CLONES = {SEED + CLONED: SEED, ENGLISH_CLONE: run_name(ENGLISH, BASE_SETUP)}


def clone_of(name: str) -> str | None:
    """The run a clone (`seed-cloned`, `english-1x-cloned`) widens; None for any other name."""
    return CLONES.get(name)


def clone_model(factor: int) -> str:
    """The model key of the k-times wider model (the 1x-cloned and 2x setups train it)."""
    return f"clone-x{factor}"


def run_model(study: Study, name: str) -> str:
    """Which model a run trains (or a clone holds), as a key of `growup.models.build.study_configs`."""
    if clone_of(name):
        return clone_model(study.model.clone_factor)
    _, _, setup = parse_run(study, name)
    return clone_model(study.model.clone_factor) if setup in UPSCALED else BASE_MODEL


def raw_datasets(study: Study) -> tuple[str, ...]:
    """Every raw dataset the study prepares, by name (the names of data/raw/<name>)."""
    return study.data.raw_datasets


def run_datasets(study: Study, name: str) -> list[str]:
    """The packed datasets a run reads (known before data/unimax.json exists)."""
    kind, lang, _ = parse_run(study, name)
    if kind == SEED:
        return [CODE, ENGLISH_BASE]
    if kind == ENGLISH:
        return [ENGLISH_ADAPTATION]
    langs = study.data.language_codes if kind == MULTILINGUAL else (lang,)
    return [*langs, *(replay_dataset(code) for code in langs)]


# --- run sources: each run is trained here or fetched (a Hub id or a local folder) ----------
ENGLISH_GROUP = ENGLISH  # `released.models.english`: the English base runs (english-1x, english-2x)
FOLDER_PREFIXES = ("/", "./", "../", "~")  # a source that starts so is a folder; else a Hub id
PLACEHOLDERS = ("language", "setup")  # what a setup or `english` entry's template may name
_UNNAMED = object()  # no `released.models` entry for a key
RESERVED_NAMES = (SEED, ENGLISH, MULTILINGUAL, MERGE, INIT, CODE, "eng")  # never a language key


@dataclass(frozen=True)
class RunSource:
    """Where one run of the grid comes from: trained (or cloned) here, or fetched from `location`."""

    run: str
    location: str | None = None  # a Hub id (org/name) or a folder; None = made by this study
    key: str | None = None  # the `released.models` entry that names it

    @property
    def fetched(self) -> bool:
        return self.location is not None

    @property
    def is_folder(self) -> bool:
        return self.location is not None and is_folder_source(self.location)


def is_folder_source(location: str) -> bool:
    """A `released.models` value that names a local folder (else it is a Hub id)."""
    return location.startswith(FOLDER_PREFIXES)


def fetchable_runs(study: Study) -> list[str]:
    """Every run a study may fetch instead of making: each run of the grid, and the English clone."""
    return [*trained_runs(study), ENGLISH_CLONE]


def released_runs(study: Study) -> list[str]:
    """The runs a fully released study fetches: every run but `seed`, and the English clone."""
    return [r for r in fetchable_runs(study) if r != SEED]


def source_keys(study: Study, run: str) -> tuple[str, ...]:
    """The `released.models` keys that could name `run`, most specific first: the run itself,
    then its setup (every language and multilingual run of it) or `english` (the English base)."""
    if run in CLONES or run == SEED:
        return (run,)
    kind, _, setup = parse_run(study, run)
    group = ENGLISH_GROUP if kind == ENGLISH else setup
    return (run, group)


def run_source(study: Study, run: str) -> RunSource:
    """Where run `run` comes from (the one answer every rule and verb asks): the first
    `released.models` entry naming it, its `{language}`/`{setup}` filled in (null: made here);
    else made here."""
    released = study.released
    models = released.models if released is not None else {}
    for key in source_keys(study, run):
        location = models.get(key, _UNNAMED)
        if location is None:
            return RunSource(run, None, key)
        if location is not _UNNAMED:
            _, lang, setup = (None, None, None) if key == run else parse_run(study, run)
            return RunSource(run, str(location).format(language=lang, setup=setup), key)
    return RunSource(run, None)


def fetched_runs(study: Study) -> list[str]:
    """The runs this study fetches, in grid order."""
    return [r for r in fetchable_runs(study) if run_source(study, r).fetched]


def made_clones(study: Study) -> dict[str, str]:
    """Clone -> the run it widens, for the clones this study makes (not fetches)."""
    return {clone: parent for clone, parent in CLONES.items() if not run_source(study, clone).fetched}


def runs_to_train(study: Study) -> list[str]:
    """The runs this study trains, in grid order: those not fetched that an evaluated run needs
    (the seed only while an English run trains from it)."""
    wanted = [r for r in trained_runs(study) if r != SEED] + [ENGLISH_CLONE]
    needed: set[str] = set()
    while wanted:
        run = wanted.pop()
        if run in needed or run == INIT:
            continue
        needed.add(run)
        if run_source(study, run).fetched:
            continue
        wanted.append(clone_of(run) or start_run(study, run))
    return [r for r in trained_runs(study) if r in needed and not run_source(study, r).fetched]


def tokenizer_run(study: Study) -> str | None:
    """The fetched run whose tokenizer the study's data is packed with (the base's tokenizer):
    the first fetched of english-1x, english-2x, english-1x-cloned and seed; None = config's own."""
    bases = (run_name(ENGLISH, BASE_SETUP), run_name(ENGLISH, WIDE_SETUP), ENGLISH_CLONE, SEED)
    return next((r for r in bases if run_source(study, r).fetched), None)


def source_problems(study: Study) -> list[str]:
    """`released.models` keys that name no run, setup or `english`, and templates that do not fit."""
    if study.released is None:
        return []
    runs, groups = fetchable_runs(study), [*SETUPS, ENGLISH_GROUP]
    problems = []
    for key, location in study.released.models.items():
        if key not in runs and key not in groups:
            problems.append(
                problem_line(
                    f"released.models.{key}", key, "names no run, setup or 'english'", few([*groups, *runs])
                )
            )
            continue
        names = set(re.findall(r"{(\w*)}", str(location or "")))
        allowed = set(PLACEHOLDERS) if key in groups else set()
        if names - allowed or (key in SETUPS and "language" not in names):
            need = "must contain {language}" if key in SETUPS else f"may name only {sorted(allowed)}"
            problems.append(
                problem_line(
                    f"released.models.{key}", location, f"a template that {need}", "Hub id or folder"
                )
            )
    return problems


def language_key_problems(study: Study) -> list[str]:
    """Language keys that would make run or merge names ambiguous: a run name is
    `<language>-<setup>`, a subset `a+b`, and these names are taken by other runs or datasets."""
    return [
        problem_line(
            f"data.languages.{code}",
            code,
            f"collides with {code!r}, a run-name token the grid already uses (seed, english-<setup>, "
            "multilingual-<setup>, merge-..., init, the code dataset, English benchmarks 'eng')",
            f"a language code (ISO 639-3, e.g. dan) other than {list(RESERVED_NAMES)}",
        )
        for code in study.data.language_codes
        if code in RESERVED_NAMES
    ]


def grid_problems(study: Study) -> list[str]:
    """Config values that must name runs of this study's grid (`merging.base`, methods'
    `base_runs`, `released.models`, `merging.subsets`) or must not collide with its names
    (language keys), one short line each."""
    merging = study.merging
    runs = fetchable_runs(study)
    problems = [*language_key_problems(study), *source_problems(study)]
    bases = [(f"merging.base.{setup}", run) for setup, run in merging.base.items()]
    bases += [
        (f"merging.methods.{name}.base_runs.{setup}", run)
        for name, entry in merging.methods.items()
        for setup, run in entry.base_runs.items()
    ]
    problems += [
        problem_line(key, run, "not a run of this study", few(runs)) for key, run in bases if run not in runs
    ]
    langs = list(study.data.language_codes)
    problems += [
        problem_line(f"merging.must_include[{i}]", lang, "not a study language", f"languages {langs}")
        for i, lang in enumerate(merging.must_include or [])
        if lang not in langs
    ]
    for i, subset in enumerate(merging.subsets or []):
        parts = subset.split(SUBSET_SEPARATOR)
        if any(p not in langs for p in parts) or len(set(parts)) != len(parts):
            problems.append(
                problem_line(
                    f"merging.subsets[{i}]",
                    subset,
                    f"must join two or more distinct study languages with {SUBSET_SEPARATOR!r}",
                    f"languages {langs}",
                )
            )
    return problems


def check_study(raw: Mapping[str, Any], source: str) -> Study:
    """The study of the resolved config `raw` (file `source`), after every check that needs no
    job (`growup.checks`, then the grid's names): a `ConfigError` of one line per problem."""
    check_config(raw, source)
    study = Study.from_mapping(raw, source=source)
    if problems := grid_problems(study) + replicate_problems(study):
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return study


def load_config(path: str | os.PathLike[str]) -> Study:
    """Read, resolve (`extends:`) and check a study config file: the study, or a `ConfigError`."""
    return check_study(resolve_config(path), str(path))


# --- the merge grid: methods × setups × language subsets (every subset of at least
# `min_languages` study languages, or an explicit list). Paper: 5 × 3 × 26 = 390 merges.


@dataclass(frozen=True)
class Merge:
    """One merge of the grid: its setup, mergekit method and languages (in the config's order)."""

    setup: str
    method: str
    subset: tuple[str, ...]
    replicate: int | None = None  # a merge of seed `replicate`'s runs (`merging.replicates: all`)

    @property
    def subset_name(self) -> str:
        return SUBSET_SEPARATOR.join(self.subset)

    @property
    def leaf(self) -> str:
        """The merge's last path part: its subset, with the replicate's suffix (`isl+swe-s1`)."""
        return replicate_name(self.subset_name, self.replicate)

    @property
    def name(self) -> str:
        return merge_name(self.setup, self.method, self.leaf)

    def run(self, lang: str) -> str:
        """The run of `lang` this merge reads: its setup's, of the merge's replicate."""
        return replicate_name(run_name(lang, self.setup), self.replicate)

    def _under(self, root: str | os.PathLike[str], leaf: str) -> Path:
        """root/<setup>/<method>/<leaf>, each part a plain name and the path inside `root`."""
        path_part(self.setup, "merge setup")
        path_part(self.method, "merge method", METHOD_NAME)
        path_part(self.leaf, "merge subset")
        return under_root(Path(root) / self.setup / self.method / leaf, root, f"merge {self.name}")

    def yaml_path(self, root: str | os.PathLike[str]) -> Path:
        return self._under(root, f"{self.leaf}.yaml")

    def model_path(self, root: str | os.PathLike[str]) -> Path:
        return self._under(root, self.leaf)

    @classmethod
    def parse(cls, study: Study, setup: str, method: str, subset: str) -> Merge:
        """One merge from its path parts, checked against the config's setups, methods and
        languages (not the whole grid, so a job that merges one subset reads only its values)."""
        if setup not in SETUPS:
            raise GrowupError(f"merge setup {setup!r} is not one of {list(SETUPS)}")
        if not METHOD_NAME.fullmatch(method):
            raise GrowupError(f"merge method {method!r} is not a method name; allowed: {METHOD_NAME.pattern}")
        subset, replicate = split_replicate(subset)  # `isl+swe-s1`: the merge of seed 1's runs
        languages = tuple(subset.split(SUBSET_SEPARATOR))
        unknown = [lang for lang in languages if lang not in study.data.language_table]
        if unknown or len(languages) < 2 or len(set(languages)) != len(languages):
            raise GrowupError(
                f"merge subset {subset!r} must join two or more distinct study languages with "
                f"{SUBSET_SEPARATOR!r}; languages: {list(study.data.language_codes)}"
            )
        return cls(setup, method, languages, replicate)


def merging(study: Study) -> MergingSpec:
    return study.merging


def language_subsets(study: Study) -> list[tuple[str, ...]]:
    """Subsets in the config's language order: explicit ones, or all of size >= min_languages
    that contain every language of `merging.must_include`."""
    langs = study.data.language_codes
    explicit = merging(study).subsets
    if explicit:
        subsets = [tuple(s.split(SUBSET_SEPARATOR)) for s in explicit]
        for subset in subsets:
            unknown = [lang for lang in subset if lang not in langs]
            if unknown or len(subset) < 2 or len(set(subset)) != len(subset):
                raise GrowupError(
                    f"config key 'merging.subsets': {SUBSET_SEPARATOR.join(subset)!r} must join two or more "
                    f"distinct study languages with {SUBSET_SEPARATOR!r}; languages: {list(langs)}"
                )
        return [tuple(sorted(s, key=langs.index)) for s in subsets]
    low = merging(study).min_languages
    every = [c for k in range(low, len(langs) + 1) for c in itertools.combinations(langs, k)]
    required = set(merging(study).must_include or ())
    return [c for c in every if required <= set(c)]


def merge_grid(study: Study) -> list[Merge]:
    """Every merge of the study, in a fixed order (setup, method, subset, replicate); a method
    entry with `setups` runs for those setups only."""
    cfg = merging(study)
    return [
        Merge(s, m, sub, replicate)
        for s in cfg.setups
        for m, entry in cfg.methods.items()
        if s in (entry.setups or cfg.setups)
        for sub in language_subsets(study)
        for replicate in merge_replicates(study)
    ]


def merge_replicates(study: Study) -> list[int | None]:
    """Which replicates are merged: the plain runs (None), and with `merging.replicates: all`
    every other seed's runs too, each a merge of its own."""
    if merging(study).replicates != "all":
        return [None]
    return [None, *(seed for seed in replicate_seeds(study) if seed != study.seed)]


def grid_counts(merges: Sequence[Merge]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for merge in merges:
        counts[merge.setup] = counts.get(merge.setup, 0) + 1
    return counts


# --- each job's spec ------------------------------------------------------------------------
HUB = "hub"  # hub.root: where Hub ids resolve (GROWUP_HUB_ROOT overrides it)
BENCHMARK_CODES = "data.languages.*.multiblimp"  # study languages and their MultiBLiMP codes
LANGUAGE_CODES = "data.languages[]"  # the study's languages, without their settings


def _fetch(study: Study, source: str) -> list[str]:
    if source in (ENGLISH, CODE):
        return [HUB, f"data.{source}"]
    return [HUB, "data.fineweb2", "data.shuffle_seed", f"data.languages.{source}"]


def _train(study: Study, run: str) -> list[str]:
    kind, lang, _ = parse_run(study, run)
    schedule = lang if kind == "language" else kind
    # not `training.replicates`: a replicate's seed is in its name, so a new seed retrains nothing
    training = [f"training.{key}" for key in study.raw["training"] if key not in ("schedules", "replicates")]
    data = {
        "seed": ["data.epoch_seeds", "data.base_stage_seeds"],
        "english": ["data.epoch_seeds", "data.base_stage_seeds"],
        "language": [f"data.languages.{lang}[]"],
        "multilingual": [LANGUAGE_CODES],
    }[kind]
    return ["study", "seed", "model", *training, f"training.schedules.{schedule}", *data]


def _merge(study: Study, setup: str, method: str, subset: str) -> list[str]:
    keys = ("weight", "dtype", "parameters", "random_seed", "reference_configs")
    reads = [f"merging.methods.{method}", f"merging.base.{setup}", *(f"merging.{key}" for key in keys)]
    if study.merging.reference_configs:  # the authors' files name runs by Hub id
        reads.append("released.models")
    return [*reads, LANGUAGE_CODES]


EVALUATION = [HUB, "evaluation", BENCHMARK_CODES]
BOOTSTRAP = ["report.confidence", "report.bootstrap_resamples", "report.bootstrap_seed"]

# job -> the read patterns of that job, given its arguments (the verb's own CLI arguments)
JOBS: Mapping[str, Callable[..., list[str]]] = {
    "data fetch": _fetch,
    "data replay": lambda study: [LANGUAGE_CODES, "data.replay"],
    "data unimax": lambda study: [LANGUAGE_CODES, "data.unimax", "data.epoch_seeds", "data.fixed_schedule"],
    "data tokenizer": lambda study: [HUB, "tokenizer"],
    "data pack": lambda study: [
        "study",
        "training.sequence_length",
        "data.packing",
        "tokenizer.eos_token",
        "tokenizer.bos_token",
    ],
    "model count": lambda study: ["model", "tokenizer.vocab_size", "training.sequence_length"],
    "model init": lambda study: ["seed", "model", "tokenizer.vocab_size"],
    "model clone": lambda study: ["model.clone_factor"],
    "model fetch": lambda study, run: [
        "study",
        HUB,
        "released.revision",
        *(f"released.models.{key}" for key in source_keys(study, run)),
        "model",
        "tokenizer",
        "training",
        LANGUAGE_CODES,
    ],
    "train": _train,
    "eval run": lambda study, run: EVALUATION,
    "eval checkpoint": lambda study: EVALUATION,
    "eval merge": lambda study, setup, method, subset: EVALUATION,
    "eval tidy": lambda study: [BENCHMARK_CODES, *BOOTSTRAP],
    "merge run": _merge,
    "merge configs": lambda study: [
        "merging",
        LANGUAGE_CODES,
        "released.models",
        "seed",
        "training.replicates",
    ],
    "report tables": lambda study: [],
    "report leaderboard": lambda study: BOOTSTRAP,
    "report figure": lambda study, name: ["report.confidence"] if name == LEADERBOARD else [],
    "report claims": lambda study: ["study", "report"],
}


def job_reads(study: Study, job: str, **args: Any) -> list[str]:
    """The config keys job `job` reads (read patterns), for these arguments."""
    if job not in JOBS:
        raise GrowupError(f"unknown job {job!r}; jobs: {sorted(JOBS)}")
    return JOBS[job](study, **args)


def job_spec(study: Study, job: str, **args: Any) -> dict[str, Any]:
    """What one job may read: its name, arguments, read patterns and the values they select."""
    reads = sorted(set(job_reads(study, job, **args)))  # canonical: not the config file's key order
    return {"job": job, "args": args, "reads": reads, "values": project(study.raw, reads)}


def spec_json(study: Study, job: str, **args: Any) -> str:
    """`job_spec` as canonical JSON: the Snakemake param of the job (equal text = equal job)."""
    return json.dumps(job_spec(study, job, **args), sort_keys=True, separators=(",", ":"))


def resolve_spec(spec: str | None, configfile: str | None, job: str, **args: Any) -> dict[str, Any]:
    """A verb's job spec: the one Snakemake passed (checked to be for this job), or projected from
    a config file by the same function, so a hand-run verb reads exactly what its job would."""
    if spec is None:
        if configfile is None:
            raise GrowupError("give --configfile (a study config) or --spec (a job spec from the workflow)")
        return job_spec(load_config(configfile), job, **args)
    try:
        given = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise GrowupError(f"--spec is not JSON ({exc}); the workflow passes it, or use --configfile") from exc
    if not isinstance(given, dict) or given.get("job") != job or given.get("args") != args:
        found = (given.get("job"), given.get("args")) if isinstance(given, dict) else given
        raise GrowupError(f"--spec is for job {found}, not {job!r} with {args}")
    return given


def load_job(spec: str | None, configfile: str | None, job: str, **args: Any) -> Study:
    """The study as job `job` sees it: only the config values it declares (`resolve_spec`)."""
    return Study.from_spec(resolve_spec(spec, configfile, job, **args))
