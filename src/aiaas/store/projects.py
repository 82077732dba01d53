"""The projects' repository: the namespaces every owned row belongs to (migration 0013), and
their quotas (migration 0018; checked by :mod:`aiaas.store.quotas`)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aiaas.entities.projects import QUOTA_NAMES, Project, ProjectUsage, is_project_name
from aiaas.errors import AlreadyExists, InvalidArgument, NotFound
from aiaas.store.database import Database
from aiaas.store.limits import check_text, readable_text
from aiaas.store.quotas import project_usage, quotas_of
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

    def usage(self, name: str) -> ProjectUsage:
        """What project ``name`` uses of each quota now.

        Raises: NotFound: no such project.
        """
        with self.db.transaction() as s:
            if s.get(ProjectRow, name) is None:
                raise NotFound(f"project {name!r} not found", details={"project": name})
            return project_usage(s, name)

    def set_quotas(self, name: str, quotas: Mapping[str, int | None]) -> Project:
        """Set the quotas named in ``quotas`` (``None``: unlimited); the others are kept.

        Lowering a quota below the usage deletes nothing: it refuses what would add to it.

        Raises:
            InvalidArgument: an unknown quota or a negative value (naming it).
            NotFound: no such project.
        """
        for quota, value in quotas.items():
            if quota not in QUOTA_NAMES:
                raise InvalidArgument(
                    f"unknown quota {quota!r}; quotas are {', '.join(QUOTA_NAMES)}",
                    details={"field": quota},
                )
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InvalidArgument(
                    f"{quota} must be an integer >= 0, or null for unlimited; got {value!r}",
                    details={"field": quota, "value": repr(value)},
                )
        with self.db.transaction() as s:
            row = s.get(ProjectRow, name)
            if row is None:
                raise NotFound(f"project {name!r} not found", details={"project": name})
            for quota, value in quotas.items():
                setattr(row, quota, value)
            s.flush()
            return _project(row)


def _project(row: ProjectRow) -> Project:
    return Project(
        name=row.name,
        description=readable_text(row.description),
        created_at=row.created_at,
        quotas=quotas_of(row),
    )
