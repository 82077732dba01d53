"""The prediction log's writer in the inference server: sampled, capped, bounded, off the hot path.

:meth:`PredictionLog.record` runs on the event loop once per answered request and does only
cheap things: a sampling draw, a token bucket per deployment (``max_rows_per_s``), a length
check and a ``deque.append`` of references to the arrays the request already holds. No
encoding, no copy, no lock, no I/O: a full queue or an empty bucket counts the request as
dropped and returns. A writer thread wakes every ``flush_interval_s``, takes what is queued,
encodes it (orjson) and has one Parquet segment per deployment written
(:mod:`aiaas.store.predictions`) by a child process that holds pyarrow
(:mod:`aiaas.serving.segment_writer` says why); :meth:`PredictionLog.close` writes the rest at shutdown,
so every row of an answered request is on disk after a clean stop. Memory is bounded by
``max_queued`` requests, each at most ``AIAAS_MAX_REQUEST_BYTES`` of inputs plus its outputs.

A deployment with ``outlier_scores`` on has its requests scored in the same writer thread,
per version in one block, just before they are written
(:class:`~aiaas.serving.outlier_scorer.OutlierScorer`): the request path pays nothing for it.

Rows logged per deployment default to every request, capped at
:data:`DEFAULT_MAX_ROWS_PER_S` a second (a burst of up to one second's worth passes): enough
for feedback and drift on most services, a few hundred kB a second of Parquet at most.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from aiaas.schemas.deployment_settings import DeploymentSettings, default_settings
from aiaas.schemas.setting_values import check_value
from aiaas.serving.segment_writer import ProcessWriter, SegmentWriter
from aiaas.store.predictions import LoggedRequest, prune_segments

if TYPE_CHECKING:
    from aiaas.serving.outlier_scorer import OutlierScorer

__all__ = [
    "DEFAULT_MAX_ROWS_PER_S",
    "DEFAULT_SAMPLE_RATE",
    "LogPolicy",
    "PredictionLog",
    "PredictionLogCollector",
    "check_log_policy",
    "default_log_policy",
]

logger = logging.getLogger("aiaas.serving.prediction_log")

#: Requests logged per deployment and second at most, by default (from the settings' definition).
DEFAULT_MAX_ROWS_PER_S: float = default_settings().prediction_log.max_rows_per_s
#: Share of requests logged, by default: every one, up to the cap (from the settings' definition).
DEFAULT_SAMPLE_RATE: float = default_settings().prediction_log.sample_rate
#: How often the writer deletes day folders past the retention period.
_PRUNE_EVERY_S = 600.0


@dataclass(frozen=True)
class LogPolicy:
    """How much of one deployment's traffic is logged.

    ``sample_rate`` in [0, 1] is the share of requests drawn (0 turns the log off);
    ``max_rows_per_s`` > 0 caps the rows drawn per second. ``outliers`` names the model whose
    versions' references score the logged requests (``outlier_scores`` on); None: no scores.
    """

    sample_rate: float = DEFAULT_SAMPLE_RATE
    max_rows_per_s: float = DEFAULT_MAX_ROWS_PER_S
    outliers: str | None = None

    @classmethod
    def of(cls, setting: Mapping[str, Any], *, outliers: str | None = None) -> LogPolicy:
        """The policy of a deployment's stored ``prediction_log`` setting (defaults filled in)."""
        return cls(
            sample_rate=float(setting.get("sample_rate", DEFAULT_SAMPLE_RATE)),
            max_rows_per_s=float(setting.get("max_rows_per_s", DEFAULT_MAX_ROWS_PER_S)),
            outliers=outliers,
        )


def default_log_policy() -> dict[str, Any]:
    """A deployment's ``prediction_log`` setting when it gave none: every request, capped."""
    return default_settings().prediction_log.model_dump()


def check_log_policy(value: Any) -> dict[str, float]:
    """A ``prediction_log`` setting as given, checked against its definition; keys left out (or
    null) are dropped, to take their defaults.

    Raises:
        InvalidArgument: naming the key (``prediction_log.sample_rate``) and its range.
    """
    field = DeploymentSettings.model_fields["prediction_log"]
    return dict(check_value("prediction_log", value, field) or {})


