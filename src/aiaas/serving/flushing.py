"""The inference server's one way of writing what it observed: a thread that flushes every interval.

Drift counts (:mod:`.drift_counter`) and metric samples (:mod:`.metric_sampler`) are both
gathered in memory and written to per-interval database rows by a background thread, never
on a request's path. The thread is this :class:`FlushThread`: it calls ``flush`` every
``interval_s`` (and ``after`` when given, such as pruning old rows), logs and survives a
failing flush (the caller keeps what it could not write and retries at the next one), and on
:meth:`~FlushThread.close` stops and flushes a last time so nothing observed before a
graceful shutdown is lost. :func:`interval_start` puts every server's rows on the same
boundaries: whole ``interval_s`` steps from the epoch.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Callable

__all__ = ["FlushThread", "interval_start"]


def interval_start(now: float, interval_s: float) -> dt.datetime:
    """The start of the ``interval_s`` interval ``now`` (epoch seconds) falls in, in UTC."""
    number = math.floor(now / interval_s)
    return dt.datetime.fromtimestamp(number * interval_s, dt.UTC)


class FlushThread:
    """Calls ``flush`` every ``interval_s`` seconds in a daemon thread until closed.

    Args:
        name: the thread's name (and the logger's words when a flush fails).
        flush: writes what was gathered; may raise (logged, retried at the next interval).
        interval_s: seconds between flushes.
        after: called after each flush (housekeeping such as pruning); may raise too.
    """

    def __init__(
        self,
        name: str,
        flush: Callable[[], object],
        interval_s: float,
        *,
        after: Callable[[], object] | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._flush = flush
        self._after = after
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._log = logging.getLogger(f"aiaas.serving.{name}")

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=f"aiaas-{self.name}", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread, then flush once more in the caller's thread (errors logged)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        try:
            self._flush()
        except Exception:
            self._log.exception("%s could not write at shutdown", self.name)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval_s)
            if self._stopping:
                return
            try:
                self._flush()
                if self._after is not None:
                    self._after()
            except Exception:  # the thread must outlive one bad flush
                self._log.exception("%s failed; it carries on", self.name)
