"""The `growup` command: one sub-command group per stage of the study, nothing else.

This module only parses: each verb names its handler (`module:function`, in the `commands`
module of the package that owns the work) and the libraries it imports inside functions
(`LOADS`), imported when the verb runs. Every verb validates its inputs, writes atomically, and
exits with status 2 and a one-line message (no traceback) on invalid input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from growup.errors import GrowupError
from growup.study import FIGURES
from growup.train.gpus import DEFAULT_GPU, DEFAULT_MFU, GPUS

log = logging.getLogger("growup")

# The libraries a verb's code imports inside functions (beyond its handler module's own imports),
# as `module` or `module:attribute` (an attribute of a lazy module, e.g. transformers'). `load`
# imports them before the verb starts, so its "imports done" line comes after every import, and
# the warm server (growup.warm.server) imports them all, so a warm job imports nothing.
_EVAL = ("lm_eval", "lm_eval.evaluator", "lm_eval.tasks", "lm_eval.models.huggingface", "datasets", "pandas")
_MERGE = ("mergekit.config", "mergekit.merge", "mergekit._data.architectures")
_MERGE += ("mergekit.architecture.json_definitions",)
_TOKENIZER = ("transformers:PreTrainedTokenizerFast",)
LOADS: dict[str, tuple[str, ...]] = {
    "growup.data.commands:fetch": ("datasets",),
    "growup.data.commands:tokenizer": ("tokenizers", *_TOKENIZER),
    "growup.data.commands:pack": _TOKENIZER,
    "growup.evaluate.commands:checkpoint": _EVAL,
    "growup.evaluate.commands:sweep": _EVAL,
    "growup.evaluate.commands:merge": _EVAL,
    "growup.merge.commands:run": _MERGE,
    "growup.merge.commands:rerun": _MERGE,
    "growup.train.commands:train": ("accelerate",),
}


def handler(ref: str) -> Callable[[argparse.Namespace], None]:
    """The verb's handler `module:function`, imported only when the verb runs: laziness, so that
    `growup --help` and each verb load only what that verb uses (no import cycle hides here)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def import_item(item: str) -> Any:
    """`module` or `module:attribute`, imported (the attribute read, which loads a lazy one)."""
    module, _, attribute = item.partition(":")
    imported = importlib.import_module(module)
    return getattr(imported, attribute) if attribute else imported


def load(ref: str) -> Callable[[argparse.Namespace], None]:
    """The handler, after importing it and every library the verb loads when it runs (`LOADS`)."""
    run = handler(ref)
    for item in LOADS.get(ref, ()):
        import_item(item)
    return run


def _config_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """--configfile (a study config, by hand) or --spec (the job spec the workflow passes)."""
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--configfile", help="study config (YAML)")
    group.add_argument("--spec", help="the job's spec as JSON (what the workflow passes; growup.study)")


