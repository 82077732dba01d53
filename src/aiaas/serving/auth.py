"""Authentication on the inference server: every request's key, checked in memory.

Each request but the health checks (``/v2/health/live``, ``/v2/health/ready``: probes carry
no credentials), the OpenAPI document (it holds no data) and, with ``AIAAS_METRICS_PUBLIC``,
``/metrics`` must carry ``Authorization: Bearer <key>``. ``tritonclient`` sends it as a
header and the ``openai`` client sends its ``api_key`` that way, unmodified.

The key is looked up in a :class:`~aiaas.security.KeyCache` that a background thread reloads
from the database every ``AIAAS_AUTH_REFRESH_S``: a check is a dictionary lookup and one
SHA-256 of the key, no database read and no call to the control plane, so the hot path
stays hot and inference goes on while the control plane is down. A refused key (401) is
handed to a :class:`~aiaas.security.FailureRecorder`, whose thread appends it to the audit
log at a bounded rate, so a flood of bad keys neither slows inference nor fills the
database. An inference key reaches
its own deployments only; another deployment is a 404 as if it did not exist, so a key
cannot find out which deployments exist (a 403 would confirm the name). The principal is
put in the scope (:func:`principal_of`) for endpoints whose deployment is in the body (the
OpenAI API's ``model``) or that list deployments.

Each key's request rate is checked here too, after the key and its scope
(:mod:`.rate_limits`): a key's own ``rate_limit``/``rate_burst`` (carried in its principal,
so in memory like the key), else ``AIAAS_KEY_RATE_LIMIT``/``AIAAS_KEY_RATE_BURST``. Over it,
429 with a ``Retry-After`` of the seconds until the bucket holds a request again.
"""

from __future__ import annotations

import logging
import math

from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from aiaas.config import Settings
from aiaas.entities.security import Principal, Role
from aiaas.errors import HTTP_STATUS, AiaasError, NotFound, PermissionDenied, ResourceExhausted
from aiaas.security import AuditLog, FailureRecorder, KeyCache, ensure_admin_key, inference_refusal
from aiaas.serving.rate_limits import RateLimit, RateLimiter
from aiaas.store import Database
from aiaas.store.audit import AuditStore
from aiaas.store.keys import KeyStore

__all__ = [
    "FAILURES_PER_SECOND",
    "OPEN_PATHS",
    "PRINCIPAL_KEY",
    "InferenceAuth",
    "check_deployment",
    "deployment_of",
    "principal_of",
    "retry_after",
]

logger = logging.getLogger("aiaas.serving.auth")

#: Where the request's principal is kept in the ASGI scope.
PRINCIPAL_KEY = "aiaas.principal"
#: Answered without a key (probes carry no credentials; the OpenAPI document holds no data).
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/openapi.json"})
_ANONYMOUS = Principal.anonymous()
#: The most authentication failures appended to the audit log one by one in a second; the
#: rest are counted (one entry a second says how many).
FAILURES_PER_SECOND = 20


