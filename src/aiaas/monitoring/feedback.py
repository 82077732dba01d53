"""Feedback: the ground truth of answered requests, by request id, kept in the metadata DB.

A label is what the request should have been answered: a class label or a target value for a
one-row request, or a list of them, one per row. Feedback arrives after the fact (a
customer's complaint, a human review, next month's outcome), so it is matched with the
prediction log by request id when performance is asked for (:mod:`.performance`), not when
it is posted; posting checks only that each request is in the log and that its label fits.

Posting feedback for a request again replaces its label (a correction). The labels are kept
by :class:`aiaas.store.feedback.FeedbackStore`.
"""

from __future__ import annotations

import math
from typing import Any

from aiaas.errors import InvalidArgument

__all__ = ["check_label"]


def check_label(value: Any, field: str) -> Any:
    """A label as stored: a string, a finite number, a bool, or a non-empty list of them.

    Floats that are whole numbers become ints, so ``1.0`` matches the class ``1``.

    Raises:
        InvalidArgument: naming ``field``.
    """
    if isinstance(value, list):
        if not value:
            raise InvalidArgument(f"{field} must not be an empty list", details={"field": field})
        return [_scalar(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return _scalar(value, field)


def _scalar(value: Any, field: str) -> Any:
    if isinstance(value, bool | str):
        if isinstance(value, str) and not 0 < len(value) <= 1024:
            raise InvalidArgument(f"{field} must be 1 to 1024 characters", details={"field": field})
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{field} must be a finite number; got {value!r}", details={"field": field})
        return int(value) if isinstance(value, float) and value.is_integer() else value
    raise InvalidArgument(
        f"{field} must be a class label or a number (or a list of them, one per row); got {value!r}",
        details={"field": field},
    )
