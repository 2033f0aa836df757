"""The `growup data` verbs: each takes the parsed arguments and calls `growup.data.prepare`."""

from __future__ import annotations

import argparse
import logging

from growup.data import prepare
from growup.study import load_job

log = logging.getLogger("growup")


def fetch(args: argparse.Namespace) -> None:
    """`growup data fetch`: one source into data/raw."""
    study = load_job(args.spec, args.configfile, "data fetch", source=args.source)
    for path in prepare.fetch(study, args.source, args.raw_dir):
        log.info("wrote %s", path)


def replay(args: argparse.Namespace) -> None:
    """`growup data replay`: every language's replay set."""
    for path in prepare.build_replay(load_job(args.spec, args.configfile, "data replay"), args.raw_dir):
        log.info("wrote %s", path)


def unimax(args: argparse.Namespace) -> None:
    """`growup data unimax`: character budgets and epoch stages per language."""
    result = prepare.budgets(load_job(args.spec, args.configfile, "data unimax"), args.raw_dir, args.out)
    for lang, row in result["languages"].items():
        log.info(
            "%s: %d chars, budget %.0f, %.3f epochs", lang, row["characters"], row["budget"], row["epochs"]
        )


def tokenizer(args: argparse.Namespace) -> None:
    """`growup data tokenizer`: the Hub tokenizer or a BPE trained on the mini corpus."""
    study = load_job(args.spec, args.configfile, "data tokenizer")
    log.info("wrote %s", prepare.make_tokenizer(study, args.raw_dir, args.out, args.checkpoint))


def pack(args: argparse.Namespace) -> None:
    """`growup data pack`: tokenize and pack one raw dataset."""
    study = load_job(args.spec, args.configfile, "data pack")
    m = prepare.pack_dataset(study, args.raw, args.tokenizer, args.out)
    log.info("%s: %d documents, %d tokens, %d sequences", args.out, m["documents"], m["tokens"], m["sequences"])
