"""How commands print: rich tables for people, ``--json`` for scripts, errors to stderr."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

__all__ = ["console", "err", "fmt", "print_json", "table"]

console = Console()
err = Console(stderr=True)


def print_json(value: Any) -> None:
    """Machine-readable output: pydantic models, lists of them, or plain JSON values."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    console.print_json(orjson.dumps(value).decode())


def fmt(value: Any) -> str:
    """A cell: None as '-', containers as compact JSON, floats briefly."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=str).decode() if value else "-"
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(fmt(v) for v in row))
    console.print(out)
