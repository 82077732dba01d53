"""A rule's state machine, as a pure function of its stored state, its condition and the time.

::

    inactive ──condition true──► pending ──true for `for`──► firing ──condition false──► inactive
       ▲                           │                                        (event: resolved)
       └────condition false────────┘ (event: inactive, never notified)

With ``for = 0`` a true condition goes from inactive to firing at once (one event: firing). A
missing value (no traffic in the window, no labelled rows, no reference) is a false condition:
a rule on an idle deployment resolves rather than staying on. Only firing and resolved are
notified; pending and inactive are history.

An anomaly detector or a rollout guard is a source of the same condition: it feeds ``step``
its verdict and gets the same states, history and notifications.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from aiaas.entities.alerts import RuleState

__all__ = ["NOTIFIED", "OPERATORS", "Step", "holds", "step"]

#: The comparisons a rule's condition may use.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
#: The events sent to webhooks and the log; the others are only recorded.
NOTIFIED = frozenset({"firing", "resolved"})


def holds(value: float | None, op: str, threshold: float) -> bool:
    """Whether ``value op threshold``; a missing or NaN value never holds."""
    if value is None or math.isnan(value):
        return False
    return OPERATORS[op](value, threshold)


@dataclass(frozen=True)
class Step:
    """Where a rule goes: its new state, since when, and the event to record (None: no change)."""

    state: RuleState
    since: dt.datetime | None
    event: str | None


def step(
    state: RuleState, since: dt.datetime | None, condition: bool, for_s: float, now: dt.datetime
) -> Step:
    """The next state of a rule in ``state`` (entered at ``since``) whose condition is ``condition``."""
    if state == "inactive":
        if not condition:
            return Step("inactive", since, None)
        if for_s <= 0:
            return Step("firing", now, "firing")
        return Step("pending", now, "pending")
    if state == "pending":
        if not condition:
            return Step("inactive", now, "inactive")
        started = since or now
        if (now - started).total_seconds() >= for_s:
            return Step("firing", now, "firing")
        return Step("pending", since, None)
    if condition:  # firing, and still true
        return Step("firing", since, None)
    return Step("inactive", now, "resolved")
