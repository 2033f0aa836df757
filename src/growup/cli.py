"""The `growup` command: one sub-command group per stage of the study, nothing else.

Every verb validates its inputs, writes atomically, and exits with status 2 and a one-line
message (no traceback) on invalid input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from growup.errors import GrowupError

if TYPE_CHECKING:
    from growup.config import Study

log = logging.getLogger("growup")


def _spec(args: argparse.Namespace, job: str, **job_args: Any) -> dict[str, Any]:
    from growup.study import resolve_spec

    return resolve_spec(getattr(args, "spec", None), getattr(args, "configfile", None), job, **job_args)


def _study(args: argparse.Namespace, job: str, **job_args: Any) -> Study:
    """The study as job `job` sees it (`growup.study`): only the config values it declares."""
    from growup.config import Study

    return Study.from_spec(_spec(args, job, **job_args))


def _model_init(args: argparse.Namespace) -> None:
    from growup.models.build import base_config, init_model, tokenizer_vocab_size
    from growup.models.checkpoint import save_checkpoint
    from growup.models.flops import count_model_parameters

    study = _study(args, "model init")
    vocab = study.tokenizer.vocab_size
    if args.tokenizer:
        vocab = tokenizer_vocab_size(args.tokenizer, expected=vocab)
    seed = study.seed if args.seed is None else args.seed
    model = init_model(base_config(study.model, vocab), seed, study.model.init_scaling)
    lineage = {
        "operation": "init",
        "seed": seed,
        "step": 0,
        "tokens": 0,
        "flops": 0,
    }
    save_checkpoint(model, args.out, lineage, tokenizer_src=args.tokenizer)
    log.info("initialised %s parameters -> %s", f"{count_model_parameters(model).total:,}", args.out)


def _model_clone(args: argparse.Namespace) -> None:
    from growup.models.checkpoint import load_checkpoint, read_card, save_checkpoint
    from growup.models.cloning import check_factor, hyperclone

    factor = args.factor
    if factor is None:
        given = args.configfile or args.spec
        factor = _study(args, "model clone").model.clone_factor if given else 2
    factor = check_factor(factor)
    source = load_checkpoint(args.checkpoint)
    clone = hyperclone(source, factor, snr_db=args.snr_db, seed=args.seed)
    parent = read_card(args.checkpoint)
    lineage = {
        "operation": f"hyperclone x{factor}",
        "parent": str(args.checkpoint),
        "snr_db": args.snr_db,
        "seed": args.seed,
        "step": 0,
        "tokens": 0,
        "flops": 0,
        "parent_tokens": parent.get("tokens", 0) + parent.get("parent_tokens", 0),
        "parent_flops": parent.get("flops", 0) + parent.get("parent_flops", 0),
    }
    save_checkpoint(clone, args.out, lineage, tokenizer_src=args.checkpoint)
    log.info("cloned %s x%d -> %s", args.checkpoint, factor, args.out)


def _model_fetch(args: argparse.Namespace) -> None:
    from growup.models.released import fetch

    fetch(_study(args, "model fetch", run=args.run), args.run, args.out)


def _model_count(args: argparse.Namespace) -> None:
    from growup.io import atomic_write_text
    from growup.models.report import count_rows, format_count_markdown, format_count_table

    study = _study(args, "model count") if args.configfile or args.spec else None
    rows = count_rows(study=study, checkpoint=args.checkpoint, seq_len=args.seq_len)
    formats = {
        "table": format_count_table,
        "json": lambda r: json.dumps(r, indent=2),
        "markdown": format_count_markdown,
    }
    text = formats["json" if args.json else args.format](rows)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    else:
        print(text)


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
    p.set_defaults(func=_model_init)

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
    p.set_defaults(func=_model_clone)

    p = model.add_parser("count", help="config or checkpoint -> parameter and FLOP table")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--configfile", help="study config: counts the 1x model and its clone")
    src.add_argument("--spec", help="the job's spec as JSON (what the workflow passes)")
    src.add_argument("--checkpoint", help="a saved checkpoint")
    p.add_argument("--seq-len", type=int, help="sequence length of the attention term (default: config's)")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table", help="output format")
    p.add_argument("--json", action="store_true", help="shorthand for --format json")
    p.add_argument("--out", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=_model_count)

    p = model.add_parser("fetch", help="a released study's run: the authors' published checkpoint")
    _config_args(p)
    p.add_argument("--run", required=True, help="run name, e.g. isl-2x or english-1x-cloned")
    p.add_argument("--out", required=True, help="run folder: step-N/ and final/ are written in it")
    p.set_defaults(func=_model_fetch)


def _data(args: argparse.Namespace) -> None:
    from growup.data import prepare

    study = _study(args, f"data {args.verb}", **({"source": args.source} if args.verb == "fetch" else {}))
    if args.verb == "fetch":
        for path in prepare.fetch(study, args.source, args.raw_dir):
            log.info("wrote %s", path)
    elif args.verb == "replay":
        for path in prepare.build_replay(study, args.raw_dir):
            log.info("wrote %s", path)
    elif args.verb == "unimax":
        result = prepare.budgets(study, args.raw_dir, args.out)
        for lang, row in result["languages"].items():
            log.info(
                "%s: %d chars, budget %.0f, %.3f epochs",
                lang,
                row["characters"],
                row["budget"],
                row["epochs"],
            )
    elif args.verb == "tokenizer":
        log.info("wrote %s", prepare.make_tokenizer(study, args.raw_dir, args.out))
    elif args.verb == "pack":
        m = prepare.pack_dataset(study, args.raw, args.tokenizer, args.out)
        log.info(
            "%s: %d documents, %d tokens, %d sequences", args.out, m["documents"], m["tokens"], m["sequences"]
        )


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare the study's data").add_subparsers(dest="verb", required=True)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p = data.add_parser(name, help=help_text)
        _config_args(p)
        p.set_defaults(func=_data)
        return p

    p = verb("fetch", "one source (english, code, or a language code) -> data/raw/<name>")
    p.add_argument("--source", required=True)
    p.add_argument("--raw-dir", default="data/raw")
    p = verb("replay", "English and code replay sets for every language -> data/raw/replay-<lang>")
    p.add_argument("--raw-dir", default="data/raw")
    p = verb("unimax", "UniMax character budgets and epoch stages per language -> JSON")
    p.add_argument("--raw-dir", default="data/raw")
    p.add_argument("--out", default="data/unimax.json")
    p = verb("tokenizer", "the Hub tokenizer (paper) or a BPE trained on the mini corpus -> data/tokenizer")
    p.add_argument("--raw-dir", default="data/raw")
    p.add_argument("--out", default="data/tokenizer")
    p = verb("pack", "tokenize and pack one raw dataset -> data/packed/<name>")
    p.add_argument("--raw", required=True, help="raw dataset folder (data/raw/<name>)")
    p.add_argument("--tokenizer", default="data/tokenizer")
    p.add_argument("--out", required=True)


def _train(args: argparse.Namespace) -> None:
    import torch

    from growup.train.loop import train

    if args.threads:
        torch.set_num_threads(args.threads)
    study = _study(args, "train", run=args.run)
    if args.work is None:
        final = train(study, args.run, args.init, args.out, data_dir=args.data_dir, max_steps=args.max_steps)
    else:
        from growup.train.publish import prepare_work, publish

        prepare_work(args.work, json.dumps(_spec(args, "train", run=args.run), sort_keys=True))
        train(study, args.run, args.init, args.work, data_dir=args.data_dir, max_steps=args.max_steps)
        final = publish(args.work, args.out)
    log.info("%s: done (%s)", args.run, final)


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
    p.set_defaults(func=_train)


def _eval(args: argparse.Namespace) -> None:
    if args.verb == "checkpoint":
        from growup.evaluate.sweep import evaluate_checkpoint

        study = _study(args, "eval checkpoint")
        out = evaluate_checkpoint(
            study,
            args.checkpoint,
            args.model,
            args.step,
            args.out_root,
            args.tasks,
            args.limit,
            out_dir=args.out,
        )
        log.info("wrote %s", out)
    elif args.verb == "sweep":
        from growup.evaluate.sweep import sweep

        study = _study(args, "eval run", run=args.model)
        for out in sweep(
            study,
            args.run_dir,
            args.model,
            args.out_root,
            args.init,
            args.tasks,
            args.limit,
            out_dir=args.out,
        ):
            log.info("wrote %s", out)
    elif args.verb == "merge":
        from growup.evaluate.harness import merge_tasks
        from growup.evaluate.sweep import evaluate_checkpoint
        from growup.merge.grid import Merge

        study = _study(args, "eval merge", setup=args.setup, method=args.method, subset=args.subset)
        merge = Merge.parse(study, args.setup, args.method, args.subset)
        tasks = args.tasks or merge_tasks(study, merge.subset)
        out = evaluate_checkpoint(
            study, args.merge, merge.name, "final", args.out_root, tasks, args.limit, out_dir=args.out
        )
        log.info("wrote %s", out)
    elif args.verb == "tidy":
        from growup.evaluate.tidy import collect, write_csv

        study = _study(args, "eval tidy")
        iso = {lang.multiblimp: lang.code for lang in study.data.languages}
        rep = study.report
        rows, pairs = collect(args.evals, iso, rep.confidence, rep.bootstrap_resamples, rep.bootstrap_seed)
        write_csv(rows, args.out)
        pairs.save(args.pairs)
        log.info("wrote %d rows to %s", len(rows), args.out)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="evaluate checkpoints on the study's benchmarks").add_subparsers(
        dest="verb", required=True
    )

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p = ev.add_parser(name, help=help_text)
        _config_args(p)
        p.set_defaults(func=_eval)
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
    p.add_argument("--evals", default="evals")
    p.add_argument("--out", default="results/tables/evals.csv")
    p.add_argument("--pairs", default="results/tables/pairs.jsonl", help="per-pair verdicts (written)")


def _merge(args: argparse.Namespace) -> None:
    from growup.merge import grid

    if args.verb == "configs":
        from growup.io import atomic_write_text

        study = _study(args, "merge configs")
        seed = study.merging.random_seed
        merges = grid.merge_grid(study)
        for merge in merges:
            config = grid.merge_config(study, merge, args.checkpoints)
            atomic_write_text(merge.yaml_path(args.out_root), grid.to_yaml(config, seed))
        log.info("wrote %d merge configs under %s: %s", len(merges), args.out_root, grid.grid_counts(merges))
    elif args.verb == "run":
        from growup.merge.run import run_merge

        study = _study(args, "merge run", setup=args.setup, method=args.method, subset=args.subset)
        seed = study.merging.random_seed
        merge = grid.Merge.parse(study, args.setup, args.method, args.subset)
        config = grid.merge_config(study, merge, args.checkpoints)
        out = run_merge(
            config,
            args.out or merge.model_path(args.out_root),
            seed,
            args.yaml or merge.yaml_path(args.out_root),
        )
        log.info("merged %s -> %s", merge.name, out)


def _add_merge(sub: argparse._SubParsersAction) -> None:
    mg = sub.add_parser("merge", help="the study's merges through mergekit").add_subparsers(
        dest="verb", required=True
    )
    p = mg.add_parser("configs", help="write every merge of the grid as a mergekit YAML")
    _config_args(p)
    p.add_argument("--checkpoints", default="checkpoints", help="folder of the runs' checkpoints")
    p.add_argument("--out-root", default="merges")
    p.set_defaults(func=_merge)
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
    p.set_defaults(func=_merge)


def _report(args: argparse.Namespace) -> None:
    from growup.report.frame import load

    study = _study(args, f"report {args.verb}", **({"name": args.name} if args.verb == "figure" else {}))
    df = load(args.evals_csv)
    if args.verb == "tables":
        from growup.report import tables

        tables.write(tables.final_scores(df), f"{args.out_dir}/final_scores")
        tables.write(tables.merge_table(df), f"{args.out_dir}/merges", index=False)
    elif args.verb == "figure":
        from growup.report.figures import render

        for path in render(args.name, df, args.out_dir):
            log.info("wrote %s", path)
    elif args.verb == "claims":
        from growup.io import atomic_write_text
        from growup.report.claims import claims_markdown
        from growup.report.stats import Pairs

        rep = study.report
        text = claims_markdown(
            df,
            Pairs.load(args.pairs),
            confidence=rep.confidence,
            resamples=rep.bootstrap_resamples,
            seed=rep.bootstrap_seed,
            spread=rep.method_spread,
            study=study.name,
        )
        atomic_write_text(args.out, text)


def _add_report(sub: argparse._SubParsersAction) -> None:
    from growup.study import FIGURES

    rp = sub.add_parser("report", help="tables, figures and the claims check").add_subparsers(
        dest="verb", required=True
    )
    for name, help_text in (
        ("tables", "final scores and merge tables (CSV + Markdown)"),
        ("figure", "one figure (PDF + PNG)"),
        ("claims", "results/claims.md"),
    ):
        p = rp.add_parser(name, help=help_text)
        _config_args(p)
        p.add_argument("--evals-csv", default="results/tables/evals.csv")
        p.set_defaults(func=_report)
        if name == "figure":
            p.add_argument("--name", required=True, choices=FIGURES)
            p.add_argument("--out-dir", default="results/figures")
        elif name == "tables":
            p.add_argument("--out-dir", default="results/tables")
        else:
            p.add_argument("--out", default="results/claims.md")
            p.add_argument(
                "--pairs", default="results/tables/pairs.jsonl", help="per-pair verdicts (growup eval tidy)"
            )


def _artifacts(args: argparse.Namespace) -> None:
    from pathlib import Path

    from growup import artifacts

    repo = Path(args.repo)
    if args.verb == "record":
        artifacts.record(repo, args.manifest)
    elif args.verb == "verify":
        report = artifacts.verify(repo, args.manifest)
        print(artifacts.format_verify(report))
        bad = sum(len(g[k]) for g in report.values() for k in ("differing", "missing", "unrecorded"))
        if bad:
            raise GrowupError(f"{bad} tracked files differ from {args.manifest}, are missing or unrecorded")
    else:
        stale = artifacts.restore(repo, args.manifest, verify=not args.no_verify)
        for unit, reason in sorted(stale.items()):
            print(f"stale {unit}: {reason}; snakemake rebuilds it")


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
        p.set_defaults(func=_artifacts)


def _budget(args: argparse.Namespace) -> None:
    from growup.config import load_config
    from growup.io import atomic_write_text
    from growup.train.budget import FORMATS, study_budget

    study = load_config(args.configfile)
    text = FORMATS[args.format](study, study_budget(study, args.gpu, args.mfu), args.gpu, args.mfu)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    else:
        print(text)


def _add_budget(sub: argparse._SubParsersAction) -> None:
    from growup.train.budget import DEFAULT_GPU, DEFAULT_MFU, GPUS

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
    p.set_defaults(func=_budget)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="growup", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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
    )
    for add in adders:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args.func(args)
    except GrowupError as exc:
        print(f"growup: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
