"""Projects on the control plane: names unique per project, another project's resource a 404.

Two projects, ``team-a`` and ``team-b``, each get a model, a version, a dataset, a job, a
deployment and an alert rule; a request names its project with ``X-Aiaas-Project`` (the SDK's
``Client(project=...)``). From the other project every one of them answers exactly as a
resource that does not exist: 404, its name nowhere in a list, never a 403. The control plane
app runs in this process (``conftest.py`` here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from aiaas.sdk import Client
from tests._api import api_error
from tests.api.conftest import API_KEY
from tests.api.inprocess.conftest import APP_URL, AppControlPlane

HEADER = "X-Aiaas-Project"


@dataclass(frozen=True)
class Owned:
    """What one project holds, by name (the job by id)."""

    project: str
    model: str
    dataset: str
    deployment: str
    rule: str
    job: int


def _client(app: AppControlPlane, project: str) -> Client:
    return Client(APP_URL, API_KEY, transport=app.transport, project=project)


def _http(app: AppControlPlane, project: str) -> httpx.Client:
    return httpx.Client(
        transport=app.transport,
        base_url=f"{APP_URL}/api/v1",
        headers={"authorization": f"Bearer {API_KEY}", HEADER: project},
        timeout=60,
    )


def _classifier(seed: int) -> tuple[Any, np.ndarray[Any, Any]]:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(seed).normal(size=(30, 3)).astype(np.float32)
    y = (x[:, seed % 3] > 0).astype(int)
    return LogisticRegression().fit(x, y), x[:2]


def _fill(app: AppControlPlane, project: str, seed: int) -> Owned:
    """A project holding one of each resource kind, under the names every project uses."""
    if app.http.get(f"/projects/{project}").status_code == 404:
        app.http.post("/projects", json={"name": project, "description": f"test {project}"})
    tag = project[-1]  # resource names do not hold the project's: a message naming one would show
    with _client(app, project) as client:
        model, example = _classifier(seed)
        client.register_model("shared", model, example=example, description=f"of {project}")
        client.register_model(f"only-{tag}", model, example=example)
        client.create_dataset(f"data-{tag}", sample="iris")
        job = client.submit_job(
            {
                "dataset": f"data-{tag}",
                "model": {"family": "logistic"},
                "register_as": f"trained-{tag}",
            }
        )
        client.deploy(f"dep-{tag}", model=f"only-{tag}")
        client.create_alert_rule(
            f"rule-{tag}",
            metric="error_rate",
            op=">",
            threshold=0.5,
            window="5m",
            deployment=f"dep-{tag}",
        )
    return Owned(project, f"only-{tag}", f"data-{tag}", f"dep-{tag}", f"rule-{tag}", job.id)


@pytest.fixture(scope="session")
def projects(app_control_plane: AppControlPlane) -> tuple[Owned, Owned]:
    return _fill(app_control_plane, "team-a", 0), _fill(app_control_plane, "team-b", 1)


@pytest.fixture
def as_b(app_control_plane: AppControlPlane) -> Iterator[httpx.Client]:
    with _http(app_control_plane, "team-b") as http:
        yield http


def test_the_same_name_in_two_projects_is_two_models(
    app_control_plane: AppControlPlane, projects: tuple[Owned, Owned]
) -> None:
    with _client(app_control_plane, "team-a") as a, _client(app_control_plane, "team-b") as b:
        assert a.get_version("shared", 1).description == "of team-a"
        assert b.get_version("shared", 1).description == "of team-b"
        assert a.get_version("shared", 1).artifact_digest != b.get_version("shared", 1).artifact_digest


def test_every_resource_of_another_project_is_a_404(
    as_b: httpx.Client, projects: tuple[Owned, Owned]
) -> None:
    a, _ = projects
    paths = [
        f"/models/{a.model}",
        f"/models/{a.model}/versions",
        f"/models/{a.model}/versions/1",
        f"/models/{a.model}/versions/1/artifact",
        f"/models/{a.model}/aliases",
        f"/datasets/{a.dataset}",
        f"/datasets/{a.dataset}/versions/1",
        f"/jobs/{a.job}",
        f"/jobs/{a.job}/logs",
        f"/deployments/{a.deployment}",
        f"/deployments/{a.deployment}/scaling-events",
        f"/deployments/{a.deployment}/predictions",
        f"/alerts/rules/{a.rule}",
    ]
    for path in paths:
        api_error(as_b.get(path), 404, "NOT_FOUND")
    for method, path in [
        ("DELETE", f"/models/{a.model}"),
        ("DELETE", f"/deployments/{a.deployment}"),
        ("DELETE", f"/alerts/rules/{a.rule}"),
        ("POST", f"/jobs/{a.job}/cancel"),
    ]:
        error = api_error(as_b.request(method, path), 404, "NOT_FOUND")
        assert "team-a" not in error["message"]


def test_nothing_was_changed_by_the_other_projects_attempts(
    app_control_plane: AppControlPlane, as_b: httpx.Client, projects: tuple[Owned, Owned]
) -> None:
    a, _ = projects
    as_b.delete(f"/models/{a.model}")
    as_b.delete(f"/deployments/{a.deployment}")
    with _http(app_control_plane, "team-a") as as_a:
        assert as_a.get(f"/models/{a.model}").status_code == 200
        assert as_a.get(f"/deployments/{a.deployment}").status_code == 200
        assert as_a.get(f"/jobs/{a.job}").json()["status"] == "queued"


def test_lists_show_only_the_projects_own(as_b: httpx.Client, projects: tuple[Owned, Owned]) -> None:
    _, b = projects
    listed = {
        "models": [m["name"] for m in as_b.get("/models").json()["models"]],
        "datasets": [d["name"] for d in as_b.get("/datasets").json()["datasets"]],
        "deployments": [d["name"] for d in as_b.get("/deployments").json()["deployments"]],
        "rules": [r["name"] for r in as_b.get("/alerts/rules").json()["rules"]],
        "jobs": [j["id"] for j in as_b.get("/jobs").json()["jobs"]],
    }
    assert sorted(listed["models"]) == sorted(["shared", b.model])
    assert listed["datasets"] == [b.dataset]
    assert listed["deployments"] == [b.deployment]
    assert listed["rules"] == [b.rule]
    assert listed["jobs"] == [b.job]
    assert "team-a" not in str(listed)


def test_cross_references_stay_within_the_project(as_b: httpx.Client, projects: tuple[Owned, Owned]) -> None:
    """A deployment of another project's model, a job on its dataset, an alert on its deployment."""
    a, _ = projects
    api_error(as_b.post("/deployments", json={"name": "borrowed", "model": a.model}), 404, "NOT_FOUND")
    job = as_b.post("/jobs", json={"dataset": a.dataset, "model": {"family": "logistic"}})
    assert job.status_code in (400, 404), job.text
    assert "team-a" not in job.text
    rule = {"name": "borrowed", "metric": "error_rate", "op": ">", "threshold": 1, "window": "5m"}
    response = as_b.post("/alerts/rules", json=rule | {"deployment": a.deployment})
    assert response.status_code in (400, 404), response.text
    assert as_b.get("/deployments/borrowed").status_code == 404


