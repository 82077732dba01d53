"""Anomaly rules: a deployment's latest metric window judged against its own recent windows.

An anomaly rule names a set of metrics (latency p50/p99, error rate, throughput, CPU, memory,
queue depth, restarts, drift). Each window of ``window_s`` is one point, one value per metric;
the ``training_window_s`` before the judged window gives the history, and the detector says
whether the judged window is out of line with it. The verdict is a rule's condition like any
other: the same state machine (:func:`.state.step`), history, outbox, webhooks and silences.

Why two detectors:

- **Isolation Forest** isolates a point with random axis-aligned splits; a window that differs
  from the others in any metric is cut off in few splits. It needs no scaling and no notion of
  distance, so metrics in seconds, ratios and requests/s mix as they are, and it is cheap. It
  cannot tell *how far* beyond the history a point lies once it is outside (a point beyond the
  history's range lands in the leaf of the history's most extreme window), so it is fitted on the
  history *and* the judged window and scores them together: a window far out is then cut off at
  the first split on its metric. This is Isolation Forest as its authors use it, an unsupervised
  detector over a batch; one window among tens cannot hide itself.
- **Local Outlier Factor** compares a point's local density with its neighbours' on the metrics
  scaled by the history's own spread (median and interquartile range). It grows with the
  distance from the history, so one metric's spike stands out, and it follows a history with
  several regimes (day and night traffic) where a global model would not. It is fitted on the
  history alone (``novelty=True``) and the judged window is scored as a new point.

The decision boundary is not a number anyone sets. With ``contamination`` unset (``auto``), the
window must be beyond the detector's own boundary (Isolation Forest's score 0.5 of the original
paper, LOF's factor 1.5: scikit-learn's ``offset_`` for ``contamination="auto"``) *and* more
outlying than every window of the history (the maximum of the history's scores). Under steady
noise the judged window is as likely as any other to be the most outlying, so a window is flagged
with chance about ``1/(n+1)`` for ``n`` history windows; a rule's ``for`` (several windows in a
row) makes a false firing rarer still, while a real change (a slow version) stays flagged window
after window. With ``contamination`` set to ``c`` (the share of anomalous windows the history is
believed to hold), the boundary is the ``1 - c`` quantile of the history's scores, as
scikit-learn derives ``offset_`` for that contamination.

The rule's value is the judged window's score minus the boundary (above 0: anomalous), and each
transition carries why: every metric with its value, the history's median and range.
Deterministic: the forest's ``random_state`` is fixed and LOF has no randomness.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiaas.alerts.metrics import METRICS
from aiaas.alerts.series import MetricReader, Scope, from_sample
from aiaas.entities.alerts import AnomalySpec, Rule
from aiaas.entities.metrics import MetricSample
from aiaas.errors import AiaasError

__all__ = [
    "ANOMALY_METRICS",
    "DEFAULT_METRICS",
    "DETECTORS",
    "MAX_HISTORY_WINDOWS",
    "MIN_HISTORY",
    "AnomalyJudge",
    "Deviation",
    "Verdict",
    "detect",
]

#: The detectors an anomaly rule may use.
DETECTORS = ("isolation_forest", "lof")
#: The metrics an anomaly rule may follow: those sampled per interval, and drift.
ANOMALY_METRICS = tuple(name for name, info in METRICS.items() if info.source in ("samples", "drift"))
#: The metrics of an anomaly rule that names none: the serving golden signals.
DEFAULT_METRICS = ("latency_p50", "latency_p99", "error_rate", "throughput")
#: The least history (windows with a value for every metric) a rule may ask for: below it
#: neither detector has anything to learn from.
MIN_HISTORY = 8
#: The most history windows one rule reads (a longer training window needs a longer window).
MAX_HISTORY_WINDOWS = 1000
#: Isolation Forest's trees and seed, LOF's neighbours (at most; fewer on a short history).
_TREES, _SEED, _NEIGHBOURS = 100, 0, 20
#: scikit-learn's boundaries for ``contamination="auto"``: the paper's 0.5, LOF's 1.5.
_AUTO_OFFSET = {"isolation_forest": 0.5, "lof": 1.5}


@dataclass(frozen=True)
class Deviation:
    """One metric of the judged window against the history: its value, the history's median
    and range, and how many of the history's spreads (interquartile range) it is from the median."""

    metric: str
    value: float
    median: float
    low: float
    high: float
    spread: float

    @property
    def outside(self) -> bool:
        return self.value < self.low or self.value > self.high

    def text(self) -> str:
        history = f"history median {self.median:.4g}, range {self.low:.4g}-{self.high:.4g}"
        return f"{self.metric} {self.value:.4g} ({history})"


