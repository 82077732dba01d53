"""Every failure of the control plane is a JSON error with the right status, on a connection
that stays usable: odd input is a 4xx naming the field, and an unexpected error a plain 500."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn

from aiaas.api import create_app
from aiaas.config import Settings
from tests._auth import AUTH, write_admin_key
from tests._servers import free_port, wait_until
from tests.api.conftest import MAX_DATASET_CELLS, ControlPlane, api_error

# -- a 500 is an ordinary response ---------------------------------------------------------


@pytest.fixture
def failing_app_url(tmp_path: Path) -> Iterator[str]:
    """The real control plane app, with one extra route that fails unexpectedly, served by
    uvicorn (as ``aiaas up`` serves it) on a free port in a thread."""
    write_admin_key(tmp_path)
    app = create_app(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))

    @app.get("/api/v1/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("an unexpected failure")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=60, what="the control plane app to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _local_port(response: httpx.Response) -> int:
    """The client-side port of the connection that carried ``response``."""
    return int(response.extensions["network_stream"].get_extra_info("socket").getsockname()[1])


def test_an_unexpected_error_is_a_json_500_on_a_connection_that_stays_open(failing_app_url: str) -> None:
    with httpx.Client(base_url=failing_app_url, timeout=30, headers=AUTH) as http:
        first = http.get("/api/v1/health")
        assert first.status_code == 200
        for _ in range(10):
            error = api_error(http.get("/api/v1/boom"), 500, "INTERNAL")
            assert "RuntimeError" in error["message"] and "control plane log" in error["message"]
            after = http.get("/api/v1/health")
            assert after.status_code == 200
            # The same keep-alive connection carried it: the server did not close it under the 500.
            assert _local_port(after) == _local_port(first)


# -- 405 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/models", "GET, POST"),
        ("PUT", "/models/x", "GET, PATCH, DELETE"),
        ("POST", "/models/x/versions/1", "GET, DELETE"),
        ("GET", "/jobs/1/cancel", "POST"),
        ("PATCH", "/datasets", "GET"),
    ],
)
def test_a_method_the_path_does_not_take_is_a_405_listing_every_method_it_does(
    control_plane: ControlPlane, method: str, path: str, allowed: str
) -> None:
    response = control_plane.http.request(method, path)
    error = api_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == allowed
    assert error["details"]["allowed"] == allowed.split(", ")
    assert f"method {method} is not allowed" in error["message"]


def test_an_unknown_path_is_a_404_in_the_error_shape(control_plane: ControlPlane) -> None:
    error = api_error(control_plane.http.get("/nothing/here"), 404, "NOT_FOUND")
    assert "/api/v1/nothing/here" in error["message"]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["café", "\u00e9t\u00e9", "ключ"])
def test_a_non_ascii_bearer_token_is_a_401(control_plane: ControlPlane, token: str) -> None:
    response = httpx.get(
        f"{control_plane.url}/api/v1/models", headers={"authorization": f"Bearer {token}".encode()}
    )
    api_error(response, 401, "UNAUTHENTICATED")


def _upload(
    control_plane: ControlPlane, name: str, data: bytes, filename: str, **form: str
) -> httpx.Response:
    return control_plane.http.post(f"/datasets/{name}/versions", files={"file": (filename, data)}, data=form)


def test_a_csv_whose_header_is_not_utf8_is_a_400(control_plane: ControlPlane) -> None:
    error = api_error(_upload(control_plane, "latin1", b"caf\xe9,b\n1,2\n", "f.csv"), 400, "INVALID_ARGUMENT")
    assert "header row" in error["message"] and "UTF-8" in error["message"]
    assert error["details"]["field"] == "file"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "infinity"])
def test_a_validation_fraction_that_is_not_finite_is_a_400(control_plane: ControlPlane, value: str) -> None:
    response = _upload(control_plane, "fraction", b"a,b\n1,2\n3,4\n", "f.csv", validation_fraction=value)
    error = api_error(response, 400, "INVALID_ARGUMENT")
    assert error["details"] == {"field": "validation_fraction", "value": value}


def test_a_parquet_file_that_decodes_past_the_cell_limit_is_a_413_before_it_is_read(
    control_plane: ControlPlane,
) -> None:
    rows = MAX_DATASET_CELLS + 1
    out = io.BytesIO()
    pq.write_table(pa.table({"x": pa.array([0] * rows, pa.int64())}), out, compression="zstd")
    bomb = out.getvalue()
    assert len(bomb) < 4096  # a few KiB that decode to 80 KB: the shape of a decompression bomb
    error = api_error(_upload(control_plane, "bomb", bomb, "bomb.parquet"), 413, "PAYLOAD_TOO_LARGE")
    assert "AIAAS_MAX_DATASET_CELLS" in error["message"] and str(MAX_DATASET_CELLS) in error["message"]
    assert error["details"]["limit"] == MAX_DATASET_CELLS and error["details"]["size"] == rows
    api_error(control_plane.http.get("/datasets/bomb"), 404, "NOT_FOUND")  # nothing was stored


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_a_json_body_are_a_400_and_nothing_is_stored(
    control_plane: ControlPlane, number: str
) -> None:
    body = '{"name": "nan-tags", "tags": {"score": NUMBER}}'.replace("NUMBER", number)
    response = control_plane.http.post("/models", content=body, headers={"content-type": "application/json"})
    error = api_error(response, 400, "INVALID_ARGUMENT")
    assert "tags.score" in error["message"] and "finite" in error["message"]
    api_error(control_plane.http.get("/models/nan-tags"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scale_down_delay_s": False}, "scale_down_delay_s"),
        ({"max_queue_size": True}, "max_queue_size"),
        ({"batching": {"enabled": 0}}, "enabled"),
    ],
)
def test_a_bool_for_a_number_or_a_number_for_a_bool_is_a_400(
    control_plane: ControlPlane, body: dict, field: str
) -> None:
    error = api_error(control_plane.http.patch("/deployments/nowhere", json=body), 400, "INVALID_ARGUMENT")
    assert field in error["message"]


@pytest.mark.parametrize("name", ["a?b", "a#b", "a%2Fb"])
def test_the_sdk_gets_the_naming_rule_for_a_name_with_reserved_characters(
    control_plane: ControlPlane, name: str
) -> None:
    """``?`` and ``#`` used to cut the path short (``POST /datasets/a`` → 405), and ``%2F``
    to turn into a slash; now each reaches the server as part of the name."""
    from aiaas.errors import InvalidArgument
    from aiaas.sdk import Client
    from tests.api.conftest import API_KEY

    with Client(control_plane.url, API_KEY) as client:
        with pytest.raises(InvalidArgument, match="letters, digits"):
            client.create_dataset(name, sample="iris")
        with pytest.raises(InvalidArgument, match="letters, digits"):
            client.create_model(name)
