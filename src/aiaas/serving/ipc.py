"""The wire between the inference server (the front) and its replica processes.

One Unix domain socket per replica carries length-prefixed frames in both directions.
Every frame has a request id, so many requests are in flight on one connection at once
(pipelining); the replica answers them in order, but the front matches answers by id.

A frame is ``<u32 size><u8 kind><u64 request id><body>`` (little endian; ``size`` counts
everything after itself). Tensors travel as their raw numpy bytes after a small binary
header (name, dtype, shape): no JSON and no pickle between the processes, and the
receiver wraps the bytes with ``np.frombuffer`` without copying them.

This module imports only the standard library and numpy: the replica process runs it as
a plain module (not through the ``aiaas`` package) to start fast and stay small.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CANCEL",
    "CHUNK",
    "EMBED",
    "ERROR",
    "FINISH",
    "GENERATE",
    "HEADER",
    "LOAD",
    "LOAD_RUNTIME",
    "READY",
    "RESULT",
    "RUN",
    "decode_error",
    "decode_load",
    "decode_ready",
    "decode_result",
    "decode_run",
    "decode_tensors",
    "encode_error",
    "encode_frame",
    "encode_load",
    "encode_ready",
    "encode_result",
    "encode_run",
    "encode_tensors",
    "ready_info",
    "split_frames",
]

#: Front → replica: the model to serve (``<u32 intra-op threads><onnx bytes>``).
LOAD = 1
#: Replica → front: the model is loaded (body: the replica's pid as ``<u32>``).
READY = 2
#: Front → replica: run the model (body: requested outputs, then the input tensors).
RUN = 3
#: Replica → front: the outputs of one RUN, same request id.
RESULT = 4
#: Replica → front: one RUN (or the LOAD) failed; body: error code and message.
ERROR = 5

# -- runtimes other than ONNX Runtime (serving/runtimes): JSON bodies -------------------------
#: Front → replica: load a runtime (body: JSON ``{"runtime": name, ...options}``); READY follows,
#: its body extended with a JSON object of facts about the loaded model.
LOAD_RUNTIME = 6
#: Front → replica: start generating (body: JSON request). Answered by CHUNK frames, then one
#: FINISH (or one ERROR), all with the request's id.
GENERATE = 7
#: Replica → front: newly generated text of one request (JSON ``{"text", "tokens"}``).
CHUNK = 8
#: Replica → front: a request finished (JSON ``{"text", "finish_reason", "usage"}``).
FINISH = 9
#: Front → replica: stop a request (its client went away); answered by its FINISH.
CANCEL = 10
#: Front → replica: embed texts (JSON ``{"texts": [...]}``); answered by RESULT or ERROR.
EMBED = 11

#: Size prefix, kind and request id of every frame.
HEADER = struct.Struct("<IBQ")
_PREFIX = struct.Struct("<I")
_KIND_ID = struct.Struct("<BQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_TENSOR = struct.Struct("<HBB")  # name length, dtype length, ndim
_ALL_OUTPUTS = 0xFFFF

Array = np.ndarray[Any, Any]


def encode_frame(kind: int, request_id: int, body: bytes | bytearray | memoryview) -> bytes:
    """One frame, ready to write."""
    return HEADER.pack(len(body) + _KIND_ID.size, kind, request_id) + body


def split_frames(buffer: bytearray) -> tuple[list[tuple[int, int, memoryview]], int]:
    """Every complete frame at the start of ``buffer``, and how many bytes they took.

    Returns:
        ``[(kind, request id, body), ...]`` with bodies as views into a copy of the bytes
        consumed (so the caller may drop them from ``buffer`` at once), and that byte count.
    """
    frames: list[tuple[int, int, memoryview]] = []
    end = len(buffer)
    at = 0
    while end - at >= _PREFIX.size:
        (size,) = _PREFIX.unpack_from(buffer, at)
        if end - at - _PREFIX.size < size:
            break
        at += _PREFIX.size + size
    if at == 0:
        return frames, 0
    data = memoryview(bytes(buffer[:at]))
    pos = 0
    while pos < at:
        size, kind, request_id = HEADER.unpack_from(data, pos)
        body_at = pos + HEADER.size
        pos += _PREFIX.size + size
        frames.append((kind, request_id, data[body_at:pos]))
    return frames, at


# -- tensors ---------------------------------------------------------------------------------


def encode_tensors(tensors: Mapping[str, Array], parts: list[bytes | memoryview]) -> None:
    """Append ``tensors`` to ``parts``: a count, then per tensor a header and its bytes."""
    parts.append(_U16.pack(len(tensors)))
    for name, array in tensors.items():
        encoded = name.encode()
        if array.dtype == object:
            items = [str(v).encode() if not isinstance(v, bytes) else v for v in array.reshape(-1)]
            dtype = b"O"
            payload: bytes | memoryview = b"".join(_U32.pack(len(i)) + i for i in items)
        else:
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            dtype = array.dtype.str.encode()
            payload = array.reshape(-1).view(np.uint8).data if array.size else b""
        parts.append(_TENSOR.pack(len(encoded), len(dtype), array.ndim))
        parts.append(encoded)
        parts.append(dtype)
        parts.append(struct.pack(f"<{array.ndim}q", *array.shape))
        parts.append(_U64.pack(len(payload)))
        parts.append(payload)


def decode_tensors(body: memoryview, at: int = 0) -> tuple[dict[str, Array], int]:
    """The tensors encoded at ``body[at:]`` (arrays share ``body``'s memory), and where they end."""
    (count,) = _U16.unpack_from(body, at)
    at += _U16.size
    out: dict[str, Array] = {}
    for _ in range(count):
        name_len, dtype_len, ndim = _TENSOR.unpack_from(body, at)
        at += _TENSOR.size
        name = bytes(body[at : at + name_len]).decode()
        at += name_len
        dtype = bytes(body[at : at + dtype_len]).decode()
        at += dtype_len
        shape = struct.unpack_from(f"<{ndim}q", body, at)
        at += 8 * ndim
        (size,) = _U64.unpack_from(body, at)
        at += 8
        if dtype == "O":
            items: list[str] = []
            end = at + size
            while at < end:
                (n,) = _U32.unpack_from(body, at)
                at += _U32.size
                items.append(bytes(body[at : at + n]).decode())
                at += n
            array = np.array(items, dtype=object).reshape(shape)
        else:
            kind = np.dtype(dtype)
            array = np.frombuffer(body, dtype=kind, count=size // kind.itemsize, offset=at).reshape(shape)
            at += size
        out[name] = array
    return out, at


# -- messages --------------------------------------------------------------------------------


def encode_load(model: bytes, intra_op_threads: int) -> bytes:
    return encode_frame(LOAD, 0, _U32.pack(intra_op_threads) + model)


def decode_load(body: memoryview) -> tuple[bytes, int]:
    """The ONNX bytes and intra-op thread count of a LOAD frame."""
    (threads,) = _U32.unpack_from(body, 0)
    return bytes(body[_U32.size :]), threads


_READY = struct.Struct("<II")
_SECONDS = struct.Struct("<d")


def encode_ready(pid: int, load_ms: int) -> bytes:
    """A READY body: the replica's pid and how long loading the model took."""
    return _READY.pack(pid, load_ms)


def decode_ready(body: memoryview) -> tuple[int, int]:
    pid, load_ms = _READY.unpack_from(body, 0)
    return int(pid), int(load_ms)


def ready_info(body: memoryview) -> bytes:
    """The JSON facts a runtime appends to its READY body (``b""`` for ONNX replicas)."""
    return bytes(body[_READY.size :])


def encode_run(request_id: int, inputs: Mapping[str, Array], outputs: Sequence[str] | None) -> bytes:
    """A RUN frame: the outputs asked for (all when ``None``), then the inputs."""
    parts: list[bytes | memoryview] = [b""]
    if outputs is None:
        parts.append(_U16.pack(_ALL_OUTPUTS))
    else:
        parts.append(_U16.pack(len(outputs)))
        for name in outputs:
            encoded = name.encode()
            parts.append(_U16.pack(len(encoded)))
            parts.append(encoded)
    encode_tensors(inputs, parts)
    body_size = sum(len(p) for p in parts)
    parts[0] = HEADER.pack(body_size + _KIND_ID.size, RUN, request_id)
    return b"".join(parts)


def decode_run(body: memoryview) -> tuple[dict[str, Array], list[str] | None]:
    """The inputs and requested outputs of a RUN frame."""
    (count,) = _U16.unpack_from(body, 0)
    at = _U16.size
    outputs: list[str] | None = None
    if count != _ALL_OUTPUTS:
        outputs = []
        for _ in range(count):
            (n,) = _U16.unpack_from(body, at)
            at += _U16.size
            outputs.append(bytes(body[at : at + n]).decode())
            at += n
    inputs, _ = decode_tensors(body, at)
    return inputs, outputs


def encode_result(request_id: int, outputs: Mapping[str, Array], compute_s: float) -> bytes:
    """A RESULT frame: the model's run time in the replica, then the outputs."""
    parts: list[bytes | memoryview] = [b"", _SECONDS.pack(compute_s)]
    encode_tensors(outputs, parts)
    body_size = sum(len(p) for p in parts)
    parts[0] = HEADER.pack(body_size + _KIND_ID.size, RESULT, request_id)
    return b"".join(parts)


def decode_result(body: memoryview) -> tuple[dict[str, Array], float]:
    """The outputs of a RESULT frame and the seconds the model ran."""
    (compute_s,) = _SECONDS.unpack_from(body, 0)
    outputs, _ = decode_tensors(body, _SECONDS.size)
    return outputs, compute_s


def encode_error(request_id: int, code: str, message: str) -> bytes:
    encoded = code.encode()
    return encode_frame(ERROR, request_id, _U16.pack(len(encoded)) + encoded + message.encode())


def decode_error(body: memoryview) -> tuple[str, str]:
    """The error code and message of an ERROR frame."""
    (n,) = _U16.unpack_from(body, 0)
    return bytes(body[_U16.size : _U16.size + n]).decode(), bytes(body[_U16.size + n :]).decode()
