"""What a :class:`~.batcher.DynamicBatcher` is configured with, and what it reports per call.

Kept apart from the batcher so that the values (and their checks, which name the field,
the rule and the value received) can be read and imported without the batching loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aiaas.errors import InvalidArgument
from aiaas.schemas.deployment_settings import default_settings

__all__ = ["BatchRecord", "BatchingConfig"]

#: A deployment's settings when it gave none (their one definition: aiaas.schemas).
_DEFAULTS = default_settings()


@dataclass(frozen=True)
class BatchingConfig:
    """How a :class:`DynamicBatcher` trades latency for throughput.

    Args:
        max_batch_size: the most rows a batch of several requests holds; a request of this
            many rows or more runs at once, alone and whole. At least 2: one row per call
            is no batching.
        max_queue_delay_ms: how long the oldest waiting request may wait for others to join
            before its batch leaves anyway. ``0`` batches only what is already waiting.
        max_queue_size: the most requests (``submit`` calls, whatever their row count)
            that may wait at once, queued or running alone; one more is refused with
            :class:`~aiaas.errors.ResourceExhausted`.
        max_concurrent_batches: the most batches of one batcher running at once, unless
            the batcher is given a ``concurrency`` callable.

    Raises:
        InvalidArgument: a value is out of range, naming the field, the rule and the value.

    Example:
        >>> BatchingConfig(max_batch_size=16, max_queue_delay_ms=1.0).max_queue_size
        1024
    """

    max_batch_size: int = _DEFAULTS.batching.max_batch_size
    max_queue_delay_ms: float = _DEFAULTS.batching.max_queue_delay_ms
    max_queue_size: int = _DEFAULTS.max_queue_size
    max_concurrent_batches: int = 1

    def __post_init__(self) -> None:
        _check_count("max_batch_size", self.max_batch_size, minimum=2)
        _check_count("max_queue_size", self.max_queue_size, minimum=1)
        _check_count("max_concurrent_batches", self.max_concurrent_batches, minimum=1)
        delay = self.max_queue_delay_ms
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise InvalidArgument(
                f"max_queue_delay_ms must be a finite number >= 0; got {delay!r} "
                "(use 0 to batch only requests that are already waiting)",
                details={"field": "max_queue_delay_ms", "value": repr(delay)},
            )


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(
            f"{name} must be an integer >= {minimum}; got {value!r}",
            details={"field": name, "value": repr(value)},
        )


@dataclass(frozen=True)
class BatchRecord:
    """What one model call did; handed to the ``on_batch`` hook (for metrics) as plain data.

    Attributes:
        rows: rows in the call (the model's batch size).
        requests: requests in the call: several for a batch, 1 for a request run alone.
        queue_s: how long each of those requests waited in the queue, in batch order (0 for
            a request run alone).
        compute_s: the model call, with concatenating and splitting around it.
        error: what the model raised, or ``None``.
    """

    rows: int
    requests: int
    queue_s: tuple[float, ...]
    compute_s: float
    error: BaseException | None = None
