"""Which project an inference request addresses, and the deployment it names in it.

The inference server serves every project's deployments from one route table keyed by
qualified name (:func:`aiaas.entities.projects.qualified_name`: ``iris`` in ``default``,
``team-a/iris`` elsewhere), so two projects may each have a deployment ``iris`` serving
different models. A request names a deployment by its plain name (in the path, or as the
OpenAI ``model``) and its project with the ``X-Aiaas-Project`` header (``default`` without
one; with a key, the key's project). A deployment of another project is then simply
not in the request's part of the table: a 404, as if it did not exist. Answers show the
plain name.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request

from aiaas.entities.projects import PROJECT_HEADER, project_of_request, qualified_name, split_qualified_name
from aiaas.errors import InvalidArgument
from aiaas.serving.auth import principal_of

__all__ = ["callable_within", "deployment_key", "plain_name", "request_project", "within"]

_HEADER = PROJECT_HEADER.lower()


def request_project(request: Request) -> str:
    """The project of ``request``: its key's, or for a key of every project the
    ``X-Aiaas-Project`` header or ``default`` (see
    :func:`~aiaas.entities.projects.project_of_request`).

    Raises:
        InvalidArgument: the header is not a project name (400, naming the header).
        NotFound: a project key named another project.
    """
    return project_of_request(request.headers.get(_HEADER), principal_of(request.scope).project)


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


def callable_within(request: Request, keys: Iterable[str]) -> list[str]:
    """The keys among ``keys`` of deployments the request's key may call in its project (what
    lists show: an inference key sees its own deployments only)."""
    principal = principal_of(request.scope)
    return [k for k in within(request_project(request), keys) if principal.may_call(plain_name(k))]
