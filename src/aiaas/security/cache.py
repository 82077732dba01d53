"""The keys a server accepts, in memory: one dictionary lookup and one hash per request.

Both servers authenticate every request against a :class:`KeyCache` rather than the
database: the inference server must not pay a database read (or a call to the control
plane) per prediction. A background thread reloads every usable key from the database each
``AIAAS_AUTH_REFRESH_S`` seconds (one small read), so a key revoked on the control plane is
refused by every server within that time; a reload that fails (database down) keeps the
keys it had, so an outage of the database does not lock everyone out.

A header verified once is remembered until the next reload (:data:`MAX_VERIFIED` of them):
the same client sends the same bytes on every request, and parsing the header and hashing
the key were most of the check's cost on the inference server (``benchmarks/auth_serving_ab.py``).
Only headers that passed the full check are remembered, so a flood of wrong keys neither
grows the table nor skips the hash; the table is replaced, not cleared, at each reload, so a
check that raced a reload cannot carry a revoked key into the new one. Expiry is still
checked on every request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable

from aiaas.entities.security import ApiKey, Principal
from aiaas.errors import Unauthenticated
from aiaas.security.keys import bearer_token, key_id_of

__all__ = ["MAX_VERIFIED", "KeyCache"]

log = logging.getLogger("aiaas.security")

Loader = Callable[[], list[tuple[ApiKey, str]]]

#: The most verified headers remembered between two reloads.
MAX_VERIFIED = 10_000


class KeyCache:
    """Usable keys by public id, reloaded in the background.

    Args:
        load: every key not revoked, with the hex SHA-256 of the whole key
            (:meth:`aiaas.store.keys.KeyStore.usable`).
        refresh_s: seconds between reloads.
        clock: the current time, for expiry (tests pass their own).
    """

    def __init__(
        self,
        load: Loader,
        *,
        refresh_s: float = 1.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._load = load
        self._refresh_s = refresh_s
        self._clock = clock
        self._keys: dict[str, tuple[bytes, ApiKey, Principal]] = {}
        #: Header → its principal and expiry, for headers verified since the last reload.
        self._verified: dict[str | bytes, tuple[Principal, dt.datetime | None]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Reload the keys now (raises what the loader raises)."""
        self._keys = {
            key.key_id: (bytes.fromhex(digest), key, key.principal()) for key, digest in self._load()
        }
        self._verified = {}

    def start(self) -> None:
        """Load the keys, then reload them every ``refresh_s`` seconds in a daemon thread."""
        try:
            self.refresh()
        except Exception as exc:
            log.warning("could not load the API keys (every request is refused until they load): %s", exc)
        self._thread = threading.Thread(target=self._run, name="aiaas-key-cache", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception as exc:
                log.warning("could not reload the API keys; the last ones loaded still apply: %s", exc)

    def authenticate(self, header: str | bytes | None) -> Principal:
        """The principal of an ``Authorization`` header's key.

        Raises:
            Unauthenticated: malformed header, unknown, revoked or expired key.
        """
        verified = self._verified  # this reload's table, even if another replaces it meanwhile
        if header is not None:
            known = verified.get(header)
            if known is not None:
                principal_, expires_at = known
                if expires_at is None or self._clock() < expires_at:
                    return principal_
        token = bearer_token(header)
        entry = self._keys.get(key_id_of(token) or "")
        # Compared even for an unknown id, against a hash no key has: same work either way.
        expected, key, principal = entry if entry is not None else (_NO_HASH, None, None)
        given = hashlib.sha256(token.encode("ascii")).digest()  # = hash_key(token), unhexed
        if not hmac.compare_digest(given, expected) or key is None or principal is None:
            raise Unauthenticated(
                "unknown or revoked API key: send a valid key in the authorization header (Bearer <key>)",
                details={"field": "authorization"},
            )
        if key.expires_at is not None and self._clock() >= key.expires_at:
            raise Unauthenticated(
                f"API key {key.key_id} in the authorization header expired at {key.expires_at.isoformat()}",
                details={"field": "authorization", "key_id": key.key_id},
            )
        if header is not None and len(verified) < MAX_VERIFIED:
            verified[header] = (principal, key.expires_at)
        return principal


_NO_HASH = bytes(32)
