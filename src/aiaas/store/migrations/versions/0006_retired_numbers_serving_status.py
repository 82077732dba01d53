"""Retired version numbers and the inference server's observed serving state.

``model_version_counters`` holds, per model *name*, the highest version number ever given.
A new version takes the next number after it, so the number of a deleted version (or of
every version of a deleted model, should the name be used again) is never given twice, and
a version number always means one artifact. It is keyed by name rather than by model id
for that reason: it outlives the model row. It starts from the highest number each model
has now; numbers deleted before this revision above that cannot be known.

``deployment_status`` is what the inference server really serves for each deployment (the
version it tried, the version it serves, why the tried one could not be loaded), written by
the server after it reconciles, so the control plane can show the truth instead of the
desired state alone. Keyed by deployment name, like ``scaling_events``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_version_counters",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
    )
    op.execute(
        "INSERT INTO model_version_counters (model, last_version) "
        "SELECT m.name, MAX(v.version) FROM models m JOIN model_versions v ON v.model_id = m.id "
        "GROUP BY m.name"
    )
    op.create_table(
        "deployment_status",
        sa.Column("deployment", sa.String(128), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("desired_version", sa.Integer(), nullable=True),
        sa.Column("serving_version", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deployment_status")
    op.drop_table("model_version_counters")
