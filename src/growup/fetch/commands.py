"""The `growup model fetch` and `growup model shape` verbs."""

from __future__ import annotations

import argparse

import yaml

from growup.fetch.run import fetch as fetch_run
from growup.fetch.run import model_section, source_config
from growup.study import load_job


def fetch(args: argparse.Namespace) -> None:
    """`growup model fetch`: a run from its configured source (Hub id or folder)."""
    fetch_run(load_job(args.spec, args.configfile, "model fetch", run=args.run), args.run, args.out)


def shape(args: argparse.Namespace) -> None:
    """`growup model shape`: the config keys of a checkpoint's shape, to paste into a study config."""
    config = source_config(args.source, rev=args.revision)
    print(f"# the shape of {args.source} (growup model shape)")
    print(yaml.safe_dump(model_section(config, args.clone_factor), sort_keys=False), end="")
