"""The bundled samples: registered like uploads, with their shape, task and metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import datasets as sk

from aiaas.datasets import SAMPLES, DatasetService
from aiaas.errors import InvalidArgument
from tests.datasets.conftest import stored_blobs

EXPECTED = {
    "iris": (150, 4, "classification", 3),
    "wine": (178, 13, "classification", 3),
    "breast_cancer": (569, 30, "classification", 2),
    "digits": (1797, 64, "classification", 10),
    "diabetes": (442, 10, "regression", None),
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_becomes_a_version_with_features_and_target(datasets: DatasetService, sample: str) -> None:
    rows, features, task, classes = EXPECTED[sample]
    v = datasets.create_sample_version(sample, sample, seed=1)
    assert (v.row_count, len(v.schema), v.target, v.task, v.format) == (
        rows,
        features + 1,
        "target",
        task,
        "csv",
    )
    assert v.metadata["sample"] == sample
    assert v.description == SAMPLES[sample].description
    loaded = datasets.load(sample)
    x, names = loaded.features()
    expected_x, expected_y = getattr(sk, f"load_{sample}")(return_X_y=True)
    assert x.shape == (rows, features) and len(names) == features
    np.testing.assert_allclose(x, expected_x.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(loaded.labels(), expected_y)
    if classes is not None:
        assert len(v.metadata["target_names"]) == classes
        assert v.split["stratified"]


def test_digits_carry_their_image_shape(datasets: DatasetService) -> None:
    v = datasets.create_sample_version("digits", "digits")
    assert v.metadata["image_shape"] == [1, 8, 8]
    x, names = datasets.load("digits").features()
    assert names[:2] == ["pixel_0_0", "pixel_0_1"]
    assert x.reshape(-1, 1, 8, 8).shape == (1797, 1, 8, 8)


def test_the_same_sample_twice_is_one_version(datasets: DatasetService) -> None:
    first = datasets.create_sample_version("iris", "iris")
    assert datasets.create_sample_version("iris", "iris") == first
    assert datasets.create_sample_version("iris", "iris", seed=9).version == 2


def test_unknown_sample_lists_the_valid_ones(datasets: DatasetService, artifacts_root: Path) -> None:
    with pytest.raises(
        InvalidArgument, match=r"sample must be one of \['breast_cancer', 'diabetes', 'digits'"
    ) as info:
        datasets.create_sample_version("x", "mnist")
    assert info.value.details["field"] == "sample"
    assert datasets.list_datasets() == [] and stored_blobs(artifacts_root) == []
