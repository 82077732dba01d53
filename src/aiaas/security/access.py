"""Who may do what: the role rules both servers apply to an authenticated principal.

Control plane: ``viewer`` reads (GET, HEAD, OPTIONS); ``developer`` also writes; ``admin``
also manages keys (``/api/v1/keys``, reads included: a key list is an admin's business);
only the platform admin key (of every project) makes projects and reads ``/metrics`` (it
names every project's deployments, on both servers); an ``inference`` key has nothing to do
there. Inference server: ``viewer`` reads metadata, readiness and statistics;
``developer``, ``admin`` and ``inference`` keys also predict; an inference key reaches its
own deployments only, and any other deployment is a 404, exactly as if it did not exist, so
a key cannot discover which deployments exist.
"""

from __future__ import annotations

from aiaas.entities.security import Principal, Role
from aiaas.errors import AiaasError, NotFound, PermissionDenied

__all__ = ["READ_METHODS", "control_plane_refusal", "inference_refusal"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEYS_PATH = "/api/v1/keys"
_PROJECTS_PATH = "/api/v1/projects"
_METRICS_PATH = "/metrics"


def control_plane_refusal(principal: Principal, method: str, path: str) -> AiaasError | None:
    """Why ``principal`` may not make this control-plane request, or None when it may."""
    role = principal.role
    if role is Role.inference:
        return PermissionDenied(
            f"key {principal.key_id} is an inference key: it calls the inference server only",
            details={"field": "authorization", "role": role.value},
        )
    if path == _METRICS_PATH and principal.project is not None:
        return PermissionDenied(
            f"/metrics names the deployments of every project: it needs a key of every project "
            f"(the platform admin key); key {principal.key_id} is of project {principal.project!r}",
            details={"field": "authorization", "role": role.value},
        )
    if (path == _KEYS_PATH or path.startswith(_KEYS_PATH + "/")) and role is not Role.admin:
        return PermissionDenied(
            f"managing API keys needs an admin key; key {principal.key_id} is a {role.value} key",
            details={"field": "authorization", "role": role.value, "required": Role.admin.value},
        )
    if (
        (path == _PROJECTS_PATH or path.startswith(_PROJECTS_PATH + "/"))
        and method not in READ_METHODS
        and not (role is Role.admin and principal.project is None)
    ):
        return PermissionDenied(
            "making projects and setting their quotas needs the platform admin key; "
            f"key {principal.key_id} is a {role.value} key"
            + (f" of project {principal.project!r}" if principal.project is not None else ""),
            details={"field": "authorization", "role": role.value, "required": "platform admin"},
        )
    if method not in READ_METHODS and role is Role.viewer:
        return PermissionDenied(
            f"{method} needs a developer or admin key; key {principal.key_id} is a viewer key (read only)",
            details={"field": "authorization", "role": role.value, "required": Role.developer.value},
        )
    return None


def inference_refusal(principal: Principal, method: str, deployment: str | None) -> AiaasError | None:
    """Why ``principal`` may not make this inference-server request (on ``deployment``, when
    the path names one), or None when it may. A deployment named in the body (the OpenAI API's
    ``model``) is checked by its endpoint, with :meth:`Principal.may_call`."""
    if deployment is not None and not principal.may_call(deployment):
        return NotFound(f"no deployment {deployment!r}", details={"field": "deployment", "value": deployment})
    if method not in READ_METHODS and principal.role is Role.viewer:
        return PermissionDenied(
            f"{method} needs a developer, admin or inference key; key {principal.key_id} is a viewer key",
            details={"field": "authorization", "role": principal.role.value},
        )
    return None
