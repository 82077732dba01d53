"""TLS contexts for both servers and for their clients, with errors that name the setting.

Both servers serve HTTPS from one certificate and key (``AIAAS_TLS_CERT_FILE``,
``AIAAS_TLS_KEY_FILE``), and every client of theirs (the SDK, the CLI, ``aiaas up``'s
readiness checks) verifies that certificate: against the system's trusted CAs, or a CA bundle
named in ``AIAAS_TLS_CA_FILE``. Verification is never turned off.

The contexts are built here, before a server starts or a client connects, because the
``ssl`` module's own errors are poor guides: a missing file is a bare ``FileNotFoundError``,
a key of another certificate is ``[X509: KEY_VALUES_MISMATCH]``, and an encrypted key makes
OpenSSL prompt for a password on the terminal. Each becomes one
:class:`~aiaas.errors.InvalidArgument` naming the setting and the file.

Example:
    >>> context = client_context(None)  # the system's trusted CAs
    >>> context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    True
"""

from __future__ import annotations

import functools
import os
import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from aiaas.errors import InvalidArgument

if TYPE_CHECKING:
    from aiaas.config import Settings

__all__ = ["CA_SETTING", "client_context", "server_context", "server_tls", "verification_failure"]

#: How a user names the CA bundle clients verify against, for messages.
CA_SETTING = "AIAAS_TLS_CA_FILE, --ca-file in the CLI or verify= in the SDK"


class _EncryptedKey(Exception):
    """OpenSSL asked for a password: the key file is encrypted."""


def _no_password() -> bytes:
    raise _EncryptedKey


def server_tls(settings: Settings) -> ssl.SSLContext | None:
    """The servers' context when ``settings`` name a certificate, else ``None`` (plain HTTP).

    Raises:
        InvalidArgument: as :func:`server_context`.
    """
    if settings.tls_cert_file is None:
        return None
    return server_context(settings.tls_cert_file, settings.tls_key_file)


def server_context(cert_file: Path, key_file: Path | None = None) -> ssl.SSLContext:
    """The context a server presents ``cert_file`` with (TLS 1.2 at least).

    ``key_file`` is its private key; ``None`` when the key is in ``cert_file`` too.

    Raises:
        InvalidArgument: a file is missing or unreadable, holds no PEM certificate or key,
            the key is encrypted, or the key does not belong to the certificate; the message
            names the setting and the file.
    """
    _check_readable(cert_file, "AIAAS_TLS_CERT_FILE", "certificate")
    if key_file is not None:
        _check_readable(key_file, "AIAAS_TLS_KEY_FILE", "private key")
    files = f"AIAAS_TLS_CERT_FILE={cert_file}" + (f", AIAAS_TLS_KEY_FILE={key_file}" if key_file else "")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # both servers speak HTTP/1.1 only
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except _EncryptedKey:
        raise InvalidArgument(
            f"the private key is encrypted ({files}); give an unencrypted PEM key, readable by the "
            "servers' user only",
            details={"setting": "AIAAS_TLS_KEY_FILE"},
        ) from None
    except ssl.SSLError as exc:
        raise InvalidArgument(
            _load_problem(exc, cert_file, key_file, files), details={"setting": "AIAAS_TLS_CERT_FILE"}
        ) from None
    return context


def _load_problem(exc: ssl.SSLError, cert_file: Path, key_file: Path | None, files: str) -> str:
    """What is wrong with a certificate and key OpenSSL refused, in words."""
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"the private key does not belong to the certificate ({files})"
    if b"-----BEGIN CERTIFICATE-----" not in cert_file.read_bytes():
        return f"the file {cert_file} (AIAAS_TLS_CERT_FILE) holds no PEM certificate"
    if not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", (key_file or cert_file).read_bytes()):
        if key_file is None:
            return (
                f"the file {cert_file} (AIAAS_TLS_CERT_FILE) holds no PEM private key; give the key's "
                "file in AIAAS_TLS_KEY_FILE"
            )
        return f"the file {key_file} (AIAAS_TLS_KEY_FILE) holds no PEM private key"
    return f"cannot load the certificate and its private key ({files}): {exc.reason or exc}"


def client_context(ca_file: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """The context clients verify the servers with: the CAs in ``ca_file``, or the system's.

    The system's are OpenSSL's default paths (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` move
    them). Contexts are built once per CA file and process: loading a bundle costs
    milliseconds, and a client is made per CLI command and per SDK ``Client``.

    Raises:
        InvalidArgument: ``ca_file`` is missing, unreadable or holds no PEM certificate.
    """
    return _client_context(None if ca_file is None else str(Path(ca_file).expanduser()))


@functools.lru_cache(maxsize=16)
def _client_context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file is None:
        return ssl.create_default_context()
    _check_readable(Path(ca_file), "AIAAS_TLS_CA_FILE", "CA bundle", named_by=CA_SETTING)
    try:
        return ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError:
        raise InvalidArgument(
            f"the CA bundle {ca_file} (named by {CA_SETTING}) holds no PEM certificate",
            details={"setting": "AIAAS_TLS_CA_FILE"},
        ) from None


def verification_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind ``exc`` (an ``httpx`` error, say), if any."""
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 16:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def _check_readable(path: Path, setting: str, what: str, *, named_by: str | None = None) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InvalidArgument(
            f"cannot read the {what} {path} (named by {named_by or setting}): {exc.strerror or exc}",
            details={"setting": setting},
        ) from None
