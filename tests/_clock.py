"""Clocks that tests move by hand, for code that takes its time from a callable.

Two kinds, as the code under test reads time: :class:`Clock` returns seconds (``time.time``
or ``time.monotonic`` in the code: windows, buckets, the prediction log), :class:`DateClock`
an aware ``datetime`` (the control plane's evaluators and drivers).
"""

from __future__ import annotations

import datetime as dt

__all__ = ["T0", "T0_SECONDS", "Clock", "DateClock"]

#: A fixed instant the tests start from: noon UTC, 2026-12-01.
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
#: :data:`T0` in seconds since the epoch.
T0_SECONDS = T0.timestamp()


class Clock:
    """Seconds, moved by hand (``clock.now = ...`` or :meth:`advance`)."""

    def __init__(self, now: float = T0_SECONDS) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DateClock:
    """An aware ``datetime``, moved by hand (``clock.now = ...`` or :meth:`advance`)."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)
