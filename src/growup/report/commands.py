"""The `growup report` verbs: each takes the parsed arguments and calls this package's functions.
Each imports only what it draws with (`report figure` alone loads matplotlib)."""

from __future__ import annotations

import argparse
import logging

from growup.io import atomic_write_text
from growup.report import tables as table_writers
from growup.report.claims import claims_markdown
from growup.report.frame import load
from growup.report.stats import Pairs
from growup.study import load_job

log = logging.getLogger("growup")


def tables(args: argparse.Namespace) -> None:
    """`growup report tables`: final scores and merge tables."""
    load_job(args.spec, args.configfile, "report tables")
    df = load(args.evals_csv)
    table_writers.write(table_writers.final_scores(df), f"{args.out_dir}/final_scores")
    table_writers.write(table_writers.merge_table(df), f"{args.out_dir}/merges", index=False)


def claims(args: argparse.Namespace) -> None:
    """`growup report claims`: results/claims.md from the tidy table and the per-pair verdicts."""
    study = load_job(args.spec, args.configfile, "report claims")
    rep = study.report
    text = claims_markdown(
        load(args.evals_csv),
        Pairs.load(args.pairs),
        confidence=rep.confidence,
        resamples=rep.bootstrap_resamples,
        seed=rep.bootstrap_seed,
        spread=rep.method_spread,
        margin=rep.margin,
        study=study.name,
    )
    atomic_write_text(args.out, text)
