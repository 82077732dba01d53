"""``aiaas audit verify`` and ``aiaas audit export``: check and copy the hash-chained audit log.

Both open the database itself (``AIAAS_HOME``, or ``AIAAS_DATABASE_URL``) through the
composition root, like ``aiaas gc``, rather than going through the REST API: a check of the
log must work when the control plane is down or is the thing in doubt, and an export is a
copy of one installation's records, made where its database is reachable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aiaas.cli.context import JsonOption
from aiaas.cli.output import console, err, print_json

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="The hash-chained audit log of every change and every failed authentication: verify "
    "that no entry was edited, deleted or reordered; export it as JSON lines.",
    no_args_is_help=True,
)

_Home = Annotated[
    Path | None,
    typer.Option(help="Where the embedded DB lives (AIAAS_HOME, default ~/.aiaas; or AIAAS_DATABASE_URL)."),
]


@audit_app.command()
def verify(home: _Home = None, json: JsonOption = False) -> None:
    """Check the whole chain: exit 0 if it holds, else 1, naming the first broken entry and why
    (edited, missing or reordered)."""
    from aiaas.config import load_settings
    from aiaas.platform import open_platform

    platform = open_platform(load_settings(home=home))
    try:
        broken = platform.audit.verify()
        head = platform.audit.head()
    finally:
        platform.close()
    if json:
        if broken is None:
            print_json({"ok": True, "entries": head[0] if head else 0, "head": head[1] if head else None})
        else:
            print_json(
                {"ok": False, "seq": broken.seq, "reason": str(broken.reason), "message": broken.message}
            )
    elif broken is None:
        count, digest = head if head is not None else (0, "")
        console.print(f"audit log intact: {count} entries, last hash {digest}", highlight=False)
    else:
        err.print(
            f"[red]audit log broken at entry {broken.seq} ({broken.reason}):[/] {broken.message}",
            highlight=False,
        )
    if broken is not None:
        raise typer.Exit(1)


@audit_app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
    home: _Home = None,
) -> None:
    """Write every entry, oldest first, as JSON lines (one object per line, every field and
    both hashes), so the chain can be checked from the copy alone."""
    from aiaas.config import load_settings
    from aiaas.platform import open_platform

    platform = open_platform(load_settings(home=home))
    try:
        if output is None:
            platform.audit.export(sys.stdout)
            sys.stdout.flush()
            return
        with output.open("w", encoding="utf-8") as stream:
            count = platform.audit.export(stream)
    finally:
        platform.close()
    err.print(f"wrote {count} audit entries to {output}", highlight=False)
