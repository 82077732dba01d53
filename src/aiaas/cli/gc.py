"""``aiaas gc``: delete the artifacts nothing refers to any more.

Like ``aiaas db upgrade``, it works on the store itself (the database and artifact folder
of ``AIAAS_HOME``, or ``AIAAS_DATABASE_URL``/``AIAAS_ARTIFACT_ROOT``), not through the REST
API: it is maintenance of one installation, run where its files are. It is safe while the
servers run (see :mod:`aiaas.store.gc`); the control plane also sweeps temporary files and
collects old unreferenced blobs each time it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiaas.cli.context import JsonOption
from aiaas.cli.output import console, print_json

__all__ = ["gc"]

#: The default of --older-than-s (one hour), restated here so that ``aiaas --help`` does not
#: import the store; a test checks it equals aiaas.store.DEFAULT_GC_GRACE_S.
_DEFAULT_GRACE_S = 3600.0


def gc(
    home: Annotated[
        Path | None,
        typer.Option(help="Where the embedded DB and artifacts live (AIAAS_HOME, default ~/.aiaas)."),
    ] = None,
    older_than_s: Annotated[
        float,
        typer.Option(
            "--older-than-s",
            min=0,
            help="Only delete blobs last written more than this many seconds ago: a registration, "
            "upload or training checkpoint in flight has written its blob but not yet the record "
            "that refers to it. Keep it above the longest such gap.",
        ),
    ] = _DEFAULT_GRACE_S,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be deleted; delete nothing.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Delete artifacts no model version, dataset or training job refers to any more.

    Blobs of deleted versions and models, and uploads whose registration failed, stay on
    disk until this runs; so do temporary files of uploads killed midway.
    """
    from aiaas.config import load_settings
    from aiaas.platform import open_platform
    from aiaas.store import collect_garbage

    platform = open_platform(load_settings(home=home))
    try:
        report = collect_garbage(platform.db, platform.artifacts, grace_s=older_than_s, dry_run=dry_run)
    finally:
        platform.close()
    if json:
        return print_json(
            {
                "dry_run": report.dry_run,
                "deleted": [{"digest": b.digest, "size_bytes": b.size_bytes} for b in report.deleted],
                "freed_bytes": report.freed_bytes,
                "referenced": report.referenced,
                "young": report.young,
                "temp_files": report.temp_files,
            }
        )
    verb = "would delete" if dry_run else "deleted"
    temp = "" if dry_run else f" and {report.temp_files} abandoned temporary file(s)"
    console.print(
        f"{verb} {len(report.deleted)} unreferenced blob(s) ({report.freed_bytes} bytes){temp}; kept "
        f"every blob the records refer to ({report.referenced} digests) and {report.young} "
        f"unreferenced blob(s) younger than {older_than_s:g} s"
    )
