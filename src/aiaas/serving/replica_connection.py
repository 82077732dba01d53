"""The front's handle on one replica process: the process and its pipelined connection.

A :class:`Replica` is one child process (:mod:`.replica_process`) and the front's end of
its Unix socket. Many requests are pipelined on one connection: each gets an id, frames
queued in one loop iteration leave in one write, and answers are matched back by id
(see :mod:`.ipc`). When the connection ends, every request still waiting on it fails with
:class:`_ReplicaDied`, which :class:`~.replica_set.ReplicaSet` turns into a retry.

Everything here runs on the front's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import Callable
from typing import cast

from aiaas.serving import ipc

__all__ = ["Replica"]


class _ReplicaDied(Exception):
    """The replica's connection ended with this request unanswered."""


class _Connection(asyncio.Protocol):
    """The front's end of one replica's socket: writes frames, matches answers by id."""

    def __init__(self, on_lost: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[tuple[int, memoryview]]] = {}
        #: Requests answered by several frames (generation): request id → callback that
        #: takes each frame and says whether it was the last. A lost connection calls it
        #: with kind -1.
        self.streams: dict[int, Callable[[int, memoryview], bool]] = {}
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._on_lost = on_lost
        self.lost = False
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        frames, used = ipc.split_frames(self._buffer)
        if not used:
            return
        del self._buffer[:used]
        for kind, request_id, body in frames:
            stream = self.streams.get(request_id)
            if stream is not None:
                if stream(kind, body):
                    del self.streams[request_id]
                continue
            future = self.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result((kind, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(_ReplicaDied())
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream(-1, memoryview(b""))
        self._on_lost()

    def send(self, request_id: int, frame: bytes) -> asyncio.Future[tuple[int, memoryview]]:
        """Queue ``frame``; frames queued in one loop iteration leave in one write."""
        if self.lost or self.transport is None:
            raise _ReplicaDied()
        future: asyncio.Future[tuple[int, memoryview]] = self._loop.create_future()
        self.pending[request_id] = future
        self.write(frame)
        return future

    def write(self, frame: bytes) -> None:
        """Queue a frame that needs no answer of its own (or is answered on a stream)."""
        if self.lost or self.transport is None:
            raise _ReplicaDied()
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self.transport is not None and not self.lost and out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


class Replica:
    """One replica process and its connection."""

    def __init__(self, process: subprocess.Popen[bytes], connection: _Connection) -> None:
        self.process = process
        self.connection = connection
        self.pid = process.pid
        self.started_at = time.monotonic()
        self.ready = False
        #: Set when the front stops it on purpose (drain, scale down): no restart.
        self.stopping = False
        self._ids = itertools.count(1)

    @property
    def in_flight(self) -> int:
        return len(self.connection.pending) + len(self.connection.streams)

    def call(self, frame_for: Callable[[int], bytes]) -> asyncio.Future[tuple[int, memoryview]]:
        request_id = next(self._ids)
        return self.connection.send(request_id, frame_for(request_id))

    def stream(self, frame_for: Callable[[int], bytes], on_frame: Callable[[int, memoryview], bool]) -> int:
        """Send a request answered by several frames, each handed to ``on_frame``; its id."""
        request_id = next(self._ids)
        self.connection.streams[request_id] = on_frame
        try:
            self.connection.write(frame_for(request_id))
        except _ReplicaDied:
            del self.connection.streams[request_id]
            raise
        return request_id
