"""Drift counting in the inference server: off the hot path, in blocks, with bounded memory.

:meth:`DriftCounter.record` runs on the event loop once per answered request, beside the
prediction log's :meth:`~aiaas.serving.prediction_log.PredictionLog.record`, and like it does
only cheap things: a set lookup (versions known to have nothing to count), a length check and
a ``deque.append`` of references to the arrays the request already holds. A full queue counts
the request as dropped (``aiaas_drift_dropped``) and returns; nothing blocks, nothing raises.

A thread (:class:`~aiaas.serving.flushing.FlushThread`, the server's one flushing
mechanism) wakes every ``AIAAS_DRIFT_FLUSH_INTERVAL_S``, takes what is queued and, per
deployment and version, concatenates the requests' tensors into one block and counts it with
one :func:`aiaas.monitoring.count_batch` (numpy, O(rows x features), no Python per row),
into the bins of the version's reference (:mod:`aiaas.registry.references`). The block's
counts are added to the database row of their interval (:mod:`.drift_counts` says why the
database), which is what the control plane's ``GET /api/v1/deployments/{name}/drift`` reads.
Counting happens here, in the server that decoded the request, so the model's replica
processes never see it and there is nothing to merge between them; several inference servers
add into the same rows.

A version with no reference yet (an uploaded model registered without a dataset) keeps the
first ``AIAAS_DRIFT_REFERENCE_ROWS`` rows of its traffic, at most that many, and they become
its reference (``source.kind = "traffic"``) unless one was stored meanwhile.

Memory is bounded by ``max_queued`` requests (each at most ``AIAAS_MAX_REQUEST_BYTES``), the
first-traffic rows per version, and one pending count vector per deployment, version and
interval between writes (a write that fails is retried at the next flush).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from aiaas.config import Settings
from aiaas.errors import AiaasError
from aiaas.formats import Signature
from aiaas.monitoring import BinCounts, count_batch
from aiaas.registry import Layout, ReferenceStore, StoredReference, build_reference, sample_rows
from aiaas.registry.references import layout_of
from aiaas.serving.flushing import FlushThread, interval_start
from aiaas.store import Database
from aiaas.store.drift import CountKey, CountStore

__all__ = ["DriftCollector", "DriftCounter"]

logger = logging.getLogger("aiaas.serving.drift_counter")

#: How often a version's reference is read again (one may have been stored or replaced since).
REFRESH_S = 30.0
#: How often count rows past their retention are deleted.
_PRUNE_EVERY_S = 600.0

_Key = tuple[str, str, int]  # deployment, model, version
_Queued = tuple[str, str, int, Signature, Mapping[str, Any], Mapping[str, Any]]
_Parts = list[tuple[Mapping[str, Any], Mapping[str, Any]]]  # (inputs, outputs) of requests


@dataclass
class _Version:
    """What the counting thread knows of one deployment's version."""

    reference: StoredReference | None
    checked_at: float
    first: _Parts = field(default_factory=list)
    first_rows: int = 0


