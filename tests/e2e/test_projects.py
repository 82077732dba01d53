"""Two projects, each with a deployment named ``iris`` serving a different model, on real servers.

The inference server keys its route table by project and name: a request names the deployment
by its plain name (V2, V1, the OpenAI routes) and its project with ``X-Aiaas-Project``
(``default`` without one). Each project's ``iris`` answers with its own model; a deployment of
another project is a 404, and lists show only the request's project.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.errors import NotFound
from aiaas.sdk import Client
from tests._auth import AUTH
from tests._models import iris
from tests.e2e.conftest import Platform

HEADER = "X-Aiaas-Project"


def _flipped_classifier() -> Any:
    """An iris classifier whose labels are reversed: it answers unlike the plain one."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    return LogisticRegression(max_iter=1000).fit(X, 2 - y)


@pytest.fixture(scope="module")
def two_projects(platform: Platform) -> tuple[Any, Any]:
    from tests._models import iris_classifier

    X, _ = iris()
    plain, flipped = iris_classifier(), _flipped_classifier()
    for project, model in (("team-a", plain), ("team-b", flipped)):
        platform.client.create_project(project)
        with Client(platform.api_url, inference_url=platform.inference_url, project=project) as c:
            c.register_model("iris", model, example=X[:5])
            c.deploy("iris", model="iris", version=1)
            c.wait_until_served("iris", 1)
    with Client(platform.api_url, inference_url=platform.inference_url, project="team-a") as c:
        c.deploy("only-a", model="iris", version=1)
        c.wait_until_served("only-a", 1)
    return plain, flipped


def _v2(platform: Platform, name: str, X: np.ndarray[Any, Any], project: str | None) -> httpx.Response:
    body = {"inputs": [{"name": "X", "shape": list(X.shape), "datatype": "FP32", "data": X.ravel().tolist()}]}
    headers = {HEADER: project, **AUTH} if project else dict(AUTH)
    return httpx.post(f"{platform.inference_url}/v2/models/{name}/infer", json=body, headers=headers)


def test_each_projects_iris_answers_with_its_own_model(
    platform: Platform, two_projects: tuple[Any, Any]
) -> None:
    plain, flipped = two_projects
    X, _ = iris()
    assert not np.array_equal(plain.predict(X), flipped.predict(X))
    for project, model in (("team-a", plain), ("team-b", flipped)):
        with Client(platform.api_url, inference_url=platform.inference_url, project=project) as c:
            np.testing.assert_array_equal(c.predict("iris", X)["label"], model.predict(X))
        v1 = httpx.post(
            f"{platform.inference_url}/v1/models/iris:predict",
            json={"instances": X[:10].tolist()},
            headers={HEADER: project, **AUTH},
        )
        assert v1.status_code == 200, v1.text
        np.testing.assert_array_equal([p["label"] for p in v1.json()["predictions"]], model.predict(X[:10]))
        v2 = _v2(platform, "iris", X[:3], project)
        assert v2.status_code == 200, v2.text
        assert v2.json()["model_name"] == "iris"  # the plain name: the project is the caller's own
        labels = next(o for o in v2.json()["outputs"] if o["name"] == "label")["data"]
        np.testing.assert_array_equal(labels, model.predict(X[:3]))


