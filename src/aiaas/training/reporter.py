"""Where a trainer sends its progress: logs, per-epoch metrics and checkpoints.

The trainer knows nothing of the database; the orchestrator passes a :class:`Reporter`
that writes there. :class:`MemoryReporter` keeps everything in lists, for tests and for
callers that just want the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["MemoryReporter", "NullReporter", "Reporter"]


class Reporter(Protocol):
    """Receives a job's progress; only rank 0 of a data-parallel job reports."""

    def log(self, message: str) -> None:
        """A line for the job's log."""

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Metrics of a finished epoch (1-based): ``loss``, ``val_loss``, ``val_<metric>``,
        ``samples_per_s``, ``lr``, ``epoch_s``."""

    def checkpoint(self, epoch: int, state: bytes) -> None:
        """A checkpoint after ``epoch``; must return only once the bytes are durable (written
        atomically), since the job may be killed right after and resumed from them."""


@dataclass
class MemoryReporter:
    """Keeps what it is told in lists.

    Example::

        reporter = MemoryReporter()
        result = train(spec, data, reporter)
        last_state = reporter.checkpoints[-1][1]
    """

    logs: list[str] = field(default_factory=list)
    epochs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    checkpoints: list[tuple[int, bytes]] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.logs.append(message)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append((epoch, dict(metrics)))

    def checkpoint(self, epoch: int, state: bytes) -> None:
        self.checkpoints.append((epoch, state))


class NullReporter:
    """Drops everything: the reporter of data-parallel ranks other than 0."""

    def log(self, message: str) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def checkpoint(self, epoch: int, state: bytes) -> None:
        pass
