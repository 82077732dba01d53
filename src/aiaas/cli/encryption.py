"""``aiaas encryption``: make a key, see what the artifact store is sealed with, rotate the key.

Like ``aiaas gc`` it works on the artifact folder itself (``AIAAS_HOME`` or
``AIAAS_ARTIFACT_ROOT``), run where the files are: keys never travel over the REST API. The
key configured now (``AIAAS_ENCRYPTION_KEY`` or ``AIAAS_ENCRYPTION_KEY_FILE``) opens what is
stored; ``rotate`` seals everything again under a new key (plain blobs included, so it also
encrypts a store written before encryption was turned on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiaas.cli.context import JsonOption
from aiaas.cli.output import console, print_json

__all__ = ["encryption_app"]

encryption_app = typer.Typer(
    help="Encryption at rest of artifacts, dataset files and checkpoints: keys and rotation.",
    no_args_is_help=True,
)

HomeOption = Annotated[
    Path | None,
    typer.Option(help="Where the embedded DB and artifacts live (AIAAS_HOME, default ~/.aiaas)."),
]


@encryption_app.command("new-key")
def new_key(
    file: Annotated[Path, typer.Argument(help="Where to write the key (a new file, owner-readable only).")],
) -> None:
    """Write a new random 32-byte key, as base64, to FILE (never overwrites one)."""
    from aiaas.store import EncryptionKey
    from aiaas.store.encryption import write_key_file

    key = EncryptionKey.generate()
    write_key_file(file, key)
    console.print(f"wrote key id {key.key_id} to {file}; use it with AIAAS_ENCRYPTION_KEY_FILE={file}")


@encryption_app.command("status")
def status(home: HomeOption = None, json: JsonOption = False) -> None:
    """How many stored blobs are encrypted under which key id, and which key is configured."""
    from aiaas.config import load_settings
    from aiaas.store import keyring_from_settings, open_artifact_store
    from aiaas.store.rotation import encryption_census

    settings = load_settings(home=home)
    keyring = keyring_from_settings(settings)
    census = encryption_census(open_artifact_store(settings.resolved_artifact_root(), keyring))
    configured = keyring.current.key_id if keyring is not None else None
    if json:
        return print_json({"configured_key_id": configured, "blobs": census})
    console.print(f"configured key id: {configured or 'none (new blobs are written plain)'}")
    if not census:
        console.print("the artifact store holds no blobs")
    for key_id, count in census.items():
        mark = " (the configured key)" if key_id == configured else ""
        console.print(f"{key_id}: {count} blob(s){mark}")


@encryption_app.command("rotate")
def rotate(
    new_key_file: Annotated[
        Path, typer.Option("--new-key-file", help="The key to encrypt every blob under (base64 in a file).")
    ],
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Re-encrypt every stored blob under the key in --new-key-file, opening them with the key
    configured now. Safe to interrupt and run again; then configure the new key and restart."""
    from aiaas.config import load_settings
    from aiaas.store import EncryptionKey, keyring_from_settings, open_artifact_store
    from aiaas.store.rotation import rotate as rotate_store

    settings = load_settings(home=home)
    key = EncryptionKey.from_file(new_key_file, source="--new-key-file")
    store = open_artifact_store(settings.resolved_artifact_root(), keyring_from_settings(settings))
    report = rotate_store(store, key)
    if json:
        print_json(
            {
                "key_id": report.key_id,
                "resealed": report.resealed,
                "already": report.already,
                "failed": report.failed,
            }
        )
    else:
        console.print(
            f"re-encrypted {report.resealed} blob(s) under key id {report.key_id}; "
            f"{report.already} already were"
        )
        for digest, why in report.failed.items():
            console.print(f"[red]left as it was[/red] sha256:{digest}: {why}")
        if not report.failed:
            console.print(
                f"now set AIAAS_ENCRYPTION_KEY_FILE={new_key_file} (and unset AIAAS_ENCRYPTION_KEY) "
                "and restart the servers; the old key no longer opens any blob"
            )
    if report.failed:
        raise typer.Exit(1)
