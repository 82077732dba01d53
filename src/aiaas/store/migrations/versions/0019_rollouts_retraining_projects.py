"""Rollouts and retraining loops belong to a project, as the deployments they act on.

``rollouts``, ``retraining_runs`` and ``retraining_policies`` get a ``project`` column (a
foreign key to ``projects.name``); existing rows go into ``default``, where their deployments
are (migration 0013). A deployment name is unique per project only, so what was unique per
deployment becomes unique per (project, deployment): the ``active`` columns of rollouts and
runs (at most one in progress per deployment) and the policies' key.

SQLite cannot alter constraints in place, so the tables are rebuilt (Alembic's batch mode);
the unnamed unique constraints of revisions 0015 and 0017 are found there through a naming
convention, and on PostgreSQL by the names it gave them (``<table>_active_key``).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_DEFAULT = "default"
#: Tables whose ``active`` column was unique on its own, and now is per project.
_ACTIVE = ("rollouts", "retraining_runs")
_TABLES = (*_ACTIVE, "retraining_policies")
_TIME = sa.DateTime(timezone=True)
#: How SQLite's reflected unnamed unique constraints are named, to drop them.
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _active_name(table: str) -> str:
    return f"uq_{table}_active" if op.get_bind().dialect.name == "sqlite" else f"{table}_active_key"


def upgrade() -> None:
    for table in _ACTIVE:
        with op.batch_alter_table(table, naming_convention=_CONVENTION) as batch:
            batch.add_column(sa.Column("project", sa.String(63), nullable=False, server_default=_DEFAULT))
            batch.create_foreign_key(f"fk_{table}_project", "projects", ["project"], ["name"])
            batch.create_index(f"ix_{table}_project", ["project"])
            batch.drop_constraint(_active_name(table), type_="unique")
            batch.create_unique_constraint(f"uq_{table}_project_active", ["project", "active"])
    _rebuild_policies(with_project=True)


def _rebuild_policies(*, with_project: bool) -> None:
    """``retraining_policies`` keyed by (project, deployment), or by deployment alone: a new
    table with the rows copied (a primary key changes the same way on both databases). The
    key's name differs from the old table's, which PostgreSQL still holds while they coexist:
    the way back takes the name it had from 0017 there."""
    key = ["project", "deployment"] if with_project else ["deployment"]
    key_name = "pk_retraining_policies" if with_project else "retraining_policies_pkey"
    project = (
        [
            sa.Column(
                "project",
                sa.String(63),
                sa.ForeignKey("projects.name", name="fk_retraining_policies_project"),
            )
        ]
        if with_project
        else []
    )
    op.create_table(
        "retraining_policies_new",
        *project,
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint(*key, name=key_name),
    )
    columns = "deployment, spec, created_at, updated_at"
    into, values = (f"project, {columns}", f"'{_DEFAULT}', {columns}") if with_project else (columns, columns)
    op.execute(f"INSERT INTO retraining_policies_new ({into}) SELECT {values} FROM retraining_policies")
    op.drop_table("retraining_policies")
    op.rename_table("retraining_policies_new", "retraining_policies")
    if with_project:
        op.create_index("ix_retraining_policies_project", "retraining_policies", ["project"])


def downgrade() -> None:
    """Back to rollouts and loops of one namespace: only possible while every row is in ``default``."""
    bind = op.get_bind()
    for table in _TABLES:
        others = bind.execute(sa.text(f"SELECT count(*) FROM {table} WHERE project <> :p"), {"p": _DEFAULT})
        if others.scalar():
            raise RuntimeError(f"cannot downgrade: {table} has rows outside the project {_DEFAULT!r}")
    _rebuild_policies(with_project=False)
    for table in _ACTIVE:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_project_active", type_="unique")
            batch.create_unique_constraint(_active_name(table), ["active"])
            batch.drop_index(f"ix_{table}_project")
            batch.drop_constraint(f"fk_{table}_project", type_="foreignkey")
            batch.drop_column("project")
