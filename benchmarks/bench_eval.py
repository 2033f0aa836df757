"""Seconds per checkpoint and scored minimal pairs per second of `growup.evaluate`, model loading
included, for a study's two model sizes (1x and its clone).

    GROWUP_HUB_ROOT=../shared/data/hub-mirror HF_HUB_OFFLINE=1 python benchmarks/bench_eval.py \
        [--configfile config/config.yaml] [--data DIR] [--tasks T ...] [--limit N]

A freshly initialised model of each size is saved as a checkpoint; the timed part is what
`growup evaluate` does per checkpoint: load it (`evaluation.dtype`), wrap it for lm-eval
(`evaluation.batch_size`), and score every task of the study (all of MultiBLiMP's study languages
and English, plus BLiMP single-error when configured) through lm-eval. Datasets are loaded by an
untimed warm-up first, as a sweep over many checkpoints loads them once. --limit defaults to the
config's `evaluation.limit` (the mini study scores 50 pairs per task; the paper all of them).
The paper's tokenizer must be in --data/tokenizer for config/paper.yaml.
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

from growup.evaluate.harness import evaluate, make_lm, study_tasks  # noqa: E402
from growup.models.build import study_configs  # noqa: E402
from growup.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from growup.models.flops import count_parameters  # noqa: E402
from growup.models.hyperllama import model_class  # noqa: E402
from growup.study import load_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--data", type=Path, help="prepared data folder with tokenizer/")
    parser.add_argument("--tasks", nargs="+", help="lm-eval tasks (default: the study's)")
    parser.add_argument("--limit", type=int, help="pairs per task (default: evaluation.limit)")
    args = parser.parse_args()

    study = load_config(args.configfile)
    tmp = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    data = args.data
    if data is None:
        from helpers import prepare_mini_data

        data = prepare_mini_data(tmp / "data")
    tok = AutoTokenizer.from_pretrained(data / "tokenizer")
    tasks = args.tasks or study_tasks(study)
    limit = args.limit if args.limit is not None else study.evaluation.limit
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    ev = study.evaluation
    print(
        f"device: {device}; {len(tasks)} tasks ({', '.join(tasks)}); limit {limit}; "
        f"dtype {ev.dtype}, batch size {ev.batch_size}"
    )
    for name, config in study_configs(study, len(tok)).items():
        folder = tmp / name
        torch.manual_seed(0)
        model = model_class(config)(config)  # a clone's HyperLlama head divides by the clone factor
        save_checkpoint(model, folder, {"operation": "init"}, tokenizer_src=data / "tokenizer")
        warm = make_lm(load_checkpoint(folder, dtype=ev.dtype), tok, study)
        evaluate(warm, study, tasks, limit=2)  # untimed: datasets, task objects, kernels
        del warm
        start = time.perf_counter()
        model = load_checkpoint(folder, dtype=ev.dtype)
        loaded = time.perf_counter()
        results = evaluate(make_lm(model, tok, study), study, tasks, limit=limit)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        pairs = sum(results["results"][t]["sample_len"] for t in tasks)
        print(
            f"{name} ({count_parameters(config).total / 1e6:.1f}M): {pairs} pairs in {seconds:.2f} s "
            f"(loading {loaded - start:.2f} s) = {pairs / seconds:,.0f} pairs/s"
        )
        del model


if __name__ == "__main__":
    main()
