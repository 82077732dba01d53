"""The error tree and its HTTP table, and settings read from ``AIAAS_*`` variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aiaas import errors
from aiaas.config import Settings, load_settings
from aiaas.errors import (
    HTTP_STATUS,
    AiaasError,
    AlreadyExists,
    ArtifactCorrupted,
    Conflict,
    DeadlineExceeded,
    EncryptionKeyError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RequestTimeout,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    error_class,
)

EXPECTED_STATUS = [
    (AiaasError, "INTERNAL", 500),
    (InvalidArgument, "INVALID_ARGUMENT", 400),
    (PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413),
    (Unauthenticated, "UNAUTHENTICATED", 401),
    (PermissionDenied, "PERMISSION_DENIED", 403),
    (NotFound, "NOT_FOUND", 404),
    (MethodNotAllowed, "METHOD_NOT_ALLOWED", 405),
    (RequestTimeout, "REQUEST_TIMEOUT", 408),
    (AlreadyExists, "ALREADY_EXISTS", 409),
    (Conflict, "CONFLICT", 409),
    (ResourceExhausted, "RESOURCE_EXHAUSTED", 429),
    (DeadlineExceeded, "DEADLINE_EXCEEDED", 504),
    (ArtifactCorrupted, "ARTIFACT_CORRUPTED", 500),
    (EncryptionKeyError, "ENCRYPTION_KEY", 503),
    (Unavailable, "UNAVAILABLE", 503),
]

ALL_ERROR_CLASSES = [
    obj
    for name in errors.__all__
    if isinstance(obj := getattr(errors, name), type) and issubclass(obj, AiaasError)
]


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "code", "status"), EXPECTED_STATUS, ids=lambda v: getattr(v, "__name__", v))
def test_error_class_maps_to_its_http_status(cls: type[AiaasError], code: str, status: int) -> None:
    assert cls.code == code
    assert HTTP_STATUS[cls.code] == status


def test_every_exported_error_class_is_in_the_status_table() -> None:
    assert {cls.code for cls in ALL_ERROR_CLASSES} == set(HTTP_STATUS)
    assert len({cls.code for cls in ALL_ERROR_CLASSES}) == len(ALL_ERROR_CLASSES), "codes must be unique"
    assert {cls for cls, _, _ in EXPECTED_STATUS} == set(ALL_ERROR_CLASSES)


def test_to_dict_has_the_one_error_shape() -> None:
    exc = NotFound("model 'iris' not found", details={"model": "iris"})
    assert exc.to_dict() == {
        "error": {"code": "NOT_FOUND", "message": "model 'iris' not found", "details": {"model": "iris"}}
    }
    assert str(exc) == "model 'iris' not found"


def test_details_default_to_a_fresh_empty_dict() -> None:
    a, b = Conflict("a"), Conflict("b")
    assert a.to_dict()["error"]["details"] == {}
    a.details["x"] = 1
    assert b.details == {}


@pytest.mark.parametrize("cls", ALL_ERROR_CLASSES, ids=lambda c: c.__name__)
def test_error_class_round_trips_through_its_code(cls: type[AiaasError]) -> None:
    wire = cls("boom", details={"field": "x"}).to_dict()["error"]
    rebuilt = error_class(wire["code"])(wire["message"], details=wire["details"])
    assert type(rebuilt) is cls
    assert rebuilt.to_dict() == cls("boom", details={"field": "x"}).to_dict()


def test_unknown_code_falls_back_to_the_base_class() -> None:
    assert error_class("SOMETHING_NEW") is AiaasError


def test_payload_too_large_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        raise PayloadTooLarge("too big")


# -- config ------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AIAAS_* variable set, and a private HOME for the ``~`` default."""
    for key in list(os.environ):
        if key.startswith("AIAAS_"):
            monkeypatch.delenv(key)
    user_home = tmp_path / "user"
    user_home.mkdir()
    monkeypatch.setenv("HOME", str(user_home))
    return user_home


def test_defaults_are_the_embedded_ones(clean_env: Path) -> None:
    s = load_settings()
    assert s.home == clean_env / ".aiaas"
    assert s.port == 8000
    assert s.inference_port == 8080
    assert s.resolved_database_url() == f"sqlite:///{clean_env / '.aiaas' / 'aiaas.db'}"
    assert s.resolved_artifact_root() == str(clean_env / ".aiaas" / "artifacts")
    assert s.resolved_control_plane_url() == "http://127.0.0.1:8000"
    assert s.resolved_inference_url() == "http://127.0.0.1:8080"


def test_environment_variables_are_respected(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIAAS_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("AIAAS_DATABASE_URL", "postgresql+psycopg://u@db:5432/aiaas")
    monkeypatch.setenv("AIAAS_ARTIFACT_ROOT", "/srv/artifacts")
    monkeypatch.setenv("AIAAS_PORT", "9001")
    monkeypatch.setenv("AIAAS_INFERENCE_PORT", "9002")
    s = load_settings()
    assert s.home == tmp_path / "h"
    assert s.resolved_database_url() == "postgresql+psycopg://u@db:5432/aiaas"
    assert s.resolved_artifact_root() == "/srv/artifacts"
    assert (s.port, s.inference_port) == (9001, 9002)
    assert s.resolved_control_plane_url() == "http://127.0.0.1:9001"
    assert s.resolved_inference_url() == "http://127.0.0.1:9002"


def test_home_from_the_environment_moves_the_embedded_defaults(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIAAS_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert s.resolved_database_url() == f"sqlite:///{tmp_path / 'h' / 'aiaas.db'}"
    assert s.resolved_artifact_root() == str(tmp_path / "h" / "artifacts")


def test_home_with_a_tilde_is_expanded(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIAAS_HOME", "~/elsewhere")
    assert load_settings().home == clean_env / "elsewhere"


def test_explicit_overrides_beat_the_environment_and_none_is_ignored(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_PORT", "9001")
    assert load_settings(port=9100).port == 9100
    assert load_settings(port=None).port == 9001


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIAAS_PORT", "not-a-port"),
        ("AIAAS_PORT", "70000"),
        ("AIAAS_INFERENCE_PORT", "-1"),
        ("AIAAS_RECONCILE_INTERVAL_S", "0"),
    ],
)
def test_bad_value_is_an_invalid_argument_naming_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidArgument, match=variable) as info:
        load_settings()
    assert info.value.code == "INVALID_ARGUMENT"
    assert repr(value) in info.value.message
    assert any(variable in e for e in info.value.details["errors"])


def test_bad_override_names_the_setting(clean_env: Path) -> None:
    with pytest.raises(InvalidArgument, match="AIAAS_INFERENCE_PORT"):
        load_settings(inference_port=123456)


def test_settings_object_takes_explicit_fields(clean_env: Path) -> None:
    s = Settings(home=Path("/tmp/aiaas-x"), database_url="sqlite:////tmp/other.db")
    assert s.resolved_database_url() == "sqlite:////tmp/other.db"
    assert s.resolved_artifact_root() == "/tmp/aiaas-x/artifacts"
