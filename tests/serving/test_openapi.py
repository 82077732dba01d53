"""The inference server's OpenAPI document: every route with its methods, served at
``/openapi.json``; and a wrong method is a 405 whose ``Allow`` lists the right ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.routing import Route

from aiaas.config import Settings
from aiaas.serving.app import create_app
from tests.serving.conftest import Stack


def test_the_document_describes_every_route_with_its_methods(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, replica_processes=False))
    routes = {
        (route.path.replace(":path}", "}"), method.lower())  # OpenAPI has no path converters
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
        # The catch-all under /openai answers unknown paths in OpenAI's error shape: not an operation.
        and route.path != "/openai/{rest:path}"
    }
    from aiaas.serving.openapi import openapi_document

    document = openapi_document("test")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == routes


def test_the_document_is_served_and_names_the_statuses_of_inference(stack: Stack) -> None:
    response = stack.http.get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.") and document["info"]["title"] == "aiaas inference server"
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    assert set(infer["responses"]) == {"200", "400", "401", "403", "404", "413", "429", "503", "504"}
    assert infer["security"] == [{"apiKey": []}] and "apiKey" in document["components"]["securitySchemes"]
    assert "NaN" in document["info"]["description"] and "1e300" in document["info"]["description"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v2/models/some", "GET, HEAD"),
        ("GET", "/v2/models/some/infer", "POST"),
        ("PUT", "/v1/models/some", "GET, HEAD, POST"),
        ("GET", "/v1/models/some:predict", "POST"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("DELETE", "/openai/v1/models", "GET, HEAD"),
        ("POST", "/openai/v1/models/tiny", "GET, HEAD"),
        ("GET", "/openai/v1/chat/completions", "POST"),
    ],
)
def test_a_wrong_method_is_a_405_listing_the_right_ones(
    stack: Stack, method: str, path: str, allowed: str
) -> None:
    response = stack.http.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    error = response.json()["error"]
    message = error["message"] if path.startswith("/openai/") else error  # OpenAI's error shape there
    assert set(response.json()) == {"error"} and allowed in message


def test_an_unknown_path_under_openai_is_a_404_in_openai_shape(stack: Stack) -> None:
    response = stack.http.post("/openai/v1/responses", json={"model": "m"})
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "/openai/v1/responses" in error["message"]
