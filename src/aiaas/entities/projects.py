"""Projects: the namespace every owned resource lives in.

A model, dataset, training job, deployment, alert rule, silence and webhook belongs to one
project, and its name is unique within that project only. Repositories and services are
built for one project (an explicit ``project=`` argument, never global state) and see only
its rows: another project's resource answers exactly as one that does not exist.

The inference server, which serves every project, and the per-deployment observations it
writes (metric samples, drift counts, feedback, scaling events, served state, the
prediction log) name a deployment or a model by one string, its *qualified name*: the plain
name in the ``default`` project (so data written before projects existed keeps its meaning)
and ``project/name`` elsewhere. Names cannot contain ``/``, so two never collide. A
repository built with ``project=None`` (every project: the inference server's, the
scheduler's) takes qualified names where the others take plain ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from aiaas.errors import InvalidArgument, NotFound

__all__ = [
    "DEFAULT_PROJECT",
    "PROJECT_HEADER",
    "QUOTA_NAMES",
    "Project",
    "ProjectQuotas",
    "ProjectUsage",
    "is_project_name",
    "project_of_request",
    "qualified_name",
    "split_qualified_name",
]

#: The project that existing data was migrated into, and that a request naming none uses.
DEFAULT_PROJECT = "default"

#: The header a control-plane or inference request names its project with.
PROJECT_HEADER = "X-Aiaas-Project"

_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def is_project_name(name: object) -> bool:
    """Whether ``name`` is a valid project name: 1-63 lowercase letters, digits, '_' or '-'."""
    return isinstance(name, str) and _PROJECT_NAME.match(name) is not None


#: The quotas a project may have, in the order they are shown.
QUOTA_NAMES = ("max_jobs", "max_slots", "max_replicas", "max_bytes")


@dataclass(frozen=True)
class ProjectQuotas:
    """A project's limits; ``None`` is unlimited (docs/security.md, "Quotas and rate limits").

    Attributes:
        max_jobs: training jobs queued or running at once.
        max_slots: CPU slots (data-parallel workers) of its queued and running jobs together.
        max_replicas: the sum of its deployments' ``max_replicas`` (the most replica processes
            its deployments may run together).
        max_bytes: bytes of its model versions' artifacts and dataset versions' files.
    """

    max_jobs: int | None = None
    max_slots: int | None = None
    max_replicas: int | None = None
    max_bytes: int | None = None


@dataclass(frozen=True)
class ProjectUsage:
    """What a project uses of each quota, counted as :class:`ProjectQuotas` says."""

    jobs: int = 0
    slots: int = 0
    replicas: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Project:
    """A project: its name, a description, when it was created, and its quotas."""

    name: str
    description: str
    created_at: datetime
    quotas: ProjectQuotas = ProjectQuotas()


def project_of_request(header: str | None, key_project: str | None) -> str:
    """The project a request to either server works in.

    A key belongs to one project and works in it only; a key of every project (the platform
    admin key, or no key with authentication off) names one with the ``X-Aiaas-Project``
    header, ``default`` without it. A project key naming another project gets a 404 for that
    project, as if it did not exist: it may not learn which projects do.

    Args:
        header: the request's ``X-Aiaas-Project`` header, if any.
        key_project: the project of the request's key; ``None`` for a key of every project.

    Raises:
        InvalidArgument: the header is not a project name (400, naming the header).
        NotFound: a project key named another project.
    """
    if header is not None and not is_project_name(header):
        raise InvalidArgument(
            f"header {PROJECT_HEADER} must be a project name: 1-63 lowercase letters, digits, '_' or "
            f"'-', starting with a letter or digit; got {header!r}",
            details={"field": PROJECT_HEADER, "value": header},
        )
    if key_project is None:
        return header or DEFAULT_PROJECT
    if header is not None and header != key_project:
        raise NotFound(f"project {header!r} not found", details={"field": PROJECT_HEADER})
    return key_project


def qualified_name(project: str, name: str) -> str:
    """How the inference server and the observation tables name ``name`` of ``project``.

    Example:
        >>> qualified_name("default", "iris"), qualified_name("team-a", "iris")
        ('iris', 'team-a/iris')
    """
    return name if project == DEFAULT_PROJECT else f"{project}/{name}"


def split_qualified_name(key: str) -> tuple[str, str]:
    """The project and the name of a qualified name (the inverse of :func:`qualified_name`).

    Example:
        >>> split_qualified_name("iris"), split_qualified_name("team-a/iris")
        (('default', 'iris'), ('team-a', 'iris'))
    """
    project, sep, name = key.partition("/")
    return (project, name) if sep else (DEFAULT_PROJECT, key)
