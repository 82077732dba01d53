"""scikit-learn's bundled datasets as plain train/validation arrays, split once per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris

from aiaas.schemas import JobSpec
from aiaas.schemas.training import TORCH_FAMILIES
from aiaas.training import TrainingData


def split(x: Any, y: Any, task: str, val_fraction: float = 0.25, **kwargs: Any) -> TrainingData:
    order = np.random.default_rng(0).permutation(len(x))
    x, y = np.asarray(x)[order], np.asarray(y)[order]
    cut = int(len(x) * (1 - val_fraction))
    names = [f"f{i}" for i in range(x.shape[1])]
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:], names, task, **kwargs)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine, spinning OpenMP threads make tiny
    models ten times slower, and results must not depend on the thread count anyway."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def iris() -> TrainingData:
    x, y = load_iris(return_X_y=True)
    return split(x, y, "classification", classes=["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="session")
def cancer() -> TrainingData:
    x, y = load_breast_cancer(return_X_y=True)
    return split(x, y, "classification", classes=[0, 1])


@pytest.fixture(scope="session")
def digits() -> TrainingData:
    x, y = load_digits(return_X_y=True)
    return split(x, y, "classification", classes=list(range(10)), image_shape=(1, 8, 8))


@pytest.fixture(scope="session")
def diabetes() -> TrainingData:
    x, y = load_diabetes(return_X_y=True)
    return split(x, y, "regression")


def spec(**fields: Any) -> JobSpec:
    """A valid spec with the given fields over small defaults (epochs and batch size only for
    the PyTorch families: the scikit-learn ones refuse fields they do not use)."""
    family = fields.get("model", {}).get("family")
    small = {"epochs": 3, "batch_size": 32} if family in TORCH_FAMILIES else {}
    return JobSpec.parse({"dataset": "d", **small, **fields})
