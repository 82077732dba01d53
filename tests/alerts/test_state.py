"""A rule's state machine on its own: pending after a true condition, firing once it held for
`for`, resolved when it stops holding, pending that ends before `for` back to inactive, a missing
value never holding, and `for = 0` firing at once."""

from __future__ import annotations

import datetime as dt
import math

from aiaas.alerts import holds, step

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_pending_then_firing_after_for_then_resolved() -> None:
    s = step("inactive", None, True, 30, at(0))
    assert (s.state, s.since, s.event) == ("pending", at(0), "pending")
    s = step(s.state, s.since, True, 30, at(29))
    assert (s.state, s.since, s.event) == ("pending", at(0), None)
    s = step(s.state, s.since, True, 30, at(30))
    assert (s.state, s.since, s.event) == ("firing", at(30), "firing")
    s = step(s.state, s.since, True, 30, at(100))
    assert (s.state, s.event) == ("firing", None)
    s = step(s.state, s.since, False, 30, at(101))
    assert (s.state, s.since, s.event) == ("inactive", at(101), "resolved")
    assert step(s.state, s.since, False, 30, at(102)).event is None


def test_a_pending_condition_that_ends_early_is_not_fired() -> None:
    s = step("inactive", None, True, 30, at(0))
    s = step(s.state, s.since, False, 30, at(10))
    assert (s.state, s.event) == ("inactive", "inactive")
    # True again: the `for` clock starts over.
    s = step(s.state, s.since, True, 30, at(20))
    assert (s.state, s.since) == ("pending", at(20))
    assert step(s.state, s.since, True, 30, at(45)).event is None


def test_for_zero_fires_at_once() -> None:
    s = step("inactive", None, True, 0, at(0))
    assert (s.state, s.event) == ("firing", "firing")


def test_conditions() -> None:
    assert holds(0.3, ">", 0.2) and not holds(0.2, ">", 0.2) and holds(0.2, ">=", 0.2)
    assert holds(1.0, "<", 2.0) and holds(2.0, "!=", 1.0) and holds(1.0, "==", 1.0)
    assert not holds(None, "<", 1.0)  # no data never holds
    assert not holds(math.nan, "!=", 1.0)
