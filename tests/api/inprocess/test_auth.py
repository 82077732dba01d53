"""Authentication and roles on the control plane: every endpoint but health and the docs needs
a key; a malformed header is a 401 in the error shape; roles decide the rest; keys are made,
listed and revoked over the API, the SDK and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aiaas.cli.main import app as cli
from aiaas.errors import InvalidArgument, PermissionDenied, Unauthenticated
from aiaas.sdk import Client
from tests._api import api_error
from tests._auth import ADMIN_KEY
from tests.api.inprocess.conftest import APP_URL, AppControlPlane


@pytest.fixture
def anonymous(app_control_plane: AppControlPlane) -> Iterator[httpx.Client]:
    with httpx.Client(transport=app_control_plane.transport, base_url=APP_URL, timeout=60) as http:
        yield http


def _as(app_control_plane: AppControlPlane, key: str) -> Client:
    return Client(APP_URL, key, transport=app_control_plane.transport)


MALFORMED = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    ADMIN_KEY,  # no scheme
    f"Token {ADMIN_KEY}",
    "Bearer not-a-key",
    "Bearer aiaas_0123456789ab_abcdefghijklmnopqrstuvwxyz",  # well-formed, unknown
    b"Bearer caf\xc3\xa9",
    b"Bearer \xff\xfe\xfd",
    "Bearer " + "k" * 8000,
]


@pytest.mark.parametrize("header", MALFORMED, ids=lambda h: repr(h)[:30])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/models", None),
        ("POST", "/api/v1/models", b"{not json"),
        ("DELETE", "/api/v1/keys/x", None),
        ("GET", "/api/v1/no/such/path", None),
        ("GET", "/metrics", None),
    ],
)
def test_a_missing_or_malformed_key_is_a_401_in_the_error_shape(
    anonymous: httpx.Client, header: str | bytes | None, method: str, path: str, body: bytes | None
) -> None:
    headers = {} if header is None else {"authorization": header}
    response = anonymous.request(method, path, headers=headers, content=body)
    api_error(response, 401, "UNAUTHENTICATED", field="authorization")
    assert response.headers["www-authenticate"] == "Bearer"


def test_health_and_the_docs_need_no_key(anonymous: httpx.Client) -> None:
    for path in ("/api/v1/health", "/openapi.json", "/docs", "/redoc"):
        assert anonymous.get(path).status_code == 200, path
    document = anonymous.get("/openapi.json").json()
    assert document["paths"]["/api/v1/models"]["get"]["security"] == [{"apiKey": []}]
    assert "401" in document["paths"]["/api/v1/models"]["get"]["responses"]


def test_roles_viewer_reads_developer_writes_admin_manages_keys(app_control_plane: AppControlPlane) -> None:
    with app_control_plane.sdk() as admin:
        viewer = admin.create_key("roles-viewer", role="viewer")
        developer = admin.create_key("roles-developer", role="developer")
        inference = admin.create_key("roles-inference", role="inference", deployments=["iris"])
    with _as(app_control_plane, viewer.key) as c:
        c.list_models()
        with pytest.raises(PermissionDenied, match="viewer key"):
            c.create_model("viewer-made")
        with pytest.raises(PermissionDenied, match="admin key"):
            c.list_keys()
    with _as(app_control_plane, developer.key) as c:
        c.create_model("developer-made")
        with pytest.raises(PermissionDenied, match="admin key"):
            c.create_key("escalate", role="admin")
        with pytest.raises(PermissionDenied, match="admin key"):
            c.revoke_key(viewer.key_id)
    with _as(app_control_plane, inference.key) as c, pytest.raises(PermissionDenied, match="inference key"):
        c.list_models()


def test_a_key_is_shown_once_listed_without_secret_and_refused_once_revoked(
    app_control_plane: AppControlPlane,
) -> None:
    with app_control_plane.sdk() as admin:
        made = admin.create_key("lifecycle", role="developer")
        assert made.key.startswith(f"aiaas_{made.key_id}_") and made.last4 == made.key[-4:]
        listed = {k.key_id: k for k in admin.list_keys()}
        assert made.key not in str(listed) and "key" not in listed[made.key_id].model_dump()
        with _as(app_control_plane, made.key) as c:
            c.list_models()
            revoked = admin.revoke_key(made.key_id)
            assert revoked.revoked_at is not None
            with pytest.raises(Unauthenticated, match="unknown or revoked"):
                c.list_models()  # at once on the control plane that revoked it
        assert made.key_id not in {k.key_id for k in admin.list_keys()}
        assert made.key_id in {k.key_id for k in admin.list_keys(include_revoked=True)}


def test_a_bad_key_request_is_a_400_naming_the_field(app_control_plane: AppControlPlane) -> None:
    http = app_control_plane.http
    api_error(http.post("/keys", json={"name": "x", "role": "root"}), 400, "INVALID_ARGUMENT", field="role")
    api_error(
        http.post("/keys", json={"name": "x", "role": "inference"}),
        400,
        "INVALID_ARGUMENT",
        field="deployments",
    )
    api_error(
        http.post("/keys", json={"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
        400,
        "INVALID_ARGUMENT",
        field="expires_at",
    )
    api_error(http.delete("/keys/nope"), 404, "NOT_FOUND")


def test_the_sdk_reads_the_admin_key_file_when_no_key_is_given(
    app_control_plane: AppControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIAAS_API_KEY")
    monkeypatch.setenv("AIAAS_HOME", str(app_control_plane.home))
    with Client(APP_URL, transport=app_control_plane.transport) as c:
        c.list_models()
    monkeypatch.setenv("AIAAS_HOME", str(app_control_plane.home / "elsewhere"))
    with Client(APP_URL, transport=app_control_plane.transport) as c, pytest.raises(Unauthenticated):
        c.list_models()


def test_the_cli_makes_lists_and_revokes_keys(app_control_plane: AppControlPlane, tmp_path: Path) -> None:
    # The CLI builds its SDK client from the options; the app is reached through this transport.
    def client_of(*args: object, **kwargs: object) -> Client:
        return Client(APP_URL, ADMIN_KEY, transport=app_control_plane.transport)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("aiaas.sdk.Client", client_of)
        runner = CliRunner()
        made = runner.invoke(
            cli, ["keys", "create", "cli-made", "--role", "inference", "-d", "iris", "--json"]
        )
        assert made.exit_code == 0, made.output
        key_id = made.stdout.split('"key_id": "')[1].split('"')[0]
        listed = runner.invoke(cli, ["keys", "list"])
        assert listed.exit_code == 0 and key_id in listed.stdout and "aiaas_" not in listed.stdout
        revoked = runner.invoke(cli, ["keys", "revoke", key_id])
        assert revoked.exit_code == 0 and f"revoked key {key_id}" in revoked.stdout


def test_a_viewer_key_of_every_project_reads_metrics_and_any_project_but_changes_nothing(
    app_control_plane: AppControlPlane,
) -> None:
    with app_control_plane.sdk() as admin:
        admin.create_project("watched")
        monitor = admin.create_key("prometheus", role="viewer", all_projects=True)
        scoped = admin.create_key("scoped-viewer", role="viewer")
        with pytest.raises(InvalidArgument, match="viewer key") as refused:
            admin.create_key("too-strong", role="developer", all_projects=True)
        assert refused.value.details["field"] == "role"
    assert monitor.project is None
    http = app_control_plane.http
    metrics = f"{APP_URL}/metrics"
    assert http.get(metrics, headers={"authorization": f"Bearer {monitor.key}"}).status_code == 200
    assert http.get(metrics, headers={"authorization": f"Bearer {scoped.key}"}).status_code == 403
    watched = {"authorization": f"Bearer {monitor.key}", "x-aiaas-project": "watched"}
    assert http.get("/models", headers=watched).status_code == 200
    api_error(http.post("/models", json={"name": "nope"}, headers=watched), 403, "PERMISSION_DENIED")
    with app_control_plane.sdk() as admin:
        project_admin = admin.create_key("watched-admin", role="admin", project="watched")
    with (
        _as(app_control_plane, project_admin.key) as c,
        pytest.raises(PermissionDenied, match="platform admin"),
    ):
        c.create_key("wider", role="viewer", all_projects=True)
