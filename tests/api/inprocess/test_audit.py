"""The control plane appends an audit entry for every mutating request, with its outcome,
before the answer is sent; reads are not logged; ``GET /api/v1/audit`` pages and filters them.

The app runs in this process (``conftest.py`` here), on SQLite and PostgreSQL; the app is
shared by the session, so each test names its own resources and looks only at those.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aiaas.api.audit import AuditMiddleware, mark_authentication_failure
from aiaas.security import AuditLog
from aiaas.store import Database
from aiaas.store.audit import AuditStore
from tests._api import api_error
from tests.api.conftest import API_KEY, MAX_API_BODY_BYTES
from tests.api.inprocess.conftest import AppControlPlane


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _entries(plane: AppControlPlane, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        response = plane.http.get("/audit", params={**params, "after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["entries"]
        if page["next_after"] is None:
            return found
        after = page["next_after"]


def _about(plane: AppControlPlane, resource: str) -> list[dict[str, Any]]:
    return [e for e in _entries(plane) if e["resource"] == resource]


def test_mutating_requests_are_appended_with_their_outcome(app_control_plane: AppControlPlane) -> None:
    http = app_control_plane.http
    name = tag = _unique("audit-hook")
    mine = {"x-aiaas-project": tag}  # the project header marks this test's entries
    assert http.post("/projects", json={"name": tag}).status_code == 201
    body = {"name": name, "url": "http://127.0.0.1:9/h"}
    assert http.post("/alerts/webhooks", json=body, headers=mine).status_code == 201
    api_error(http.post("/alerts/webhooks", json=body, headers=mine), 409, "ALREADY_EXISTS")
    assert http.delete(f"/alerts/webhooks/{name}", headers=mine).status_code == 204
    api_error(http.delete(f"/alerts/webhooks/{name}", headers=mine), 404, "NOT_FOUND")
    api_error(http.post("/alerts/webhooks", json={"name": name}, headers=mine), 400, "INVALID_ARGUMENT")

    entries = [e for e in _entries(app_control_plane) if e["project"] == tag]
    assert [(e["action"], e["resource"], e["outcome"]) for e in entries] == [
        ("POST /api/v1/alerts/webhooks", "/api/v1/alerts/webhooks", "201"),
        ("POST /api/v1/alerts/webhooks", "/api/v1/alerts/webhooks", "409"),
        ("DELETE /api/v1/alerts/webhooks/{name}", f"/api/v1/alerts/webhooks/{name}", "204"),
        ("DELETE /api/v1/alerts/webhooks/{name}", f"/api/v1/alerts/webhooks/{name}", "404"),
        ("POST /api/v1/alerts/webhooks", "/api/v1/alerts/webhooks", "400"),
    ]
    entry = entries[2]
    assert entry["actor"] == "admin"  # the name of the key the test client sends (tests/_auth.py)
    assert entry["remote"] == "127.0.0.1"
    assert entry["details"] == {"method": "DELETE"}
    assert len(entry["hash"]) == 64 and entry["prev_hash"] != entry["hash"]
    assert "secret" not in str(entries)  # bodies are not logged


def test_reads_are_not_appended(app_control_plane: AppControlPlane) -> None:
    name = _unique("audit-read")
    api_error(app_control_plane.http.get(f"/models/{name}"), 404, "NOT_FOUND")
    assert app_control_plane.http.get("/models").status_code == 200
    assert _about(app_control_plane, f"/api/v1/models/{name}") == []
    # Authentication failures are appended on reads too (other modules sharing this control
    # plane send bad keys with GET): every other entry is a write's.
    reads = [e for e in _entries(app_control_plane) if e["details"].get("method") == "GET"]
    assert all(e["action"] == "authenticate" for e in reads)


def test_a_body_the_guard_refuses_is_appended_too(app_control_plane: AppControlPlane) -> None:
    name = _unique("audit-big")
    assert app_control_plane.http.post("/projects", json={"name": name}).status_code == 201
    response = app_control_plane.http.post(
        "/alerts/webhooks",
        content=b"{" + b" " * (MAX_API_BODY_BYTES + 10) + b"}",
        headers={"content-type": "application/json", "x-aiaas-project": name},
    )
    api_error(response, 413, "PAYLOAD_TOO_LARGE")
    [entry] = [e for e in _entries(app_control_plane) if e["project"] == name]
    assert (entry["action"], entry["outcome"]) == ("POST /api/v1/alerts/webhooks", "413")


def test_a_wrong_key_is_an_authentication_failure_even_on_a_read(app_control_plane: AppControlPlane) -> None:
    name = _unique("audit-auth")
    response = app_control_plane.http.get(f"/models/{name}", headers={"authorization": "Bearer nope"})
    api_error(response, 401, "UNAUTHENTICATED")
    [entry] = _about(app_control_plane, f"/api/v1/models/{name}")
    assert (entry["action"], entry["outcome"], entry["actor"]) == ("authenticate", "401", "anonymous")
    assert entry["details"]["method"] == "GET" and entry["details"]["reason"]
    assert API_KEY not in str(entry)


def test_the_audit_endpoint_pages_and_filters(app_control_plane: AppControlPlane) -> None:
    http = app_control_plane.http
    before = dt.datetime.now(dt.UTC)
    names = [_unique("audit-page") for _ in range(3)]
    for name in names:
        api_error(http.delete(f"/alerts/rules/{name}"), 404, "NOT_FOUND")
    action = "DELETE /api/v1/alerts/rules/{name}"
    mine = [
        e
        for e in _entries(app_control_plane, action=action, start=before.isoformat())
        if e["resource"].rsplit("/", 1)[1] in names
    ]
    assert [e["resource"].rsplit("/", 1)[1] for e in mine] == names
    assert all(e["action"] == action for e in _entries(app_control_plane, action=action))

    first = http.get("/audit", params={"action": action, "start": before.isoformat(), "limit": 2}).json()
    assert len(first["entries"]) == 2 and first["next_after"] == first["entries"][-1]["seq"]
    rest = http.get(
        "/audit", params={"action": action, "start": before.isoformat(), "after": first["next_after"]}
    ).json()
    assert [e["seq"] for e in first["entries"] + rest["entries"]] == sorted(e["seq"] for e in mine)
    assert rest["next_after"] is None

    assert _entries(app_control_plane, actor="nobody-at-all") == []
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert _entries(app_control_plane, start=future) == []
    api_error(http.get("/audit", params={"start": "yesterday"}), 400, "INVALID_ARGUMENT", field="start")
    api_error(http.get("/audit", params={"limit": 0}), 400, "INVALID_ARGUMENT", field="limit")


def test_the_sdk_reads_the_audit_log(app_control_plane: AppControlPlane) -> None:
    name = _unique("audit-sdk")
    api_error(app_control_plane.http.delete(f"/alerts/silences/{name}"), 400, "INVALID_ARGUMENT")
    client = app_control_plane.sdk()
    page = client.list_audit_entries(limit=1)
    assert len(page.entries) == 1 and page.next_after == page.entries[0].seq
    everything = list(client.iter_audit_entries())
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    assert any(e.resource == f"/api/v1/alerts/silences/{name}" for e in everything)
    assert isinstance(everything[0].at, dt.datetime)


# -- the middleware on its own: ordering, authentication failures, errors ------------------------


@pytest.fixture
def log(migrated_database_url: str) -> Iterator[AuditLog]:
    db = Database(migrated_database_url)
    yield AuditLog(AuditStore(db))
    db.dispose()


def _app(log: AuditLog) -> AuditMiddleware:
    async def change(request: Request) -> Response:
        return JSONResponse({"ok": True}, status_code=201)

    async def refuse(request: Request) -> Response:
        mark_authentication_failure(request, "revoked key", key_id="k-123")
        return JSONResponse({"error": "no"}, status_code=401)

    async def crash(request: Request) -> Response:
        raise RuntimeError("boom")

    app = Starlette(
        routes=[
            Route("/things/{name}", change, methods=["POST", "GET"]),
            Route("/refuse", refuse, methods=["GET"]),
            Route("/crash", crash, methods=["PUT"]),
        ]
    )
    return AuditMiddleware(app, audit=log)


def _call(app: AuditMiddleware, method: str, path: str, on_start: Any = None) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and on_start is not None:
            on_start()
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"x-aiaas-project", b"p1")],
        "client": ("10.1.2.3", 5555),
        "server": ("test", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }

    async def main() -> None:
        await app(scope, receive, send)

    anyio.run(main)
    return sent


def test_the_entry_is_committed_before_the_response_starts(log: AuditLog) -> None:
    seen_at_start: list[int] = []
    app = _app(log)
    _call(app, "POST", "/things/a", on_start=lambda: seen_at_start.append(len(list(log.entries()))))
    assert seen_at_start == [1]
    [entry] = log.entries()
    assert (entry.action, entry.resource, entry.outcome) == ("POST /things/{name}", "/things/a", "201")
    assert (entry.remote, entry.project, entry.actor) == ("10.1.2.3", "p1", "anonymous")


def test_a_marked_authentication_failure_is_appended_and_a_plain_read_is_not(log: AuditLog) -> None:
    app = _app(log)
    _call(app, "GET", "/things/a")
    assert list(log.entries()) == []
    _call(app, "GET", "/refuse")
    [entry] = log.entries()
    assert (entry.action, entry.outcome, entry.actor) == ("authenticate", "401", "k-123")
    assert entry.details == {"method": "GET", "reason": "revoked key"}


def test_the_principal_is_the_actor(log: AuditLog) -> None:
    class Principal:
        name = "ci-bot"
        project = "team-a"

    async def change(request: Request) -> Response:
        request.state.principal = Principal()
        return Response(status_code=204)

    app = AuditMiddleware(Starlette(routes=[Route("/x", change, methods=["DELETE"])]), audit=log)
    _call(app, "DELETE", "/x")
    [entry] = log.entries()
    assert (entry.actor, entry.project, entry.outcome) == ("ci-bot", "team-a", "204")


def test_an_unhandled_error_is_appended_as_a_500(log: AuditLog) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        _call(_app(log), "PUT", "/crash")
    [entry] = log.entries()
    assert (entry.action, entry.outcome) == ("PUT /crash", "500")


def test_an_append_that_fails_is_logged_and_the_response_still_goes_out(
    caplog: pytest.LogCaptureFixture, home: Path
) -> None:
    empty = Database(f"sqlite:///{home / 'empty.db'}")  # no tables: every append fails
    try:
        sent = _call(_app(AuditLog(AuditStore(empty))), "POST", "/things/b")
    finally:
        empty.dispose()
    assert sent[0]["status"] == 201
    assert "audit entry NOT appended" in caplog.text and "/things/b" in caplog.text
