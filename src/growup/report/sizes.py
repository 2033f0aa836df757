"""The model-size table (`growup model count`, results/tables/model_sizes.md): parameters and
training FLOPs per token of the study's models or of one checkpoint."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from transformers import AutoConfig, LlamaConfig

from growup.accounting import token_cost
from growup.config import Study
from growup.errors import GrowupError
from growup.io import atomic_write_text
from growup.models.build import study_configs
from growup.models.flops import count_parameters
from growup.study import load_job


def count_row(name: str, config: LlamaConfig, seq_len: int) -> dict[str, Any]:
    """One row: parameter totals and both FLOP-per-token formulas."""
    params = count_parameters(config)
    cost = token_cost(config, seq_len)
    return {
        "model": name,
        "params": params.total,
        "embedding": params.embedding,
        "non_embedding": params.non_embedding,
        "flops_per_token_6n": cost.flops_6n,
        "flops_per_token_attn": cost.flops,
        "seq_len": seq_len,
        "hidden_size": config.hidden_size,
        "heads": f"{config.num_attention_heads}/{config.num_key_value_heads}",
    }


def _checkpoint_config(checkpoint: str | os.PathLike[str]) -> LlamaConfig:
    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        raise GrowupError(f"no checkpoint at {str(path)!r}: expected a folder with config.json")
    config = AutoConfig.from_pretrained(str(path.resolve()), local_files_only=True)
    if not isinstance(config, LlamaConfig):
        raise GrowupError(
            f"checkpoint {str(path)!r} is a {json.dumps(config.model_type)} model, not Llama/HyperLlama"
        )
    return config


def count_rows(
    study: Study | None = None, checkpoint: str | None = None, seq_len: int | None = None
) -> list[dict[str, Any]]:
    """Rows for a study (its 1x model and clone) or for one checkpoint."""
    if study is not None:
        seq = seq_len or study.training.sequence_length
        return [count_row(name, cfg, seq) for name, cfg in study_configs(study).items()]
    if checkpoint:
        config = _checkpoint_config(checkpoint)
        return [count_row(str(checkpoint), config, seq_len or config.max_position_embeddings)]
    raise GrowupError("give --configfile or --checkpoint")


def _si(value: float) -> str:
    """1.080G, 572.49M, 12.3K: short magnitudes for a table."""
    for scale, unit, digits in ((1e9, "G", 3), (1e6, "M", 2), (1e3, "K", 1)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f}{unit}"
    return f"{value:.0f}"


HEADER = ("model", "params", "embedding", "non-emb", "heads", "6N FLOP/tok", "6N+attn FLOP/tok", "seq")


def _cells(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            r["model"],
            f"{r['params'] / 1e6:.2f}M",
            f"{r['embedding'] / 1e6:.2f}M",
            f"{r['non_embedding'] / 1e6:.2f}M",
            r["heads"],
            _si(r["flops_per_token_6n"]),
            _si(r["flops_per_token_attn"]),
            str(r["seq_len"]),
        )
        for r in rows
    ]


def format_count_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table; parameters and training FLOPs per token with SI suffixes."""
    header, body = HEADER, _cells(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    lines = [
        "  ".join(str(x).rjust(w) for x, w in zip(line, widths, strict=True)) for line in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_count_markdown(rows: list[dict[str, Any]]) -> str:
    """The same table in Markdown, with the formulas underneath."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _cells(rows)]
    lines.append("")
    lines.append("N counts every parameter (tied embedding once); attention term 12·L·H·Q·T (PaLM, app. B).")
    return "\n".join(lines)


def command(args: argparse.Namespace) -> None:
    """`growup model count`: the parameter and FLOP table of a config's models or a checkpoint."""
    given = args.configfile or args.spec
    study = load_job(args.spec, args.configfile, "model count") if given else None
    rows = count_rows(study=study, checkpoint=args.checkpoint, seq_len=args.seq_len)
    formats = {
        "table": format_count_table,
        "json": lambda r: json.dumps(r, indent=2),
        "markdown": format_count_markdown,
    }
    text = formats["json" if args.json else args.format](rows)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    else:
        print(text)
