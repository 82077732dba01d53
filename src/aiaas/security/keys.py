"""API keys: how they look, how they are made, hashed and read from an ``Authorization`` header.

A key is ``aiaas_<id>_<secret>``: ``id`` is 12 hex characters, public (it names the key in
lists, logs and the audit trail, and finds its record), and ``secret`` is 32 random bytes
from :mod:`secrets` in URL-safe base64. The prefix makes a leaked key easy to recognise (and
to scan for) and cannot be confused with another service's.

Only the SHA-256 of the whole key is stored. A slow password hash (bcrypt, scrypt, argon2)
exists to make guessing a *low-entropy* secret expensive; a 256-bit random secret cannot be
guessed whatever the hash, so a fast hash loses nothing and keeps a check to about a
microsecond, which the inference server pays on every request. Hashes are compared with
:func:`hmac.compare_digest` (constant time), so the comparison's time says nothing about
how close a guess came.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from aiaas.errors import Unauthenticated

__all__ = [
    "KEY_PREFIX",
    "MAX_HEADER_CHARS",
    "NewKey",
    "bearer_token",
    "generate_key",
    "hash_key",
    "key_id_of",
]

KEY_PREFIX = "aiaas_"
#: Longest ``Authorization`` header read; a longer one is refused before it is parsed.
MAX_HEADER_CHARS = 512
_KEY = re.compile(r"^aiaas_([0-9a-f]{12})_([A-Za-z0-9_-]{16,128})$")
_HINT = "send 'authorization: Bearer <key>' with an aiaas API key (aiaas_<id>_<secret>)"


@dataclass(frozen=True)
class NewKey:
    """A key just made: the whole key (shown once), its public id and what is stored of it."""

    key: str
    key_id: str
    secret_hash: str
    last4: str


def generate_key() -> NewKey:
    """A new random key (see the module docstring for its form)."""
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, key_id=key_id, secret_hash=hash_key(key), last4=key[-4:])


def hash_key(key: str) -> str:
    """The hex SHA-256 of a whole key: what the database stores."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key, or None when ``key`` is not one."""
    match = _KEY.match(key)
    return match.group(1) if match else None


def bearer_token(header: str | bytes | None) -> str:
    """The key in an ``Authorization`` header's value.

    Raises:
        Unauthenticated: the header is missing, empty, too long, not ASCII, of another
            scheme than ``Bearer``, or its token is not an aiaas key. Never anything else:
            whatever a client sends is a 401.
    """
    if header is None or not header.strip():
        raise _refused("missing authorization header")
    if len(header) > MAX_HEADER_CHARS:
        raise _refused(f"authorization header longer than {MAX_HEADER_CHARS} characters")
    if isinstance(header, bytes):
        raw = header
    else:
        try:
            raw = header.encode("latin-1")  # ASGI servers hand header bytes over as latin-1 text
        except UnicodeEncodeError:
            raise _refused("authorization header is not ASCII") from None
    if not raw.isascii():
        raise _refused("authorization header is not ASCII")
    scheme, _, token = raw.decode("ascii").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _refused("authorization header is not of the Bearer scheme")
    token = token.strip()
    if key_id_of(token) is None:
        raise _refused("the bearer token is not an aiaas API key")
    return token


def _refused(why: str) -> Unauthenticated:
    return Unauthenticated(f"{why}: {_HINT}", details={"field": "authorization"})
