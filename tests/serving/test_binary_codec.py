"""The binary tensor data codec on its own: bytes in, arrays out, and back."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from aiaas.errors import InvalidArgument
from aiaas.formats import Signature, TensorSpec
from aiaas.serving.protocols import decode_binary_v2, decode_v2, encode_binary_v2, parse_header_length
from aiaas.serving.protocols.binary import tensor_bytes

SIGNATURE = Signature(
    inputs=(
        TensorSpec("x", "FP32", (-1, 4)),
        TensorSpec("ids", "INT64", (-1,)),
        TensorSpec("mask", "BOOL", (-1,)),
        TensorSpec("text", "BYTES", (-1,)),
    ),
    outputs=(TensorSpec("y", "FP32", (-1, 3)), TensorSpec("label", "INT64", (-1,))),
)

X = np.arange(8, dtype=np.float32).reshape(2, 4) / 3
IDS = np.array([1, -2, 2**40], dtype=np.int64)
MASK = np.array([True, False, True])
TEXT = np.array(["a", "", "ünïcode"], dtype=object)


def raw(array: np.ndarray[Any, Any]) -> bytes:
    """What tritonclient sends for ``array``."""
    if array.dtype == object:
        return b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in array)
    return array.tobytes()


def binary_input(name: str, datatype: str, shape: Any, size: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}


def json_input(name: str, array: np.ndarray[Any, Any], datatype: str) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": list(array.shape),
        "data": array.reshape(-1).tolist(),
    }


ALL_JSON = [json_input("x", X, "FP32"), json_input("ids", IDS, "INT64"), json_input("mask", MASK, "BOOL")]
ALL_JSON.append(json_input("text", TEXT, "BYTES"))


def body_of(request: dict[str, Any], *chunks: bytes) -> tuple[bytes, int]:
    head = orjson.dumps(request)
    return head + b"".join(chunks), len(head)


def full_request(**extra: Any) -> tuple[bytes, int]:
    """All four inputs, each as binary data."""
    inputs = [
        binary_input("x", "FP32", [2, 4], X.nbytes),
        binary_input("ids", "INT64", [3], IDS.nbytes),
        binary_input("mask", "BOOL", [3], MASK.nbytes),
        binary_input("text", "BYTES", [3], len(raw(TEXT))),
    ]
    return body_of({"inputs": inputs, **extra}, raw(X), raw(IDS), raw(MASK), raw(TEXT))


def decode(request: dict[str, Any], *chunks: bytes) -> Any:
    body, length = body_of(request, *chunks)
    return decode_binary_v2(body, length, SIGNATURE)


def refused(body: bytes, length: int) -> str:
    with pytest.raises(InvalidArgument) as info:
        decode_binary_v2(body, length, SIGNATURE)
    assert info.value.code == "INVALID_ARGUMENT"
    return info.value.message


def swap(request_chunks: tuple[bytes, int], **changes: Any) -> tuple[bytes, int]:
    """Rewrite the JSON object of a body, keeping its binary part."""
    body, length = request_chunks
    request = orjson.loads(body[:length])
    for index, tensor in changes.items():
        request["inputs"][int(index.removeprefix("i"))] = tensor
    return body_of(request, body[length:])


# -- the header ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("123", 123), (" 42 ", 42)])
def test_header_length_parses_decimal(value: str, expected: int) -> None:
    assert parse_header_length(value) == expected


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "0x10", "١٢"])
def test_header_length_refuses_non_decimal(value: str) -> None:
    with pytest.raises(
        InvalidArgument, match="Inference-Header-Content-Length must be a non-negative integer"
    ):
        parse_header_length(value)


# -- decoding ----------------------------------------------------------------------------


def test_decode_every_dtype_from_binary() -> None:
    body, length = full_request()
    request = decode_binary_v2(body, length, SIGNATURE)
    np.testing.assert_array_equal(request.inputs["x"], X)
    assert request.inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(request.inputs["ids"], IDS)
    assert request.inputs["ids"].dtype == np.int64
    np.testing.assert_array_equal(request.inputs["mask"], MASK)
    assert request.inputs["mask"].dtype == np.bool_
    assert request.inputs["text"].tolist() == TEXT.tolist()
    assert request.binary_outputs == frozenset()


def test_decode_mixes_json_and_binary_inputs() -> None:
    inputs = [
        json_input("x", X, "FP32"),
        binary_input("ids", "INT64", [3], IDS.nbytes),
        json_input("mask", MASK, "BOOL"),
        binary_input("text", "BYTES", [3], len(raw(TEXT))),
    ]
    request = decode({"inputs": inputs}, raw(IDS), raw(TEXT))
    np.testing.assert_array_equal(request.inputs["x"], X)
    np.testing.assert_array_equal(request.inputs["ids"], IDS)
    np.testing.assert_array_equal(request.inputs["mask"], MASK)
    assert request.inputs["text"].tolist() == TEXT.tolist()


def test_decode_aligns_data_that_starts_at_an_odd_offset() -> None:
    for pad in range(8):
        body, length = full_request(id="p" * pad)
        request = decode_binary_v2(body, length, SIGNATURE)
        assert request.inputs["x"].flags.aligned
        np.testing.assert_array_equal(request.inputs["x"], X)


def test_decode_empty_tensors() -> None:
    inputs = [
        binary_input("x", "FP32", [0, 4], 0),
        binary_input("ids", "INT64", [0], 0),
        binary_input("mask", "BOOL", [0], 0),
        binary_input("text", "BYTES", [0], 0),
    ]
    request = decode({"inputs": inputs})
    assert request.inputs["x"].shape == (0, 4)
    assert request.inputs["text"].shape == (0,)


def test_decode_keeps_the_json_request_checks() -> None:
    body, length = full_request(id="r-1", outputs=[{"name": "label"}])
    request = decode_binary_v2(body, length, SIGNATURE)
    assert request.id == "r-1"
    assert request.outputs == ["label"]
    with pytest.raises(InvalidArgument, match="unknown output 'nope'"):
        decode_binary_v2(*full_request(outputs=[{"name": "nope"}]), SIGNATURE)


def test_binary_outputs_follow_output_and_request_parameters() -> None:
    def binary(**extra: Any) -> frozenset[str]:
        return decode_binary_v2(*full_request(**extra), SIGNATURE).binary_outputs

    assert binary(outputs=[{"name": "y", "parameters": {"binary_data": True}}, {"name": "label"}]) == {"y"}
    assert binary(parameters={"binary_data_output": True}) == {"y", "label"}
    assert binary(
        parameters={"binary_data_output": True},
        outputs=[{"name": "y", "parameters": {"binary_data": False}}, {"name": "label"}],
    ) == {"label"}
    assert binary(outputs=[{"name": "y", "parameters": {"binary_data": False}}]) == frozenset()


def test_json_requests_can_ask_for_binary_outputs() -> None:
    request = {"inputs": ALL_JSON, "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}
    assert decode_v2(orjson.dumps(request), SIGNATURE).binary_outputs == {"y"}
    assert decode_v2(orjson.dumps({"inputs": ALL_JSON}), SIGNATURE).binary_outputs == frozenset()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"outputs": [{"name": "y", "parameters": {"binary_data": "yes"}}]}, ["binary_data", "'yes'"]),
        ({"parameters": {"binary_data_output": 1}}, ["binary_data_output", "true or false"]),
        ({"outputs": [{"name": "y", "parameters": []}]}, ["outputs[0].parameters", "object"]),
    ],
)
def test_binary_output_flags_must_be_booleans(extra: dict[str, Any], words: list[str]) -> None:
    message = refused(*full_request(**extra))
    for word in words:
        assert word in message


# -- malformed bodies --------------------------------------------------------------------


def test_refuses_header_longer_than_body() -> None:
    body, _ = full_request()
    message = refused(body, len(body) + 1)
    assert "Inference-Header-Content-Length" in message
    assert f"only {len(body)} bytes" in message


def test_refuses_header_that_cuts_the_json() -> None:
    body, length = full_request()
    assert "not valid JSON" in refused(body, length - 1)
    assert "not valid JSON" in refused(body, 0)


def test_refuses_data_size_not_matching_shape() -> None:
    body, length = swap(full_request(), i0=binary_input("x", "FP32", [3, 4], X.nbytes))
    message = refused(body, length)
    assert "'x'" in message
    assert "48 bytes" in message
    assert "binary_data_size is 32" in message


def test_refuses_data_size_not_a_multiple_of_the_element() -> None:
    inputs = [binary_input("x", "FP32", "not a shape", 6)]
    assert "not a multiple of the 4-byte size of FP32" in refused(*body_of({"inputs": inputs}, b"\0" * 6))


def test_refuses_more_binary_data_than_the_body_holds() -> None:
    body, length = full_request()
    message = refused(body[:-3], length)
    assert "'text'" in message
    assert "binary_data_size" in message
    assert "bytes of tensor data are left" in message


def test_refuses_binary_data_size_with_no_data_after_the_json() -> None:
    body, length = body_of({"inputs": [binary_input("x", "FP32", [2, 4], 32)]})
    assert "only 0 bytes of tensor data are left" in refused(body, length)


def test_refuses_trailing_bytes() -> None:
    body, length = full_request()
    message = refused(body + b"xyz", length)
    assert "3 bytes follow the tensor data" in message


def test_refuses_binary_bytes_when_no_input_declares_any() -> None:
    body, length = body_of({"inputs": ALL_JSON}, b"\0" * 4)
    assert "4 bytes follow the tensor data" in refused(body, length)


def test_refuses_binary_data_for_an_unknown_input() -> None:
    body, length = swap(full_request(), i0=binary_input("ghost", "FP32", [2, 4], X.nbytes))
    message = refused(body, length)
    assert "'ghost'" in message
    assert "'x'" in message


@pytest.mark.parametrize(
    ("tensor", "words"),
    [
        (binary_input("x", "FP32", [2, 4], -4), ["binary_data_size", "non-negative", "-4"]),
        (binary_input("x", "FP32", [2, 4], True), ["binary_data_size", "non-negative", "True"]),
        (binary_input("x", "FP32", [2, 4], "32"), ["binary_data_size", "'32'"]),
        (binary_input("x", "FP32", [2, 4], 32) | {"data": [0.0] * 8}, ["both data and", "binary_data_size"]),
        ({"name": "x", "datatype": "FP32", "shape": [2, 4]}, ["neither data nor", "binary_data_size"]),
        (binary_input("x", "FLOAT", [2, 4], 32), ["'FLOAT'", "datatype"]),
        (binary_input("x", "FP32", [2, -4], 32), ["shape", "non-negative"]),
        (binary_input("x", "FP64", [2, 2], 32), ["'x'", "FP64", "FP32"]),
        ({"name": "x", "shape": [2, 4], "parameters": {"binary_data_size": 32}}, ["datatype is required"]),
    ],
)
def test_refuses_bad_binary_input(tensor: dict[str, Any], words: list[str]) -> None:
    message = refused(*swap(full_request(), i0=tensor))
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_refuses_bool_bytes_other_than_0_and_1() -> None:
    body, length = full_request()
    start = length + X.nbytes + IDS.nbytes
    broken = body[:start] + b"\x02" + body[start + 1 :]
    assert "BOOL bytes must be 0 (false) or 1 (true); got 2" in refused(broken, length)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x01\x00", ["ends inside the 4-byte length of element 0"]),
        (
            struct.pack("<I", 1) + b"a" + struct.pack("<I", 9) + b"bc",
            ["element 1 declares 9 bytes", "only 2"],
        ),
        (struct.pack("<I", 2) + b"\xff\xfe", ["element 0 is not valid UTF-8"]),
    ],
)
def test_refuses_malformed_bytes_elements(data: bytes, words: list[str]) -> None:
    inputs = [*ALL_JSON[:3], binary_input("text", "BYTES", [1], len(data))]
    message = refused(*body_of({"inputs": inputs}, data))
    assert "'text'" in message
    for word in words:
        assert word in message


def test_refuses_bytes_count_not_matching_shape() -> None:
    body, length = swap(full_request(), i3=binary_input("text", "BYTES", [4], len(raw(TEXT))))
    assert "needs 4 values, data has 3" in refused(body, length)


# -- encoding ----------------------------------------------------------------------------


def test_encode_is_what_tritonclient_reads() -> None:
    from tritonclient.http import InferResult

    results = {
        "y": X,
        "ids": IDS,
        "mask": MASK,
        "text": TEXT,
        "half": X.astype(np.float16),
        "json": IDS,
    }
    body, length = encode_binary_v2("m", 3, results, "r-9", frozenset(results) - {"json"})
    head = orjson.loads(body[:length])
    assert head["model_name"] == "m"
    assert head["model_version"] == "3"
    assert head["id"] == "r-9"
    assert [o["name"] for o in head["outputs"]] == list(results)
    assert head["outputs"][0]["parameters"] == {"binary_data_size": X.nbytes}
    assert head["outputs"][-1]["data"] == IDS.tolist()
    parsed = InferResult.from_response_body(body, header_length=length)
    for name, expected in results.items():
        got = parsed.as_numpy(name)
        if expected.dtype == object:
            assert [v.decode() for v in got.tolist()] == expected.tolist()
        else:
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


def test_tensor_bytes_matches_tritonclient_serialisation() -> None:
    from tritonclient.utils import serialize_byte_tensor

    assert tensor_bytes(TEXT) == serialize_byte_tensor(TEXT).item()
    raw_bytes = np.array([b"\x00\xff", b"z"], dtype=object)
    assert tensor_bytes(raw_bytes) == b"\x02\x00\x00\x00\x00\xff\x01\x00\x00\x00z"
    big_endian = np.array([1, 2], dtype=">i4")
    assert tensor_bytes(big_endian) == np.array([1, 2], dtype="<i4").tobytes()
    assert tensor_bytes(X.T) == np.ascontiguousarray(X.T).tobytes()


def test_encode_then_decode_round_trips() -> None:
    signature = Signature(inputs=SIGNATURE.inputs, outputs=())
    arrays = {"x": X, "ids": IDS, "mask": MASK, "text": TEXT}
    body, length = encode_binary_v2("m", 1, arrays, None, frozenset(arrays))
    head = orjson.loads(body[:length])
    # A response's binary outputs, sent back as a request's inputs, read as the same arrays.
    again, again_length = body_of({"inputs": head["outputs"]}, body[length:])
    decoded = decode_binary_v2(again, again_length, signature)
    for name, array in arrays.items():
        assert decoded.inputs[name].tolist() == array.tolist()
