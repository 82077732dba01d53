"""The autoscaling policy: how many replicas a deployment version should run, from its load.

Pure and clock-driven: :meth:`Autoscaler.step` takes the time, the requests in flight and
the count of requests so far, and returns a :class:`ScalingDecision` or ``None``. It reads
no clock and starts nothing, so tests drive it with a made-up clock through any load
shape; the replica manager calls it every tick and applies what it decides.

The rules:

* **Up, fast.** When the mean in-flight count over the last ``up_window_s`` exceeds what
  the running replicas should carry (``target_in_flight`` each), scale to
  ``ceil(mean / target_in_flight)``, within ``max_replicas`` and the CPU budget left on
  the node. A request waiting while there is no replica at all (scaled to zero) always
  gets one.
* **Down, slowly, with a margin.** Only after ``scale_down_delay_s`` without a change, and
  only to the count that would have carried the *peak* in-flight count of that whole
  window at ``down_headroom`` (80 %) of the target. Scaling up uses the mean and scaling
  down the peak, with the margin between them, so steady load never flips between two
  counts.
* **To zero** only when ``min_replicas`` is 0 and not a single request arrived for
  ``scale_down_delay_s``.
* Counts outside ``min_replicas..max_replicas`` (the settings changed) are brought back
  at once.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from aiaas.schemas.deployment_settings import default_settings

__all__ = ["Autoscaler", "ScalingDecision", "ScalingPolicy"]

#: A deployment's settings when it gave none (their one definition: aiaas.schemas).
_DEFAULTS = default_settings()


@dataclass(frozen=True)
class ScalingPolicy:
    """A deployment's autoscaling settings (see the module docstring for how they are used)."""

    min_replicas: int = _DEFAULTS.min_replicas
    max_replicas: int = _DEFAULTS.max_replicas
    target_in_flight: int = _DEFAULTS.target_in_flight
    scale_down_delay_s: float = _DEFAULTS.scale_down_delay_s
    up_window_s: float = 0.5
    down_headroom: float = 0.8


@dataclass(frozen=True)
class ScalingDecision:
    """Change from ``current`` to ``desired`` replicas at time ``at``, and why (for the log and API)."""

    at: float
    current: int
    desired: int
    reason: str


class Autoscaler:
    """The policy's memory: recent samples, when the count last changed, when load was last seen.

    Example:
        >>> scaler = Autoscaler(ScalingPolicy(max_replicas=4, target_in_flight=2), now=0.0)
        >>> scaler.step(1.0, in_flight=7, requests=100, current=1, spare=8).desired
        4
    """

    def __init__(self, policy: ScalingPolicy, now: float) -> None:
        self.policy = policy
        self._samples: deque[tuple[float, float]] = deque()
        self._changed_at = now
        self._busy_at = now
        self._requests = -1

    def step(
        self, now: float, *, in_flight: float, requests: int, current: int, spare: int
    ) -> ScalingDecision | None:
        """Record one sample and say whether the replica count should change.

        Args:
            now: the time, in seconds, from any monotonic clock (the same on every call).
            in_flight: requests running or waiting on this version's replicas now.
            requests: requests received so far (a counter; only its changes matter).
            current: replicas the version runs (or is starting) now.
            spare: replicas the node's CPU budget still allows on top of every running one.
        """
        p = self.policy
        self._samples.append((now, in_flight))
        horizon = now - max(p.scale_down_delay_s, p.up_window_s)
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()
        if in_flight > 0 or (self._requests >= 0 and requests != self._requests):
            self._busy_at = now
        self._requests = requests

        decision = (
            self._bounds(now, current, spare) or self._up(now, current, spare) or self._down(now, current)
        )
        if decision is not None:
            self._changed_at = now
        return decision

    def _bounds(self, now: float, current: int, spare: int) -> ScalingDecision | None:
        p = self.policy
        if current > p.max_replicas:
            return ScalingDecision(now, current, p.max_replicas, f"above max_replicas {p.max_replicas}")
        if current < p.min_replicas:
            return ScalingDecision(now, current, p.min_replicas, f"below min_replicas {p.min_replicas}")
        return None

    def _up(self, now: float, current: int, spare: int) -> ScalingDecision | None:
        p = self.policy
        recent = [n for t, n in self._samples if t >= now - p.up_window_s]
        mean = sum(recent) / len(recent)
        if current == 0 and self._samples[-1][1] > 0:
            wanted = max(1, math.ceil(mean / p.target_in_flight))
            desired = min(wanted, p.max_replicas, max(1, spare))
            return ScalingDecision(now, 0, desired, "a request is waiting and no replica runs (cold start)")
        if mean <= current * p.target_in_flight:
            return None
        desired = min(math.ceil(mean / p.target_in_flight), p.max_replicas, current + max(0, spare))
        if desired <= current:
            return None
        return ScalingDecision(
            now,
            current,
            desired,
            f"{mean:.1f} requests in flight on average over {p.up_window_s:g} s, "
            f"target {p.target_in_flight} per replica",
        )

    def _down(self, now: float, current: int) -> ScalingDecision | None:
        p = self.policy
        if current <= p.min_replicas or now - self._changed_at < p.scale_down_delay_s:
            return None
        peak = max(n for t, n in self._samples if t >= now - p.scale_down_delay_s)
        idle_s = now - self._busy_at
        if p.min_replicas == 0 and peak == 0 and idle_s >= p.scale_down_delay_s:
            return ScalingDecision(now, current, 0, f"no request for {idle_s:.0f} s (scale to zero)")
        desired = max(p.min_replicas, 1, math.ceil(peak / (p.target_in_flight * p.down_headroom)))
        if desired >= current:
            return None
        return ScalingDecision(
            now,
            current,
            desired,
            f"at most {peak:g} requests in flight over the last {p.scale_down_delay_s:g} s, "
            f"target {p.target_in_flight} per replica",
        )
