"""Input examples and request tensors in the V2 form: exact round trips, precise errors."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.formats import decode_tensors, encode_tensors, numpy_dtype, to_array

ROUND_TRIPS = [
    ("FP32", np.array([[0.1, -2.5], [3.0, 1e-30]], np.float32)),
    ("FP64", np.array([0.1, np.pi, -1e300], np.float64)),
    ("FP16", np.array([1.5, -0.099976, 65504.0], np.float16)),
    ("INT8", np.array([-128, 0, 127], np.int8)),
    ("INT32", np.array([[-(2**31), 2**31 - 1]], np.int32)),
    ("INT64", np.array([-(2**63), 0, 2**63 - 1], np.int64)),
    ("UINT8", np.array([0, 255], np.uint8)),
    ("UINT64", np.array([0, 2**64 - 1], np.uint64)),
    ("BOOL", np.array([[True, False], [False, True]])),
    ("BYTES", np.array(["setosa", "", "ünïcode"], dtype=object)),
    ("INT64", np.zeros((0, 3), np.int64)),
    ("FP32", np.zeros((2, 0), np.float32)),
]


@pytest.mark.parametrize(("datatype", "array"), ROUND_TRIPS, ids=[f"{d}-{a.shape}" for d, a in ROUND_TRIPS])
def test_encode_decode_round_trips_exactly(datatype: str, array: np.ndarray[Any, Any]) -> None:
    (tensor,) = encode_tensors({"t": array})
    assert tensor["datatype"] == datatype
    assert tensor["shape"] == list(array.shape)
    wire = json.loads(json.dumps(tensor))  # stored and sent as JSON
    decoded = decode_tensors([wire])["t"]
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


def test_encode_keeps_the_order_and_flattens_data() -> None:
    tensors = encode_tensors({"b": np.array([[1, 2], [3, 4]], np.int32), "a": np.array([True])})
    assert [t["name"] for t in tensors] == ["b", "a"]
    assert tensors[0]["data"] == [1, 2, 3, 4]


def test_decode_accepts_nested_data() -> None:
    arrays = decode_tensors([{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}])
    np.testing.assert_array_equal(arrays["x"], np.array([[1, 2], [3, 4]], np.float32))


def test_to_array_with_non_numeric_data_names_the_input() -> None:
    with pytest.raises(InvalidArgument, match="input 'petal': data does not fit datatype FP32") as info:
        to_array(["a", "b"], np.dtype(np.float32), [2], name="petal")
    assert info.value.details == {"field": "petal", "expected": "FP32"}


def test_to_array_refuses_fractions_for_integers() -> None:
    with pytest.raises(InvalidArgument, match=r"input 'ids'.*INT64.*must be integers"):
        to_array([1.5, 2.0], np.dtype(np.int64), [2], name="ids")


@pytest.mark.parametrize(
    ("datatype", "data"),
    [("UINT8", [1, 300]), ("INT8", [-129]), ("UINT64", [-1, 2]), ("INT64", [0, 2**63]), ("UINT64", [2**64])],
)
def test_to_array_refuses_integers_out_of_range_instead_of_wrapping(datatype: str, data: list[int]) -> None:
    with pytest.raises(InvalidArgument, match=f"input 'n': data does not fit datatype {datatype}"):
        to_array(data, numpy_dtype(datatype), [len(data)], name="n")


def test_to_array_refuses_numbers_for_bool_and_bytes() -> None:
    with pytest.raises(InvalidArgument, match=r"input 'flag'.*BOOL"):
        to_array([1, 0], np.dtype(np.bool_), [2], name="flag")
    with pytest.raises(InvalidArgument, match=r"input 'text'.*BYTES"):
        to_array([1, 2], np.dtype(object), [2], name="text")


def test_to_array_refuses_a_value_count_that_does_not_fit_the_shape() -> None:
    with pytest.raises(InvalidArgument, match=r"input 'x': shape \[2, 3\] needs 6 values, data has 5"):
        to_array([1, 2, 3, 4, 5], np.dtype(np.float32), [2, 3], name="x")


def test_to_array_without_shape_takes_the_nesting() -> None:
    assert to_array([[1, 2], [3, 4]], np.dtype(np.float32), None, name="x").shape == (2, 2)
    with pytest.raises(InvalidArgument, match="input 'x'"):
        to_array([[1, 2], [3]], np.dtype(np.float32), None, name="x")


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"name": "x"}, "inputs must be a list of tensors"),
        (["x"], r"inputs\[0\] must be an object"),
        ([{"name": "x", "datatype": "FP32", "shape": [1]}], r"inputs\[0\].data is required"),
        ([{"name": 3, "datatype": "FP32", "shape": [1], "data": [1]}], r"inputs\[0\].name must be a string"),
        (
            [{"name": "x", "datatype": "FP32", "shape": [-1], "data": [1]}],
            r"inputs\[0\].shape must be a list",
        ),
        (
            [{"name": "x", "datatype": "FLOAT", "shape": [1], "data": [1]}],
            r"inputs\[0\].datatype: unsupported",
        ),
        (
            [
                {"name": "x", "datatype": "FP32", "shape": [1], "data": [1]},
                {"name": "x", "datatype": "FP32", "shape": [1], "data": [2]},
            ],
            "input 'x' is given twice",
        ),
    ],
    ids=["not-a-list", "not-an-object", "no-data", "name-type", "negative-dim", "datatype", "duplicate"],
)
def test_decode_errors_name_the_tensor_and_the_problem(tensors: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        decode_tensors(tensors)


@pytest.mark.parametrize(
    ("datatype", "data", "largest"),
    [("FP32", [1.0, 1e300], "3.4028235e+38"), ("FP32", [-1e39], "3.4028235e+38"), ("FP16", [70000], "65504")],
)
def test_to_array_refuses_numbers_past_the_float_range_instead_of_making_infinity(
    datatype: str, data: list[float], largest: str
) -> None:
    with pytest.raises(
        InvalidArgument, match=rf"input 'x'.*{datatype}.*within \+-{re.escape(largest)}"
    ) as info:
        to_array(data, numpy_dtype(datatype), [len(data)], name="x")
    assert info.value.details == {"field": "x", "expected": datatype}


def test_to_array_keeps_the_largest_finite_values_and_binary_infinities() -> None:
    edge = float(np.finfo(np.float32).max)
    assert to_array([edge, -edge], numpy_dtype("FP32"), [2], name="x").tolist() == [edge, -edge]
    # Raw (binary) data may hold infinities on purpose: they are the client's values.
    raw = np.array([np.inf, 1.0], dtype=np.float32)
    assert np.isinf(to_array(raw, numpy_dtype("FP32"), [2], name="x")[0])


@pytest.mark.parametrize("data", [[[1, 2], [3]], [[1.0], [2.0, 3.0], [4.0]], [[[1, 2]], [[3]]]])
def test_to_array_says_ragged_rows_in_words(data: Any) -> None:
    for shape in (None, [4]):
        with pytest.raises(InvalidArgument) as info:
            to_array(data, numpy_dtype("FP32"), shape, name="x")
        assert "rows must all have the same length" in info.value.message
        assert "inhomogeneous" not in info.value.message and "sequence" not in info.value.message
