"""Deployment prediction log: the share of requests the inference server logs and its cap.

``deployments.prediction_log`` is ``{"sample_rate", "max_rows_per_s"}`` as given; NULL (and
every key left out) means the default, every request up to 100 a second, so deployments
created before this revision are logged with the defaults.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("prediction_log", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("prediction_log")
