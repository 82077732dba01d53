"""Quotas and rate limits: a per-key request rate, per-project quotas.

``api_keys.rate_limit`` (requests per second; 0: unlimited) and ``api_keys.rate_burst`` hold a
key's own rate on the inference server; NULL takes the server's default
(``AIAAS_KEY_RATE_LIMIT``, ``AIAAS_KEY_RATE_BURST``). ``projects.max_*`` are the project's
quotas; NULL is unlimited, so every project that existed before stays as it was.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_QUOTAS = (
    ("max_jobs", sa.Integer()),
    ("max_slots", sa.Integer()),
    ("max_replicas", sa.Integer()),
    ("max_bytes", sa.BigInteger()),
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rate_limit", sa.Float(), nullable=True))
        batch.add_column(sa.Column("rate_burst", sa.Integer(), nullable=True))
    with op.batch_alter_table("projects") as batch:
        for name, kind in _QUOTAS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        for name, _ in reversed(_QUOTAS):
            batch.drop_column(name)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_burst")
        batch.drop_column("rate_limit")
