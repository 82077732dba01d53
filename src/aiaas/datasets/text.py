"""Text datasets: a ``.txt`` corpus, or rows (JSONL, CSV, Parquet) whose text columns are named.

A text dataset is a table like any other, so it gets the same versions, identical-upload rule,
split and loading as tabular data; what changes is which columns hold *text* (documents to
model or classify) rather than categories:

* a ``.txt`` corpus becomes one column ``text`` with one row per document. ``documents``
  says how the file is cut: ``"paragraph"`` (the default: documents are separated by one
  or more blank lines, and keep the line breaks inside them, which is what a language model
  should learn from prose, verse or code) or ``"line"`` (one document per non-blank line, for
  files written one example per line);
* rows name their text with ``text_column`` (language modelling, or text classification with
  a ``target`` label column beside it), or with ``prompt_column`` and ``response_column``
  (chat pairs: what a user says, and the answer to learn).

Text columns get the schema kind ``"text"`` and text statistics (see
:mod:`aiaas.datasets.statistics`) instead of the top values a category column gets.

The options are recorded with the version (``metadata["text"]``, see :class:`TextOptions`), so
loading the version again reads the file the same way, and they are part of what makes two
uploads identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from aiaas.datasets.tabular import Column, Table, decode_utf8
from aiaas.errors import InvalidArgument

__all__ = [
    "DOCUMENT_MODES",
    "TEXT_COLUMN",
    "TEXT_FORMAT",
    "TEXT_KIND",
    "TextOptions",
    "mark_text_columns",
    "read_corpus",
    "resolve_text_options",
]

#: The format name of a ``.txt`` corpus.
TEXT_FORMAT = "text"
#: The column a ``.txt`` corpus is read into.
TEXT_COLUMN = "text"
#: The schema kind of a declared text column.
TEXT_KIND = "text"
#: How a ``.txt`` corpus is cut into documents; the first is the default.
DOCUMENT_MODES = ("paragraph", "line")
_BLANK_LINES = re.compile(r"\n[ \t\f\v]*(?:\n[ \t\f\v]*)*\n")


@dataclass(frozen=True)
class TextOptions:
    """Which columns of a version hold text, and how a ``.txt`` corpus was cut.

    Exactly one of ``text_column`` or the pair (``prompt_column``, ``response_column``) is
    set; ``documents`` only for a ``.txt`` corpus. Stored as ``metadata["text"]``::

        {"columns": ["question", "answer"], "prompt_column": "question",
         "response_column": "answer"}
    """

    text_column: str | None = None
    prompt_column: str | None = None
    response_column: str | None = None
    documents: str | None = None

    @property
    def columns(self) -> list[str]:
        """The text columns, in the order they are read (prompt before response)."""
        if self.text_column is not None:
            return [self.text_column]
        return [c for c in (self.prompt_column, self.response_column) if c is not None]

    @property
    def chat(self) -> bool:
        return self.prompt_column is not None

    def to_json(self) -> dict[str, Any]:
        entries = {
            "text_column": self.text_column,
            "prompt_column": self.prompt_column,
            "response_column": self.response_column,
            "documents": self.documents,
        }
        return {"columns": self.columns, **{k: v for k, v in entries.items() if v is not None}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TextOptions | None:
        if not data:
            return None
        return cls(
            text_column=data.get("text_column"),
            prompt_column=data.get("prompt_column"),
            response_column=data.get("response_column"),
            documents=data.get("documents"),
        )


def resolve_text_options(
    fmt: str,
    *,
    text_column: str | None,
    prompt_column: str | None,
    response_column: str | None,
    documents: str | None,
) -> TextOptions | None:
    """Check the text options of an upload against each other and the file format.

    A ``.txt`` corpus is always text (column ``text``); other formats are text when a text
    column or a prompt/response pair is named, and tabular otherwise.

    Raises:
        InvalidArgument: naming the option that cannot apply, and why.
    """
    for field, value in (
        ("text_column", text_column),
        ("prompt_column", prompt_column),
        ("response_column", response_column),
    ):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise _bad(field, f"must be a column name; got {value!r}")
    if documents is not None and documents not in DOCUMENT_MODES:
        raise _bad("documents", f"must be one of {list(DOCUMENT_MODES)}; got {documents!r}")
    if (prompt_column is None) != (response_column is None):
        missing = "response_column" if response_column is None else "prompt_column"
        raise _bad(missing, "chat pairs need both prompt_column and response_column; give both")
    if text_column is not None and prompt_column is not None:
        raise _bad(
            "text_column",
            "give either text_column (one text per row) or prompt_column and response_column "
            "(chat pairs), not both",
        )
    if prompt_column is not None and prompt_column == response_column:
        raise _bad("response_column", f"must differ from prompt_column; both are {prompt_column!r}")
    if fmt == TEXT_FORMAT:
        if prompt_column is not None:
            raise _bad(
                "prompt_column", "a .txt corpus has one column, 'text'; chat pairs come as JSONL or CSV rows"
            )
        if text_column not in (None, TEXT_COLUMN):
            raise _bad(
                "text_column", f"a .txt corpus is read into one column, {TEXT_COLUMN!r}; got {text_column!r}"
            )
        return TextOptions(text_column=TEXT_COLUMN, documents=documents or DOCUMENT_MODES[0])
    if documents is not None:
        raise _bad(
            "documents", f"applies to .txt corpora only (how the file is cut); this file is {fmt.upper()}"
        )
    if text_column is None and prompt_column is None:
        return None
    return TextOptions(text_column=text_column, prompt_column=prompt_column, response_column=response_column)


def read_corpus(data: bytes, documents: str, *, field: str = "file") -> Table:
    """A ``.txt`` corpus as a table of one text column, one row per document.

    Line endings are normalised to ``\\n``; blank lines never make documents.

    Raises:
        InvalidArgument: not UTF-8, empty, or an unknown ``documents`` mode.
    """
    if documents not in DOCUMENT_MODES:
        raise _bad("documents", f"must be one of {list(DOCUMENT_MODES)}; got {documents!r}")
    text = decode_utf8(data, field=field).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InvalidArgument(f"{field} is empty: a .txt corpus needs some text", details={"field": field})
    if documents == "line":
        docs = [line for line in text.split("\n") if line.strip()]
    else:
        docs = [p.strip("\n") for p in _BLANK_LINES.split(text) if p.strip()]
    values = np.empty(len(docs), dtype=object)
    values[:] = docs
    return Table(columns=[Column(TEXT_COLUMN, "string", TEXT_KIND, values, 0)], row_count=len(docs))


def mark_text_columns(table: Table, options: TextOptions, target: str | None) -> Table:
    """The table with the named text columns given the kind ``"text"``.

    Raises:
        InvalidArgument: a named column is missing, is not a string column, is the target,
            or holds no text at all; or there are fewer than two documents to split.
    """
    for field, name in (
        ("text_column", options.text_column),
        ("prompt_column", options.prompt_column),
        ("response_column", options.response_column),
    ):
        if name is None:
            continue
        if name not in table.names:
            raise InvalidArgument(
                f"{field} {name!r} is not in the file; its columns are {table.names}",
                details={"field": field, "value": name, "expected": table.names},
            )
        column = table.column(name)
        if column.kind not in ("string", TEXT_KIND):
            raise InvalidArgument(
                f"{field} {name!r} has dtype {column.dtype}; a text column must hold strings",
                details={"field": field, "column": name, "dtype": column.dtype},
            )
        if name == target:
            raise InvalidArgument(
                f"target {target!r} is also the {field}: a label column cannot be the text it labels",
                details={"field": "target", "value": target},
            )
        if not any(isinstance(v, str) and v.strip() for v in column.values.tolist()):
            raise InvalidArgument(
                f"{field} {name!r} holds no text: every value is missing or blank",
                details={"field": field, "column": name},
            )
    if table.row_count < 2:
        raise InvalidArgument(
            f"a text dataset needs at least 2 documents to split into train and validation; got "
            f"{table.row_count}"
            + (
                " (a .txt corpus is cut at blank lines by default: add blank lines between documents, "
                "or use documents=line for one document per line)"
                if options.documents == "paragraph"
                else ""
            ),
            details={"field": "file", "rows": table.row_count},
        )
    text = set(options.columns)
    columns = [replace(c, kind=TEXT_KIND) if c.name in text else c for c in table.columns]
    return Table(columns=columns, row_count=table.row_count)


def _bad(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field} {message}", details={"field": field})
