"""Row lookups that every domain over the metadata DB needs, with one "not found" error."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiaas.entities.projects import split_qualified_name
from aiaas.errors import NotFound
from aiaas.store.tables import ModelRow

__all__ = ["model_row", "scoped"]


def scoped(project: str | None, name: str) -> tuple[str, str]:
    """The project and name a repository of ``project`` means by ``name``: ``project`` itself, or,
    for a repository of every project (``None``), the one ``name`` is qualified with."""
    return split_qualified_name(name) if project is None else (project, name)


def model_row(session: Session, name: str, project: str | None) -> ModelRow:
    """The model called ``name`` in ``project`` (see :func:`scoped`); another project's model is
    not found, as if it did not exist.

    Raises:
        NotFound: no model of ``project`` has that name.
    """
    project, plain = scoped(project, name)
    row = session.scalar(select(ModelRow).where(ModelRow.project == project, ModelRow.name == plain))
    if row is None:
        raise NotFound(f"model {name!r} not found", details={"model": name})
    return row
