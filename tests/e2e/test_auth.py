"""Authentication on the inference server, with both servers running: every endpoint but the
health checks needs a key, a revoked key stops working within seconds, an inference key reaches
its own deployments only, and tritonclient (headers) and the openai client (api_key) work."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from aiaas.errors import PermissionDenied
from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests._servers import wait_until
from tests.e2e.conftest import Platform

OWN, OTHER = "auth-own", "auth-other"
#: A revoked key is refused within this long (the issue's bound).
REVOKED_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def deployed(platform: Platform) -> Iterator[Platform]:
    X, _ = iris()
    c = platform.client
    c.register_model("auth-iris", iris_classifier(), example=X[:5])
    for name in (OWN, OTHER):
        c.deploy(name, model="auth-iris", version=1)
        c.wait_until_served(name, 1)
    yield platform


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _v2(x: np.ndarray) -> dict[str, object]:  # type: ignore[type-arg]
    return {"inputs": [{"name": "X", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}


def _routes(name: str) -> list[tuple[str, str, dict[str, object] | None, int]]:
    """The endpoints on one deployment, and their status with a key that may call it (the
    OpenAI API knows language and embedding models only: 404 for this one, past the key check)."""
    x = iris()[0][:2].astype(np.float32)
    return [
        ("POST", f"/v2/models/{name}/infer", _v2(x), 200),
        ("POST", f"/v2/models/{name}/versions/1/infer", _v2(x), 200),
        ("GET", f"/v2/models/{name}", None, 200),
        ("GET", f"/v2/models/{name}/ready", None, 200),
        ("GET", f"/v2/models/{name}/stats", None, 200),
        ("POST", f"/v1/models/{name}:predict", {"instances": x.tolist()}, 200),
        ("GET", f"/v1/models/{name}", None, 200),
        ("POST", f"/v2/models/{name}/explain", _v2(x), 409),  # no background sample: past the key
        ("GET", f"/openai/v1/models/{name}", None, 404),
        ("POST", "/openai/v1/embeddings", {"model": name, "input": "hi"}, 400),
    ]


SERVER_ROUTES = [
    ("GET", "/v2", None, 200),
    ("GET", "/v2/models/stats", None, 200),
    ("GET", "/v1/models", None, 200),
    ("GET", "/metrics", None, 200),
    ("GET", "/openai/v1/models", None, 200),
]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer aiaas_0123456789ab_abcdefghijklmnopqrstuvwxyz",
        b"Bearer \xff",
    ],
)
def test_every_inference_endpoint_refuses_a_missing_or_bad_key(
    deployed: Platform, header: str | None
) -> None:
    headers = {} if header is None else {"authorization": header}
    with httpx.Client(base_url=deployed.inference_url, timeout=30) as http:
        for method, path, body, _ in [*_routes(OWN), *SERVER_ROUTES]:
            r = http.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (method, path, r.text)
            assert "authorization" in str(r.json()["error"]) and r.headers["www-authenticate"] == "Bearer"
        for path in ("/v2/health/live", "/v2/health/ready"):
            assert http.get(path, headers=headers).status_code == 200, "probes carry no credentials"
        for method, path, body, ok in [*_routes(OWN), *SERVER_ROUTES]:
            r = http.request(method, path, json=body, headers=AUTH)
            assert r.status_code == ok, (method, path, r.text)


def test_a_revoked_key_is_refused_by_the_inference_server_within_five_seconds(deployed: Platform) -> None:
    made = deployed.client.create_key("auth-revoked", role="developer")
    url = f"{deployed.inference_url}/v2/models/{OWN}"

    def status() -> int:
        return httpx.get(url, headers=_bearer(made.key), timeout=10).status_code

    wait_until(lambda: status() == 200, timeout=REVOKED_WITHIN_S, what="the new key to be accepted")
    deployed.client.revoke_key(made.key_id)
    revoked_at = time.monotonic()
    wait_until(lambda: status() == 401, timeout=REVOKED_WITHIN_S, what="the revoked key to be refused")
    assert time.monotonic() - revoked_at < REVOKED_WITHIN_S


def test_an_inference_key_reaches_its_own_deployments_only(deployed: Platform) -> None:
    made = deployed.client.create_key("auth-scoped", role="inference", deployments=[OWN])
    headers = _bearer(made.key)
    with httpx.Client(base_url=deployed.inference_url, timeout=30) as http:
        wait_until(
            lambda: http.get(f"/v2/models/{OWN}", headers=headers).status_code == 200,
            timeout=REVOKED_WITHIN_S,
            what="the new key to be accepted",
        )
        for method, path, body, ok in _routes(OWN):
            r = http.request(method, path, json=body, headers=headers)
            assert r.status_code == ok, (method, path, r.text)
        for method, path, body, _ in _routes(OTHER):
            r = http.request(method, path, json=body, headers=headers)
            # 404, as for a deployment that does not exist: the key learns no other names
            assert r.status_code == 404, (method, path, r.text)
        assert http.get("/v1/models", headers=headers).json()["models"] == [OWN]
        stats = http.get("/v2/models/stats", headers=headers).json()["model_stats"]
        assert {s["name"] for s in stats} <= {OWN}
        assert OTHER not in str(http.get("/openai/v1/models", headers=headers).json())
        assert http.get("/metrics", headers=headers).status_code == 403, "metrics name every deployment"
    from aiaas.sdk import Client

    with Client(deployed.api_url, made.key) as c, pytest.raises(PermissionDenied, match="inference key"):
        c.list_models()


def test_a_viewer_key_reads_but_does_not_predict(deployed: Platform) -> None:
    made = deployed.client.create_key("auth-viewer", role="viewer")
    url = deployed.inference_url
    wait_until(
        lambda: httpx.get(f"{url}/v2/models/{OWN}", headers=_bearer(made.key)).status_code == 200,
        timeout=REVOKED_WITHIN_S,
        what="the new key to be accepted",
    )
    _, path, body, _ = _routes(OWN)[0]
    assert httpx.post(f"{url}{path}", json=body, headers=_bearer(made.key)).status_code == 403


def test_tritonclient_sends_the_key_as_a_header(deployed: Platform) -> None:
    x = iris()[0][:3].astype(np.float32)
    client = triton.InferenceServerClient(deployed.inference_url.removeprefix("http://"))
    try:
        given = triton.InferInput("X", list(x.shape), "FP32")
        given.set_data_from_numpy(x)
        result = client.infer(OWN, [given], headers=dict(AUTH))
        assert result.as_numpy("probabilities").shape == (3, 3)
        with pytest.raises(InferenceServerException, match=r"\[401\]"):
            client.infer(OWN, [given])
    finally:
        client.close()


def test_the_openai_client_sends_its_api_key(deployed: Platform) -> None:
    base_url = f"{deployed.inference_url}/openai/v1"
    listed = openai.OpenAI(
        base_url=base_url, api_key=AUTH["authorization"].split()[1], max_retries=0
    ).models.list()
    assert listed.data == [], "no language or embedding model is deployed here"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