@dataclass(frozen=True)
class Verdict:
    """A detector's verdict on one window. ``score`` is how far the window is beyond the
    boundary (above 0: anomalous); None with ``reason`` when there was not enough to judge."""

    anomalous: bool
    score: float | None
    threshold: float | None = None
    history: int = 0
    deviations: tuple[Deviation, ...] = ()
    reason: str = ""
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        """What a notification carries of the verdict."""
        return {
            "anomalous": self.anomalous,
            "score": self.score,
            "threshold": self.threshold,
            "history_windows": self.history,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "reason": self.reason,
            "deviations": [
                {
                    "metric": d.metric,
                    "value": d.value,
                    "median": d.median,
                    "low": d.low,
                    "high": d.high,
                    "outside": d.outside,
                }
                for d in self.deviations
            ],
        }


def _spread(column: np.ndarray[Any, Any], median: float) -> float:
    """The history's spread of one metric: its interquartile range, else its range, else a
    millionth of its size (a metric constant over the history: any change is far)."""
    q1, q3 = np.percentile(column, [25, 75])
    if q3 > q1:
        return float(q3 - q1)
    if column.max() > column.min():
        return float(column.max() - column.min())
    return max(abs(median), 1.0) * 1e-6


def detect(
    history: np.ndarray[Any, Any],
    window: np.ndarray[Any, Any],
    metrics: tuple[str, ...],
    *,
    detector: str = "isolation_forest",
    contamination: float | None = None,
) -> Verdict:
    """Whether ``window`` (one value per metric) is anomalous against ``history`` (a row per
    window, the judged one not among them). See the module's docstring for how."""
    history = np.asarray(history, dtype=np.float64)
    point = np.asarray(window, dtype=np.float64).reshape(1, -1)
    medians = np.median(history, axis=0)
    spreads = np.array([_spread(history[:, j], float(medians[j])) for j in range(history.shape[1])])
    scaled_history = (history - medians) / spreads
    scaled_point = (point - medians) / spreads
    if detector == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        both = np.vstack([scaled_history, scaled_point])
        forest = IsolationForest(n_estimators=_TREES, random_state=_SEED).fit(both)
        scores = -forest.score_samples(both)
        history_scores, score = scores[:-1], float(scores[-1])
    elif detector == "lof":
        from sklearn.neighbors import LocalOutlierFactor

        lof = LocalOutlierFactor(n_neighbors=min(_NEIGHBOURS, len(history) - 1), novelty=True)
        lof.fit(scaled_history)
        history_scores = -lof.negative_outlier_factor_
        score = float(-lof.score_samples(scaled_point)[0])
    else:
        raise ValueError(f"detector must be one of {', '.join(DETECTORS)}; got {detector!r}")
    if contamination is None:
        threshold = max(_AUTO_OFFSET[detector], float(history_scores.max()))
    else:
        threshold = float(np.quantile(history_scores, 1.0 - contamination))
    deviations = sorted(
        (
            Deviation(
                metric,
                float(point[0, j]),
                float(medians[j]),
                float(history[:, j].min()),
                float(history[:, j].max()),
                float(spreads[j]),
            )
            for j, metric in enumerate(metrics)
        ),
        key=lambda d: -abs(d.value - d.median) / d.spread,
    )
    anomalous = score > threshold
    named = [d for d in deviations if d.outside] or deviations[:1]
    verb = "anomalous" if anomalous else "within the history"
    reason = f"{detector} score {score:.3g} vs boundary {threshold:.3g}: {verb}; " + "; ".join(
        d.text() for d in named
    )
    return Verdict(anomalous, score - threshold, threshold, len(history), tuple(deviations), reason)


