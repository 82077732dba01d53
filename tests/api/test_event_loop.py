"""The control plane keeps answering while a request does blocking work.

A handler that checks a model with ONNX Runtime or writes the database on the event loop
stalls every other request of the server until it is done. Here a registration is held in
its database write (the test holds SQLite's write lock, which the registration waits for),
and the server must still answer ``/health`` meanwhile.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time

import httpx
import pytest

from aiaas.formats import package_model
from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests._servers import wait_until
from tests.api.conftest import ControlPlane

#: How long ``/health`` may take while the registration waits; far below the database's
#: busy timeout (10 s), after which the waiting registration would give up.
HEALTH_DEADLINE_S = 5.0


def test_health_answers_while_a_registration_waits_for_the_database(control_plane: ControlPlane) -> None:
    database = control_plane.home / "aiaas.db"
    if not database.exists():
        pytest.skip("holds SQLite's write lock; this control plane runs on PostgreSQL")
    x, _ = iris()
    onnx = package_model(iris_classifier(), x[:3]).onnx
    digest = hashlib.sha256(onnx).hexdigest()
    blob = control_plane.home / "artifacts" / "sha256" / digest[:2] / digest
    answer: dict[str, httpx.Response] = {}

    def register() -> None:
        answer["response"] = control_plane.http.post(
            "/models/loop-check/versions", files={"file": ("m.onnx", onnx, "application/octet-stream")}
        )

    lock = sqlite3.connect(database, timeout=10)
    lock.execute("BEGIN IMMEDIATE")  # the write lock: the registration's transaction waits for it
    uploader = threading.Thread(target=register, daemon=True)
    try:
        uploader.start()
        # The artifact is written just before the version's transaction: from then on the
        # registration is checked and waits for the lock.
        wait_until(blob.exists, timeout=30, what="the artifact written")
        started = time.monotonic()
        health = httpx.get(f"{control_plane.url}/api/v1/health", timeout=HEALTH_DEADLINE_S, headers=AUTH)
        assert health.status_code == 200, health.text
        assert time.monotonic() - started < HEALTH_DEADLINE_S
        assert uploader.is_alive() and "response" not in answer, "the registration did not wait"
    finally:
        lock.rollback()
        lock.close()
    uploader.join(timeout=30)
    assert answer["response"].status_code == 201, answer["response"].text
    assert answer["response"].json()["version"] == 1
