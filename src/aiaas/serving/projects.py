"""Which project an inference request addresses, and the deployment it names in it.

The inference server serves every project's deployments from one route table keyed by
qualified name (:func:`aiaas.entities.projects.qualified_name`: ``iris`` in ``default``,
``team-a/iris`` elsewhere), so two projects may each have a deployment ``iris`` serving
different models. A request names a deployment by its plain name (in the path, or as the
OpenAI ``model``) and its project with the ``X-Aiaas-Project`` header (``default`` without
one; once keys exist, the key's project). A deployment of another project is then simply
not in the request's part of the table: a 404, as if it did not exist. Answers show the
plain name.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request

from aiaas.entities.projects import (
    DEFAULT_PROJECT,
    PROJECT_HEADER,
    is_project_name,
    qualified_name,
    split_qualified_name,
)
from aiaas.errors import InvalidArgument

__all__ = ["deployment_key", "plain_name", "request_project", "within"]

_HEADER = PROJECT_HEADER.lower()


def request_project(request: Request) -> str:
    """The project of ``request``: its ``X-Aiaas-Project`` header, or ``default``.

    Raises:
        InvalidArgument: the header is not a project name (400, naming the header).
    """
    given = request.headers.get(_HEADER)
    if given is None:
        return DEFAULT_PROJECT
    if not is_project_name(given):
        raise InvalidArgument(
            f"header {PROJECT_HEADER} must be a project name: 1-63 lowercase letters, digits, '_' or "
            f"'-', starting with a letter or digit; got {given!r}",
            details={"field": PROJECT_HEADER, "value": given},
        )
    return given


def deployment_key(request: Request, name: str) -> str:
    """The route-table key of deployment ``name`` in ``request``'s project.

    A name holding ``/`` is refused: in ``default`` it would reach into another project.
    """
    if "/" in name:
        raise InvalidArgument(
            f"a deployment name has no '/'; got {name!r}", details={"field": "name", "value": name}
        )
    return qualified_name(request_project(request), name)


def plain_name(key: str) -> str:
    """The name a client knows a deployment by, from its route-table key."""
    return split_qualified_name(key)[1]


def within(project: str, keys: Iterable[str]) -> list[str]:
    """The keys among ``keys`` of deployments of ``project``, sorted by plain name."""
    return sorted((k for k in keys if split_qualified_name(k)[0] == project), key=plain_name)
