"""The `growup report` verbs: each takes the parsed arguments and calls this package's functions.
Each imports only what it draws with (`report figure` and `report claims` load matplotlib, in
`figures.py` and `claims_figure.py`)."""

from __future__ import annotations

import argparse
import logging

from growup.report import tables as table_writers
from growup.report.frame import load
from growup.study import load_job

log = logging.getLogger("growup")


def tables(args: argparse.Namespace) -> None:
    """`growup report tables`: final scores and merge tables."""
    load_job(args.spec, args.configfile, "report tables")
    df = load(args.evals_csv)
    table_writers.write(table_writers.final_scores(df), f"{args.out_dir}/final_scores")
    table_writers.write(table_writers.merge_table(df), f"{args.out_dir}/merges", index=False)
