"""Per-project quotas over the control plane: set by the platform admin, shown with their usage,
and a creation over one refused with 429 naming the quota, its value and the usage.

Each resource kind a quota counts is created where it is checked: a training job (jobs, CPU
slots), a deployment and its update (replicas), a model version and a dataset version (bytes).
Every test works in a project of its own, so the session's shared app carries no usage from
another test. The control plane app runs in this process (``conftest.py`` here); its scheduler
polls once an hour, so a submitted job stays queued and counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from aiaas.errors import ResourceExhausted
from aiaas.sdk import Client
from tests._api import api_error
from tests.api.conftest import API_KEY
from tests.api.inprocess.conftest import APP_URL, AppControlPlane


def _classifier() -> tuple[Any, np.ndarray[Any, Any]]:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    return LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), x[:2]


def _project(app: AppControlPlane, name: str, **quotas: int | None) -> Client:
    assert app.http.post("/projects", json={"name": name}).status_code == 201
    if quotas:
        response = app.http.patch(f"/projects/{name}", json=quotas)
        assert response.status_code == 200, response.text
    return Client(APP_URL, API_KEY, transport=app.transport, project=name)


@pytest.fixture
def http(app_control_plane: AppControlPlane) -> Iterator[httpx.Client]:
    yield app_control_plane.http


def _refused(response: httpx.Response, quota: str, limit: int, usage: int) -> dict[str, Any]:
    error = api_error(response, 429, "RESOURCE_EXHAUSTED", field=quota)
    assert f"{quota} = {limit}" in error["message"], error
    assert error["details"]["limit"] == limit and error["details"]["usage"] == usage, error
    return error


def test_the_platform_admin_sets_quotas_and_get_shows_them_with_the_usage(
    app_control_plane: AppControlPlane, http: httpx.Client
) -> None:
    _project(app_control_plane, "quota-show")
    shown = http.get("/projects/quota-show").json()
    assert shown["quotas"] == {"max_jobs": None, "max_slots": None, "max_replicas": None, "max_bytes": None}
    assert shown["usage"] == {"jobs": 0, "slots": 0, "replicas": 0, "bytes": 0}
    answer = http.patch("/projects/quota-show", json={"max_jobs": 2, "max_bytes": 1000}).json()
    assert answer["quotas"]["max_jobs"] == 2 and answer["quotas"]["max_bytes"] == 1000
    http.patch("/projects/quota-show", json={"max_replicas": 4})  # the others are kept
    assert http.get("/projects/quota-show").json()["quotas"] == {
        "max_jobs": 2,
        "max_slots": None,
        "max_replicas": 4,
        "max_bytes": 1000,
    }
    http.patch("/projects/quota-show", json={"max_jobs": None})  # null: unlimited
    assert http.get("/projects/quota-show").json()["quotas"]["max_jobs"] is None
    # The SDK does the same.
    with app_control_plane.sdk() as client:
        project = client.set_project_quotas("quota-show", max_slots=8, max_bytes=None)
    assert (project.quotas.max_slots, project.quotas.max_bytes, project.quotas.max_replicas) == (8, None, 4)
    assert project.usage is not None and project.usage.jobs == 0


def test_bad_quota_changes_are_4xx_naming_the_field(http: httpx.Client) -> None:
    api_error(
        http.patch("/projects/default", json={"max_jobs": -1}), 400, "INVALID_ARGUMENT", field="max_jobs"
    )
    api_error(
        http.patch("/projects/default", json={"max_cpus": 1}), 400, "INVALID_ARGUMENT", field="max_cpus"
    )
    api_error(http.patch("/projects/no-such-project", json={"max_jobs": 1}), 404, "NOT_FOUND")


def test_only_the_platform_admin_key_sets_quotas(
    app_control_plane: AppControlPlane, http: httpx.Client
) -> None:
    _project(app_control_plane, "quota-own")
    made = http.post("/keys", json={"name": "quota-own-admin", "role": "admin", "project": "quota-own"})
    assert made.status_code == 201, made.text
    with httpx.Client(
        transport=app_control_plane.transport,
        base_url=f"{APP_URL}/api/v1",
        headers={"authorization": f"Bearer {made.json()['key']}"},
    ) as project_admin:
        error = api_error(
            project_admin.patch("/projects/quota-own", json={"max_jobs": 100}), 403, "PERMISSION_DENIED"
        )
        assert "platform admin" in error["message"]
        shown = project_admin.get("/projects/quota-own")  # its own project's quotas and usage: readable
        assert shown.status_code == 200 and shown.json()["quotas"]["max_jobs"] is None


def test_jobs_over_the_jobs_and_slots_quotas_are_429_naming_them(
    app_control_plane: AppControlPlane, http: httpx.Client
) -> None:
    with _project(app_control_plane, "quota-jobs", max_jobs=1) as client:
        client.create_dataset("iris", sample="iris")
        spec = {"dataset": "iris", "model": {"family": "logistic"}, "register_as": "trained"}
        first = client.submit_job(spec)
        raw = httpx.Client(
            transport=app_control_plane.transport,
            base_url=f"{APP_URL}/api/v1",
            headers={"authorization": f"Bearer {API_KEY}", "X-Aiaas-Project": "quota-jobs"},
        )
        _refused(raw.post("/jobs", json=spec), "max_jobs", 1, 1)
        with pytest.raises(ResourceExhausted, match="max_jobs"):  # the SDK raises it typed
            client.submit_job(spec)
        assert http.get("/projects/quota-jobs").json()["usage"]["jobs"] == 1
        client.cancel_job(first.id)  # a cancelled job no longer counts
        second = client.submit_job(spec)
        # CPU slots: the workers of the jobs queued or running, together.
        http.patch("/projects/quota-jobs", json={"max_jobs": None, "max_slots": 1})
        error = _refused(raw.post("/jobs", json=spec), "max_slots", 1, 1)
        assert error["details"]["requested"] == 1
        client.cancel_job(second.id)
        raw.close()


def test_deployments_over_the_replicas_quota_are_429_and_lowering_passes(
    app_control_plane: AppControlPlane, http: httpx.Client
) -> None:
    model, example = _classifier()
    with _project(app_control_plane, "quota-replicas", max_replicas=3) as client:
        client.register_model("iris", model, example=example)
        client.deploy("big", model="iris", max_replicas=2)
        client.deploy("small", model="iris")  # no max_replicas: counts 1
        assert http.get("/projects/quota-replicas").json()["usage"]["replicas"] == 3
        raw = httpx.Client(
            transport=app_control_plane.transport,
            base_url=f"{APP_URL}/api/v1",
            headers={"authorization": f"Bearer {API_KEY}", "X-Aiaas-Project": "quota-replicas"},
        )
        _refused(raw.post("/deployments", json={"name": "third", "model": "iris"}), "max_replicas", 3, 3)
        error = _refused(raw.patch("/deployments/big", json={"max_replicas": 3}), "max_replicas", 3, 3)
        assert error["details"]["requested"] == 1
        assert client.get_deployment("big").max_replicas == 2  # the refused change was not kept
        client.update_deployment("big", max_replicas=1)  # lowering always passes
        client.deploy("third", model="iris")
        raw.close()


def test_model_and_dataset_versions_over_the_bytes_quota_are_429(
    app_control_plane: AppControlPlane, http: httpx.Client
) -> None:
    model, example = _classifier()
    with _project(app_control_plane, "quota-bytes") as client:
        client.register_model("iris", model, example=example)
        used = http.get("/projects/quota-bytes").json()["usage"]["bytes"]
        assert used > 0
        http.patch("/projects/quota-bytes", json={"max_bytes": used})
        with pytest.raises(ResourceExhausted) as refused:
            client.register_model("iris", model, example=example, description="again")
        assert refused.value.details["quota"] == "max_bytes"
        assert refused.value.details["usage"] == used
        assert [v.version for v in client.list_versions("iris")] == [1]
        with pytest.raises(ResourceExhausted, match="max_bytes"):
            client.create_dataset("iris-data", sample="iris")
        http.patch("/projects/quota-bytes", json={"max_bytes": None})
        client.create_dataset("iris-data", sample="iris")
