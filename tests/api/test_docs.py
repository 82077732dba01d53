"""The API docs work offline, and the OpenAPI document says what the server really answers."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import ControlPlane


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_this_server(control_plane: ControlPlane, page: str) -> None:
    http = control_plane.http
    html = http.get(f"{control_plane.url}{page}")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", html.text), "the page must not load anything from the internet"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert assets and all(a.startswith("/docs-assets/") for a in assets), assets
    for asset in assets:
        response = http.get(f"{control_plane.url}{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 1000, asset  # the real bundle, not a stub
    assert "/openapi.json" in html.text
    assert http.get(f"{control_plane.url}/openapi.json").status_code == 200


def test_the_swagger_page_runs_the_installed_bundle(control_plane: ControlPlane) -> None:
    http = control_plane.http
    assert "SwaggerUIBundle" in http.get(f"{control_plane.url}/docs").text
    bundle = http.get(f"{control_plane.url}/docs-assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    assert http.get(f"{control_plane.url}/docs-assets/redoc.standalone.js").status_code == 200


def test_the_openapi_document_lists_the_real_error_statuses(control_plane: ControlPlane) -> None:
    document = control_plane.http.get(f"{control_plane.url}/openapi.json").json()
    operations = {
        (method.upper(), path): op for path, ops in document["paths"].items() for method, op in ops.items()
    }
    assert all("422" not in op["responses"] for op in operations.values()), "the server sends 400, not 422"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    error = {"$ref": "#/components/schemas/Error"}

    def statuses(method: str, path: str) -> set[str]:
        return set(operations[(method, path)]["responses"])

    assert {"400", "401", "404", "503"} <= statuses("GET", "/api/v1/models/{name}")
    assert {"400", "401", "404", "408", "409", "413"} <= statuses("POST", "/api/v1/deployments")
    assert {"409"} <= statuses("DELETE", "/api/v1/models/{name}/versions/{version}")
    assert {"409"} <= statuses("POST", "/api/v1/jobs/{job_id}/cancel")
    assert {"413"} <= statuses("POST", "/api/v1/datasets/{name}/versions")
    assert statuses("GET", "/api/v1/health") == {"200"}
    bad = operations[("POST", "/api/v1/models")]["responses"]["400"]
    assert bad["content"]["application/json"]["schema"] == error
    # The server has an API key: the document says so.
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert operations[("GET", "/api/v1/models")]["security"] == [{"apiKey": []}]
    assert "security" not in operations[("GET", "/api/v1/health")]


def test_the_openapi_document_links_what_a_create_makes_to_what_reads_it(control_plane: ControlPlane) -> None:
    document = control_plane.http.get(f"{control_plane.url}/openapi.json").json()
    created = document["paths"]["/api/v1/models/{name}/versions"]["post"]["responses"]["201"]
    link = created["links"]["get_version_api_v1_models__name__versions__version__get"]
    assert link["parameters"] == {"version": "$response.body#/version", "name": "$request.path.name"}
    job_links = document["paths"]["/api/v1/jobs"]["post"]["responses"]["201"]["links"]
    assert {link["parameters"]["job_id"] for link in job_links.values()} == {"$response.body#/id"}
