"""How commands print: rich tables for people, ``--json`` for scripts, errors to stderr.

Tables are meant to be read in an 80-column terminal: cells wrap between words, never
inside one (a model name folded as ``flowers-ran`` / ``dom-forest`` reads as two things),
numbers are rounded to what a person compares (``0.9667``, not ``0.9666666666666667``), and
mappings such as metrics are one ``name=value`` per line rather than raw JSON.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = [
    "console",
    "err",
    "fmt",
    "fmt_mapping",
    "fmt_time",
    "print_json",
    "print_pairs",
    "size_to_terminal",
    "table",
]

console = Console()
err = Console(stderr=True)


def size_to_terminal() -> None:
    """Take ``COLUMNS`` as it is when a command runs, not as it was when this module was first
    imported: the consoles above outlive one invocation in a process that runs several (the
    tests' runner, an embedding program), and each invocation may give its own width."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        console.width = err.width = int(columns)


#: Significant digits of a float in a table (JSON output keeps every digit).
FLOAT_DIGITS = 4


def print_json(value: Any) -> None:
    """Machine-readable output: pydantic models, lists of them, or plain JSON values."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    console.print_json(orjson.dumps(value).decode())


def fmt(value: Any) -> str:
    """A cell: None and empty containers as '-', floats to 4 significant digits, mappings as
    ``key=value`` lines, sequences comma-separated, times to the minute."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{FLOAT_DIGITS}g}"
    if isinstance(value, datetime):
        return fmt_time(value)
    if isinstance(value, Mapping):
        return fmt_mapping(value)
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) if value else "-"
    return str(value)


def fmt_mapping(values: Mapping[str, Any], sep: str = "\n") -> str:
    """``accuracy=0.9667`` per entry (nested values as compact JSON), '-' when empty."""
    if not values:
        return "-"
    return sep.join(f"{k}={_scalar(v)}" for k, v in values.items())


def fmt_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list | tuple) and value:
        return orjson.dumps(value, default=str).decode()
    return fmt(value)


#: Width a column adds besides its text (no outer edge): one space of padding, one divider.
_GAP = 2


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    keep: Sequence[str] = (),
    trim: bool = False,
) -> None:
    """A table of rows that fits the terminal.

    ``keep`` names columns never wrapped (names, numbers); the others wrap between words, the
    widest first, never below their longest word. When even that does not fit: with ``trim``
    the last columns are left out (and named below the table), otherwise each row is printed
    as a block of ``column value`` lines (a table squeezed further would cut or fold words).
    """
    cells = [[fmt(v) for v in row] for row in rows]
    shown = list(columns)
    widths = _fit(shown, cells, keep, console.width)
    while widths is None and trim and len(shown) > 2:
        shown.pop()
        widths = _fit(shown, cells, keep, console.width)
    if widths is None:
        _records(title, columns, cells)
        return
    out = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for column, width in zip(shown, widths, strict=True):
        out.add_column(column, width=width, no_wrap=column in keep)
    for row in cells:
        out.add_row(*row[: len(shown)])
    console.print(out)
    if len(shown) < len(columns):
        left_out = ", ".join(columns[len(shown) :])
        console.print(f"[dim]not shown at this width: {escape(left_out)} (--json has every column)[/]")


def _fit(
    columns: Sequence[str], cells: list[list[str]], keep: Sequence[str], available: int
) -> list[int] | None:
    """Column widths within ``available``, or None when the words alone do not fit."""
    natural, least = [], []
    for i, header in enumerate(columns):
        lines = [line for row in cells for line in row[i].splitlines()] + [header]
        words = [word for line in lines for word in line.split()] or [""]
        natural.append(max(len(line) for line in lines))
        least.append(natural[-1] if header in keep else max(len(word) for word in words))
    widths = list(natural)
    budget = available - _GAP * (len(columns) - 1)
    while sum(widths) > budget:
        shrinkable = [i for i, width in enumerate(widths) if width > least[i]]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _records(title: str | None, columns: Sequence[str], cells: list[list[str]]) -> None:
    if title:
        console.print(f"[bold]{escape(title)}[/]", highlight=False)
    for row in cells:
        block = Table.grid(padding=(0, 2))
        block.add_column(style="bold", no_wrap=True)
        block.add_column(overflow="fold")
        for column, value in zip(columns, row, strict=True):
            block.add_row(column or "-", value)
        console.print(block)
        console.print()


def print_pairs(title: str | None, pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column ``field  value`` table: one thing shown in full."""
    out = Table(title=title, title_justify="left", show_header=False, box=box.SIMPLE, pad_edge=False)
    out.add_column(style="bold", no_wrap=True)
    # Wrapped between words; only a word wider than the whole column (a digest) is folded.
    out.add_column(overflow="fold")
    for key, value in pairs:
        out.add_row(key, fmt(value))
    console.print(out)
