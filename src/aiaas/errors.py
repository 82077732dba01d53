"""One exception tree for the whole platform, and the one table that maps it to HTTP.

Every layer raises these; the control plane turns them into
``{"error": {"code", "message", "details"}}`` with the status from :data:`HTTP_STATUS`,
and the SDK turns that JSON back into the same class, so a caller catches
``aiaas.NotFound`` whether the model lives in-process or behind HTTP::

    AiaasError
    ├── InvalidArgument         400  bad input: names the field, the rule and the value
    │   └── PayloadTooLarge     413
    ├── Unauthenticated         401
    ├── PermissionDenied        403
    ├── NotFound                404
    ├── MethodNotAllowed        405  the path exists, the method does not (Allow lists those that do)
    ├── RequestTimeout          408  the client stopped sending its request body
    ├── AlreadyExists           409
    ├── Conflict                409  the request is valid but the current state forbids it
    ├── ResourceExhausted       429  a queue or quota is full: retry later (Retry-After)
    ├── ArtifactCorrupted       500  a stored blob no longer matches its SHA-256
    ├── EncryptionKeyError      503  an encrypted blob needs a key this process is not given
    ├── Unavailable             503  a dependency (database, replica) cannot serve now
    └── DeadlineExceeded        504  the work did not finish within its timeout
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HTTP_STATUS",
    "AiaasError",
    "AlreadyExists",
    "ArtifactCorrupted",
    "Conflict",
    "DeadlineExceeded",
    "EncryptionKeyError",
    "InvalidArgument",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RequestTimeout",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "error_class",
    "error_class_for_status",
]


class AiaasError(Exception):
    """Base of every error the platform raises on purpose.

    Args:
        message: what went wrong and, where possible, how to fix it.
        details: machine-readable context (the field, the expected value, ...).
    """

    code = "INTERNAL"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The wire form, shared by the REST API and the SDK."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidArgument(AiaasError):
    code = "INVALID_ARGUMENT"


class PayloadTooLarge(InvalidArgument):
    code = "PAYLOAD_TOO_LARGE"


class Unauthenticated(AiaasError):
    code = "UNAUTHENTICATED"


class PermissionDenied(AiaasError):
    code = "PERMISSION_DENIED"


class NotFound(AiaasError):
    code = "NOT_FOUND"


class MethodNotAllowed(AiaasError):
    """The path names an endpoint, but not with this HTTP method."""

    code = "METHOD_NOT_ALLOWED"


class RequestTimeout(AiaasError):
    """The client sent its request body too slowly (a stalled or trickling upload)."""

    code = "REQUEST_TIMEOUT"


class AlreadyExists(AiaasError):
    code = "ALREADY_EXISTS"


class Conflict(AiaasError):
    code = "CONFLICT"


class ResourceExhausted(AiaasError):
    code = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(AiaasError):
    code = "DEADLINE_EXCEEDED"


class ArtifactCorrupted(AiaasError):
    code = "ARTIFACT_CORRUPTED"


class Unavailable(AiaasError):
    code = "UNAVAILABLE"


class EncryptionKeyError(AiaasError):
    """An encrypted blob cannot be opened: no key configured, or not the one it was sealed
    with. The message names the setting (``AIAAS_ENCRYPTION_KEY``/``_FILE``) to fix."""

    code = "ENCRYPTION_KEY"


#: The one place where an error code meets an HTTP status.
HTTP_STATUS: dict[str, int] = {
    AiaasError.code: 500,
    InvalidArgument.code: 400,
    PayloadTooLarge.code: 413,
    Unauthenticated.code: 401,
    PermissionDenied.code: 403,
    NotFound.code: 404,
    MethodNotAllowed.code: 405,
    RequestTimeout.code: 408,
    AlreadyExists.code: 409,
    Conflict.code: 409,
    ResourceExhausted.code: 429,
    DeadlineExceeded.code: 504,
    ArtifactCorrupted.code: 500,
    EncryptionKeyError.code: 503,
    Unavailable.code: 503,
}

_BY_CODE: dict[str, type[AiaasError]] = {
    cls.code: cls
    for cls in (
        AiaasError,
        InvalidArgument,
        PayloadTooLarge,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        AlreadyExists,
        Conflict,
        ResourceExhausted,
        DeadlineExceeded,
        ArtifactCorrupted,
        EncryptionKeyError,
        Unavailable,
    )
}


def error_class(code: str) -> type[AiaasError]:
    """The exception class for a wire error code; unknown codes fall back to the base."""
    return _BY_CODE.get(code, AiaasError)


# Where an error arrives with a status but no code (the inference protocols' {"error": msg},
# a framework's own 404), the status alone says the kind; 409 and 500 are ambiguous and
# fall back to Conflict and the base class.
_BY_STATUS: dict[int, type[AiaasError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidArgument,
    429: ResourceExhausted,
    503: Unavailable,
    504: DeadlineExceeded,
}


def error_class_for_status(status: int) -> type[AiaasError]:
    """The exception class for an HTTP error status that came without a code."""
    return _BY_STATUS.get(status, AiaasError)
