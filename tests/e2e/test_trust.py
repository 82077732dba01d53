"""Answers a user can trust, through the running platform: the deployment view says what is
really served, stored metadata can never break a read, and leftovers on disk are cleaned up."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import Unavailable
from aiaas.store import Database, FileArtifactStore
from aiaas.store.tables import ModelRow
from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests._servers import wait_until
from tests.e2e.conftest import Platform
from tests.serving.conftest import artifact_root

runner = CliRunner()


def _aiaas(platform: Platform, *args: str, input: str | None = None) -> Any:
    return runner.invoke(
        app,
        ["--url", platform.api_url, "--inference-url", platform.inference_url, *args],
        input=input,
        env={**platform.env, "COLUMNS": "240"},  # tables on one line each
    )


def _store(platform: Platform) -> FileArtifactStore:
    return FileArtifactStore(artifact_root(platform.home))


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# -- the deployment view tells what is really served -------------------------------------------


def test_a_version_the_server_cannot_load_is_reported_and_waiting_fails_fast(platform: Platform) -> None:
    X, _ = iris()
    c = platform.client
    c.register_model("unloadable", iris_classifier(), example=X[:3])
    broken = c.register_model("unloadable", iris_classifier(C=0.01), example=X[:3])
    path = _store(platform).path(broken.artifact_digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    c.deploy("unloadable", model="unloadable", version=1)
    c.wait_until_served("unloadable", 1)

    c.update_deployment("unloadable", version=2)
    # Before: the control plane said v2 and the SDK waited out its whole timeout.
    with pytest.raises(
        Unavailable, match=r"cannot serve version 2 of deployment 'unloadable'.*corrupted"
    ) as info:
        c.wait_until_served("unloadable", 2, timeout=45)
    assert "keeps serving version 1" in info.value.message

    shown = c.get_deployment("unloadable")
    assert shown.serving_version == 2  # what it asks for
    assert shown.served is not None
    assert (shown.served.version, shown.served.desired_version) == (1, 2)  # what it gets
    assert shown.served.error is not None and "corrupted" in shown.served.error
    listed = {d.name: d for d in c.list_deployments()}["unloadable"]
    assert listed.served == shown.served

    result = _aiaas(platform, "deployments", "show", "unloadable")
    assert result.exit_code == 0, result.output
    assert "v1; cannot serve v2: deployment 'unloadable' cannot load version 2" in result.stdout

    # Rolling back clears the error.
    c.update_deployment("unloadable", version=1)
    c.wait_until_served("unloadable", 1)
    wait_until(
        lambda: (s := c.get_deployment("unloadable").served) is not None and s.error is None and s.up_to_date,
        timeout=30,
        what="the rollback to be reported",
    )


# -- stored, then unreadable: limits are checked before any write --------------------------------


def test_deep_tags_are_refused_and_the_model_list_stays_readable(platform: Platform) -> None:
    api = f"{platform.api_url}/api/v1"
    r = httpx.post(f"{api}/models", json={"name": "deep-tags", "tags": _nested(256)}, headers=AUTH)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["details"]["field"] == "tags"
    assert "nested deeper than 32 levels" in error["message"]
    assert httpx.get(f"{api}/models/deep-tags", headers=AUTH).status_code == 404

    files = {"file": ("m.onnx", b"not read", "application/octet-stream")}
    metadata = json.dumps({"metrics": _nested(300)})
    r = httpx.post(
        f"{api}/models/deep-metrics/versions", files=files, data={"metadata": metadata}, headers=AUTH
    )
    assert r.status_code == 400, r.text

    r = httpx.post(f"{api}/models", json={"name": "long-text", "description": "d" * 70_000}, headers=AUTH)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["details"] == {"field": "description", "limit": 65536}

    assert httpx.get(f"{api}/models", headers=AUTH).status_code == 200
    result = _aiaas(platform, "models", "list")
    assert result.exit_code == 0, result.output


def test_a_record_stored_by_an_older_release_does_not_break_the_model_list(platform: Platform) -> None:
    platform.client.create_model("legacy-tags")
    db = Database(platform.env["AIAAS_DATABASE_URL"])
    try:
        with db.transaction() as s:
            row = s.query(ModelRow).filter_by(name="legacy-tags").one()
            row.tags = _nested(256)  # what the old release committed
    finally:
        db.dispose()
    r = httpx.get(f"{platform.api_url}/api/v1/models", headers=AUTH)
    assert r.status_code == 200, r.text
    assert "legacy-tags" in {m["name"] for m in r.json()["models"]}
    assert _aiaas(platform, "models", "list").exit_code == 0


# -- leftovers: temp files of killed uploads, blobs of deleted versions ---------------------------

_WRITER = """
import os, sys, time
from aiaas.store import artifacts
def stuck(fd):
    print("writing", flush=True)
    time.sleep(600)
artifacts.os.fsync = stuck
artifacts.FileArtifactStore(sys.argv[1]).put(b"an upload killed midway " * 100)
"""


def test_the_control_plane_sweeps_temp_files_of_killed_uploads_when_it_starts(platform: Platform) -> None:
    store = _store(platform)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(store.root)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.communicate(timeout=30)
    leftovers = list(store.root.glob("sha256/*/.tmp-*"))
    assert len(leftovers) == 1

    platform.api.kill()
    platform.start_api()
    wait_until(lambda: not leftovers[0].exists(), timeout=60, what="the temp file to be swept")


def test_aiaas_gc_deletes_blobs_of_deleted_versions_only(platform: Platform) -> None:
    X, _ = iris()
    c = platform.client
    kept = c.register_model("collected", iris_classifier(), example=X[:3])
    deleted = c.register_model("collected", iris_classifier(C=0.05), example=X[:3])
    c.delete_version("collected", deleted.version)
    store = _store(platform)
    assert store.exists(deleted.artifact_digest)

    result = _aiaas(platform, "gc", "--dry-run", "--older-than-s", "0", "--json")
    assert result.exit_code == 0, result.output
    assert deleted.artifact_digest in {b["digest"] for b in json.loads(result.stdout)["deleted"]}
    assert store.exists(deleted.artifact_digest)

    young = _aiaas(platform, "gc", "--json")  # default grace period: nothing this young goes
    assert young.exit_code == 0, young.output
    assert store.exists(deleted.artifact_digest)

    result = _aiaas(platform, "gc", "--older-than-s", "0")
    assert result.exit_code == 0, result.output
    assert "deleted" in result.stdout
    assert not store.exists(deleted.artifact_digest)
    assert c.download_artifact("collected", kept.version)  # referenced: kept, still verifies
