"""Training throughput of the mini study's models (1x and its x2 clone) with `growup.train`.

    GROWUP_HUB_ROOT=../shared/data/hub-mirror HF_HUB_OFFLINE=1 python benchmarks/bench_train.py [--data DIR]

Prepares the mini data in a temporary folder unless --data names a prepared one, then trains the
english-1x run from a fresh 1x model and english-2x from its clone for --steps steps each, and
prints tokens/s (median over steps after the first two) and, on a GPU, the MFU the loop logs.
With --configfile config/paper.yaml on a GPU it measures the paper's 180M model (bf16, SDPA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from growup.config import load_config  # noqa: E402
from growup.models.build import base_config, init_model  # noqa: E402
from growup.models.checkpoint import save_checkpoint  # noqa: E402
from growup.models.cloning import hyperclone  # noqa: E402
from growup.models.flops import count_parameters  # noqa: E402
from growup.train.loop import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--data", type=Path, help="prepared data folder (packed/, unimax.json, tokenizer/)")
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()

    study = load_config(args.configfile)
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = args.data
    if data is None:
        from conftest import prepare_mini_data

        data = prepare_mini_data(tmp / "data")
    vocab = len(__import__("transformers").AutoTokenizer.from_pretrained(data / "tokenizer"))
    small = init_model(base_config(study.model, vocab), seed=study.seed)
    save_checkpoint(small, tmp / "1x", {"operation": "init"}, tokenizer_src=data / "tokenizer")
    save_checkpoint(hyperclone(small, study.model.clone_factor), tmp / "2x", {"operation": "clone"})
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {device}; {study.training.tokens_per_step} tokens/step")
    for run, init in (("english-1x", tmp / "1x"), ("english-2x", tmp / "2x")):
        out = tmp / run
        train(study, run, init, out, data_dir=data, max_steps=args.steps, progress=False)
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][2:]
        params = count_parameters(json_config(init)).total
        tps = statistics.median(r["tokens_per_s"] for r in rows)
        mfu = statistics.median(r["mfu"] for r in rows) if "mfu" in rows[0] else None
        extra = f", MFU {mfu:.1%}" if mfu is not None else ""
        print(f"{run}: {params / 1e6:.2f}M parameters, {tps:,.0f} tokens/s{extra}")


def json_config(folder: Path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder)


if __name__ == "__main__":
    main()
