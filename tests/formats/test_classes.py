"""Classifiers answer with their own class labels, recorded in the model and named in its signature."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from aiaas.errors import InvalidArgument
from aiaas.formats import (
    CLASSES_KEY,
    OnnxModel,
    Signature,
    TensorSpec,
    class_key,
    label_classes,
    package_model,
    parse_onnx,
    signature_of,
)

Array = np.ndarray[Any, Any]


@pytest.fixture(scope="module")
def rows() -> Array:
    return np.random.default_rng(0).normal(size=(80, 3)).astype(np.float32)


def _direction(x: Array) -> Array:
    return np.where(x[:, 0] + 0.3 * x[:, 1] > 0, "east", "west")


@pytest.mark.parametrize(
    "estimator", [LogisticRegression(), RandomForestClassifier(n_estimators=5, random_state=0)]
)
def test_a_scikit_learn_classifier_with_text_classes_answers_them(rows: Array, estimator: Any) -> None:
    clf = estimator.fit(rows, _direction(rows))
    package = package_model(clf, rows[:5])
    label, probabilities = package.signature.outputs
    assert (label.datatype, label.classes) == ("BYTES", None)
    assert probabilities.classes == ("east", "west")
    out = OnnxModel(package.onnx).run({"X": rows})
    np.testing.assert_array_equal(out["label"], clf.predict(rows))
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(rows), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("labels", "datatype"),
    [
        (lambda x: np.where(x[:, 0] > 0, True, False), "BOOL"),
        (lambda x: np.select([x[:, 0] < -0.5, x[:, 0] < 0.5], [3, 7], 9), "INT64"),
        (lambda x: np.where(x[:, 0] > 0, 2.0, 1.0), "INT64"),
    ],
    ids=["booleans", "integers 3/7/9", "integral fractions"],
)
def test_a_scikit_learn_classifier_answers_its_own_labels_whatever_their_kind(
    rows: Array, labels: Any, datatype: str
) -> None:
    y = labels(rows)
    clf = LogisticRegression().fit(rows, y)
    package = package_model(clf, rows[:5])
    label, probabilities = package.signature.outputs
    assert label.datatype == datatype
    assert probabilities.classes == tuple(clf.classes_.tolist())
    got = OnnxModel(package.onnx).run({"X": rows})["label"]
    np.testing.assert_array_equal(got, clf.predict(rows))
    assert got.dtype == (np.bool_ if datatype == "BOOL" else np.int64)


def test_a_torch_classifier_given_classes_answers_labels(rows: Array) -> None:
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    package = package_model(module, rows[:4], classes=["north", "east", "west"])
    assert [(o.name, o.datatype, o.classes) for o in package.signature.outputs] == [
        ("output", "FP32", ("north", "east", "west")),
        ("label", "BYTES", None),
    ]
    out = OnnxModel(package.onnx).run({"input": rows})
    with torch.no_grad():
        scores = module(torch.from_numpy(rows)).numpy()
    np.testing.assert_array_equal(out["label"], np.asarray(["north", "east", "west"])[scores.argmax(1)])

    with pytest.raises(InvalidArgument, match="2 classes given, but output 'output' has 3 columns"):
        package_model(module, rows[:4], classes=["a", "b"])


def test_classes_are_refused_where_the_model_brings_its_own(rows: Array) -> None:
    clf = LogisticRegression().fit(rows, _direction(rows))
    with pytest.raises(InvalidArgument, match="classes is only for PyTorch modules") as info:
        package_model(clf, rows[:5], classes=["a", "b"])
    assert info.value.details["field"] == "classes"


def _indices_model(columns: int = 3) -> bytes:
    """scores (n, columns) → ``label``: the argmax as an index, as a network exports it."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["scores"]),
            helper.make_node("ArgMax", ["x"], ["label"], axis=1, keepdims=0),
        ],
        "indices",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", columns])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", columns]),
        ],
    )
    return bytes(
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8
        ).SerializeToString()
    )


@pytest.mark.parametrize(
    ("classes", "datatype"),
    [(["a", "b", "c"], "BYTES"), ([3, 7, 9], "INT64"), ([0.5, 1.5, 2.5], "FP64"), ([-1, 0, 1], "INT64")],
)
def test_label_classes_turns_indices_into_labels(classes: list[Any], datatype: str) -> None:
    data = label_classes(_indices_model(), classes, scores="scores", label_from="indices")
    signature = signature_of(parse_onnx(data))
    assert [(o.name, o.datatype, o.classes) for o in signature.outputs] == [
        ("label", datatype, None),
        ("scores", "FP32", tuple(classes)),
    ]
    x = np.asarray([[0, 1, 0], [5, 0, 0], [0, 0, 2]], np.float32)
    model = OnnxModel(data)
    assert model.signature == signature  # ONNX Runtime reads the same classes
    assert model.run({"x": x})["label"].tolist() == [classes[1], classes[0], classes[2]]


def test_recorded_classes_survive_a_round_trip_through_the_stored_signature() -> None:
    data = label_classes(_indices_model(), ["x", "y", "z"], scores="scores", label_from="indices")
    signature = signature_of(parse_onnx(data))
    stored = json.loads(json.dumps(signature.to_dict()))
    assert stored["outputs"][1]["classes"] == ["x", "y", "z"]
    assert "classes" not in stored["outputs"][0]
    assert Signature.from_dict(stored) == signature
    assert Signature.from_dict(stored).output_classes == {"scores": ("x", "y", "z")}


def _with_metadata(data: bytes, value: str) -> bytes:
    import onnx

    proto = onnx.load_model_from_string(data)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CLASSES_KEY, value
    return bytes(proto.SerializeToString())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "is not valid JSON"),
        ('["a", "b", "c"]', "must be a JSON object"),
        ('{"nope": ["a", "b", "c"]}', "the model has no output 'nope'"),
        ('{"label": ["a", "b", "c"]}', "cannot have classes"),
        ('{"scores": ["a", "b"]}', "lists 2 classes, but output 'scores' has 3 columns"),
        ('{"scores": ["a", "a", "b"]}', "must be distinct; 'a' appear more than once"),
        ('{"scores": ["a", 1, true]}', "must all be text, all integers"),
        ('{"scores": "abc"}', "must be a list of class labels"),
    ],
)
def test_classes_written_by_hand_are_checked_at_registration(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        package_model(_with_metadata(_indices_model(), value))
    assert info.value.details["field"].startswith(f"metadata_props['{CLASSES_KEY}']")


def test_classes_written_by_hand_are_taken_when_they_fit() -> None:
    package = package_model(_with_metadata(_indices_model(), '{"scores": ["low", "mid", "high"]}'))
    assert package.signature.outputs[1] == TensorSpec(
        "scores", "FP32", (-1, 3), classes=("low", "mid", "high")
    )


def test_class_keys_are_the_json_spelling_of_the_label() -> None:
    assert [class_key(v) for v in ("east", 3, 2.5, True, False)] == ["east", "3", "2.5", "true", "false"]
