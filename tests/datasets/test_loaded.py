"""What a trainer gets from ``DatasetService.load``: features, labels, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from aiaas.datasets import DatasetService, task_hint
from aiaas.datasets.tabular import read_table
from aiaas.errors import InvalidArgument
from tests.datasets.conftest import CSV


def test_features_are_float32_without_the_target(datasets: DatasetService) -> None:
    datasets.create_version("d", CSV, filename="d.csv", target="species")
    loaded = datasets.load("d")
    x, names = loaded.features(columns=["length", "flag"])
    assert names == ["length", "flag"] and x.dtype == np.float32
    np.testing.assert_array_equal(x[:3], [[1.5, 1.0], [2.5, 0.0], [3.0, 1.0]])
    assert loaded.labels().tolist()[:3] == ["a", "b", "a"]
    assert loaded.labels().dtype.kind == "U"
    assert (loaded.target, loaded.task, loaded.row_count) == ("species", "classification", 10)


def test_missing_feature_values_are_refused_unless_allowed(datasets: DatasetService) -> None:
    datasets.create_version("d", CSV, filename="d.csv", target="species")
    loaded = datasets.load("d")
    with pytest.raises(InvalidArgument, match="feature column 'width' has 1 missing values") as info:
        loaded.features()
    assert info.value.details["column"] == "width"
    x, names = loaded.features(allow_missing=True)
    assert names == ["length", "width", "flag"]
    assert np.isnan(x[1, 1]) and np.isnan(x[:, 1]).sum() == 1


def test_non_numeric_feature_is_refused_naming_the_column(datasets: DatasetService) -> None:
    datasets.create_version("d", CSV, filename="d.csv")  # no target: any columns are fine
    loaded = datasets.load("d")
    with pytest.raises(InvalidArgument, match="feature column 'species' has dtype string") as info:
        loaded.features("length", allow_missing=True)
    assert info.value.details == {"field": "columns", "column": "species", "dtype": "string"}
    with pytest.raises(InvalidArgument, match="registered without a target"):
        loaded.features()
    with pytest.raises(InvalidArgument, match="has no column 'nope'"):
        loaded.labels("nope")
    np.testing.assert_array_equal(loaded.labels("length")[:2], [1.5, 2.5])


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        (b"y\n1\n2\n3\n1\n", "classification"),
        (b"y\nx\ny\nx\n", "classification"),
        (b"y\ntrue\nfalse\ntrue\n", "classification"),
        (b"y\n1.5\n2.5\n3.5\n", "regression"),
        (b"y\n" + b"".join(f"{i}\n".encode() for i in range(50)), "regression"),
    ],
)
def test_task_hint_from_the_target_column(csv: bytes, expected: str) -> None:
    assert task_hint(read_table(csv, "csv").column("y")) == expected
