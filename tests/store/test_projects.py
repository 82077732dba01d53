"""Projects in the metadata database: migration 0013 and the repositories' scoping.

The migration is tested on a database holding data written at revision 0011: every row ends
up in the project ``default`` and reads back through the repositories as before, and the names
that were unique on their own become unique per project.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from aiaas.entities.alerts import RuleSpec
from aiaas.errors import AlreadyExists, InvalidArgument, NotFound
from aiaas.store import Database, FileArtifactStore
from aiaas.store.alerts import AlertStore
from aiaas.store.datasets import DatasetStore
from aiaas.store.jobs import JobStore
from aiaas.store.models import ModelStore
from aiaas.store.projects import ProjectStore
from aiaas.store.tables import ModelRow, ModelVersionCounterRow, ProjectRow, utcnow

_VERSION_COLUMNS = (
    "model_id, version, status, flavor, artifact_digest, artifact_size_bytes, signature, example, "
    "metrics, params, description, source, created_at"
)


def _at_0011(database: Database) -> None:
    database.upgrade()
    database.migrate("0011", down=True)


def _write_0011_data(database: Database) -> None:
    """One row of each owned kind, as a platform at revision 0011 wrote them."""
    now = utcnow()
    statements = [
        "INSERT INTO models (id, name, description, tags, created_at, updated_at) "
        "VALUES (1, 'iris', 'old', '{}', :t, :t)",
        f"INSERT INTO model_versions ({_VERSION_COLUMNS}) "
        "VALUES (1, 3, 'ready', 'onnx', :d, 1, '{}', '{}', '{}', '{}', '', '', :t)",
        "INSERT INTO model_version_counters (model, last_version) VALUES ('iris', 3)",
        "INSERT INTO deployments (id, name, model_id, version, created_at, updated_at) "
        "VALUES (1, 'iris-dep', 1, 3, :t, :t)",
        "INSERT INTO datasets (id, name, description, tags, created_at, updated_at) "
        "VALUES (1, 'flowers', '', '{}', :t, :t)",
        "INSERT INTO training_jobs (id, status, spec, dataset, dataset_version, register_as, workers, "
        "launcher, epochs, attempts, cancel_requested, error, created_at, updated_at) "
        "VALUES (1, 'queued', '{}', 'flowers', 1, 'iris', 1, 'scheduler', 1, 0, false, '', :t, :t)",
        "INSERT INTO alert_rules (id, name, deployment, metric, op, threshold, window_s, for_s, labels, "
        "description, created_at, state) "
        "VALUES (1, 'slow', 'iris-dep', 'latency_p99', '>', 1, 60, 0, '{}', '', :t, 'inactive')",
        "INSERT INTO alert_webhooks (id, name, url, secret, created_at) "
        "VALUES (1, 'hook', 'http://x', 's', :t)",
        "INSERT INTO alert_silences (id, rule, ends_at, comment, created_at) VALUES (1, 'slow', :t, '', :t)",
    ]
    with database.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"t": now, "d": "0" * 64})
        if not database.is_sqlite:  # the ids above were given: move the sequences past them
            for table in (
                "models",
                "model_versions",
                "deployments",
                "datasets",
                "training_jobs",
                "alert_rules",
                "alert_webhooks",
                "alert_silences",
            ):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )


@pytest.fixture
def migrated(database_url: str) -> Iterator[Database]:
    """A database with 0011's data, then upgraded to the head."""
    database = Database(database_url)
    try:
        _at_0011(database)
        _write_0011_data(database)
        database.upgrade()
        yield database
    finally:
        database.dispose()


def test_migration_puts_existing_data_in_the_default_project(migrated: Database, home: object) -> None:
    with migrated.engine.connect() as conn:
        for table in (
            "models",
            "deployments",
            "datasets",
            "training_jobs",
            "alert_rules",
            "alert_webhooks",
            "alert_silences",
        ):
            projects = conn.execute(text(f"SELECT DISTINCT project FROM {table}")).scalars().all()
            assert projects == ["default"], table
    with migrated.transaction() as s:
        assert [p.name for p in s.scalars(select(ProjectRow))] == ["default"]
        counter = s.get(ModelVersionCounterRow, ("default", "iris"))
        assert counter is not None and counter.last_version == 3
    models = ModelStore(migrated)
    assert models.get_model("iris").description == "old"
    assert [v.version for v in models.list_versions("iris")] == [3]
    assert [d.name for d in DatasetStore(migrated).list_datasets()] == ["flowers"]
    assert AlertStore(migrated).get_rule("slow").deployment == "iris-dep"
    assert [w.name for w in AlertStore(migrated).webhooks()] == ["hook"]
    assert len(AlertStore(migrated).silences()) == 1


def test_after_the_migration_names_are_unique_per_project(migrated: Database) -> None:
    ProjectStore(migrated).create("team-a")
    with migrated.transaction() as s:
        s.add(ModelRow(project="team-a", name="iris", description="", tags={}))
    with pytest.raises(IntegrityError), migrated.transaction() as s:
        s.add(ModelRow(project="default", name="iris", description="", tags={}))


