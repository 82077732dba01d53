"""Row lookups that every domain over the metadata DB needs, with one "not found" error."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiaas.errors import NotFound
from aiaas.store.tables import ModelRow

__all__ = ["model_row"]


def model_row(session: Session, name: str) -> ModelRow:
    """The model called ``name``.

    Raises:
        NotFound: no model has that name.
    """
    row = session.scalar(select(ModelRow).where(ModelRow.name == name))
    if row is None:
        raise NotFound(f"model {name!r} not found", details={"model": name})
    return row
