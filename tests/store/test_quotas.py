"""Per-project quotas in the store: counted in the creating transaction, race-safe, naming the quota.

The API tests (``tests/api/inprocess/test_quotas.py``) go through the services; here the
repositories are driven directly, on both databases, to show what only they can: concurrent
creations that each fit alone but not together do not both pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiaas.entities.jobs import NewJob
from aiaas.errors import InvalidArgument, NotFound, ResourceExhausted
from aiaas.schemas import DeploymentSettings
from aiaas.store import Database, open_artifact_store
from aiaas.store.jobs import JobStore
from aiaas.store.models import ModelStore
from aiaas.store.projects import ProjectStore
from aiaas.store.quotas import DEFAULT_MAX_REPLICAS


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Database]:
    database = Database(migrated_database_url)
    ProjectStore(database).create("team-q")
    ProjectStore(database).create("team-free")
    yield database
    database.dispose()


def _job(workers: int = 1) -> NewJob:
    return NewJob(spec={}, dataset="d", dataset_version=1, register_as="m", workers=workers, epochs=1)


def _version(store: ModelStore, name: str, size: int) -> int:
    return store.add_version(
        name,
        flavor="onnx",
        artifact_digest=f"{size:064x}",
        artifact_size_bytes=size,
        signature={},
        example={},
        metrics={},
        params={},
        description="",
        source="",
        parent_version=None,
        lineage=None,
    ).version


def test_quotas_are_set_shown_and_lifted(db: Database) -> None:
    projects = ProjectStore(db)
    assert projects.get("team-q").quotas.max_jobs is None
    projects.set_quotas("team-q", {"max_jobs": 2, "max_bytes": 10})
    projects.set_quotas("team-q", {"max_slots": 3})  # the others are kept
    quotas = projects.get("team-q").quotas
    assert (quotas.max_jobs, quotas.max_slots, quotas.max_replicas, quotas.max_bytes) == (2, 3, None, 10)
    projects.set_quotas("team-q", {"max_bytes": None})
    assert projects.get("team-q").quotas.max_bytes is None
    with pytest.raises(InvalidArgument, match="max_jobs must be an integer >= 0"):
        projects.set_quotas("team-q", {"max_jobs": -1})
    with pytest.raises(InvalidArgument, match="unknown quota 'max_cpus'"):
        projects.set_quotas("team-q", {"max_cpus": 1})
    with pytest.raises(NotFound):
        projects.set_quotas("nope", {"max_jobs": 1})


def test_concurrent_submissions_pass_only_as_many_as_fit(db: Database, tmp_path: Path) -> None:
    ProjectStore(db).set_quotas("team-q", {"max_jobs": 3})
    jobs = JobStore(db, open_artifact_store(str(tmp_path / "artifacts")), project="team-q")
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def submit() -> None:
        start.wait()
        try:
            jobs.create(_job())
            outcomes.append("queued")
        except ResourceExhausted as exc:
            assert exc.details["quota"] == "max_jobs"
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["queued"] * 3 + ["refused"] * 5
    assert ProjectStore(db).usage("team-q").jobs == 3


def test_the_slots_quota_counts_workers_and_a_finished_job_frees_them(db: Database, tmp_path: Path) -> None:
    ProjectStore(db).set_quotas("team-q", {"max_slots": 3})
    jobs = JobStore(db, open_artifact_store(str(tmp_path / "artifacts")), project="team-q")
    first = jobs.create(_job(workers=2))
    with pytest.raises(ResourceExhausted) as refused:
        jobs.create(_job(workers=2))
    error = refused.value
    assert "max_slots = 3" in error.message and "2 in use" in error.message, error.message
    assert error.details == {
        "field": "max_slots",
        "quota": "max_slots",
        "limit": 3,
        "usage": 2,
        "requested": 2,
        "project": "team-q",
    }
    jobs.create(_job(workers=1))  # fits exactly
    jobs.cancel(first.id)
    jobs.create(_job(workers=2))
    # Another project is not limited by this one's quota.
    JobStore(db, open_artifact_store(str(tmp_path / "artifacts")), project="team-free").create(
        _job(workers=8)
    )


def test_the_bytes_quota_counts_model_versions(db: Database) -> None:
    ProjectStore(db).set_quotas("team-q", {"max_bytes": 100})
    models = ModelStore(db, project="team-q")
    _version(models, "iris", 60)
    with pytest.raises(ResourceExhausted, match="max_bytes = 100") as refused:
        _version(models, "iris", 41)
    assert refused.value.details["usage"] == 60 and refused.value.details["requested"] == 41
    assert [v.version for v in models.list_versions("iris")] == [1]  # nothing was kept
    _version(models, "iris", 40)
    assert ProjectStore(db).usage("team-q").bytes == 100
    # Lowering a quota below the usage deletes nothing; it refuses what adds to it.
    ProjectStore(db).set_quotas("team-q", {"max_bytes": 10})
    assert len(models.list_versions("iris")) == 2


def test_the_replica_default_matches_the_deployment_settings() -> None:
    assert DeploymentSettings().max_replicas == DEFAULT_MAX_REPLICAS
