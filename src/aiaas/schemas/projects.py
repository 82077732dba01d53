"""Projects on the wire: ``/api/v1/projects``."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from aiaas.schemas._base import Wire, WireIn

__all__ = ["PROJECT_PATTERN", "Project", "ProjectCreate", "ProjectList"]

#: The rule of :func:`aiaas.entities.projects.is_project_name`, for the docs; the store checks
#: it and says what is wrong.
PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class ProjectCreate(WireIn):
    name: str = Field(
        description="1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit.",
        json_schema_extra={"pattern": PROJECT_PATTERN},
    )
    description: str = ""


class Project(Wire):
    name: str
    description: str
    created_at: dt.datetime


class ProjectList(Wire):
    projects: list[Project]
