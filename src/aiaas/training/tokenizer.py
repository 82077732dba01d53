"""The tokenizer of a language model: byte-level BPE trained on the dataset by ``tokenizers``.

Byte-level BPE (GPT-2's scheme) starts from the 256 byte values, so every text, in any script
or with emoji, encodes without an unknown token; merges learnt from the training split make
frequent words single tokens. Training is deterministic (same documents and vocabulary size,
same tokenizer, in any process), which data-parallel ranks that each prepare the data rely on;
a resumed job does not even depend on it, since its checkpoint holds the tokenizer.

The tokenizer is saved with the model as ``transformers`` reads it
(:class:`~transformers.PreTrainedTokenizerFast`: ``tokenizer.json`` + ``tokenizer_config.json``),
so ``AutoTokenizer.from_pretrained(folder)`` loads it offline.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from aiaas.training.text_data import CHAT_ROLES, CHAT_TEMPLATE

__all__ = [
    "EOS_TOKEN",
    "MIN_FREQUENCY",
    "encode_documents",
    "token_id",
    "tokenizer_files",
    "train_tokenizer",
    "vocab_size",
]

#: The end-of-text token: between documents in training, and where generation stops.
EOS_TOKEN = "<|endoftext|>"
#: A pair of tokens is merged only when it occurs at least this often in the training split.
MIN_FREQUENCY = 2
#: Documents encoded per call (bounds the memory of one ``encode_batch``).
_ENCODE_BATCH = 1024


def train_tokenizer(documents: Sequence[str], vocab_size: int, *, chat: bool = False) -> str:
    """A byte-level BPE tokenizer of at most ``vocab_size`` tokens, as ``tokenizers`` JSON.

    Its special tokens are :data:`EOS_TOKEN` (id 0), and for chat models the role markers
    of :data:`~aiaas.training.text_data.CHAT_ROLES`. A small corpus may stop short of
    ``vocab_size``: there are no more pairs seen :data:`MIN_FREQUENCY` times to merge.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=MIN_FREQUENCY,
        special_tokens=[EOS_TOKEN, *(CHAT_ROLES if chat else ())],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(documents), trainer=trainer, length=len(documents))
    return str(tokenizer.to_str())


def vocab_size(tokenizer_json: str) -> int:
    """The number of token ids (special tokens included)."""
    return int(Tokenizer.from_str(tokenizer_json).get_vocab_size(with_added_tokens=True))


def token_id(tokenizer_json: str, token: str) -> int | None:
    """The id of one token, or None when the tokenizer does not have it."""
    found = Tokenizer.from_str(tokenizer_json).token_to_id(token)
    return None if found is None else int(found)


def encode_documents(tokenizer_json: str, documents: Sequence[str], eos_id: int) -> np.ndarray[Any, Any]:
    """One int64 stream: each document's ids (with the tokenizer's own special tokens, as at
    inference), then ``eos_id``."""
    tokenizer = Tokenizer.from_str(tokenizer_json)
    parts: list[np.ndarray[Any, Any]] = []
    eos = np.asarray([eos_id], dtype=np.int64)
    for start in range(0, len(documents), _ENCODE_BATCH):
        for encoding in tokenizer.encode_batch(list(documents[start : start + _ENCODE_BATCH])):
            parts += [np.asarray(encoding.ids, dtype=np.int64), eos]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def tokenizer_files(tokenizer_json: str, *, context_length: int, chat: bool) -> dict[str, str]:
    """The files ``transformers`` loads the tokenizer from, written by ``save_pretrained``.

    The end-of-text token is also the beginning, unknown and padding token (as GPT-2's);
    ``model_max_length`` is the model's context; chat models carry :data:`CHAT_TEMPLATE`.
    """
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=Tokenizer.from_str(tokenizer_json),
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=context_length,
    )
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    with tempfile.TemporaryDirectory(prefix="aiaas-tokenizer-") as tmp:
        fast.save_pretrained(tmp)
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(Path(tmp).iterdir()) if p.is_file()}
