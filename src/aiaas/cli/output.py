"""How commands print: rich tables for people, ``--json`` for scripts, errors to stderr.

Tables are meant to be read in an 80-column terminal: cells wrap between words, never
inside one (a model name folded as ``flowers-ran`` / ``dom-forest`` reads as two things),
numbers are rounded to what a person compares (``0.9667``, not ``0.9666666666666667``), and
mappings such as metrics are one ``name=value`` per line rather than raw JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table

__all__ = ["console", "err", "fmt", "fmt_mapping", "fmt_time", "print_json", "print_pairs", "table"]

console = Console()
err = Console(stderr=True)

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


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    keep: Sequence[str] = (),
) -> None:
    """A table of rows; ``keep`` names columns never wrapped (names and numbers: the other
    columns give way first, and wrap between words)."""
    out = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        out.add_column(column, no_wrap=column in keep)
    for row in rows:
        out.add_row(*(fmt(v) for v in row))
    console.print(out)


def print_pairs(title: str | None, pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column ``field  value`` table: one thing shown in full."""
    out = Table(title=title, title_justify="left", show_header=False, box=box.SIMPLE, pad_edge=False)
    out.add_column(style="bold", no_wrap=True)
    out.add_column()
    for key, value in pairs:
        out.add_row(key, fmt(value))
    console.print(out)