def test_a_new_version_of_a_migrated_model_keeps_its_numbering(migrated: Database, tmp_path: object) -> None:
    version = ModelStore(migrated).add_version(
        "iris",
        flavor="onnx",
        artifact_digest="1" * 64,
        artifact_size_bytes=1,
        signature={},
        example={},
        metrics={},
        params={},
        description="",
        source="",
        parent_version=None,
        lineage=None,
    )
    assert version.version == 4


def test_downgrade_back_to_0011_keeps_the_data(migrated: Database) -> None:
    migrated.migrate("0011", down=True)
    with migrated.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM models")).scalars().all() == ["iris"]
        assert conn.execute(text("SELECT last_version FROM model_version_counters")).scalar() == 3
    migrated.upgrade()


# -- the repositories, scoped --------------------------------------------------------------


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Database]:
    database = Database(migrated_database_url)
    ProjectStore(database).create("team-a")
    ProjectStore(database).create("team-b")
    yield database
    database.dispose()


def _version(store: ModelStore, name: str, digest: str) -> int:
    return store.add_version(
        name,
        flavor="onnx",
        artifact_digest=digest,
        artifact_size_bytes=1,
        signature={},
        example={},
        metrics={},
        params={},
        description="",
        source="",
        parent_version=None,
        lineage=None,
    ).version


def test_models_of_two_projects_share_a_name_and_nothing_else(db: Database) -> None:
    a, b = ModelStore(db, project="team-a"), ModelStore(db, project="team-b")
    assert _version(a, "iris", "a" * 64) == 1
    assert _version(b, "iris", "b" * 64) == 1  # numbered per project
    assert a.get_version("iris", 1).artifact_digest == "a" * 64
    assert b.get_version("iris", 1).artifact_digest == "b" * 64
    _version(a, "only-a", "c" * 64)
    with pytest.raises(NotFound):
        b.get_model("only-a")
    assert [m.name for m in b.list_models()] == ["iris"]
    with pytest.raises(NotFound):
        b.delete_model("only-a")
    assert a.get_model("only-a").name == "only-a"


def test_every_project_store_hides_the_others_rows(db: Database, tmp_path: object) -> None:
    from pathlib import Path

    artifacts = FileArtifactStore(Path(str(tmp_path)) / "artifacts")
    jobs_a = JobStore(db, artifacts, project="team-a")
    from aiaas.entities.jobs import NewJob

    job = jobs_a.create(NewJob(spec={}, dataset="d", dataset_version=1, register_as="m", workers=1, epochs=1))
    jobs_b = JobStore(db, artifacts, project="team-b")
    with pytest.raises(NotFound):
        jobs_b.get(job.id)
    with pytest.raises(NotFound):
        jobs_b.cancel(job.id)
    assert jobs_b.list_jobs() == []
    assert [j.id for j in JobStore(db, artifacts, project=None).queued()] == [job.id]
    assert jobs_a.get(job.id).project == "team-a"

    rules_a, rules_b = AlertStore(db, project="team-a"), AlertStore(db, project="team-b")
    rules_a.create_rule(RuleSpec(name="slow", metric="latency_p99", op=">", threshold=1, window_s=60))
    rules_b.create_rule(RuleSpec(name="slow", metric="error_rate", op=">", threshold=1, window_s=60))
    with pytest.raises(AlreadyExists):
        rules_a.create_rule(RuleSpec(name="slow", metric="cpu", op=">", threshold=1, window_s=60))
    assert rules_b.get_rule("slow").metric == "error_rate"
    rules_b.delete_rule("slow")
    assert rules_a.get_rule("slow").metric == "latency_p99"
    assert [r.project for r in AlertStore(db, project=None).list_rules()] == ["team-a"]
    with pytest.raises(InvalidArgument):
        AlertStore(db, project=None).create_rule(
            RuleSpec(name="x", metric="cpu", op=">", threshold=1, window_s=60)
        )
    hook = rules_a.create_webhook("hook", "http://x", "s")
    assert rules_b.webhooks() == [] and rules_b.webhook(hook.id) is None
    silence = rules_a.create_silence(
        rule="slow", deployment=None, ends_at=utcnow() + timedelta(hours=1), comment=""
    )
    assert rules_b.silences() == []
    with pytest.raises(NotFound):
        rules_b.delete_silence(silence.id)


def test_projects_are_created_once_with_a_valid_name(db: Database) -> None:
    store = ProjectStore(db)
    assert [p.name for p in store.list()] == ["default", "team-a", "team-b"]
    with pytest.raises(AlreadyExists):
        store.create("team-a")
    with pytest.raises(InvalidArgument, match="name must be a project name"):
        store.create("Team A")
    with pytest.raises(NotFound, match="project 'nope' not found"):
        store.get("nope")
