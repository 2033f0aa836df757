"""Scored minimal pairs per second of `growup.evaluate` for the mini study's models (1x and x2 clone).

    GROWUP_HUB_ROOT=../shared/data/hub-mirror HF_HUB_OFFLINE=1 python benchmarks/bench_eval.py [--data DIR]

Scores every Icelandic MultiBLiMP pair (2 sentences each) through lm-eval with a freshly
initialised model; prints pairs/s after one warm-up run. On a GPU, pass --configfile
config/paper.yaml to measure the 180M model (its tokenizer must be in --data/tokenizer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from transformers import AutoTokenizer  # noqa: E402

from growup.config import load_config  # noqa: E402
from growup.evaluate.harness import evaluate, make_lm  # noqa: E402
from growup.models.build import base_config, init_model  # noqa: E402
from growup.models.cloning import hyperclone  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--data", type=Path, help="prepared data folder with tokenizer/")
    parser.add_argument("--task", default="multiblimp_isl")
    args = parser.parse_args()

    study = load_config(args.configfile)
    data = args.data
    if data is None:
        from conftest import prepare_mini_data

        data = prepare_mini_data(Path(tempfile.mkdtemp(prefix="bench-eval-")))
    tok = AutoTokenizer.from_pretrained(data / "tokenizer")
    small = init_model(base_config(study.model, len(tok)), seed=0)
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {device}; task {args.task}")
    for name, model in (("1x", small), ("clone-x2", hyperclone(small, study.model.clone_factor))):
        lm = make_lm(model, tok, study)
        evaluate(lm, study, [args.task], limit=50)  # warm-up: dataset load, kernels
        start = time.perf_counter()
        results = evaluate(lm, study, [args.task])
        seconds = time.perf_counter() - start
        pairs = results["results"][args.task]["sample_len"]
        print(f"{name}: {pairs} pairs in {seconds:.2f} s = {pairs / seconds:,.0f} pairs/s")


if __name__ == "__main__":
    main()
