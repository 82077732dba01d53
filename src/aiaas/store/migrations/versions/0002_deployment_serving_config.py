"""Deployment serving configuration: traffic split, shadow, batching, queue size, timeout.

Every new column is nullable and NULL means "the default", so deployments created before
this revision keep serving exactly what they served, with the default configuration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot alter tables in place beyond ADD COLUMN, and the downgrade
    # (DROP COLUMN) needs the copy-and-move that batch mode does there; PostgreSQL runs plain ALTERs.
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("traffic", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("shadow", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("batching", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("max_queue_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("timeout_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("timeout_s")
        batch.drop_column("max_queue_size")
        batch.drop_column("batching")
        batch.drop_column("shadow")
        batch.drop_column("traffic")
