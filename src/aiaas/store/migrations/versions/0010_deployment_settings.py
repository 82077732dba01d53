"""Deployment settings without a column of their own: one JSON object by setting name.

``deployments.settings`` is ``{"drift": {...}, ...}``: each setting of
``aiaas.schemas.DeploymentSettings`` that has no column (the first: ``drift``, the
deployment's drift thresholds) as given, keys left out meaning the default. NULL means every
such setting takes its default, so deployments created before this revision do, and a new
setting needs no migration.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("settings", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("settings")
