"""A ring of per-interval count snapshots: live counts over the last N minutes, in bounded memory.

Time is cut into intervals of ``interval_s`` seconds, numbered from the epoch
(``floor(t / interval_s)``), and the ring keeps the counts of the last ``intervals`` of them.
A batch adds to the slot of the current interval; a slot whose interval has passed out of
the ring is cleared when its place comes round again. A window of the last ``window_s``
seconds is the sum of the intervals it covers, so memory is ``intervals x slots x 8`` bytes
whatever the traffic.

Interval numbers are absolute, so the rings of several replicas merge interval by interval
(:meth:`CountWindow.merge`, or :meth:`CountWindow.snapshot` sent as JSON), provided their
clocks agree to within an interval.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.monitoring.counts import Batch, BinCounts, count_batch
from aiaas.monitoring.reference import ReferenceProfile
from aiaas.schemas.monitoring import DriftSettings

__all__ = ["CountWindow"]


class CountWindow:
    """Live counts of one profile (one served model version), per interval, in a ring.

    Args:
        profile: the reference whose buckets are counted.
        settings: ``interval_s`` and ``intervals`` size the ring.
        clock: seconds since the epoch (a test passes its own).

    Safe to call from several threads: counting runs outside the lock, only the addition
    into the ring holds it.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        settings: DriftSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = settings or DriftSettings()
        self.profile = profile
        self.digest = profile.digest
        self.interval_s = settings.interval_s
        self.intervals = settings.intervals
        self._clock = clock
        self._counts = np.zeros((self.intervals, profile.slots), dtype=np.int64)
        self._rows = np.zeros(self.intervals, dtype=np.int64)
        self._ids = np.full(self.intervals, -1, dtype=np.int64)
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Memory held by the ring (fixed at construction)."""
        return int(self._counts.nbytes + self._rows.nbytes + self._ids.nbytes)

    def _interval(self, now: float | None = None) -> int:
        return math.floor((self._clock() if now is None else now) / self.interval_s)

    def add(self, inputs: Batch, outputs: Batch | None = None) -> BinCounts:
        """Count a batch into the current interval; returns the batch's own counts."""
        batch = count_batch(self.profile, inputs, outputs)
        self.add_counts(batch)
        return batch

    def add_counts(self, counts: BinCounts, interval: int | None = None) -> None:
        """Add counts made elsewhere (by default into the current interval)."""
        if counts.profile != self.digest:
            raise InvalidArgument(
                f"counts of reference {counts.profile} do not belong to this window's "
                f"reference {self.digest}",
                details={"field": "profile", "expected": self.digest, "got": counts.profile},
            )
        if len(counts.counts) != self.profile.slots:
            raise InvalidArgument(
                f"counts have {len(counts.counts)} slots; this reference has {self.profile.slots}",
                details={"field": "counts"},
            )
        with self._lock:
            current = self._interval()
            interval = current if interval is None else interval
            if interval <= current - self.intervals or interval > current:
                return  # older than the ring, or from a clock ahead of ours: not in any window
            slot = interval % self.intervals
            if self._ids[slot] != interval:
                self._counts[slot] = 0
                self._rows[slot] = 0
                self._ids[slot] = interval
            self._counts[slot] += counts.counts
            self._rows[slot] += counts.rows

    def counts(self, window_s: float | None = None) -> BinCounts:
        """The counts of the last ``window_s`` seconds (rounded up to whole intervals, current
        one included; default: the whole ring)."""
        if window_s is not None and not window_s > 0:
            raise InvalidArgument(f"window must be > 0 seconds; got {window_s}", details={"field": "window"})
        with self._lock:
            current = self._interval()
            span = self.intervals
            if window_s is not None:
                span = min(self.intervals, math.ceil(window_s / self.interval_s))
            live = (self._ids > current - span) & (self._ids <= current)
            return BinCounts(self.digest, self._counts[live].sum(axis=0), int(self._rows[live].sum()))

    def snapshot(self) -> dict[str, Any]:
        """The ring as JSON: what a replica sends for its counts to be merged elsewhere."""
        with self._lock:
            current = self._interval()
            order = [s for s in np.argsort(self._ids) if current - self.intervals < self._ids[s] <= current]
            return {
                "profile": self.digest,
                "interval_s": self.interval_s,
                "intervals": [
                    {
                        "interval": int(self._ids[s]),
                        "rows": int(self._rows[s]),
                        "counts": self._counts[s].tolist(),
                    }
                    for s in order
                ],
            }

    def merge(self, other: CountWindow | Mapping[str, Any]) -> None:
        """Add another ring's counts (a :class:`CountWindow` or its :meth:`snapshot`), interval
        by interval."""
        data = other.snapshot() if isinstance(other, CountWindow) else other
        if data.get("interval_s") != self.interval_s:
            raise InvalidArgument(
                f"rings of {data.get('interval_s')} s intervals cannot merge into "
                f"{self.interval_s} s intervals",
                details={"field": "interval_s"},
            )
        for item in data["intervals"]:
            counts = BinCounts.from_dict({"profile": data["profile"], **item})
            self.add_counts(counts, interval=int(item["interval"]))
