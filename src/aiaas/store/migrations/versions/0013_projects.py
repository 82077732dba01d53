"""Projects: a ``projects`` table, and a project on every owned row; names unique per project.

Models, datasets, training jobs, deployments, alert rules, their events, silences and
webhooks get a ``project`` column (a foreign key to ``projects.name``); every existing row
goes into the project ``default``, which this revision creates. The global unique names
become unique per project, and the version counters are kept per project and model name.

The observation tables keyed by deployment name (metric samples, drift counts, feedback,
scaling events, served state) keep that key, which is now a deployment *key*: the plain
name in ``default`` (their existing rows keep their meaning) and ``project/name`` elsewhere,
so their column is widened to 192 characters.

SQLite cannot alter constraints in place, so the tables are rebuilt (Alembic's batch
mode); the unnamed unique constraints of revisions 0001-0011 are found there through a
naming convention, and on PostgreSQL by the names it gave them (``<table>_name_key``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_DEFAULT = "default"
#: Tables whose name was unique on its own, and now is per project.
_NAMED = ("models", "deployments", "datasets", "alert_rules", "alert_webhooks")
#: Owned tables without a name of their own.
_UNNAMED = ("training_jobs", "alert_events", "alert_silences")
_KEYED = ("scaling_events", "deployment_status", "feedback", "drift_counts", "metric_samples")
#: How SQLite's reflected unnamed unique constraints are named, to drop them.
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name(table: str) -> str:
    return f"uq_{table}_name" if op.get_bind().dialect.name == "sqlite" else f"{table}_name_key"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.bulk_insert(
        sa.table("projects", sa.column("name"), sa.column("description"), sa.column("created_at", _TIME)),
        [{"name": _DEFAULT, "description": "", "created_at": datetime.now(UTC)}],
    )
    for table in (*_NAMED, *_UNNAMED):
        with op.batch_alter_table(table, naming_convention=_CONVENTION) as batch:
            batch.add_column(sa.Column("project", sa.String(63), nullable=False, server_default=_DEFAULT))
            batch.create_foreign_key(f"fk_{table}_project", "projects", ["project"], ["name"])
            batch.create_index(f"ix_{table}_project", ["project"])
            if table in _NAMED:
                batch.drop_constraint(_unique_name(table), type_="unique")
                batch.create_unique_constraint(f"uq_{table}_project_name", ["project", "name"])
    # The counters' key becomes (project, model): rebuilt, their rows copied into ``default``.
    counters = op.get_bind().execute(sa.text("SELECT model, last_version FROM model_version_counters")).all()
    op.drop_table("model_version_counters")
    counter_table = op.create_table(
        "model_version_counters",
        sa.Column("project", sa.String(63), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(counter_table, [{"project": _DEFAULT, "model": m, "last_version": n} for m, n in counters])
    for table_name in _KEYED:
        with op.batch_alter_table(table_name) as batch:
            batch.alter_column("deployment", type_=sa.String(192), existing_type=sa.String(128))


def downgrade() -> None:
    """Back to one global namespace: only possible while every row is in ``default``."""
    bind = op.get_bind()
    for table in (*_NAMED, *_UNNAMED):
        others = bind.execute(sa.text(f"SELECT count(*) FROM {table} WHERE project <> :p"), {"p": _DEFAULT})
        if others.scalar():
            raise RuntimeError(f"cannot downgrade: {table} has rows outside the project {_DEFAULT!r}")
    for table_name in _KEYED:
        with op.batch_alter_table(table_name) as batch:
            batch.alter_column("deployment", type_=sa.String(128), existing_type=sa.String(192))
    counters = bind.execute(sa.text("SELECT model, last_version FROM model_version_counters")).all()
    op.drop_table("model_version_counters")
    counter_table = op.create_table(
        "model_version_counters",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(counter_table, [{"model": m, "last_version": n} for m, n in counters])
    for table in (*_NAMED, *_UNNAMED):
        with op.batch_alter_table(table) as batch:
            if table in _NAMED:
                batch.drop_constraint(f"uq_{table}_project_name", type_="unique")
                batch.create_unique_constraint(_unique_name(table), ["name"])
            batch.drop_index(f"ix_{table}_project")
            batch.drop_constraint(f"fk_{table}_project", type_="foreignkey")
            batch.drop_column("project")
    op.drop_table("projects")
