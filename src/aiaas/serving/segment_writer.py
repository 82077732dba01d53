"""Writes the prediction log's Parquet segments in a child process of the inference server.

Why a process: pyarrow (import, Arrow memory pool, Parquet encoding) stays out of the
inference server, whose event loop and GIL serve requests. On this shared 2-core box, the
serving benchmark (tabular model, c=32, 2026-12-01) with pyarrow merely imported into the
server gave 0.66x the FastAPI baseline against 0.83-0.90x without it; the same machine's
runs vary by more than that between minutes, so read it as a reason, not a measurement. The
server's writer thread sends each batch of rows, already encoded, over a pipe to this
process, which writes the segment and acknowledges it with one byte. A batch is counted as
written only once acknowledged.

The child runs this file as a script, not through the ``aiaas`` package, so it starts in a
fraction of a second: it loads :mod:`aiaas.store.predictions` (standard library only at
import) by path.

Frames on the child's stdin: ``<u32 size><orjson {"deployment": str, "rows": [[request_id,
version, time_us, latency_ms, inputs, outputs, outlier_score, outlier], ...]}>``; answers on
its stdout: ``b"\\x01"`` written, ``b"\\x00"`` failed (the reason on its stderr, the
server's log). End of input: the child exits.
"""

from __future__ import annotations

import contextlib
import importlib.util
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from aiaas.store.predictions import LoggedRequest

__all__ = ["InProcessWriter", "ProcessWriter", "SegmentWriter"]

_SIZE = struct.Struct("<I")
#: The prediction log's storage module, in the store package beside this one's.
_PREDICTIONS = Path(__file__).resolve().parents[1] / "store" / "predictions.py"
_OK, _FAILED = b"\x01", b"\x00"


class SegmentWriter(Protocol):
    """Writes one deployment's rows as one segment; raises ``OSError`` when it could not."""

    def write(self, deployment: str, rows: Sequence[LoggedRequest]) -> None: ...

    def close(self) -> None: ...


class InProcessWriter:
    """Writes segments in this process (tools and tests; imports pyarrow here)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, deployment: str, rows: Sequence[LoggedRequest]) -> None:
        from aiaas.store.predictions import write_segment

        write_segment(self.root, deployment, rows)

    def close(self) -> None:
        pass


class ProcessWriter:
    """Writes segments in a child process, started on the first write and again if it died."""

    def __init__(self, root: Path, *, python: str = sys.executable) -> None:
        self.root = root
        self.python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def write(self, deployment: str, rows: Sequence[LoggedRequest]) -> None:
        import orjson

        payload = orjson.dumps(
            {
                "deployment": deployment,
                "rows": [
                    [
                        r.request_id,
                        r.version,
                        r.time_us,
                        r.latency_ms,
                        r.inputs,
                        r.outputs,
                        r.outlier_score,
                        r.outlier,
                    ]
                    for r in rows
                ],
            }
        )
        with self._lock:
            process = self._running()
            stdin, stdout = cast(IO[bytes], process.stdin), cast(IO[bytes], process.stdout)
            try:
                stdin.write(_SIZE.pack(len(payload)) + payload)
                stdin.flush()
                answer = stdout.read(1)
            except OSError as exc:
                raise OSError(f"the prediction log's writer process died: {exc}") from exc
            if answer != _OK:
                raise OSError(
                    "the prediction log's writer process could not write a segment"
                    + (" (it exited)" if not answer else "; its reason is in the server log")
                )

    def close(self) -> None:
        """Let the child finish and exit (every acknowledged batch is already on disk)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is not None:  # it died: a new one
            for pipe in (self._process.stdin, self._process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):  # a broken pipe, already known
                        pipe.close()
            self._process = None
        if self._process is None:
            self._process = subprocess.Popen(
                [self.python, str(Path(__file__)), str(self.root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._process


def _predictions_module() -> ModuleType:
    """:mod:`aiaas.store.predictions`, loaded by path, without the packages' imports."""
    spec = importlib.util.spec_from_file_location("_aiaas_predictions", _PREDICTIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def main(root: Path, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child: write each frame's rows as a segment under ``root``, acknowledge each."""
    import orjson

    predictions = _predictions_module()
    while True:
        head = stdin.read(_SIZE.size)
        if len(head) < _SIZE.size:
            return
        (size,) = _SIZE.unpack(head)
        frame = orjson.loads(stdin.read(size))
        rows = [predictions.LoggedRequest(*row) for row in frame["rows"]]
        try:
            predictions.write_segment(root, frame["deployment"], rows)
        except Exception as exc:  # answered, and the server counts the rows as lost
            print(f"aiaas prediction log: could not write {len(rows)} rows: {exc!r}", file=sys.stderr)
            stdout.write(_FAILED)
        else:
            stdout.write(_OK)
        stdout.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