def test_the_default_project_sees_none_of_them(
    app_control_plane: AppControlPlane, projects: tuple[Owned, Owned]
) -> None:
    a, b = projects
    names = [m["name"] for m in app_control_plane.http.get("/models").json()["models"]]
    assert a.model not in names and b.model not in names
    api_error(app_control_plane.http.get(f"/deployments/{a.deployment}"), 404, "NOT_FOUND")


def test_a_bad_project_header_is_a_400_naming_it(app_control_plane: AppControlPlane) -> None:
    with _http(app_control_plane, "Not A Name") as http:
        api_error(http.get("/models"), 400, "INVALID_ARGUMENT", field=HEADER)


def test_an_unknown_project_is_a_404(app_control_plane: AppControlPlane) -> None:
    with _http(app_control_plane, "no-such-project") as http:
        api_error(http.get("/models"), 404, "NOT_FOUND")


def test_projects_api(app_control_plane: AppControlPlane, projects: tuple[Owned, Owned]) -> None:
    http = app_control_plane.http
    names = [p["name"] for p in http.get("/projects").json()["projects"]]
    assert {"default", "team-a", "team-b"} <= set(names)
    assert http.get("/projects/team-a").json()["description"] == "test team-a"
    api_error(http.post("/projects", json={"name": "team-a"}), 409, "ALREADY_EXISTS")
    api_error(http.post("/projects", json={"name": "Team A"}), 400, "INVALID_ARGUMENT", field="name")
    api_error(http.get("/projects/nothing-here"), 404, "NOT_FOUND")
    with _client(app_control_plane, "default") as client:
        assert client.get_project("default").name == "default"
        assert "team-b" in [p.name for p in client.list_projects()]


def test_rollouts_and_retraining_policies_of_another_project_are_404s(
    app_control_plane: AppControlPlane, projects: tuple[Owned, Owned]
) -> None:
    """Both projects deploy ``canary`` and roll out its version 2: two rollouts of one name,
    each seen from its own project only; a retraining policy likewise."""
    started: dict[str, int] = {}
    for owned, seed in zip(projects, (5, 6), strict=True):
        model, example = _classifier(seed)
        with _client(app_control_plane, owned.project) as client:
            client.register_model("canary", model, example=example)
            client.register_model("canary", model, example=example)
            client.deploy("canary", model="canary", version=1)
        with _http(app_control_plane, owned.project) as http:
            created = http.post(
                "/deployments/canary/rollouts",
                json={"version": 2, "steps": [{"weight": 10, "bake": "1h"}, {"weight": 100}]},
            )
            assert created.status_code == 201, created.text
            started[owned.project] = created.json()["id"]
            policy = {
                "trigger": {"metric": "drift_share", "threshold": 0.5, "window": "1m"},
                "data": {"dataset": owned.dataset},
                "training": {"model": {"family": "logistic"}},
            }
            assert http.put("/deployments/canary/retraining", json=policy).status_code == 200
    theirs, mine = started["team-a"], started["team-b"]
    assert theirs != mine
    with _http(app_control_plane, "team-b") as as_b:
        assert [r["id"] for r in as_b.get("/deployments/canary/rollouts").json()["rollouts"]] == [mine]
        api_error(as_b.get(f"/deployments/canary/rollouts/{theirs}"), 404, "NOT_FOUND")
        api_error(as_b.post(f"/deployments/canary/rollouts/{theirs}/abort"), 404, "NOT_FOUND")
        assert as_b.post(f"/deployments/canary/rollouts/{mine}/abort").json()["state"] == "aborting"
        assert as_b.delete("/deployments/canary/retraining").status_code == 204
        api_error(as_b.get("/deployments/canary/retraining"), 404, "NOT_FOUND")
    with _http(app_control_plane, "team-a") as as_a:
        assert as_a.get(f"/deployments/canary/rollouts/{theirs}").json()["state"] in ("running", "completed")
        assert as_a.get("/deployments/canary/retraining").json()["deployment"] == "canary"
