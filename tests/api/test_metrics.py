"""The control plane's ``/metrics``: jobs by status, running jobs' progress, slots in use,
and its own CPU and memory, in Prometheus text that prometheus_client's parser reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aiaas.api.metrics import metrics_registry
from aiaas.config import Settings
from aiaas.deployments import DeploymentService
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore
from aiaas.store.projects import ProjectStore
from aiaas.training import JOB_STATUSES, JobStore, NewJob
from tests.api.conftest import API_KEY, ControlPlane


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class _Services:
    """What :func:`metrics_registry` reads of the app's services."""

    def __init__(self, jobs: JobStore, slots: int) -> None:
        self.jobs = self.all_jobs = jobs
        self.settings = Settings(training_slots=slots)
        self.deployments = DeploymentService(Registry(jobs.db, jobs.artifacts))  # none: no drift gauges
        self.projects = ProjectStore(jobs.db)

    def for_project(self, project: str) -> _Services:
        return self


@pytest.fixture
def jobs(migrated_database_url: str, home: Path) -> Iterator[JobStore]:
    db = Database(migrated_database_url)
    db.upgrade()
    yield JobStore(db, FileArtifactStore(home / "artifacts"))
    db.dispose()


def _new(jobs: JobStore, model: str, workers: int, epochs: int) -> int:
    spec = {"dataset": "d", "model": {"family": "mlp"}}
    new = NewJob(spec=spec, dataset="d", dataset_version=1, register_as=model, workers=workers, epochs=epochs)
    return jobs.create(new).id


def test_jobs_by_status_and_the_progress_of_running_ones(jobs: JobStore) -> None:
    registry = metrics_registry(_Services(jobs, slots=4))  # type: ignore[arg-type]
    running = _new(jobs, "churn", workers=2, epochs=8)
    _new(jobs, "waiting", workers=1, epochs=3)
    assert jobs.claim(running)
    for epoch in (1, 2, 3):
        jobs.record_epoch(running, epoch, {"loss": 1.0 / epoch})

    found = samples(generate_latest(registry).decode())
    by_status = {
        dict(labels)["status"]: value for (name, labels), value in found.items() if name == "aiaas_jobs"
    }
    assert by_status == {status: (1.0 if status in ("queued", "running") else 0.0) for status in JOB_STATUSES}
    progress = found[
        ("aiaas_job_progress_ratio", (("job", str(running)), ("kind", "train"), ("model", "churn")))
    ]
    assert progress == pytest.approx(3 / 8)
    assert found[("aiaas_training_slots", (("state", "used"),))] == 2
    assert found[("aiaas_training_slots", (("state", "total"),))] == 4

    jobs.succeed(running, 1)
    found = samples(generate_latest(registry).decode())
    assert not [labels for name, labels in found if name == "aiaas_job_progress_ratio"], "no job runs now"
    assert found[("aiaas_jobs", (("status", "succeeded"),))] == 1
    assert found[("aiaas_training_slots", (("state", "used"),))] == 0


def test_the_server_reports_its_own_cpu_and_memory_behind_its_key(control_plane: ControlPlane) -> None:
    url = f"{control_plane.url}/metrics"
    assert httpx.get(url).status_code == 401, "an API key guards the metrics like the API"
    response = httpx.get(url, headers={"authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    process = psutil.Process(control_plane.server.proc.pid)
    rss = process.memory_info().rss
    assert found[("process_resident_memory_bytes", ())] == pytest.approx(rss, rel=0.25)
    cpu = process.cpu_times()
    assert 0 < found[("process_cpu_seconds_total", ())] <= cpu.user + cpu.system + 0.05
    assert {dict(labels)["status"] for name, labels in found if name == "aiaas_jobs"} == set(JOB_STATUSES)
