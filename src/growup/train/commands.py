"""The `growup train` and `growup budget` verbs: each takes the parsed arguments and calls this
package's functions."""

from __future__ import annotations

import argparse
import json
import logging

import torch

from growup.io import atomic_write_text
from growup.study import load_config, load_job, resolve_spec
from growup.train.budget import FORMATS, study_budget
from growup.train.launch import launched_rank
from growup.train.loop import train as train_run
from growup.train.publish import prepare_work, publish

log = logging.getLogger("growup")


def train(args: argparse.Namespace) -> None:
    """`growup train`: one run, in --out, or in --work and then published to --out at once."""
    if args.threads:
        torch.set_num_threads(args.threads)
    study = load_job(args.spec, args.configfile, "train", run=args.run)
    if args.work is None:
        final = train_run(
            study, args.run, args.init, args.out, data_dir=args.data_dir, max_steps=args.max_steps
        )
    else:
        # one process prepares and publishes the work folder (the others join it in train_run,
        # whose process group forms after this one prepared it, and leave it when trained)
        main = launched_rank() == 0
        if main:
            spec = resolve_spec(args.spec, args.configfile, "train", run=args.run)
            prepare_work(args.work, json.dumps(spec, sort_keys=True))
        train_run(study, args.run, args.init, args.work, data_dir=args.data_dir, max_steps=args.max_steps)
        if not main:
            return
        final = publish(args.work, args.out)
    log.info("%s: done (%s)", args.run, final)


def budget(args: argparse.Namespace) -> None:
    """`growup budget`: every training run's FLOPs and GPU-hours."""
    study = load_config(args.configfile)
    text = FORMATS[args.format](study, study_budget(study, args.gpu, args.mfu), args.gpu, args.mfu)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    else:
        print(text)