class AnomalyJudge:
    """Reads an anomaly rule's windows and judges the latest complete one.

    Windows end at the start of the sample interval under way, less the flush lag (so the
    judged window holds whole, written intervals, as the history's do), and a verdict is kept
    until the next window is complete: a rule is fitted once per sample interval at most.

    Args:
        reader: reads the metric samples and drift.
        interval_s: the sample interval (``AIAAS_METRICS_INTERVAL_S``).
        lag_s: how late an interval's last samples are written (``AIAAS_METRICS_FLUSH_INTERVAL_S``).
    """

    def __init__(self, reader: MetricReader, *, interval_s: float = 60.0, lag_s: float = 10.0) -> None:
        self.reader = reader
        self.interval_s, self.lag_s = interval_s, lag_s
        self._kept: dict[int, tuple[tuple[Any, ...], Verdict]] = {}

    def end_of_windows(self, now: dt.datetime) -> dt.datetime:
        """Where the judged window ends: the start of the latest fully written interval's successor."""
        number = math.floor((now.timestamp() - self.lag_s) / self.interval_s)
        return dt.datetime.fromtimestamp(number * self.interval_s, dt.UTC)

    def judge(self, rule: Rule, now: dt.datetime) -> Verdict:
        """The verdict on ``rule``'s latest complete window.

        While the rule is pending or firing, the history stops where the window that made it
        pending began: an anomaly that lasts is not learnt as normal (and keeps the rule firing).
        The history so left shrinks as the training window moves on; once it is shorter than
        ``min_history`` the rule resolves, and the windows since, now the history, are the new
        normal: a lasting change fires for at most about one training window.
        """
        spec = rule.anomaly
        assert spec is not None and rule.deployment is not None
        end = self.end_of_windows(now)
        cut: dt.datetime | None = None
        window = dt.timedelta(seconds=rule.window_s)
        if rule.state == "pending" and rule.state_since is not None:
            cut = self.end_of_windows(rule.state_since) - window
        elif rule.state == "firing" and rule.state_since is not None:
            # Firing since then, pending for at least ``for`` before: one window more, as the
            # pending may have lasted up to an evaluation longer.
            began = rule.state_since - dt.timedelta(seconds=rule.for_s)
            cut = self.end_of_windows(began) - window * (2 if rule.for_s > 0 else 1)
        key = (end, cut, rule.window_s, spec, rule.deployment, rule.version, rule.feature)
        kept = self._kept.get(rule.id)
        if kept is not None and kept[0] == key:
            return kept[1]
        verdict = self._judge(rule, spec, end, cut)
        self._kept[rule.id] = (key, verdict)
        return verdict

    def _judge(self, rule: Rule, spec: AnomalySpec, end: dt.datetime, cut: dt.datetime | None) -> Verdict:
        window = dt.timedelta(seconds=rule.window_s)
        count = min(int(spec.training_window_s // rule.window_s), MAX_HISTORY_WINDOWS)
        scope = Scope(rule.deployment, rule.version, None, rule.feature)
        try:
            rows = self.windows(spec.metrics, scope, end, rule.window_s, count + 1)
        except AiaasError as exc:  # the deployment is gone
            return Verdict(False, None, reason=f"no value: {exc}")
        judged = rows[-1]
        first = end - window * (count + 1)
        history = [
            r for i, r in enumerate(rows[:-1]) if None not in r and (cut is None or first + window * i < cut)
        ]
        start = end - window
        if None in judged:
            missing = [m for m, v in zip(spec.metrics, judged, strict=True) if v is None]
            return Verdict(
                False,
                None,
                history=len(history),
                reason=f"no value of {', '.join(missing)} in the window",
                window_start=start,
                window_end=end,
            )
        if len(history) < spec.min_history:
            return Verdict(
                False,
                None,
                history=len(history),
                reason=f"{len(history)} history windows of the {spec.min_history} needed",
                window_start=start,
                window_end=end,
            )
        verdict = detect(
            np.array(history, dtype=np.float64),
            np.array(judged, dtype=np.float64),
            spec.metrics,
            detector=spec.detector,
            contamination=spec.contamination,
        )
        return Verdict(
            verdict.anomalous,
            verdict.score,
            verdict.threshold,
            verdict.history,
            verdict.deviations,
            verdict.reason,
            start,
            end,
        )

    def windows(
        self, metrics: tuple[str, ...], scope: Scope, end: dt.datetime, window_s: float, count: int
    ) -> list[list[float | None]]:
        """``count`` windows of ``window_s`` ending at ``end``, oldest first: one value per metric
        (None: nothing to measure). Samples are read once for all windows."""
        assert scope.deployment is not None
        first = end - dt.timedelta(seconds=window_s * count)
        merged = [MetricSample() for _ in range(count)]
        if any(METRICS[m].source == "samples" for m in metrics):
            for at, _, _, sample in self.reader.samples.intervals(
                scope.deployment, version=scope.version, start=first, end=end
            ):
                index = int((at - first).total_seconds() // window_s)
                if 0 <= index < count:
                    merged[index] = merged[index].merge(sample)
        rows: list[list[float | None]] = []
        for index in range(count):
            start = first + dt.timedelta(seconds=window_s * index)
            row: list[float | None] = []
            for metric in metrics:
                if METRICS[metric].source == "samples":
                    row.append(from_sample(metric, merged[index], window_s))
                else:
                    upto = start + dt.timedelta(seconds=window_s)
                    row.append(self.reader.value(metric, scope, start, upto))
            rows.append(row)
        return rows
