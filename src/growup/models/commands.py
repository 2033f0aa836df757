"""The `growup model` verbs: each takes the parsed arguments and calls this package's functions."""

from __future__ import annotations

import argparse
import logging

from growup.accounting import Lineage
from growup.models.build import base_config, init_model, tokenizer_vocab_size
from growup.models.checkpoint import load_checkpoint, read_card, save_checkpoint
from growup.models.cloning import check_factor, hyperclone
from growup.models.flops import count_model_parameters
from growup.study import load_job

log = logging.getLogger("growup")


def init(args: argparse.Namespace) -> None:
    """`growup model init`: the freshly initialised seed model, with a card that starts its lineage."""
    study = load_job(args.spec, args.configfile, "model init")
    vocab = study.tokenizer.vocab_size
    if args.tokenizer:
        vocab = tokenizer_vocab_size(args.tokenizer, expected=vocab)
    seed = study.seed if args.seed is None else args.seed
    model = init_model(base_config(study.model, vocab), seed, study.model.init_scaling)
    card = {"operation": "init", "seed": seed, **Lineage().card()}
    save_checkpoint(model, args.out, card, tokenizer_src=args.tokenizer)
    log.info("initialised %s parameters -> %s", f"{count_model_parameters(model).total:,}", args.out)


def clone(args: argparse.Namespace) -> None:
    """`growup model clone`: a HyperClone of a checkpoint, carrying its lineage totals."""
    factor = args.factor
    if factor is None:
        given = args.configfile or args.spec
        factor = load_job(args.spec, args.configfile, "model clone").model.clone_factor if given else 2
    factor = check_factor(factor)
    source = load_checkpoint(args.checkpoint, tokenizer=False)  # weights only; train/eval need one
    cloned = hyperclone(source, factor, snr_db=args.snr_db, seed=args.seed)
    card = {
        "operation": f"hyperclone x{factor}",
        "parent": str(args.checkpoint),
        "snr_db": args.snr_db,
        "seed": args.seed,
        **Lineage.from_card(read_card(args.checkpoint)).child().card(),
    }
    save_checkpoint(cloned, args.out, card, tokenizer_src=args.checkpoint)
    log.info("cloned %s x%d -> %s", args.checkpoint, factor, args.out)
