"""The hash-chained audit log, and its head: the last sequence number and hash, one row.

Appending updates the head row first, which serialises appenders (PostgreSQL's row lock,
SQLite's write lock), so two processes never chain to the same entry; the head also lets
``verify`` see entries deleted from the end of the log.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)
_GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", _TIME, nullable=False, index=True),
        sa.Column("actor", sa.String(256), nullable=False, index=True),
        sa.Column("action", sa.String(256), nullable=False, index=True),
        sa.Column("resource", sa.String(1024), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("remote", sa.String(128), nullable=True),
        sa.Column("project", sa.String(128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": _GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_log")
