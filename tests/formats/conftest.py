"""Small fitted models, built once per session: conversion is what these tests exercise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from aiaas.formats import ModelPackage, package_model

Array = np.ndarray[Any, Any]


@pytest.fixture(scope="session")
def iris() -> tuple[Array, Array]:
    x, y = load_iris(return_X_y=True)
    return x, y


@pytest.fixture(scope="session")
def iris_pipeline(iris: tuple[Array, Array]) -> Pipeline:
    x, y = iris
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)


@pytest.fixture(scope="session")
def iris_package(iris: tuple[Array, Array], iris_pipeline: Pipeline) -> ModelPackage:
    return package_model(iris_pipeline, iris[0][:5])
