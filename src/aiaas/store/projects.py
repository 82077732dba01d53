"""The projects' repository: the namespaces every owned row belongs to (migration 0013)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aiaas.entities.projects import Project, is_project_name
from aiaas.errors import AlreadyExists, InvalidArgument, NotFound
from aiaas.store.database import Database
from aiaas.store.limits import check_text, readable_text
from aiaas.store.tables import ProjectRow

__all__ = ["ProjectStore", "check_project_name"]


def check_project_name(name: object, *, field: str = "name") -> str:
    """``name`` if it is a valid project name.

    Raises:
        InvalidArgument: it is not (the message names ``field`` and the rule).
    """
    if not is_project_name(name):
        raise InvalidArgument(
            f"{field} must be a project name: 1-63 lowercase letters, digits, '_' or '-', starting "
            f"with a letter or digit; got {name!r}",
            details={"field": field, "value": name if isinstance(name, str) else repr(name)},
        )
    assert isinstance(name, str)
    return name


class ProjectStore:
    """Create, read and list projects."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, *, description: str = "") -> Project:
        """Raises: InvalidArgument: a bad name. AlreadyExists: a project has that name."""
        check_project_name(name)
        check_text(description, field="description")
        exists = AlreadyExists(f"project {name!r} already exists", details={"project": name})
        try:
            with self.db.transaction() as s:
                if s.get(ProjectRow, name) is not None:
                    raise exists
                row = ProjectRow(name=name, description=description)
                s.add(row)
                s.flush()
                return _project(row)
        except IntegrityError:  # created by a concurrent request between the check and the insert
            raise exists from None

    def get(self, name: str) -> Project:
        """Raises: NotFound: no such project."""
        with self.db.transaction() as s:
            row = s.get(ProjectRow, name)
            if row is None:
                raise NotFound(f"project {name!r} not found", details={"project": name})
            return _project(row)

    def list(self) -> list[Project]:
        with self.db.transaction() as s:
            return [_project(r) for r in s.scalars(select(ProjectRow).order_by(ProjectRow.name))]


def _project(row: ProjectRow) -> Project:
    return Project(name=row.name, description=readable_text(row.description), created_at=row.created_at)
