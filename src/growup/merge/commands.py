"""The `growup merge` verbs: each takes the parsed arguments and calls this package's functions."""

from __future__ import annotations

import argparse
import logging

from growup.io import atomic_write_text
from growup.merge import grid
from growup.merge.run import rerun as rerun_yaml
from growup.merge.run import run_merge
from growup.study import Merge, grid_counts, load_job, merge_grid

log = logging.getLogger("growup")


def configs(args: argparse.Namespace) -> None:
    """`growup merge configs`: every merge of the grid as a mergekit YAML."""
    study = load_job(args.spec, args.configfile, "merge configs")
    seed = study.merging.random_seed
    merges = merge_grid(study)
    for merge in merges:
        config = grid.merge_config(study, merge, args.checkpoints)
        atomic_write_text(merge.yaml_path(args.out_root), grid.to_yaml(config, seed))
    log.info("wrote %d merge configs under %s: %s", len(merges), args.out_root, grid_counts(merges))


def run(args: argparse.Namespace) -> None:
    """`growup merge run`: one merge's YAML, run in-process by mergekit."""
    job = {"setup": args.setup, "method": args.method, "subset": args.subset}
    study = load_job(args.spec, args.configfile, "merge run", **job)
    seed = study.merging.random_seed
    merge = Merge.parse(study, args.setup, args.method, args.subset)
    config = grid.merge_config(study, merge, args.checkpoints)
    out = run_merge(
        config,
        args.out or merge.model_path(args.out_root),
        seed,
        args.yaml or merge.yaml_path(args.out_root),
    )
    log.info("merged %s -> %s", merge.name, out)


def rerun(args: argparse.Namespace) -> None:
    """`growup merge rerun FILE OUT [--random-seed N]`: mergekit's API, no checkpoint code."""
    log.info("merged %s -> %s", args.file, rerun_yaml(args.file, args.out, args.random_seed))
