"""The door to the front's replica sets from other threads, and the node's autoscaler.

The pool's reconciler runs in a thread of its own, while replica sets live on the event
loop (:mod:`.replica_set`). :class:`ReplicaManager` waits for the loop to be bound, then
runs the sets' coroutines there; every ``tick_s`` it also samples each set's load and
applies its autoscaler's decisions within the node's CPU budget.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiaas.errors import Unavailable
from aiaas.serving.autoscaler import ScalingDecision
from aiaas.serving.replica_set import START_TIMEOUT_S, ReplicaSet, ReplicaSettings

__all__ = ["ReplicaManager"]

logger = logging.getLogger("aiaas.serving.replicas")

_T = TypeVar("_T")


class ReplicaManager:
    """The front's replica sets, reachable from threads other than the event loop's.

    The pool's reconciler runs in its own thread; it calls :meth:`start_set` (blocking until
    the set is ready) and :meth:`retire` (returns at once; the set drains on the loop).

    It also runs the autoscaler: every ``tick_s`` it samples each set's load, applies the
    decisions of its :class:`Autoscaler`, logs them and hands them to ``on_scaling``.

    Args:
        intra_op_threads: ONNX Runtime intra-op threads in each replica.
        python: the interpreter replicas run with (the server's own by default).
        cpu_budget: replicas the autoscaler may run on this node, every set together
            (0: one per CPU this process may use). ``min_replicas`` are always honoured.
        on_scaling: called on the loop with each decision applied (to record it).
        tick_s: how often the autoscaler samples.
    """

    def __init__(
        self,
        *,
        intra_op_threads: int = 1,
        python: str = sys.executable,
        cpu_budget: int = 0,
        on_scaling: Callable[[ReplicaSet, ScalingDecision], None] | None = None,
        tick_s: float = 0.1,
    ) -> None:
        self.intra_op_threads = intra_op_threads
        self.python = python
        self.cpu_budget = cpu_budget or _usable_cpus()
        self.on_scaling = on_scaling
        self.tick_s = tick_s
        self.sets: set[ReplicaSet] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bound = threading.Event()
        self._autoscaling: asyncio.Task[None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run replica work on ``loop`` (the server's); call from that loop at startup."""
        self._loop = loop
        self._bound.set()
        self._autoscaling = loop.create_task(self._autoscale())

    async def _autoscale(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.autoscale_once(time.monotonic())
            except Exception:  # the policy must never take the server down
                logger.exception("autoscaling tick failed")

    def autoscale_once(self, now: float) -> None:
        """One autoscaler tick over every live set, within the node's CPU budget."""
        live = [s for s in self.sets if not s.retired and not s.closed and s.started]
        total = sum(s.desired for s in live)
        for replica_set in sorted(live, key=lambda s: (s.deployment, s.version)):
            decision = replica_set.autoscaler.step(
                now,
                in_flight=replica_set.active,
                requests=replica_set.requests,
                current=replica_set.desired,
                spare=self.cpu_budget - total,
            )
            if decision is None:
                continue
            total += decision.desired - decision.current
            logger.info(
                "%s: scaling %d -> %d replicas: %s",
                replica_set.label,
                decision.current,
                decision.desired,
                decision.reason,
            )
            replica_set.decisions.append(decision)
            replica_set.scale_to(decision.desired)
            if self.on_scaling is not None:
                self.on_scaling(replica_set, decision)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise Unavailable("the inference server's event loop is not running yet")
        return self._loop

    def call(self, coro: Coroutine[Any, Any, _T], timeout_s: float | None = None) -> _T:
        """Run ``coro`` on the loop from another thread and wait for its result."""
        if not self._bound.wait(START_TIMEOUT_S):
            coro.close()
            raise Unavailable("the inference server's event loop did not start")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def start_set(
        self, deployment: str, model: str, version: int, model_bytes: bytes, settings: ReplicaSettings
    ) -> ReplicaSet:
        """A new, ready replica set (blocking; not on the loop's thread)."""
        replica_set = ReplicaSet(
            deployment,
            model,
            version,
            model_bytes,
            settings,
            intra_op_threads=self.intra_op_threads,
            python=self.python,
        )
        self.call(replica_set.start())
        self.sets.add(replica_set)
        return replica_set

    def configure(self, replica_set: ReplicaSet, settings: ReplicaSettings) -> None:
        """New replica counts for a running set; it grows or shrinks into its new bounds."""

        def apply() -> None:
            replica_set.settings = settings
            replica_set.autoscaler.policy = settings.policy()  # it brings the count into bounds

        self.loop.call_soon_threadsafe(apply)

    def retire(self, replica_set: ReplicaSet, max_wait_s: float) -> None:
        """Drain and stop a set no longer routed to; returns at once."""
        self.sets.discard(replica_set)
        asyncio.run_coroutine_threadsafe(replica_set.drain(max_wait_s), self.loop)

    async def close(self) -> None:
        """Stop every replica of every set (the server is shutting down)."""
        if self._autoscaling is not None:
            self._autoscaling.cancel()
        sets, self.sets = list(self.sets), set()
        await asyncio.gather(*(s.close() for s in sets), return_exceptions=True)


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
