"""The `growup report` verbs: each takes the parsed arguments and calls this package's functions.
Each imports only what it draws with (`report figure` and `report claims` load matplotlib, in
`figures.py` and `claims_figure.py`)."""

from __future__ import annotations

import argparse
import logging

from growup.report import tables as table_writers
from growup.report.frame import load
from growup.report.leaderboard import leaderboard as merge_leaderboard
from growup.report.leaderboard import write as write_leaderboard
from growup.report.stats import Pairs
from growup.study import LEADERBOARD, load_job

log = logging.getLogger("growup")


def tables(args: argparse.Namespace) -> None:
    """`growup report tables`: final scores and merge tables."""
    load_job(args.spec, args.configfile, "report tables")
    df = load(args.evals_csv)
    table_writers.write(table_writers.final_scores(df), f"{args.out_dir}/final_scores")
    table_writers.write(table_writers.merge_table(df), f"{args.out_dir}/merges", index=False)


def leaderboard(args: argparse.Namespace) -> None:
    """`growup report leaderboard`: merge_leaderboard.csv|md from the tidy table and the pairs."""
    rep = load_job(args.spec, args.configfile, "report leaderboard").report
    resampling = {"resamples": rep.bootstrap_resamples, "seed": rep.bootstrap_seed}
    table = merge_leaderboard(
        load(args.evals_csv), Pairs.load(args.pairs), confidence=rep.confidence, **resampling
    )
    write_leaderboard(table, f"{args.out_dir}/{LEADERBOARD}")
