from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.training import TrainingData


def _data(**change: Any) -> TrainingData:
    rng = np.random.default_rng(0)
    fields: dict[str, Any] = {
        "x_train": rng.normal(size=(20, 4)),
        "y_train": np.arange(20) % 2,
        "x_val": rng.normal(size=(6, 4)),
        "y_val": np.arange(6) % 2,
        "feature_names": ["a", "b", "c", "d"],
        "task": "classification",
        "classes": ["no", "yes"],
        "image_shape": None,
    }
    fields.update(change)
    return TrainingData(**fields)


def test_arrays_are_converted_to_the_trainer_dtypes() -> None:
    data = _data()
    data.check()
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    regression = _data(task="regression", classes=None, y_train=np.linspace(0, 1, 20), y_val=np.ones(6))
    regression.check()
    assert regression.y_train.dtype == np.float32 and regression.n_classes == 1


BAD = [
    ({"task": "ranking"}, "task"),
    ({"x_train": np.zeros((0, 4))}, "x_train"),
    ({"x_val": np.zeros((6, 3))}, "x_val"),
    ({"x_train": np.full((20, 4), np.nan)}, "x_train"),
    ({"feature_names": ["a"]}, "feature_names"),
    ({"y_train": np.zeros(19)}, "y_train"),
    ({"y_val": np.full(6, 2)}, "y_val"),
    ({"classes": ["only"], "y_train": np.zeros(20), "y_val": np.zeros(6)}, "classes"),
    ({"image_shape": (1, 3, 3)}, "image_shape"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_arrays_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _data(**change).check()
    assert info.value.details["field"] == field
    assert field in info.value.message


@pytest.mark.parametrize(
    ("classes", "labels"),
    [
        ([0, 1, 2], [0, 1, 2]),
        ([3.0, 7.0], [3, 7]),
        (["a", "b"], None),
        ([0.5, 1.5], None),
        ([True, False], None),
        ([3, 1], None),
    ],
)
def test_integer_labels_only_when_every_class_is_an_integer(classes: list[Any], labels: Any) -> None:
    data = _data(classes=classes, y_train=np.arange(20) % len(classes), y_val=np.arange(6) % len(classes))
    got = data.integer_labels()
    assert (got is None and labels is None) or (got is not None and got.tolist() == labels)
