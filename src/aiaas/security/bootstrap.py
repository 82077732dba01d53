"""The first admin key: made on the control plane's first start, kept in a file only its owner reads.

Authentication is on by default, so a fresh install must hand its owner a key without an
extra step. When the database holds no usable platform admin key, the control plane makes
one, prints it once and writes it to ``<AIAAS_HOME>/admin.key`` with mode 0600; the CLI and
SDK on that machine read that file when no key is given. An operator who wants to choose the
key (from a secret manager, or the same key for a fresh database) writes it to that file,
owner-only, before the first start: a well-formed key found there is registered instead of a
new one. A file that others may read is never adopted.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from pathlib import Path

from aiaas.entities.security import Role
from aiaas.errors import AlreadyExists
from aiaas.security.keys import generate_key, hash_key, key_id_of
from aiaas.store.keys import KeyStore

__all__ = ["ADMIN_KEY_NAME", "ensure_admin_key", "read_key_file", "write_key_file"]

log = logging.getLogger("aiaas.security")

#: The name of the platform admin key the first start makes.
ADMIN_KEY_NAME = "admin"


def ensure_admin_key(store: KeyStore, path: Path, *, create: bool = True) -> str | None:
    """Make sure a usable platform admin key exists.

    Args:
        store: the key store.
        path: the admin key file (``Settings.admin_key_path()``).
        create: make a new key when neither the database nor the file has one (the control
            plane); the inference server only adopts a key from the file.

    Returns:
        The new key when one was made (to be shown once), else None.
    """
    now = dt.datetime.now(dt.UTC)
    if any(k.role is Role.admin and k.project is None and k.usable(now) for k in store.all()):
        return None
    existing = read_key_file(path)
    if existing is not None:
        try:
            store.add(
                key_id=key_id_of(existing) or "",
                secret_hash=hash_key(existing),
                last4=existing[-4:],
                name=ADMIN_KEY_NAME,
                role=Role.admin,
                project=None,
            )
        except AlreadyExists:  # the other server registered it first, or it was revoked
            return None
        log.info("registered the platform admin key of %s", path)
        return None
    if not create:
        return None
    new = generate_key()
    store.add(
        key_id=new.key_id,
        secret_hash=new.secret_hash,
        last4=new.last4,
        name=ADMIN_KEY_NAME,
        role=Role.admin,
        project=None,
    )
    write_key_file(path, new.key)
    return new.key


def read_key_file(path: Path) -> str | None:
    """The key in ``path`` when it holds a well-formed one and no one but its owner may read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("ignoring %s: others may read it (chmod 600 %s)", path, path)
        return None
    return text if key_id_of(text) is not None else None


def write_key_file(path: Path, key: str) -> None:
    """Write ``key`` to ``path``, readable and writable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (key + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.replace(temporary, path)
