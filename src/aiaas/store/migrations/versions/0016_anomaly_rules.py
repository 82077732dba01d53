"""Anomaly rules: an alert rule's kind (threshold or anomaly) and an anomaly rule's detector
settings (metrics, detector, training window, minimum history, contamination).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="threshold"))
        batch.add_column(sa.Column("anomaly", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("anomaly")
        batch.drop_column("kind")
