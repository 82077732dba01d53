"""A replica process: one ONNX Runtime session answering run requests from the front.

The inference server (the front) starts it as a plain script, ``python replica_process.py FD PPID
DEPLOYMENT/vVERSION`` (the last argument only names it in ``ps``),
with one end of a Unix socket pair as file descriptor ``FD``. It imports the standard
library, numpy, ONNX Runtime, the frame codec (:mod:`.ipc`) and the platform's session
factory (:mod:`aiaas.formats.onnx_session`, loaded from its file) only: not the ``aiaas``
package, whose ``serving`` package pulls in SQLAlchemy and Starlette. That keeps a replica
quick to start and small when idle, which is what makes several replicas per deployment,
and scaling from zero, affordable.

The protocol (see :mod:`.ipc`): the first frame is LOAD with the model's bytes; the replica
answers READY, then answers each RUN frame with RESULT or ERROR, in order. It reads every
frame that has arrived before running any, and writes the answers of one read in one
``sendall``: under load, many requests cost one system call each way.

A LOAD_RUNTIME frame loads one of the other runtimes instead (:mod:`.runtimes`: PyTorch
language and embedding models, from a folder the front materialised). Such a runtime may
have work of its own between frames (a decoding step of its batch); while it has, the
replica only peeks at the socket between steps, so new requests join the running batch
at the next step instead of waiting for it to finish.

The front starts it in an empty private working directory
(:func:`aiaas.formats.isolated_folder`), and its session resolves ONNX external data
against that directory: whatever file a model names, there is nothing there to read.

The replica lives exactly as long as its connection: end of file on the socket (the front
closed it, or died) ends the process. SIGINT and SIGTERM are ignored so that a Ctrl-C in
a terminal, which reaches the whole process group, lets the front drain its replicas in
order instead of killing them under in-flight requests; the parent-death signal covers a
front that dies without closing the socket.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import socket
import sys
import time
from typing import Any

import numpy as np
import orjson

if __package__:
    from aiaas.serving import ipc
else:  # run as a script by the front: the sibling module, without the aiaas package
    import ipc  # type: ignore[import-not-found,no-redef]

__all__ = ["main"]

_READ_SIZE = 1 << 18


class _Model:
    """An ONNX Runtime session and its output names."""

    def __init__(self, data: bytes, intra_op_threads: int) -> None:
        # ONNX Runtime is imported by new_session: the time it takes is the LOAD's, not the spawn's.
        self.session = _onnx_session().new_session(
            data,
            # External data of a model loaded from bytes resolves against this folder: the
            # empty working directory the front gives us, never a folder of the server's files.
            external_data_folder=os.getcwd(),
            intra_op_threads=intra_op_threads,  # 0: ONNX Runtime's default, one per core
            # Spinning threads burn a core waiting for work: wrong for several replicas per node.
            spinning=False,
        )
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, Any], outputs: list[str] | None) -> dict[str, Any]:
        names = outputs or self.output_names
        feed = {name: (a.astype(str) if a.dtype == object else a) for name, a in inputs.items()}
        values = self.session.run(names, feed)
        return {n: np.asarray(v) for n, v in zip(names, values, strict=True)}


def _onnx_session() -> Any:
    """:mod:`aiaas.formats.onnx_session`, the platform's one session factory.

    Run as a script, the replica loads that module from its file, without the ``aiaas``
    package (see the module docstring); it imports the standard library alone.
    """
    if __package__:
        from aiaas.formats import onnx_session

        return onnx_session
    name = "aiaas_onnx_session"
    module = sys.modules.get(name)
    if module is None:
        aiaas_folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.path.join(aiaas_folder, "formats", "onnx_session.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def _answer(model: _Model | None, kind: int, request_id: int, body: memoryview) -> bytes:
    if kind == ipc.RUN:
        if model is None:
            return ipc.encode_error(request_id, "UNAVAILABLE", "the replica has no model loaded yet")
        try:
            inputs, outputs = ipc.decode_run(body)
            started = time.perf_counter()
            results = model.run(inputs, outputs)
            return ipc.encode_result(request_id, results, time.perf_counter() - started)
        except Exception as exc:  # ORT raises its own Fail/InvalidArgument types
            return ipc.encode_error(
                request_id, "INVALID_ARGUMENT", f"the model rejected the input: {str(exc).strip()}"
            )
    return ipc.encode_error(request_id, "INTERNAL", f"unknown frame kind {kind}")


def _load_runtime(body: memoryview, request_id: int) -> tuple[Any, bytes]:
    """The runtime a LOAD_RUNTIME frame asks for, and the frame that answers it."""
    if __package__:
        from aiaas.serving import runtimes
    else:
        import runtimes  # type: ignore[import-not-found,no-redef]

    started = time.perf_counter()
    try:
        runtime = runtimes.create(orjson.loads(bytes(body)))
    except Exception as exc:
        return None, ipc.encode_error(
            0, "INVALID_ARGUMENT", f"cannot load the model: {type(exc).__name__}: {exc}"
        )
    load_ms = int((time.perf_counter() - started) * 1000)
    info = orjson.dumps(runtime.info)
    return runtime, ipc.encode_frame(ipc.READY, request_id, ipc.encode_ready(os.getpid(), load_ms) + info)


def serve(sock: socket.socket) -> None:
    """Answer frames on ``sock`` until the front closes it."""
    model: _Model | None = None
    runtime: Any = None
    pending = bytearray()
    chunk = bytearray(_READ_SIZE)
    view = memoryview(chunk)
    while True:
        if runtime is not None and runtime.busy() and not select.select([sock], [], [], 0)[0]:
            produced = runtime.step()
            if produced:
                sock.sendall(b"".join(produced))
            continue
        n = sock.recv_into(chunk)
        if n == 0:
            return
        pending += view[:n]
        frames, used = ipc.split_frames(pending)
        if not used:
            continue
        del pending[:used]
        answers: list[bytes] = []
        for kind, request_id, body in frames:
            if kind == ipc.LOAD:
                started = time.perf_counter()
                data, threads = ipc.decode_load(body)
                try:
                    model = _Model(data, threads)
                except Exception as exc:
                    answers.append(
                        ipc.encode_error(0, "INVALID_ARGUMENT", f"ONNX Runtime cannot load it: {exc}")
                    )
                else:
                    load_ms = int((time.perf_counter() - started) * 1000)
                    answers.append(
                        ipc.encode_frame(ipc.READY, request_id, ipc.encode_ready(os.getpid(), load_ms))
                    )
            elif kind == ipc.LOAD_RUNTIME:
                runtime, answer = _load_runtime(body, request_id)
                answers.append(answer)
            elif runtime is not None:
                answers.extend(runtime.handle(kind, request_id, body))
            else:
                answers.append(_answer(model, kind, request_id, body))
        if answers:
            sock.sendall(b"".join(answers) if len(answers) > 1 else answers[0])


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when the front dies, then check it had not already."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: end of file on the socket still ends us
        pass
    if os.getppid() != parent:
        raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    """``replica_process.py FD PARENT_PID [TAG]``: serve the socket inherited as ``FD``."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(int(args[1]))
    sock = socket.socket(fileno=int(args[0]))
    try:
        serve(sock)
    except (ConnectionError, BrokenPipeError):
        pass
    finally:
        sock.close()


if __name__ == "__main__":
    main()
