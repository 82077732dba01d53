"""Options every client command shares, and the SDK client built from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from aiaas.sdk import Client

__all__ = ["Connection", "JsonOption", "client"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables (for scripts).")]


@dataclass
class Connection:
    url: str | None = None
    inference_url: str | None = None
    api_key: str | None = None
    ca_file: Path | None = None
    project: str | None = None


def client(ctx: typer.Context) -> Client:
    """The SDK client for the servers named on the command line or in AIAAS_* variables."""
    from aiaas.sdk import Client

    root = ctx.find_root()
    conn = root.obj or Connection()
    c = Client(
        conn.url, conn.api_key, inference_url=conn.inference_url, verify=conn.ca_file, project=conn.project
    )
    root.call_on_close(c.close)
    return c
