"""Small trained networks and services on a fresh database, shared by the optimization tests.

The data are scikit-learn's digits with the user's own labels (text: ``zero`` .. ``nine``), so
every test can check that an optimized classifier still answers with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from aiaas.datasets import DatasetService
from aiaas.optimize import OptimizationService
from aiaas.registry import Registry
from aiaas.schemas import JobSpec
from aiaas.store import Database, FileArtifactStore
from aiaas.training import JobStore, MemoryReporter, TrainingData, TrainingResult, TrainingService, train

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread (a 2-core machine shared with other tests)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits() -> TrainingData:
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(len(x) * 0.8)
    names = [f"pixel_{i}" for i in range(64)]
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:], names, "classification", NAMES, (1, 8, 8))


def _trained(data: TrainingData, model: dict[str, object], epochs: int) -> tuple[JobSpec, TrainingResult]:
    spec = JobSpec.parse({"dataset": "digits", "model": model, "epochs": epochs, "seed": 1})
    return spec, train(spec, data, MemoryReporter(), threads=1)


@pytest.fixture(scope="session")
def mlp(digits: TrainingData) -> tuple[JobSpec, TrainingResult]:
    return _trained(digits, {"family": "mlp", "hidden_sizes": [64, 32]}, 8)


@pytest.fixture(scope="session")
def cnn(digits: TrainingData) -> tuple[JobSpec, TrainingResult]:
    return _trained(digits, {"family": "cnn", "channels": [8, 16], "hidden_sizes": [32]}, 6)


def digits_csv(rows: int | None = None) -> bytes:
    """The digits as CSV with text labels: what a user uploads."""
    x, y = load_digits(return_X_y=True)
    x, y = x[:rows], y[:rows]
    header = ",".join([*(f"pixel_{i}" for i in range(64)), "digit"])
    lines = [
        header,
        *(",".join([*(str(int(v)) for v in row), NAMES[t]]) for row, t in zip(x, y, strict=True)),
    ]
    return ("\n".join(lines) + "\n").encode()


class Services:
    def __init__(self, url: str, root: Path) -> None:
        self.db = Database(url)
        self.db.upgrade()
        artifacts = FileArtifactStore(root)
        self.registry = Registry(self.db, artifacts)
        self.datasets = DatasetService(self.db, artifacts)
        self.jobs = JobStore(self.db, artifacts)
        self.training = TrainingService(self.jobs, self.datasets, self.registry, artifacts, slots=2)
        self.optimization = OptimizationService(self.training)

    def run_training(self, spec: dict[str, object]) -> int:
        """Submit and run a training job in this process; the registered version's number."""
        job = self.training.submit(JobSpec.parse(spec))
        assert self.jobs.claim(job.id)
        version = self.training.run(job.id)
        assert version is not None
        return version.version


@pytest.fixture
def services(home: Path) -> Iterator[Services]:
    s = Services(f"sqlite:///{home / 'aiaas.db'}", home / "artifacts")
    yield s
    s.db.dispose()