def test_a_deployment_of_another_project_is_a_404(platform: Platform, two_projects: tuple[Any, Any]) -> None:
    X, _ = iris()
    url = platform.inference_url
    assert _v2(platform, "only-a", X[:2], "team-a").status_code == 200
    for response in (
        _v2(platform, "only-a", X[:2], "team-b"),
        _v2(platform, "only-a", X[:2], None),  # the default project has neither
        _v2(platform, "iris", X[:2], None),
        httpx.get(f"{url}/v2/models/only-a", headers={HEADER: "team-b", **AUTH}),
        httpx.get(f"{url}/v2/models/only-a/versions/1", headers={HEADER: "team-b", **AUTH}),
        httpx.get(f"{url}/v2/models/only-a/ready", headers={HEADER: "team-b", **AUTH}),
        httpx.get(f"{url}/v1/models/only-a", headers={HEADER: "team-b", **AUTH}),
        httpx.post(
            f"{url}/v1/models/only-a:predict",
            json={"instances": X[:1].tolist()},
            headers={HEADER: "team-b", **AUTH},
        ),
        httpx.get(f"{url}/v2/models/only-a/stats", headers={HEADER: "team-b", **AUTH}),
    ):
        assert response.status_code == 404, (response.request.url, response.text)
        assert "team-a" not in response.text
    openai = httpx.post(
        f"{url}/openai/v1/embeddings",
        json={"model": "only-a", "input": "x"},
        headers={HEADER: "team-b", **AUTH},
    )
    assert openai.status_code == 404 and "team-a" not in openai.text
    across = httpx.post(
        f"{url}/openai/v1/embeddings",
        json={"model": "team-a/only-a", "input": "x"},
        headers={HEADER: "team-b", **AUTH},
    )
    assert across.status_code == 404
    # In its own project the OpenAI route finds it (and says it is no embedding model).
    own = httpx.post(
        f"{url}/openai/v1/embeddings",
        json={"model": "only-a", "input": "x"},
        headers={HEADER: "team-a", **AUTH},
    )
    assert own.status_code == 400 and "hf-embedding" in own.text


def test_lists_show_the_requests_project_only(platform: Platform, two_projects: tuple[Any, Any]) -> None:
    url = platform.inference_url
    assert httpx.get(f"{url}/v1/models", headers={HEADER: "team-a", **AUTH}).json()["models"] == [
        "iris",
        "only-a",
    ]
    assert httpx.get(f"{url}/v1/models", headers={HEADER: "team-b", **AUTH}).json()["models"] == ["iris"]
    assert httpx.get(f"{url}/v1/models", headers=AUTH).json()["models"] == []
    stats = httpx.get(f"{url}/v2/models/stats", headers={HEADER: "team-b", **AUTH}).json()["model_stats"]
    assert {s["name"] for s in stats} <= {"iris"}


def test_a_bad_project_header_is_a_400_naming_it(platform: Platform, two_projects: tuple[Any, Any]) -> None:
    response = httpx.get(f"{platform.inference_url}/v2/models/iris", headers={HEADER: "Bad Name", **AUTH})
    assert response.status_code == 400
    assert HEADER in response.json()["error"]


def test_the_cli_works_in_the_project_it_is_given(
    platform: Platform, two_projects: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def aiaas(*args: str) -> Any:
        result = CliRunner().invoke(
            app, ["--url", platform.api_url, "--inference-url", platform.inference_url, *args]
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert [d["name"] for d in aiaas("--project", "team-a", "deployments", "list", "--json")] == [
        "iris",
        "only-a",
    ]
    monkeypatch.setenv("AIAAS_PROJECT", "team-b")
    assert [d["name"] for d in aiaas("deployments", "list", "--json")] == ["iris"]
    assert aiaas("--project", "default", "deployments", "list", "--json") == []
    assert {"default", "team-a", "team-b"} <= {p["name"] for p in aiaas("projects", "list", "--json")}
    assert aiaas("projects", "show", "team-a", "--json")["name"] == "team-a"
    created = CliRunner().invoke(app, ["--url", platform.api_url, "projects", "create", "team-c"])
    assert created.exit_code == 0 and "team-c" in created.stdout, created.output


def test_a_training_job_reads_and_registers_in_its_own_project(
    platform: Platform, two_projects: tuple[Any, Any]
) -> None:
    """The scheduler runs every project's queue; the worker trains on team-b's dataset and
    registers the result in team-b, where a dataset of the same name elsewhere is not seen."""
    with Client(platform.api_url, inference_url=platform.inference_url, project="team-b") as b:
        b.create_dataset("flowers", sample="iris")
        job = b.submit_job({"dataset": "flowers", "model": {"family": "logistic"}, "register_as": "trained"})
        job = b.wait_for_job(job.id, timeout=300)
        assert job.status == "succeeded", job.error
        assert [v.version for v in b.list_versions("trained")] == [1]
    with Client(platform.api_url, inference_url=platform.inference_url, project="team-a") as a:
        assert "trained" not in [m.name for m in a.list_models()]
        with pytest.raises(NotFound):
            a.get_job(job.id)
    assert "trained" not in [m.name for m in platform.client.list_models()]
