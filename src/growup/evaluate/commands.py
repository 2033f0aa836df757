"""The `growup eval` verbs: each takes the parsed arguments and calls this package's functions."""

from __future__ import annotations

import argparse
import logging

from growup.evaluate.harness import merge_tasks
from growup.evaluate.sweep import evaluate_checkpoint
from growup.evaluate.sweep import sweep as sweep_run
from growup.evaluate.tidy import collect, write_csv
from growup.study import Merge, load_job

log = logging.getLogger("growup")


def checkpoint(args: argparse.Namespace) -> None:
    """`growup eval checkpoint`: one checkpoint on the study's tasks."""
    study = load_job(args.spec, args.configfile, "eval checkpoint")
    out = evaluate_checkpoint(
        study, args.checkpoint, args.model, args.step, args.out_root, args.tasks, args.limit, out_dir=args.out
    )
    log.info("wrote %s", out)


def sweep(args: argparse.Namespace) -> None:
    """`growup eval sweep`: every saved step of a run (and its start as step 0)."""
    study = load_job(args.spec, args.configfile, "eval run", run=args.model)
    for out in sweep_run(
        study, args.run_dir, args.model, args.out_root, args.init, args.tasks, args.limit, out_dir=args.out
    ):
        log.info("wrote %s", out)


def merge(args: argparse.Namespace) -> None:
    """`growup eval merge`: one merged model on its languages' and the English tasks."""
    job = {"setup": args.setup, "method": args.method, "subset": args.subset}
    study = load_job(args.spec, args.configfile, "eval merge", **job)
    merged = Merge.parse(study, args.setup, args.method, args.subset)
    tasks = args.tasks or merge_tasks(study, merged.subset)
    out = evaluate_checkpoint(
        study, args.merge, merged.name, "final", args.out_root, tasks, args.limit, out_dir=args.out
    )
    log.info("wrote %s", out)


def tidy(args: argparse.Namespace) -> None:
    """`growup eval tidy`: every result file into one CSV row per metric, with intervals."""
    study = load_job(args.spec, args.configfile, "eval tidy")
    iso = {lang.multiblimp: lang.code for lang in study.data.languages}
    rep = study.report
    rows, pairs = collect(args.evals, iso, rep.confidence, rep.bootstrap_resamples, rep.bootstrap_seed)
    write_csv(rows, args.out)
    pairs.save(args.pairs)
    log.info("wrote %d rows to %s", len(rows), args.out)
