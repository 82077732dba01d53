"""A registry on a fresh database per test; small packages converted once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from aiaas.formats import ModelPackage, package_model
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore

#: Rows of the stored input example: every tenth iris flower, all three species.
EXAMPLE_ROWS = 15


@pytest.fixture
def registry(migrated_database_url: str, home: Path) -> Iterator[Registry]:
    db = Database(migrated_database_url)
    db.upgrade()
    yield Registry(db, FileArtifactStore(home / "artifacts"))
    db.dispose()


@pytest.fixture(scope="session")
def iris_package() -> ModelPackage:
    x, y = load_iris(return_X_y=True)
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)
    return package_model(model, x[::10])


@pytest.fixture(scope="session")
def retrained_package() -> ModelPackage:
    """Same signature as ``iris_package``, trained differently: it predicts differently."""
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=0.01, max_iter=500).fit(x, y)
    return package_model(model, x[::10])


@pytest.fixture(scope="session")
def regressor_package() -> ModelPackage:
    """A different signature altogether."""
    x, y = load_diabetes(return_X_y=True)
    return package_model(LinearRegression().fit(x, y), x[:4].astype(np.float32))
