"""Replica sets: one deployment version served by N child processes, supervised.

The inference server process is the *front*: it speaks HTTP, routes and batches. The
model itself runs in replica processes (:mod:`.replica_process`), so a model that crashes its
runtime takes down one replica, never the server or the other deployments.

A :class:`ReplicaSet` holds the replicas of one version of one deployment. It

- **starts** them (a process and a Unix socket pair each, LOAD, wait for READY);
- **routes** each request to the ready replica with the fewest requests in flight, many
  requests pipelined on one connection (see :mod:`.ipc`);
- **retries** a request whose replica died under it, once, on another replica or, when
  there is none, on the successor the supervisor starts (within the request's timeout):
  inference is idempotent, so a ``kill -9`` of a replica costs clients nothing;
- **supervises**: a replica that dies is logged and replaced, with a backoff that grows
  while replacements keep dying young;
- **drains** when retired: new replicas of the next version are already serving, the
  retired set finishes what it has in flight, then its processes stop;
- **scales** between ``min_replicas`` and ``max_replicas`` as its :class:`Autoscaler`
  decides from the requests it has in flight (the manager samples every set each tick and
  keeps the node within its CPU budget). Requests that arrive while a set is scaled to
  zero wait for the cold start.

Everything here runs on the front's event loop. :class:`~.replica_manager.ReplicaManager`
is the door from other threads (the pool's reconciler): it waits for the loop to be
bound, then runs the set's coroutines there. Processes are started from the loop's thread too, which matters:
a replica asks to die with its parent *thread* (PR_SET_PDEATHSIG), and the loop's thread
lives as long as the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from aiaas.errors import DeadlineExceeded, Unavailable, error_class
from aiaas.formats import isolated_folder
from aiaas.schemas.deployment_settings import default_settings
from aiaas.serving import ipc
from aiaas.serving.autoscaler import Autoscaler, ScalingDecision, ScalingPolicy
from aiaas.serving.replica_connection import Replica, _Connection, _ReplicaDied

__all__ = ["Replica", "ReplicaSet", "ReplicaSettings"]

logger = logging.getLogger("aiaas.serving.replicas")

#: A deployment's settings when it gave none (their one definition: aiaas.schemas).
_DEFAULTS = default_settings()

Arrays = dict[str, np.ndarray[Any, Any]]

#: The replica's main, run as a script (see :mod:`.replica_process` for why not ``-m``).
REPLICA_SCRIPT = Path(__file__).with_name("replica_process.py")
#: How long a replica may take from spawn to READY before it counts as failed.
START_TIMEOUT_S = 120.0
#: A replica that lived this long resets the restart backoff.
_STABLE_AFTER_S = 10.0
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 5.0
#: After a set is retired, it keeps accepting stragglers (requests that picked it just
#: before the route table changed) for this long before it may stop.
DRAIN_GRACE_S = 0.5
_STOP_WAIT_S = 5.0


@dataclass(frozen=True)
class ReplicaSettings:
    """How many replicas a set runs, and when the autoscaler changes that.

    Args:
        min_replicas: replicas kept even when idle; 0 lets an idle set scale to zero (the
            next request then waits for a cold start).
        max_replicas: the most replicas the set may run.
        target_in_flight: requests in flight per replica the autoscaler aims for.
        scale_down_delay_s: how long load must stay low before replicas are removed.
    """

    min_replicas: int = _DEFAULTS.min_replicas
    max_replicas: int = _DEFAULTS.max_replicas
    target_in_flight: int = _DEFAULTS.target_in_flight
    scale_down_delay_s: float = _DEFAULTS.scale_down_delay_s

    def policy(self) -> ScalingPolicy:
        return ScalingPolicy(
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            target_in_flight=self.target_in_flight,
            scale_down_delay_s=self.scale_down_delay_s,
        )


class ReplicaSet:
    """The replica processes of one version of one deployment (see the module docstring).

    Args:
        deployment, model, version: what it serves (for logs and errors).
        model_bytes: the verified ONNX bytes, sent to every replica it starts.
        settings: replica counts; :meth:`start` starts ``max(min_replicas, 1)``.
        intra_op_threads: ONNX Runtime intra-op threads in each replica.
        python: the interpreter replicas run with.
    """

    def __init__(
        self,
        deployment: str,
        model: str,
        version: int,
        model_bytes: bytes,
        settings: ReplicaSettings,
        *,
        intra_op_threads: int = 1,
        python: str = sys.executable,
        load_frame: bytes | None = None,
    ) -> None:
        self.deployment = deployment
        self.model = model
        self.version = version
        self.settings = settings
        self.intra_op_threads = intra_op_threads
        self.python = python
        self._model_bytes = model_bytes
        #: The LOAD frame sent to every replica; by default ONNX Runtime with ``model_bytes``.
        self._load_frame = load_frame
        #: What the last replica to load said about its model (runtimes other than ONNX).
        self.info: dict[str, Any] = {}
        self.replicas: list[Replica] = []
        #: How many replicas the set should run now (the supervisor restores this count).
        self.desired = max(settings.min_replicas, 1)
        self.restarts = 0
        #: Requests running or waiting for a replica now (in a batcher's queue too), and
        #: received so far: the autoscaler's input.
        self.active = 0
        self.requests = 0
        self.autoscaler = Autoscaler(settings.policy(), now=time.monotonic())  # restarted by start()
        #: The last scaling decisions, newest last.
        self.decisions: deque[ScalingDecision] = deque(maxlen=20)
        #: The deployment's ``timeout_s``: how long a retiring set may take to drain.
        self.timeout_s = _DEFAULTS.timeout_s
        self.retired = False
        self.closed = False
        self.started = False
        self.last_request_at = time.monotonic()
        self._starting = 0
        self._backoff_s = _BACKOFF_FIRST_S
        self._ready_changed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<ReplicaSet {self.deployment!r} v{self.version} {len(self.ready_replicas())}/{self.desired}>"

    @property
    def tag(self) -> str:
        return f"{self.deployment}/v{self.version}"

    @property
    def label(self) -> str:
        return f"deployment {self.deployment!r} version {self.version}"

    def ready_replicas(self) -> list[Replica]:
        return [r for r in self.replicas if r.ready and not r.stopping]

    def pids(self) -> list[int]:
        """The pids of every replica process the set runs now (starting ones included)."""
        return [r.pid for r in self.replicas if not r.stopping]

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    # -- starting ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start :attr:`desired` replicas and return once all are ready.

        Raises:
            Unavailable: a replica could not start or load the model.
        """
        self._loop = asyncio.get_running_loop()
        self._ready_changed = asyncio.Event()
        self.started = True
        started = await asyncio.gather(*(self._spawn() for _ in range(self.desired)), return_exceptions=True)
        errors = [e for e in started if isinstance(e, BaseException)]
        if errors:
            await self.close()
            error = errors[0]
            if isinstance(error, Unavailable):
                raise error
            raise Unavailable(f"{self.label} could not start a replica: {error}") from None
        # Idle time counts from now: a set that took long to start is not idle yet.
        self.autoscaler = Autoscaler(self.settings.policy(), now=time.monotonic())

    async def _spawn(self) -> Replica:
        """One replica: process, connection, LOAD, READY."""
        loop = asyncio.get_running_loop()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Counted as starting until it is in self.replicas, never as both.
        self._starting += 1
        counted = True
        try:
            try:
                process = subprocess.Popen(
                    # The last argument is only for `ps`: which deployment this replica serves.
                    [self.python, str(REPLICA_SCRIPT), str(child.fileno()), str(os.getpid()), self.tag],
                    pass_fds=(child.fileno(),),
                    stdin=subprocess.DEVNULL,
                    # An empty private folder: a model's relative file names reach nothing.
                    cwd=isolated_folder(),
                )
            finally:
                child.close()
            replica: Replica | None = None

            def lost() -> None:
                if replica is not None:
                    self._lost(replica)

            _, connection = await loop.create_unix_connection(lambda: _Connection(lost), sock=parent)
            replica = Replica(process, connection)
            self.replicas.append(replica)
            self._starting -= 1
            counted = False
            frame = self._load_frame or ipc.encode_load(self._model_bytes, self.intra_op_threads)
            answer = connection.send(0, frame)
            try:
                kind, body = await asyncio.wait_for(answer, START_TIMEOUT_S)
            except (TimeoutError, _ReplicaDied):
                self._stop(replica)
                raise Unavailable(
                    f"{self.label}: replica pid {process.pid} did not load the model "
                    f"(exit code {process.poll()})",
                    details={"deployment": self.deployment, "version": self.version},
                ) from None
            if kind != ipc.READY:
                self._stop(replica)
                _, message = ipc.decode_error(body)
                raise Unavailable(
                    f"{self.label}: replica cannot load the model: {message}",
                    details={"deployment": self.deployment, "version": self.version},
                )
            _, load_ms = ipc.decode_ready(body)
            info = ipc.ready_info(body)
            if info:
                self.info = orjson.loads(info)
            replica.ready = True
            logger.info("%s: replica pid %d ready (model loaded in %d ms)", self.label, process.pid, load_ms)
            assert self._ready_changed is not None
            self._ready_changed.set()
            return replica
        finally:
            if counted:
                self._starting -= 1

    # -- serving ------------------------------------------------------------------------

    async def run(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Sequence[str] | None,
        timeout_s: float,
        *,
        frame_for: Callable[[int], bytes] | None = None,
        counted: bool = False,
    ) -> tuple[Arrays, float]:
        """Run one request (or one batch) on a replica; the outputs and the model's run time.

        Args:
            frame_for: builds the request's frame from its id when it is not a RUN of
                ``inputs`` (an EMBED of a PyTorch runtime); the answer is still one RESULT.
            counted: the caller already counts the requests this call carries with
                :meth:`request_in_flight` (a batcher in front of the set does: a batch is
                one call, but the autoscaler must see each request in it, and each one
                still waiting in its queue).

        Raises:
            DeadlineExceeded: no answer within ``timeout_s`` (waiting for a replica included).
            Unavailable: the set was stopped, or the retried request lost its replica too.
            InvalidArgument: the model rejected the inputs.
        """
        if counted:
            return await self._run(inputs, outputs, timeout_s, frame_for)
        with self.request_in_flight():
            return await self._run(inputs, outputs, timeout_s, frame_for)

    @contextlib.contextmanager
    def request_in_flight(self) -> Iterator[None]:
        """Count one request in :attr:`active` (and :attr:`requests`) while the block runs."""
        self.active += 1
        self.requests += 1
        try:
            yield
        finally:
            self.active -= 1

    async def _run(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Sequence[str] | None,
        timeout_s: float,
        custom_frame: Callable[[int], bytes] | None,
    ) -> tuple[Arrays, float]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self.last_request_at = time.monotonic()

        def frame_for(request_id: int) -> bytes:
            if custom_frame is not None:
                return custom_frame(request_id)
            return ipc.encode_run(request_id, inputs, outputs)

        avoid: Replica | None = None
        for attempt in (0, 1):
            replica = self._pick(avoid)
            if replica is None:
                replica = await self._wait_for_replica(deadline, avoid, timeout_s)
            try:
                answer = replica.call(frame_for)
            except _ReplicaDied:
                answer = None
            # Set by the deadline's timer: the loop's clock may read a hair before the deadline
            # when the timer fires (uvloop's timers have millisecond granularity), so whether
            # the deadline passed is what the timer says, not a comparison of clock readings.
            expired: list[bool] = []
            try:
                if answer is None:
                    raise _ReplicaDied()
                timer = loop.call_at(deadline, _expire, answer, expired)
                try:
                    kind, body = await answer
                finally:
                    timer.cancel()
            except _ReplicaDied:
                if attempt:
                    raise Unavailable(
                        f"{self.label}: the replica running this request died, and so did the "
                        "one it was retried on; retry shortly",
                        details={"deployment": self.deployment, "retry_after_s": 1},
                    ) from None
                logger.warning(
                    "%s: replica pid %d died with a request in flight; retrying it", self.label, replica.pid
                )
                avoid = replica
                continue
            except asyncio.CancelledError:
                if expired and not _cancelled_by_caller():
                    raise _deadline(self, timeout_s) from None
                raise
            if kind == ipc.RESULT:
                return ipc.decode_result(body)
            code, message = ipc.decode_error(body)
            raise error_class(code)(message, details={"deployment": self.deployment})
        raise AssertionError("unreachable")

    def concurrency(self) -> int:
        """Batches that may run at once: one per ready replica (a replica runs one call at a
        time, so more would only queue there instead of in the batcher, where they could
        still be joined)."""
        return len(self.ready_replicas())

    def _pick(self, avoid: Replica | None) -> Replica | None:
        best: Replica | None = None
        for r in self.replicas:
            usable = r.ready and not r.stopping and r is not avoid and not r.connection.lost
            if usable and (best is None or r.in_flight < best.in_flight):
                best = r
        return best

    async def _wait_for_replica(self, deadline: float, avoid: Replica | None, timeout_s: float) -> Replica:
        """A ready replica, waiting for one to start (cold start, restart) until ``deadline``."""
        if self.closed:
            raise Unavailable(
                f"{self.label} is no longer served; retry shortly",
                details={"deployment": self.deployment, "retry_after_s": 1},
            )
        loop = asyncio.get_running_loop()
        assert self._ready_changed is not None
        # Scaled to zero: the autoscaler sees this request waiting and starts a replica.
        while True:
            replica = self._pick(avoid) or self._pick(None)
            if replica is not None:
                return replica
            if self.closed:
                raise Unavailable(f"{self.label} stopped while a request waited for a replica")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _deadline(self, timeout_s)
            self._ready_changed.clear()
            try:
                await asyncio.wait_for(self._ready_changed.wait(), remaining)
            except TimeoutError:
                raise _deadline(self, timeout_s) from None

    # -- supervising ----------------------------------------------------------------------

    def _lost(self, replica: Replica) -> None:
        """A replica's connection ended: reap it, and replace it unless it was stopped on purpose."""
        if replica in self.replicas:
            self.replicas.remove(replica)
        self._spawn_task(self._reap(replica))
        if replica.stopping or self.closed or not replica.ready:
            return  # stopped on purpose, or died while starting (its starter reports that)
        lived = time.monotonic() - replica.started_at
        if lived >= _STABLE_AFTER_S:
            self._backoff_s = _BACKOFF_FIRST_S
        delay = self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)
        logger.warning(
            "%s: replica pid %d died (exit code %s) after %.1f s; starting a replacement in %.2f s",
            self.label,
            replica.pid,
            replica.process.poll(),
            lived,
            delay,
        )
        self._spawn_task(self._replace(delay))

    async def _replace(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        live = sum(1 for r in self.replicas if not r.stopping)
        if self.closed or live + self._starting >= self.desired:
            return
        self.restarts += 1
        try:
            await self._spawn()
        except Exception as exc:
            logger.error("%s: replacement replica failed: %s", self.label, exc)
            if not self.closed:
                delay = self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)
                self._spawn_task(self._replace(delay))

    def scale_to(self, count: int) -> None:
        """Run ``count`` replicas: start the missing ones, stop the least busy extra ones.

        Starting happens in the background; requests wait for the first ready replica.
        """
        count = max(0, count)
        self.desired = count
        live = [r for r in self.replicas if not r.stopping]
        missing = count - len(live) - self._starting
        for _ in range(max(0, missing)):
            self._spawn_task(self._spawn_logged())
        if len(live) > count:
            for replica in sorted(live, key=lambda r: (r.ready, -r.in_flight))[: len(live) - count]:
                self._spawn_task(self._drain_one(replica))

    async def _spawn_logged(self) -> None:
        try:
            await self._spawn()
        except Exception as exc:
            logger.error("%s: could not start a replica: %s", self.label, exc)

    async def _drain_one(self, replica: Replica) -> None:
        replica.stopping = True
        while replica.in_flight and not replica.connection.lost:
            await asyncio.sleep(0.01)
        self._stop(replica)

    def _stop(self, replica: Replica) -> None:
        """Close the replica's socket: it sees end of file and exits (reaped by :meth:`_reap`)."""
        replica.stopping = True
        transport = replica.connection.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        elif replica.connection.lost:
            self._spawn_task(self._reap(replica))

    async def _reap(self, replica: Replica) -> None:
        """Wait for the process to exit (kill it if it will not), so no zombie stays."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _STOP_WAIT_S
        while replica.process.poll() is None:
            if loop.time() >= give_up:
                logger.warning("%s: replica pid %d did not exit; killing it", self.label, replica.pid)
                replica.process.kill()
                give_up = loop.time() + _STOP_WAIT_S
            await asyncio.sleep(0.01)

    # -- stopping -------------------------------------------------------------------------

    async def drain(self, max_wait_s: float) -> None:
        """Stop after finishing the work in flight: called once the routes no longer use the set.

        Requests that picked this set just before the routes changed still arrive for
        :data:`DRAIN_GRACE_S`; they are served. Then, once nothing is in flight (or after
        ``max_wait_s``), the processes stop.
        """
        self.retired = True
        loop = asyncio.get_running_loop()
        retired_at = loop.time()
        give_up = retired_at + max_wait_s
        while loop.time() < give_up:
            quiet = time.monotonic() - self.last_request_at >= DRAIN_GRACE_S
            if loop.time() - retired_at >= DRAIN_GRACE_S and quiet and not self.in_flight:
                break
            await asyncio.sleep(0.02)
        logger.info("%s: drained; stopping %d replica(s)", self.label, len(self.replicas))
        await self.close()

    async def close(self) -> None:
        """Stop every replica now (what is in flight fails) and wait for the processes to exit."""
        self.closed = True
        self.desired = 0
        replicas = list(self.replicas)
        for replica in replicas:
            self._stop(replica)
        await asyncio.gather(*(self._reap(r) for r in replicas), return_exceptions=True)
        if self._ready_changed is not None:
            self._ready_changed.set()

    def _spawn_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _expire(future: asyncio.Future[Any], expired: list[bool]) -> None:
    if not future.done():
        expired.append(True)
        future.cancel()


def _cancelled_by_caller() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _deadline(replicas: ReplicaSet, timeout_s: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"deployment {replicas.deployment!r} did not answer within timeout_s={timeout_s}",
        details={"timeout_s": timeout_s},
    )
