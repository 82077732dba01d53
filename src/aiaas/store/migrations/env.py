"""Alembic environment: runs on the connection handed over by ``Database.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from aiaas.store.tables import Base

target_metadata = Base.metadata
config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` run by hand with a URL in the config
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