# deployment, version, request id, time, latency, inputs, outputs, model scoring outliers
_Queued = tuple[str, int, str, float, float, Mapping[str, Any], Mapping[str, Any], str | None]


class _Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most one second's worth."""

    __slots__ = ("rate", "tokens", "updated")

    def __init__(self, rate: float, now: float) -> None:
        self.rate, self.tokens, self.updated = rate, rate, now

    def take(self, rate: float, now: float) -> bool:
        self.tokens = min(rate, self.tokens + (now - self.updated) * rate)
        self.rate, self.updated = rate, now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class PredictionLog:
    """Sampled requests of every deployment, queued in memory and written as Parquet segments.

    Example:
        >>> log = PredictionLog(Path("/tmp/predictions"))  # doctest: +SKIP
        >>> log.start()  # doctest: +SKIP
        >>> log.record("iris", LogPolicy(), 1, "req-1", 0.002, {"X": x}, {"label": y})  # doctest: +SKIP
        >>> log.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        root: Path,
        *,
        max_queued: int = 4096,
        flush_interval_s: float = 2.0,
        retention: dt.timedelta = dt.timedelta(days=30),
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        writer: SegmentWriter | None = None,
        scorer: OutlierScorer | None = None,
    ) -> None:
        self.root = root
        self.writer = writer if writer is not None else ProcessWriter(root)
        #: Scores the requests of deployments with ``outlier_scores`` on (None: none are).
        self.scorer = scorer
        self.max_queued = max_queued
        self.flush_interval_s = flush_interval_s
        self.retention = retention
        self._clock, self._monotonic = clock, monotonic
        self._queue: deque[_Queued] = deque()
        self._buckets: dict[str, _Bucket] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._pruned_at = float("-inf")
        #: Requests not logged because the queue was full, per deployment.
        self.dropped_full: dict[str, int] = {}
        #: Requests not logged because the deployment's rows-per-second cap was reached.
        self.dropped_rate: dict[str, int] = {}
        #: Rows written to segments, per deployment.
        self.written: dict[str, int] = {}
        #: Rows lost because a segment could not be written (disk full, permissions).
        self.write_errors = 0
        #: Requests given an outlier score, and those the forest called outliers, per
        #: (deployment, version).
        self.scored: dict[tuple[str, int], int] = {}
        self.outliers: dict[tuple[str, int], int] = {}

    # -- the hot path ----------------------------------------------------------------------

    def record(
        self,
        deployment: str,
        policy: LogPolicy,
        version: int,
        request_id: str,
        latency_s: float,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> bool:
        """Queue one answered request for the log, if it is drawn and there is room.

        Never blocks and never raises for a full queue. Returns whether it was queued.
        """
        if policy.sample_rate < 1.0 and random.random() >= policy.sample_rate:
            return False
        now = self._monotonic()
        bucket = self._buckets.get(deployment)
        if bucket is None:
            bucket = self._buckets[deployment] = _Bucket(policy.max_rows_per_s, now)
        if not bucket.take(policy.max_rows_per_s, now):
            self.dropped_rate[deployment] = self.dropped_rate.get(deployment, 0) + 1
            return False
        if len(self._queue) >= self.max_queued:
            self.dropped_full[deployment] = self.dropped_full.get(deployment, 0) + 1
            return False
        self._queue.append(
            (deployment, version, request_id, self._clock(), latency_s, inputs, outputs, policy.outliers)
        )
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- the writer --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="aiaas-prediction-log", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the writer and write everything still queued."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        self.writer.close()
        if self.scorer is not None:
            self.scorer.close()

    def flush(self) -> int:
        """Write what is queued now, one segment per deployment; return the rows written."""
        with self._write_lock:
            taken: list[_Queued] = []
            while self._queue:
                taken.append(self._queue.popleft())
            scores = self._scores(taken)
            by_deployment: dict[str, list[LoggedRequest]] = {}
            for i, (deployment, version, request_id, at, latency_s, inputs, outputs, _) in enumerate(taken):
                score, outlier = scores.get(i, (None, None))
                by_deployment.setdefault(deployment, []).append(
                    LoggedRequest(
                        request_id=request_id,
                        version=version,
                        time_us=int(at * 1e6),
                        latency_ms=latency_s * 1e3,
                        inputs=_json(inputs),
                        outputs=_json(outputs),
                        outlier_score=score,
                        outlier=outlier,
                    )
                )
            for deployment, rows in by_deployment.items():
                try:
                    self.writer.write(deployment, rows)
                except OSError:
                    self.write_errors += len(rows)
                    logger.exception("could not write %d prediction log rows of %r", len(rows), deployment)
                    continue
                self.written[deployment] = self.written.get(deployment, 0) + len(rows)
            return len(taken)

    def _scores(self, taken: list[_Queued]) -> dict[int, tuple[float, bool]]:
        """The outlier score and flag of each taken request that has one, by its index: one
        block per deployment and version. Never raises (a request without one is logged without)."""
        if self.scorer is None:
            return {}
        groups: dict[tuple[str, str, int], list[int]] = {}
        for i, item in enumerate(taken):
            if item[7] is not None:
                groups.setdefault((item[0], item[7], item[1]), []).append(i)
        out: dict[int, tuple[float, bool]] = {}
        for (deployment, model, version), indexes in groups.items():
            scored = self.scorer.score(model, version, [taken[i][5] for i in indexes])
            for i, result in zip(indexes, scored, strict=True):
                if result is not None:
                    out[i] = result
            key = (deployment, version)
            given = [r for r in scored if r is not None]
            if given:
                self.scored[key] = self.scored.get(key, 0) + len(given)
                self.outliers[key] = self.outliers.get(key, 0) + sum(flag for _, flag in given)
        return out

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_interval_s)
            if self._stopping:
                return
            try:
                self.flush()
                self._prune()
            except Exception:  # the writer must outlive one bad batch
                logger.exception("the prediction log writer failed; it carries on")

    def _prune(self) -> None:
        now = self._monotonic()
        if now - self._pruned_at >= _PRUNE_EVERY_S:
            self._pruned_at = now
            prune_segments(self.root, self.retention, dt.datetime.fromtimestamp(self._clock(), dt.UTC))


class PredictionLogCollector:
    """The prediction log's counters as Prometheus metrics: rows written and requests dropped
    (by reason, per deployment), and the queue's length, read at scrape time."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log

    def collect(self) -> Iterator[Metric]:
        written = CounterMetricFamily(
            "aiaas_prediction_log_rows", "Requests written to the prediction log.", labels=["deployment"]
        )
        for deployment, count in sorted(self.log.written.items()):
            written.add_metric([deployment], count)
        dropped = CounterMetricFamily(
            "aiaas_prediction_log_dropped",
            "Requests answered but not logged: reason=rate (over max_rows_per_s) or full (queue at "
            "AIAAS_PREDICTION_LOG_MAX_QUEUED).",
            labels=["deployment", "reason"],
        )
        for reason, counts in (("rate", self.log.dropped_rate), ("full", self.log.dropped_full)):
            for deployment, count in sorted(counts.items()):
                dropped.add_metric([deployment, reason], count)
        queued = GaugeMetricFamily("aiaas_prediction_log_queued", "Requests waiting to be written.")
        queued.add_metric([], self.log.queued)
        scored = CounterMetricFamily(
            "aiaas_prediction_log_scored",
            "Logged requests given an outlier score (deployments with outlier_scores on).",
            labels=["deployment", "version"],
        )
        outliers = CounterMetricFamily(
            "aiaas_prediction_log_outliers",
            "Logged requests the version's Isolation Forest called outliers against its reference rows.",
            labels=["deployment", "version"],
        )
        for family, by_version in ((scored, self.log.scored), (outliers, self.log.outliers)):
            for (deployment, version), count in sorted(by_version.items()):
                family.add_metric([deployment, str(version)], count)
        return iter([written, dropped, queued, scored, outliers])


def _json(tensors: Mapping[str, Any]) -> str:
    """Tensors as one JSON object; numpy arrays of numbers natively, strings and objects as lists."""
    return orjson.dumps(tensors, option=orjson.OPT_SERIALIZE_NUMPY, default=_fallback).decode()


def _fallback(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot log a {type(value).__name__}")