def _add_model(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="build, clone and measure models").add_subparsers(
        dest="verb", required=True
    )

    p = model.add_parser("init", help="config -> freshly initialised HF checkpoint (the seed model)")
    _config_args(p)
    p.add_argument("--out", required=True, help="output checkpoint folder")
    p.add_argument("--tokenizer", help="tokenizer folder: sets the vocabulary and is saved with the model")
    p.add_argument("--seed", type=int, help="initialisation seed (default: the config's seed)")
    p.set_defaults(handler="growup.models.commands:init")

    p = model.add_parser("clone", help="checkpoint -> HyperCloned checkpoint (function preserving)")
    p.add_argument("--checkpoint", required=True, help="source checkpoint folder")
    p.add_argument("--out", required=True, help="output checkpoint folder")
    p.add_argument(
        "--factor", type=float, help="width factor, an integer >= 2 (default: config clone_factor, or 2)"
    )
    _config_args(p, required=False)
    p.add_argument(
        "--snr-db", type=float, default=None, help="add function-preserving noise at this SNR (dB)"
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.set_defaults(handler="growup.models.commands:clone")

    p = model.add_parser("count", help="config or checkpoint -> parameter and FLOP table")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--configfile", help="study config: counts the 1x model and its clone")
    src.add_argument("--spec", help="the job's spec as JSON (what the workflow passes)")
    src.add_argument("--checkpoint", help="a saved checkpoint")
    p.add_argument("--seq-len", type=int, help="sequence length of the attention term (default: config's)")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table", help="output format")
    p.add_argument("--json", action="store_true", help="shorthand for --format json")
    p.add_argument("--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(handler="growup.report.sizes:command")

    p = model.add_parser(
        "fetch", help="a fetched run: its checkpoint from a Hub id or folder (released.models)"
    )
    _config_args(p)
    p.add_argument("--run", required=True, help="run name, e.g. isl-2x or english-1x-cloned")
    p.add_argument("--out", required=True, help="run folder: step-N/ and final/ are written in it")
    p.set_defaults(handler="growup.fetch.commands:fetch")

    p = model.add_parser(
        "shape", help="a checkpoint's shape as study config keys (model, tokenizer.vocab_size)"
    )
    p.add_argument("source", help="a Hub id (through GROWUP_HUB_ROOT when set) or a checkpoint folder")
    p.add_argument("--revision", default="main", help="Hub revision")
    p.add_argument("--clone-factor", type=int, default=2, help="model.clone_factor to print")
    p.set_defaults(handler="growup.fetch.commands:shape")


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare the study's data").add_subparsers(dest="verb", required=True)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p = data.add_parser(name, help=help_text)
        _config_args(p)
        p.set_defaults(handler=f"growup.data.commands:{name}")
        return p

    p = verb("fetch", "one source (english, code, or a language code) -> data/raw/<name>")
    p.add_argument("--source", required=True)
    p.add_argument("--raw-dir", default="data/raw")
    p = verb("replay", "English and code replay sets for every language -> data/raw/replay-<lang>")
    p.add_argument("--raw-dir", default="data/raw")
    p = verb("unimax", "UniMax character budgets and epoch stages per language -> JSON")
    p.add_argument("--raw-dir", default="data/raw")
    p.add_argument("--out", default="data/unimax.json")
    p = verb(
        "tokenizer", "the base's, the Hub's (paper) or a BPE trained on the mini corpus -> data/tokenizer"
    )
    p.add_argument("--raw-dir", default="data/raw")
    p.add_argument("--out", default="data/tokenizer")
    p.add_argument("--checkpoint", help="copy this (fetched base) checkpoint's tokenizer instead")
    p = verb("pack", "tokenize and pack one raw dataset -> data/packed/<name>")
    p.add_argument("--raw", required=True, help="raw dataset folder (data/raw/<name>)")
    p.add_argument("--tokenizer", default="data/tokenizer")
    p.add_argument("--out", required=True)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one run of the study (resumes from its saved state)")
    _config_args(p)
    p.add_argument(
        "--run", required=True, help="seed, english-1x, english-2x, <lang>-<setup>, multilingual-<setup>"
    )
    p.add_argument("--init", required=True, help="checkpoint to start from (fresh optimizer and schedule)")
    p.add_argument("--out", required=True, help="run folder: step-N/, final/, state/, metrics.jsonl")
    p.add_argument("--data-dir", default="data", help="prepared data (packed/, unimax.json)")
    p.add_argument("--max-steps", type=int, help="stop after this step (keeps the full run's schedule)")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument(
        "--work",
        help="train here (state, steps, metrics; resumable), then move the finished run into --out "
        "at once and delete this folder (what the workflow does)",
    )
    p.set_defaults(handler="growup.train.commands:train")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="evaluate checkpoints on the study's benchmarks").add_subparsers(
        dest="verb", required=True
    )

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p = ev.add_parser(name, help=help_text)
        _config_args(p)
        p.set_defaults(handler=f"growup.evaluate.commands:{name}")
        return p

    for name, help_text in (
        ("checkpoint", "one checkpoint -> evals/<model>/<step>/<task>.json"),
        ("sweep", "every step-N of a run -> evals/<model>/<N>/<task>.json"),
    ):
        p = verb(name, help_text)
        if name == "checkpoint":
            p.add_argument("--checkpoint", required=True)
            p.add_argument("--step", default="final", help="label of this point (a step number or 'final')")
        else:
            p.add_argument("--run-dir", required=True, help="checkpoints/<run>")
            p.add_argument("--init", help="the run's starting checkpoint, evaluated as step 0")
        p.add_argument("--model", required=True, help="model name in evals/ (the run or merge name)")
        p.add_argument("--out-root", default="evals", help="writes <out-root>/<model>/<step>/")
        p.add_argument("--out", help="the model's folder instead (<out>/<step>/), e.g. evals/isl-1x")
        p.add_argument("--tasks", nargs="+", help="lm-eval task names (default: the study's)")
        p.add_argument("--limit", type=int, help="pairs per task (default: config evaluation.limit)")
    p = verb("merge", "one merged model -> <out>/final/<task>.json")
    p.add_argument("--setup", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--subset", required=True, help="languages joined with '+' (e.g. ekk+fao)")
    p.add_argument(
        "--merge", required=True, help="the merged model's folder (merges/<setup>/<method>/<subset>)"
    )
    p.add_argument("--out", required=True, help="output folder (evals/merges/<setup>/<method>/<subset>)")
    p.add_argument("--out-root", default="evals", help=argparse.SUPPRESS)
    p.add_argument("--tasks", nargs="+")
    p.add_argument("--limit", type=int)
    p = verb("tidy", "every evals/<model>/<step>/<task>.json -> one CSV row per metric")
    p.add_argument(
        "--evals", nargs="+", default=["evals"], help="evaluation folders (the workflow: each one)"
    )
    p.add_argument("--out", default="results/tables/evals.csv")
    p.add_argument("--pairs", default="results/tables/pairs.jsonl", help="per-pair verdicts (written)")


def _add_merge(sub: argparse._SubParsersAction) -> None:
    mg = sub.add_parser("merge", help="the study's merges through mergekit").add_subparsers(
        dest="verb", required=True
    )
    p = mg.add_parser("configs", help="write every merge of the grid as a mergekit YAML")
    _config_args(p)
    p.add_argument("--checkpoints", default="checkpoints", help="folder of the runs' checkpoints")
    p.add_argument("--out-root", default="merges")
    p.set_defaults(handler="growup.merge.commands:configs")
    p = mg.add_parser("run", help="write one merge's YAML and run it in-process")
    _config_args(p)
    p.add_argument("--setup", required=True, help="1x, 1x-cloned or 2x")
    p.add_argument("--method", required=True, help="a merge method of config key 'merging.methods'")
    p.add_argument("--subset", required=True, help="languages joined with '+' (e.g. ekk+fao)")
    p.add_argument("--checkpoints", default="checkpoints")
    p.add_argument(
        "--out-root", default="merges", help="writes <out-root>/<setup>/<method>/<subset>{.yaml,/}"
    )
    p.add_argument("--out", help="the merged model's folder instead")
    p.add_argument("--yaml", help="the merge YAML's path instead")
    p.set_defaults(handler="growup.merge.commands:run")
    p = mg.add_parser("rerun", help="rerun one merge YAML with mergekit's API (runs no checkpoint code)")
    p.add_argument("file", help="a merge YAML, e.g. merges/1x/ties/isl+swe.yaml")
    p.add_argument("out", help="the merged model's folder (written atomically)")
    p.add_argument("--random-seed", type=int, help="mergekit's seed (default: the one in FILE's header)")
    p.set_defaults(handler="growup.merge.commands:rerun")


def _add_report(sub: argparse._SubParsersAction) -> None:
    rp = sub.add_parser("report", help="tables, figures and the claims check").add_subparsers(
        dest="verb", required=True
    )
    for name, help_text in (
        ("tables", "final scores and merge tables (CSV + Markdown)"),
        ("leaderboard", "every merge method ranked per setup and subset (CSV + Markdown)"),
        ("figure", "one figure (PDF + PNG)"),
        ("claims", "results/claims.md and its figure (results/figures/claims.pdf|png)"),
    ):
        p = rp.add_parser(name, help=help_text)
        _config_args(p)
        p.add_argument("--evals-csv", default="results/tables/evals.csv")
        p.set_defaults(handler=f"growup.report.commands:{name}")
        if name == "figure":
            p.set_defaults(handler="growup.report.figures:command")
        elif name == "claims":
            p.set_defaults(handler="growup.report.claims_figure:command")
        if name == "figure":
            p.add_argument("--name", required=True, choices=FIGURES)
            p.add_argument("--out-dir", default="results/figures")
            p.add_argument(
                "--leaderboard",
                default="results/tables/merge_leaderboard.csv",
                help="the table the merge_leaderboard figure draws (growup report leaderboard)",
            )
        elif name == "tables":
            p.add_argument("--out-dir", default="results/tables")
        elif name == "leaderboard":
            p.add_argument("--out-dir", default="results/tables")
            p.add_argument(
                "--pairs", default="results/tables/pairs.jsonl", help="per-pair verdicts (growup eval tidy)"
            )
        else:
            p.add_argument("--out", default="results/claims.md")
            p.add_argument(
                "--pairs", default="results/tables/pairs.jsonl", help="per-pair verdicts (growup eval tidy)"
            )
            p.add_argument("--figure-dir", default="results/figures", help="where claims.pdf|png go")


def _add_artifacts(sub: argparse._SubParsersAction) -> None:
    ap = sub.add_parser("artifacts", help="the artifact manifest around dvc push / dvc pull").add_subparsers(
        dest="verb", required=True
    )
    for name, help_text in (
        ("record", "write artifacts.json: every tracked file in build order, with size and MD5"),
        ("restore", "after dvc pull: stamp artifacts in build order, mark those that differ stale"),
        ("verify", "compare every tracked file with artifacts.json: identical, differing, missing"),
    ):
        p = ap.add_parser(name, help=help_text)
        p.add_argument("--repo", default=".", help="repository root (holds dvc.yaml)")
        p.add_argument("--manifest", default="artifacts.json")
        if name == "restore":
            p.add_argument("--no-verify", action="store_true", help="compare sizes only, skip MD5")
        p.set_defaults(handler=f"growup.artifacts:{name}_command")


def _add_budget(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("budget", help="every training run's FLOPs and GPU-hours at a stated MFU and GPU")
    p.add_argument("--configfile", required=True, help="study config (YAML)")
    p.add_argument(
        "--mfu", type=float, default=DEFAULT_MFU, help=f"model FLOPs utilisation (default {DEFAULT_MFU})"
    )
    p.add_argument(
        "--gpu",
        choices=tuple(GPUS),
        default=DEFAULT_GPU,
        help=f"GPU whose peak dense bf16 FLOP/s to use (default {DEFAULT_GPU})",
    )
    p.add_argument("--format", choices=("markdown", "text"), default="text", help="output format")
    p.add_argument("--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(handler="growup.train.commands:budget")


def _add_admit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "admit",
        help="check that the cluster can run every training, evaluation and merge job (and bundle)",
        description="Site limits from GROWUP_GPUS_PER_NODE (default 8), GROWUP_SITE_NODES, "
        "GROWUP_NODE_MEM_MB, GROWUP_NODE_CPUS and GROWUP_MAX_RUNTIME (minutes); unset ones are not checked.",
    )
    p.add_argument("--configfile", required=True, help="study config (YAML)")
    p.add_argument(
        "--bundle", type=int, default=1, help="merges per bundle: the profile's group-components merges=N"
    )
    p.add_argument(
        "--test-only", action="store_true", help="also ask SLURM (sbatch --test-only; queues nothing)"
    )
    p.add_argument("--partition", help="SLURM partition the jobs go to (slurm_partition)")
    p.add_argument("--account", help="SLURM account (slurm_account)")
    p.set_defaults(handler="growup.admission:command")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="growup", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on bad input, show the traceback too (give it before the verb: growup --debug train ...)",
    )
    sub = parser.add_subparsers(dest="group", required=True)
    adders: Sequence[Callable[[argparse._SubParsersAction], None]] = (
        _add_model,
        _add_data,
        _add_train,
        _add_eval,
        _add_merge,
        _add_report,
        _add_artifacts,
        _add_budget,
        _add_admit,
    )
    for add in adders:
        add(sub)
    return parser


def verbs(parser: argparse.ArgumentParser | None = None) -> dict[str, str]:
    """Every verb (`data fetch`, `train`, ...) and its handler, read from the parser."""
    found: dict[str, str] = {}

    def walk(p: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for name, child in action.choices.items():
                walk(child, (*words, name))
        if not subs and p.get_default("handler"):
            found[" ".join(words)] = p.get_default("handler")

    walk(parser or build_parser(), ())
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        run = load(args.handler)
        log.debug("growup %s: imports done", " ".join(filter(None, (args.group, getattr(args, "verb", "")))))
        run(args)
    except INPUT_ERRORS as exc:  # bad input: one message; any other exception is a bug (traceback)
        if args.debug:
            raise
        print(f"growup: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("growup: interrupted", file=sys.stderr)
        return 130
    return 0


# errors that say the input is wrong (a GrowupError, or a file that is missing or unreadable)
INPUT_ERRORS = (GrowupError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


if __name__ == "__main__":
    sys.exit(main())
