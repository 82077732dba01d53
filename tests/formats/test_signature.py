"""Signatures: the one rule that both registration and every request are checked against."""

from __future__ import annotations

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.formats import DATATYPES, Signature, TensorSpec, datatype_name, datatype_of, numpy_dtype

SIG = Signature(
    inputs=(TensorSpec("x", "FP32", (-1, 4)), TensorSpec("ids", "INT64", (-1,))),
    outputs=(TensorSpec("y", "FP32", (-1, 1)),),
)


def _ok() -> dict[str, np.ndarray]:
    return {"x": np.zeros((3, 4), np.float32), "ids": np.arange(3, dtype=np.int64)}


def test_matching_inputs_pass_at_any_batch_size() -> None:
    SIG.check_inputs(_ok())
    SIG.check_inputs({"x": np.zeros((1, 4), np.float32), "ids": np.zeros(1, np.int64)})
    SIG.check_inputs({"x": np.zeros((0, 4), np.float32), "ids": np.zeros(0, np.int64)})


def test_unknown_input_name_is_named_with_the_expected_ones() -> None:
    arrays = {**_ok(), "z": np.zeros((3, 4), np.float32)}
    with pytest.raises(InvalidArgument, match=r"unknown input 'z'; this model takes \['x', 'ids'\]") as info:
        SIG.check_inputs(arrays)
    assert info.value.details["value"] == "z"


def test_missing_input_is_named() -> None:
    arrays = _ok()
    del arrays["ids"]
    with pytest.raises(InvalidArgument, match="missing input 'ids'"):
        SIG.check_inputs(arrays)


def test_wrong_datatype_names_the_input_and_both_datatypes() -> None:
    arrays = {**_ok(), "x": np.zeros((3, 4), np.float64)}
    with pytest.raises(InvalidArgument, match="input 'x' has datatype FP64; expected FP32") as info:
        SIG.check_inputs(arrays)
    assert info.value.details == {"field": "x", "expected": "FP32", "value": "FP64"}


@pytest.mark.parametrize("shape", [(3, 5), (3,), (3, 4, 1)])
def test_wrong_shape_names_the_input_and_both_shapes(shape: tuple[int, ...]) -> None:
    arrays = {**_ok(), "x": np.zeros(shape, np.float32)}
    with pytest.raises(
        InvalidArgument, match=rf"input 'x' has shape \[{', '.join(map(str, shape))}\]"
    ) as info:
        SIG.check_inputs(arrays)
    assert info.value.details["expected"] == [-1, 4]
    assert info.value.details["value"] == list(shape)


def test_signature_round_trips_through_its_dict() -> None:
    d = SIG.to_dict()
    assert d["inputs"][0] == {"name": "x", "datatype": "FP32", "shape": [-1, 4]}
    assert Signature.from_dict(d) == SIG
    assert SIG.input_names() == ["x", "ids"]
    assert SIG.output_names() == ["y"]


@pytest.mark.parametrize("datatype", sorted(DATATYPES))
def test_datatype_names_and_numpy_dtypes_agree(datatype: str) -> None:
    assert datatype_name(numpy_dtype(datatype)) == datatype


def test_strings_are_bytes() -> None:
    assert datatype_of(np.array(["a", "bc"])) == "BYTES"
    assert datatype_of(np.array([b"a"])) == "BYTES"


def test_unknown_datatype_names_the_field() -> None:
    with pytest.raises(InvalidArgument, match=r"inputs\[0\].datatype: unsupported datatype 'FLOAT'") as info:
        numpy_dtype("FLOAT", field="inputs[0].datatype")
    assert info.value.details == {"field": "inputs[0].datatype", "value": "FLOAT"}


def test_numpy_dtype_without_a_datatype_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="complex128 has no Open Inference Protocol datatype"):
        datatype_of(np.zeros(2, np.complex128))
