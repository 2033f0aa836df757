"""The study's tokenizer: the paper's Llama-3.3 tokenizer from the Hub (gated), or, for the mini
study, a byte-level BPE tokenizer trained with `tokenizers` on the mini corpus, deterministically.

transformers is imported by the functions that use it (the `data tokenizer` and `data pack` verbs
load it first, growup.cli.LOADS), so the other data verbs start without it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from growup import hub
from growup.config import TokenizerSpec
from growup.errors import GrowupError
from growup.integrity import copy_tokenizer, verify_checkpoint, verify_tokenizer, write_checksums
from growup.io import atomic_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# the `tokenizer_class` values that name transformers' fast tokenizer (v5 calls it TokenizersBackend)
FAST_CLASSES = ("PreTrainedTokenizerFast", "TokenizersBackend")

GATED_HELP = (
    "the tokenizer {hub_id!r} is gated on the Hugging Face Hub: accept its licence at "
    "https://huggingface.co/{hub_id}, then log in with `hf auth login` (or set HF_TOKEN) and rerun"
)


def train_bpe(texts: Iterable[str], spec: TokenizerSpec) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with `spec.vocab_size` entries (special tokens first).

    The same texts in the same order give the same vocabulary and merges, byte for byte.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        special_tokens=[spec.eos_token, spec.bos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=spec.eos_token, bos_token=spec.bos_token)
    if len(fast) != spec.vocab_size:
        raise GrowupError(
            f"the corpus yields only {len(fast)} tokens, fewer than config key 'tokenizer.vocab_size' = "
            f"{spec.vocab_size}: lower it or train on more data (tokenizer.train_on)"
        )
    return fast


def load_hub_tokenizer(spec: TokenizerSpec, hub_root: str | None) -> PreTrainedTokenizerFast:
    """The pretrained tokenizer named by `tokenizer.hub_id`, through the Hub root in force."""
    from transformers import AutoTokenizer

    assert spec.hub_id is not None
    path = hub.resolve(spec.hub_id, hub_root)
    try:
        return AutoTokenizer.from_pretrained(path, revision=spec.revision if path == spec.hub_id else None)
    except Exception as exc:
        if _is_gated(exc):
            raise GrowupError(GATED_HELP.format(hub_id=spec.hub_id)) from exc
        raise GrowupError(
            f"cannot load tokenizer {spec.hub_id!r} from {path!r}: {exc}. Set {hub.ENV_ROOT} to a local "
            "mirror holding it, or check Hub access"
        ) from exc


def _is_gated(exc: BaseException) -> bool:
    """True when the error (or its cause) says the repo is gated or needs a token."""
    from huggingface_hub.errors import GatedRepoError

    while exc is not None:
        text = str(exc).lower()
        if isinstance(exc, GatedRepoError) or "gated repo" in text or "401" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def load_tokenizer(folder: str | os.PathLike[str]) -> PreTrainedTokenizerFast:
    """A saved tokenizer folder, verified. A fast tokenizer (what `data tokenizer` writes, and
    Llama-3's) loads through its own class: what `AutoTokenizer` resolves it to, without the
    seconds AutoTokenizer's import of every model's tokenizer mapping (and torch) costs."""
    path = str(verify_tokenizer(folder))
    config = Path(path) / "tokenizer_config.json"
    name = json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class") if config.is_file() else None
    if name in FAST_CLASSES:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(path)
    from transformers import AutoTokenizer  # any other class: transformers picks it

    return AutoTokenizer.from_pretrained(path)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out: str | os.PathLike[str]) -> Path:
    """Write the tokenizer and its `checksums.sha256` (what `integrity.verify_tokenizer` checks), atomically."""
    with atomic_dir(out) as tmp:
        tokenizer.save_pretrained(tmp)
        write_checksums(tmp)
    return Path(out)


def base_tokenizer(checkpoint: str | os.PathLike[str], vocab_size: int, out: str | os.PathLike[str]) -> Path:
    """The tokenizer of a (fetched) base checkpoint, its files copied byte for byte and sealed, so
    the study's data is packed with exactly the tokenizer the base was trained with."""
    from transformers import AutoTokenizer  # a fetched base only: its tokenizer class is its own

    verify_checkpoint(checkpoint)  # its recorded hashes, and a tokenizer at all
    size = len(AutoTokenizer.from_pretrained(str(checkpoint)))
    if size > vocab_size:
        raise GrowupError(
            f"the tokenizer of {str(checkpoint)!r} has {size} tokens, more than config key "
            f"'tokenizer.vocab_size' = {vocab_size} (the base's embedding rows)"
        )
    with atomic_dir(out) as tmp:
        copy_tokenizer(checkpoint, tmp)
        write_checksums(tmp)
    return Path(out)


def tokenizer_digest(folder: str | os.PathLike[str]) -> str:
    """sha256 of the tokenizer's defining file, recorded in every packed manifest."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise GrowupError(f"no tokenizer.json in {str(folder)!r}: run `growup data tokenizer` first")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def concat(iterables: Iterable[Iterable[str]]) -> Iterator[str]:
    for it in iterables:
        yield from it