class InferenceAuth:
    """The inference server's key check (see the module docstring).

    Args:
        settings: ``auth``, ``auth_refresh_s``, ``metrics_public`` and the admin key file.
        db: the metadata database the keys are read from.
    """

    def __init__(self, settings: Settings, db: Database) -> None:
        self.enabled = settings.auth
        self.open_paths = OPEN_PATHS | ({"/metrics"} if settings.metrics_public else frozenset())
        self._settings = settings
        self._store = KeyStore(db)
        self.cache = KeyCache(self._store.usable, refresh_s=settings.auth_refresh_s)
        self.failures = FailureRecorder(
            AuditLog(AuditStore(db)), per_second=FAILURES_PER_SECOND, source="inference"
        )
        self.limiter = RateLimiter()
        # (key's rate, key's burst) -> the limit in force; a handful of entries, made once each.
        self._limits: dict[tuple[float | None, int | None], RateLimit | None] = {}

    def start(self) -> None:
        """Adopt the admin key file on a fresh database, then load the keys and keep them fresh."""
        if not self.enabled:
            logger.warning(
                "AUTHENTICATION IS OFF (AIAAS_AUTH=off, aiaas up --dev): the inference server answers "
                "anyone who reaches %s:%s",
                self._settings.host,
                self._settings.inference_port,
            )
            return
        try:
            ensure_admin_key(self._store, self._settings.admin_key_path(), create=False)
        except AiaasError as exc:
            logger.warning("could not check the platform admin key: %s", exc)
        self.cache.start()
        self.failures.start()

    def close(self) -> None:
        self.cache.close()
        self.failures.close()

    def refusal(self, scope: Scope) -> AiaasError | None:
        """Why this request is refused, or None (its principal then in the scope)."""
        if not self.enabled:
            return None
        path: str = scope["path"]
        if path in self.open_paths:
            return None
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization" or name.lower() == b"authorization":
                header = value
                break
        try:
            principal = self.cache.authenticate(header)
        except AiaasError as exc:
            client = scope.get("client")
            self.failures.record(
                path,
                client[0] if client else None,
                exc.message,
                method=scope["method"],
                outcome=str(HTTP_STATUS.get(exc.code, 401)),
            )
            return exc
        scope[PRINCIPAL_KEY] = principal
        if path == "/metrics" and principal.role is Role.inference:
            return PermissionDenied(
                "an inference key may not read /metrics (they name every deployment)",
                details={"field": "authorization", "role": principal.role.value},
            )
        if path == "/metrics" and principal.project is not None:
            return PermissionDenied(
                f"/metrics names the deployments of every project: it needs a key of every project "
                f"(the platform admin key); key {principal.key_id} is of project {principal.project!r}",
                details={"field": "authorization", "role": principal.role.value},
            )
        refused = inference_refusal(principal, scope["method"], deployment_of(path))
        if refused is not None:
            return refused
        limit = self.limit_of(principal)
        if limit is not None:
            try:
                self.limiter.admit(principal.key_id, limit)
            except ResourceExhausted as exc:
                return exc
        return None

    def limit_of(self, principal: Principal) -> RateLimit | None:
        """The request rate in force for ``principal``'s key: its own, else the default;
        ``None``: unlimited."""
        pair = (principal.rate_limit, principal.rate_burst)
        try:
            return self._limits[pair]
        except KeyError:
            pass
        settings = self._settings
        per_second = settings.key_rate_limit if principal.rate_limit is None else principal.rate_limit
        burst = settings.key_rate_burst if principal.rate_burst is None else principal.rate_burst
        limit = RateLimit(per_second, burst) if per_second > 0 else None
        self._limits[pair] = limit
        return limit

    def answer(self, error: AiaasError, path: str) -> Response:
        """The error answer of a refusal: the Open Inference Protocol's shape, or OpenAI's
        under ``/openai`` (what the ``openai`` client reads)."""
        from aiaas.serving.asgi import _error

        status = HTTP_STATUS.get(error.code, 500)
        if path.startswith("/openai/"):
            kind, code = _OPENAI_ERRORS.get(status, ("invalid_request_error", None))
            body = {"error": {"message": error.message, "type": kind, "param": None, "code": code}}
            response: Response = JSONResponse(body, status_code=status)
            if status in (429, 503):
                response.headers["retry-after"] = retry_after(error)
        else:
            response = _error(status, error.message, retry=retry_after(error))
        if error.code == "UNAUTHENTICATED":
            response.headers["www-authenticate"] = "Bearer"
        return response


_OPENAI_ERRORS = {
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def retry_after(error: AiaasError) -> str:
    """The ``Retry-After`` of an error answer: its ``retry_after_s`` rounded up (at least 1),
    else 1 second."""
    value = error.details.get("retry_after_s") if error.details else None
    if isinstance(value, int | float) and math.isfinite(value):
        return str(max(1, math.ceil(value)))
    return "1"


def principal_of(scope: Scope) -> Principal:
    """The principal of a request (anonymous with authentication off)."""
    principal: Principal = scope.get(PRINCIPAL_KEY, _ANONYMOUS)
    return principal


def check_deployment(scope: Scope, deployment: str) -> None:
    """Refuse, as a 404, a deployment the request's key may not call (named in a body).

    Raises:
        NotFound: an inference key of other deployments.
    """
    if not principal_of(scope).may_call(deployment):
        raise NotFound(
            f"The model `{deployment}` does not exist",
            details={"field": "model", "openai_code": "model_not_found"},
        )


def deployment_of(path: str) -> str | None:
    """The deployment a path names, or None (lists, server metadata, the OpenAI body routes)."""
    for prefix in ("/v2/models/", "/v1/models/", "/openai/v1/models/"):
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            if prefix == "/openai/v1/models/":
                return rest or None
            name = rest.split("/", 1)[0].split(":", 1)[0]
            if prefix == "/v2/models/" and name == "stats" and "/" not in rest:
                return None
            return name or None
    return None
