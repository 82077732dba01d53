"""What a language model trains on: documents, then the token ids of a tokenizer.

The orchestrator builds a :class:`TextData` from a text dataset version's split (one document
per row; a chat pair becomes one document in :data:`CHAT_TEMPLATE`'s layout); the trainer
turns it into a :class:`TokenizedText` (a trained or inherited tokenizer, and each split as one
stream of token ids with an end-of-text token after every document). Like
:class:`~aiaas.training.TrainingData`, neither knows a database, so the engine is tested on
plain strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument

__all__ = ["CHAT_ROLES", "CHAT_TEMPLATE", "TextData", "TokenizedText", "chat_document"]

#: The role markers of a chat document; they are special tokens of a chat model's tokenizer.
CHAT_ROLES = ("<|system|>", "<|user|>", "<|assistant|>")

#: The chat template saved with a model trained on chat pairs (``tokenizer.apply_chat_template``,
#: which the OpenAI-compatible chat endpoint uses): a conversation renders exactly as the
#: training documents did, so the model answers after ``<|assistant|>`` and ends with its
#: end-of-text token.
#: (Line breaks are written as ``{{ '\\n' }}``: chat templates are rendered with ``trim_blocks``,
#: which drops a line break that follows a block tag.)
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ '\\n' }}{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% else %}{{ '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{{ '\\n' }}{% endif %}"
)

Ids = np.ndarray[Any, np.dtype[np.int64]]


def chat_document(prompt: str, response: str) -> str:
    """One chat pair as a training document (the end-of-text token follows it in the stream)."""
    return f"<|user|>\n{prompt}\n<|assistant|>\n{response}"


@dataclass
class TextData:
    """The documents of a text dataset's train and validation splits.

    Attributes:
        train: training documents (blank or missing ones are left out).
        validation: validation documents.
        chat: the documents are chat pairs in :func:`chat_document`'s layout; the model is
            then saved with :data:`CHAT_TEMPLATE`.

    Example::

        data = TextData(["first document", "second one"], ["held out"])
    """

    train: list[str]
    validation: list[str]
    chat: bool = False

    def __post_init__(self) -> None:
        self.train = _documents(self.train)
        self.validation = _documents(self.validation)

    def check(self) -> None:
        """Raises InvalidArgument when a split has no document to learn from or measure on."""
        for name in ("train", "validation"):
            if not getattr(self, name):
                raise InvalidArgument(
                    f"training data: the {name} split holds no text (every document is blank); "
                    "add text, or change the dataset's validation_fraction",
                    details={"field": "dataset", "split": name},
                )


@dataclass
class TokenizedText:
    """Both splits as token id streams, with the tokenizer that made them.

    Attributes:
        train_ids: int64 ids of every training document, each followed by ``eos_id``.
        validation_ids: the same for the validation documents.
        tokenizer: the ``tokenizers`` JSON of the tokenizer.
        tokenizer_files: the files that describe the tokenizer to ``transformers``
            (``tokenizer.json``, ``tokenizer_config.json``, a chat template), saved with the model.
        eos_id: the end-of-text token, between documents.
        documents: (train, validation) document counts, for the log.
        chat: trained on chat pairs.
    """

    train_ids: Ids
    validation_ids: Ids
    tokenizer: str
    tokenizer_files: dict[str, str]
    eos_id: int
    vocab_size: int
    documents: tuple[int, int] = (0, 0)
    chat: bool = False

    def __post_init__(self) -> None:
        self.train_ids = np.ascontiguousarray(self.train_ids, dtype=np.int64)
        self.validation_ids = np.ascontiguousarray(self.validation_ids, dtype=np.int64)

    def check(self, context_length: int) -> None:
        """Refuse streams too short to learn from (the message says how short, and what to do)."""
        for name, ids in (("train", self.train_ids), ("validation", self.validation_ids)):
            if ids.ndim != 1 or ids.size < 2:
                raise InvalidArgument(
                    f"training data: the {name} split is {ids.size} tokens long; a language model needs "
                    "at least 2 (a token and the next one to predict): add text",
                    details={"field": "dataset", "split": name},
                )
            if ids.min() < 0 or ids.max() >= self.vocab_size:
                raise InvalidArgument(
                    f"training data: the {name} ids fall outside the tokenizer's {self.vocab_size} tokens",
                    details={"field": "dataset", "split": name},
                )
        if context_length < 1:
            raise InvalidArgument(
                f"context_length must be at least 1; got {context_length}",
                details={"field": "context_length"},
            )


def _documents(values: Sequence[Any]) -> list[str]:
    if isinstance(values, str):
        raise InvalidArgument(
            "training data: documents must be a list of strings, not one string",
            details={"field": "documents"},
        )
    return [v for v in values if isinstance(v, str) and v.strip()]
