"""Fixtures for the inference server: fitted models, and one real server per database.

Starting the server costs an ONNX Runtime import, so the end-to-end tests share one server
per database backend (session scope, a fresh home and database of its own) and each test
uses deployment and model names of its own, so that tests stay independent of each other
and of their order. Tests that break the server (a dead DB) start their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aiaas.config import Settings
from aiaas.deployments import DeploymentService
from aiaas.formats import ModelPackage, package_model
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore, open_artifact_store
from tests._auth import AUTH
from tests._servers import ServerProcess, free_port, spawn, wait_until
from tests.conftest import DATABASES, fresh_database, server_environment

#: The body limit of the shared server: far above any test request, small enough to exceed.
MAX_REQUEST_BYTES = 32 * 1024


@dataclass(frozen=True)
class IrisModel:
    """A fitted scikit-learn pipeline and its ONNX package."""

    pipeline: Any
    package: ModelPackage

    def proba(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(self.pipeline.predict_proba(x))

    def labels(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.asarray(self.pipeline.predict(x))


@dataclass(frozen=True)
class TorchModel:
    module: Any
    package: ModelPackage

    def forward(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        import torch

        with torch.no_grad():
            return np.asarray(self.module(torch.from_numpy(x)).numpy())


@pytest.fixture(scope="session")
def iris_x() -> np.ndarray[Any, Any]:
    from sklearn.datasets import load_iris

    x, _ = load_iris(return_X_y=True)
    return np.asarray(x, dtype=np.float32)


@pytest.fixture(scope="session")
def iris_model(iris_x: np.ndarray[Any, Any]) -> Callable[[float], IrisModel]:
    """Iris classifiers by regularisation ``C``: different C, different predictions and digest."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, y = load_iris(return_X_y=True)
    cache: dict[float, IrisModel] = {}

    def make(c: float) -> IrisModel:
        if c not in cache:
            pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
            pipeline.fit(iris_x, y)
            cache[c] = IrisModel(pipeline, package_model(pipeline, iris_x[:3]))
        return cache[c]

    return make


@pytest.fixture(scope="session")
def torch_model() -> TorchModel:
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    example = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    return TorchModel(module, package_model(module, example))


@pytest.fixture(scope="session", params=DATABASES)
def serving_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like ``database_url``, but one per session, for the shared server."""
    with fresh_database(request.param, tmp_path_factory.mktemp("serving-db"), migrated=True) as url:
        yield url


@dataclass
class Stack:
    """A running inference server and in-process handles on the state it serves."""

    url: str
    home: Path
    db: Database
    registry: Registry
    deployments: DeploymentService
    server: ServerProcess
    http: httpx.Client

    def corrupt(self, digest: str) -> None:
        """Flip the stored bytes of a blob in place, as a disk error would."""
        corrupt_blob(self.registry, digest)

    def wait_served(self, deployment: str, version: int) -> None:
        """Wait until the server answers for ``deployment`` with ``version`` as its primary
        (``versions`` lists the primary first, then any canaries and the shadow)."""

        def served() -> bool:
            r = self.http.get(f"/v2/models/{deployment}")
            return r.status_code == 200 and r.json()["versions"][:1] == [str(version)]

        wait_until(served, timeout=30, what=f"{deployment!r} to serve version {version}")


def corrupt_blob(registry: Registry, digest: str) -> None:
    store = registry.artifacts
    assert isinstance(store, FileArtifactStore)
    path = store.path(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def artifact_root(home: Path) -> str:
    """Where a server with ``AIAAS_HOME=home`` and no ``AIAAS_ARTIFACT_ROOT`` keeps blobs."""
    return Settings(home=home).resolved_artifact_root()


@pytest.fixture(scope="session")
def stack(serving_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One inference server per DB backend, started on an empty home before any model exists."""
    home = tmp_path_factory.mktemp("serving-home")
    port = free_port()
    env = {
        **server_environment(home, serving_database_url),
        "AIAAS_INFERENCE_PORT": str(port),
        "AIAAS_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
    }
    url = f"http://127.0.0.1:{port}"
    server = spawn(
        ["-m", "aiaas.serving"],
        env=env,
        ready_url=f"{url}/v2/health/ready",
        log=home.parent / "serve.log",
    )
    db = Database(serving_database_url)
    db.upgrade()
    registry = Registry(db, open_artifact_store(artifact_root(home)))
    try:
        with httpx.Client(base_url=url, timeout=30, headers=AUTH) as http:
            yield Stack(
                url=url,
                home=home,
                db=db,
                registry=registry,
                deployments=DeploymentService(registry),
                server=server,
                http=http,
            )
    finally:
        server.stop()
        db.dispose()
