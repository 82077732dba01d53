"""Authentication failures into the audit log, off the request path, at a bounded rate.

The inference server has no per-request database access: a key check is a dictionary lookup
(:class:`~aiaas.security.KeyCache`). Writing each refused request to the audit log in the
request would put a database write, serialised with every other append to the chain, on the
hot path, and a flood of bad keys would slow inference for everyone and fill the database.

So a refusal is handed to a bounded queue (:meth:`FailureRecorder.record`: no I/O, never
blocks) and one background thread appends at most ``per_second`` entries a second. What does
not fit (the queue full, or over the rate) is counted, and the count is appended as one entry
per second (action ``authenticate``, outcome ``dropped``, ``details.dropped``), so the log
still says how many failures there were, only not each one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from aiaas.entities.audit import AuditEntry
from aiaas.security.audit import ACTION_AUTHENTICATE, ANONYMOUS, AuditLog

__all__ = ["DROPPED_OUTCOME", "FailureRecorder"]

logger = logging.getLogger("aiaas.security.failures")

#: The outcome of the entry that counts the failures not logged one by one.
DROPPED_OUTCOME = "dropped"


@dataclass(frozen=True)
class _Failure:
    resource: str
    remote: str | None
    reason: str
    method: str
    outcome: str


_STOP = object()


class FailureRecorder:
    """Append authentication failures to ``log`` from a background thread (see the module).

    Args:
        log: the audit log.
        per_second: the most entries of single failures appended in one second.
        capacity: the most failures waiting; more are counted as dropped.
        source: who refused them, in the entries' details (``inference``).
    """

    def __init__(
        self, log: AuditLog, *, per_second: int = 20, capacity: int = 1000, source: str = ""
    ) -> None:
        self._log = log
        self._per_second = per_second
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._source = source
        self._lock = threading.Lock()
        self._dropped = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread that appends (once; a no-op if it runs)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-auth-failures", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Append what waits (within the rate) and the dropped count, then stop the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:  # pragma: no cover - the thread is stuck on the database
            return
        thread.join(timeout)

    def record(
        self, resource: str, remote: str | None, reason: str, *, method: str, outcome: str = "401"
    ) -> None:
        """Queue one failure for the log; never blocks, never touches the database."""
        try:
            self._queue.put_nowait(_Failure(resource, remote, reason, method, outcome))
        except queue.Full:
            with self._lock:
                self._dropped += 1

    @property
    def dropped(self) -> int:
        """Failures counted but not yet appended (as a count) to the log."""
        with self._lock:
            return self._dropped

    def _run(self) -> None:
        stopping = False
        while not stopping:
            window_end = time.monotonic() + 1.0
            written = 0
            while (left := window_end - time.monotonic()) > 0:
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    continue  # the window is over; a new one starts with its own budget
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Failure)
                if written < self._per_second:
                    self._append(item)
                    written += 1
                else:
                    with self._lock:
                        self._dropped += 1
            self._append_dropped()

    def _append(self, failure: _Failure) -> AuditEntry | None:
        try:
            return self._log.authentication_failed(
                failure.resource,
                failure.remote,
                failure.reason,
                method=failure.method,
                outcome=failure.outcome,
            )
        except Exception as exc:  # the database is down: the failure is lost, the server goes on
            logger.warning("could not append an authentication failure to the audit log: %s", exc)
            return None

    def _append_dropped(self) -> None:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        if not dropped:
            return
        try:
            self._log.append(
                ANONYMOUS,
                ACTION_AUTHENTICATE,
                "",
                DROPPED_OUTCOME,
                None,
                None,
                {
                    "dropped": dropped,
                    "reason": f"{dropped} authentication failures not logged one by one (over "
                    f"{self._per_second} a second, or {self._queue.maxsize} waiting)",
                    "source": self._source,
                },
            )
        except Exception as exc:
            logger.warning("could not append %d dropped authentication failures: %s", dropped, exc)