class DriftCounter:
    """Counts every deployment's traffic into its versions' reference bins, in blocks.

    Args:
        references: the store versions' references are read from (and first-traffic ones
            written to).
        counts: where count rows are added.
        interval_s: seconds per count row.
        flush_interval_s: seconds between counts.
        max_queued: requests held between counts, all deployments together.
        reference_rows: first-traffic rows that make a reference (0: none made).
        retention: count rows older than this are deleted.
        enabled: False records nothing (``AIAAS_DRIFT_COUNTING=false``).
    """

    def __init__(
        self,
        references: ReferenceStore,
        counts: CountStore,
        *,
        interval_s: float = 60.0,
        flush_interval_s: float = 2.0,
        max_queued: int = 4096,
        reference_rows: int = 5000,
        retention: dt.timedelta = dt.timedelta(days=7),
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.references = references
        self.counts = counts
        self.interval_s = interval_s
        self.flush_interval_s = flush_interval_s
        self.max_queued = max_queued
        self.reference_rows = reference_rows
        self.retention = retention
        self.enabled = enabled
        self._clock, self._monotonic = clock, monotonic
        self._queue: deque[_Queued] = deque()
        self._off: set[_Key] = set()
        self._versions: dict[_Key, _Version] = {}
        self._pending: dict[CountKey, BinCounts] = {}
        self._flusher = FlushThread("drift-counter", self.flush, flush_interval_s, after=self._prune)
        self._lock = threading.Lock()
        self._pruned_at = float("-inf")
        #: Requests not counted because the queue was full, per deployment.
        self.dropped: dict[str, int] = {}
        #: Requests not counted because they did not fit their version's reference, per deployment.
        self.invalid: dict[str, int] = {}
        #: Rows counted into the database, per deployment.
        self.counted: dict[str, int] = {}

    @classmethod
    def of(cls, settings: Settings, db: Database) -> DriftCounter:
        """The counter the inference server runs, sized by its ``AIAAS_DRIFT_*`` settings."""
        return cls(
            ReferenceStore(db, project=None),  # every project's versions, by qualified model name
            CountStore(db),
            interval_s=settings.drift_interval_s,
            flush_interval_s=settings.drift_flush_interval_s,
            max_queued=settings.drift_max_queued,
            reference_rows=settings.drift_reference_rows,
            retention=dt.timedelta(days=settings.drift_retention_days),
            enabled=settings.drift_counting,
        )

    # -- the hot path ----------------------------------------------------------------------

    def record(
        self,
        deployment: str,
        model: str,
        version: int,
        signature: Signature,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> bool:
        """Queue one answered request for counting, if its version counts and there is room.

        Never blocks and never raises. Returns whether it was queued.
        """
        if not self.enabled or (deployment, model, version) in self._off:
            return False
        if len(self._queue) >= self.max_queued:
            self.dropped[deployment] = self.dropped.get(deployment, 0) + 1
            return False
        self._queue.append((deployment, model, version, signature, inputs, outputs))
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- the counting thread ---------------------------------------------------------------

    def start(self) -> None:
        self._flusher.start()

    def close(self) -> None:
        """Stop the thread, count what is queued and write every pending count."""
        self._flusher.close()

    def flush(self) -> int:
        """Count what is queued now, one block per deployment and version, and write the counts.

        Returns the requests taken from the queue.
        """
        with self._lock:
            taken: list[_Queued] = []
            while self._queue:
                taken.append(self._queue.popleft())
            groups: dict[_Key, list[_Queued]] = {}
            for item in taken:
                groups.setdefault((item[0], item[1], item[2]), []).append(item)
            started = self._interval_start()
            for key, items in groups.items():
                self._count_group(key, items, started)
            self._write()
            return len(taken)

    def _count_group(self, key: _Key, items: list[_Queued], started: dt.datetime) -> None:
        deployment, model, version = key
        state = self._version(key, items[0][3])
        if state is None:
            return
        if state.reference is None:
            self._keep_first(key, state, items)
            return
        reference, output = state.reference, state.reference.layout.output
        # A client may ask for other outputs only: those requests' inputs still count.
        answered: _Parts = [(i[4], i[5]) for i in items if output is None or output in i[5]]
        unanswered: _Parts = [(i[4], {}) for i in items if output is not None and output not in i[5]]
        for part in (answered, unanswered):
            if not part:
                continue
            try:
                columns, answers = reference.layout.columns(*_block(reference.layout, part))
                counts = count_batch(reference.profile, columns, answers or None)
            except (AiaasError, KeyError, ValueError) as exc:
                self.invalid[deployment] = self.invalid.get(deployment, 0) + len(part)
                logger.warning("drift: %d requests of %s v%d not counted: %s", len(part), model, version, exc)
                continue
            where = CountKey(deployment, version, reference.profile.digest, started)
            self._pending[where] = self._pending[where] + counts if where in self._pending else counts

    def _version(self, key: _Key, signature: Signature) -> _Version | None:
        """The version's state, its reference read again every REFRESH_S; None: it never counts."""
        now = self._monotonic()
        state = self._versions.get(key)
        if state is None or now - state.checked_at >= REFRESH_S:
            reference = self.references.get(key[1], key[2])
            if reference is None and state is None:
                try:
                    layout_of(signature)
                except AiaasError:  # not tabular (images, sequences): never counted
                    self._off.add(key)
                    return None
            if state is None:
                state = self._versions[key] = _Version(reference, now)
            else:
                state.reference, state.checked_at = reference, now
            if reference is None and self.reference_rows <= 0:
                return None
            if reference is not None:
                state.first, state.first_rows = [], 0
        return state

    def _keep_first(self, key: _Key, state: _Version, items: list[_Queued]) -> None:
        """Keep first-traffic rows (at most reference_rows); at that many, make them the reference."""
        for item in items:
            if state.first_rows >= self.reference_rows:
                break
            state.first.append((item[4], item[5]))
            first_tensor = next(iter(item[4].values()), None)
            state.first_rows += len(first_tensor) if first_tensor is not None and np.ndim(first_tensor) else 1
        if state.first_rows < self.reference_rows:
            return
        _, model, version = key
        signature = items[0][3]
        try:
            layout = layout_of(signature)
            inputs, outputs = _block(layout, state.first)
            table, answered = layout.columns(inputs, outputs)
            names = (
                [n for names in layout.inputs.values() for n in names] if len(layout.inputs) == 1 else None
            )
            profile, layout = build_reference(signature, lambda _: answered, table, names)
            source = {"kind": "traffic", "rows": state.first_rows}
            sample = sample_rows(layout, table)
            self.references.put(model, version, profile, layout, source, sample=sample, replace=False)
        except AiaasError as exc:
            logger.warning("drift: no reference for %s v%d from its traffic: %s", model, version, exc)
            self._off.add(key)
            return
        state.first, state.first_rows = [], 0
        state.reference = self.references.get(model, version)
        logger.info("drift: %s v%d has a reference from its first traffic", model, version)

    def _write(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            self.counts.add(pending, interval_s=self.interval_s)
        except Exception:
            logger.exception("drift counts could not be written; retrying at the next flush")
            for where, counts in pending.items():  # keep them, added to what came since
                self._pending[where] = self._pending[where] + counts if where in self._pending else counts
            return
        for where, counts in pending.items():
            self.counted[where.deployment] = self.counted.get(where.deployment, 0) + counts.rows

    def _interval_start(self) -> dt.datetime:
        return interval_start(self._clock(), self.interval_s)

    def _prune(self) -> None:
        now = self._monotonic()
        if now - self._pruned_at >= _PRUNE_EVERY_S:
            self._pruned_at = now
            self.counts.prune(dt.datetime.fromtimestamp(self._clock(), dt.UTC) - self.retention)


def _block(layout: Layout, items: _Parts) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Requests' tensors concatenated row-wise: one array per input (and the profiled output)."""
    inputs = {name: np.concatenate([_rows(i[name]) for i, _ in items]) for name in layout.inputs}
    outputs: dict[str, np.ndarray] = {}
    if layout.output is not None and all(layout.output in o for _, o in items):
        outputs[layout.output] = np.concatenate([_rows(o[layout.output]).reshape(-1) for _, o in items])
    return inputs, outputs


def _rows(tensor: Any) -> np.ndarray:
    array = np.asarray(tensor)
    return array.reshape(1, -1) if array.ndim == 0 else array.reshape(len(array), -1)


class DriftCollector:
    """The drift counter's own counters as Prometheus metrics: rows counted, requests dropped
    (queue full) or not fitting their reference, and the queue's length, read at scrape time.
    The drift scores themselves are on the control plane's /metrics (aiaas_drift_score)."""

    def __init__(self, counter: DriftCounter) -> None:
        self.counter = counter

    def collect(self) -> Iterator[Metric]:
        counted = CounterMetricFamily(
            "aiaas_drift_counted_rows",
            "Rows counted for drift, written to the database.",
            labels=["deployment"],
        )
        for deployment, count in sorted(self.counter.counted.items()):
            counted.add_metric([deployment], count)
        dropped = CounterMetricFamily(
            "aiaas_drift_dropped",
            "Requests answered but not counted for drift: reason=full (queue at AIAAS_DRIFT_MAX_QUEUED) "
            "or invalid (they did not fit the version's reference).",
            labels=["deployment", "reason"],
        )
        for reason, counts in (("full", self.counter.dropped), ("invalid", self.counter.invalid)):
            for deployment, count in sorted(counts.items()):
                dropped.add_metric([deployment, reason], count)
        queued = GaugeMetricFamily("aiaas_drift_queued", "Requests waiting to be counted for drift.")
        queued.add_metric([], self.counter.queued)
        return iter([counted, dropped, queued])
