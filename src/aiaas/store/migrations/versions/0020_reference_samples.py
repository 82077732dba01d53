"""A drift reference keeps a sample of its rows, for per-request outlier scores.

``drift_references.sample``: a seeded sample of the reference's feature rows (JSON, a list of
rows in the layout's feature order, at most ``aiaas.registry.references.SAMPLE_ROWS`` rows
and ``SAMPLE_CELLS`` values), the rows the inference server fits an Isolation Forest on when
a deployment turns ``outlier_scores`` on. NULL: no sample (a reference made before this
revision, or one whose features are not all numbers); such a version's requests are logged
without outlier scores.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drift_references") as batch:
        batch.add_column(sa.Column("sample", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_references") as batch:
        batch.drop_column("sample")
