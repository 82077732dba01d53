"""Request bodies are bounded in size and in time on every control-plane endpoint, and a
path with an encoded slash is refused with the naming rule."""

from __future__ import annotations

import socket
import time

import pytest

from tests.api.conftest import API_KEY, BODY_READ_TIMEOUT_S, MAX_API_BODY_BYTES, ControlPlane, api_error


def test_a_json_body_over_the_limit_is_a_413_naming_the_setting(control_plane: ControlPlane) -> None:
    body = {"name": "too-big", "description": "x" * MAX_API_BODY_BYTES}
    error = api_error(control_plane.http.post("/models", json=body), 413, "PAYLOAD_TOO_LARGE")
    assert "AIAAS_MAX_API_BODY_BYTES" in error["message"] and str(MAX_API_BODY_BYTES) in error["message"]
    api_error(control_plane.http.get("/models/too-big"), 404, "NOT_FOUND")  # nothing was stored


def test_a_chunked_body_over_the_limit_is_cut_off_with_a_413(control_plane: ControlPlane) -> None:
    def chunks():  # no Content-Length: the limit is enforced as the body arrives
        yield b'{"name": "chunked", "description": "'
        for _ in range(MAX_API_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    response = control_plane.http.post(
        "/models", content=chunks(), headers={"content-type": "application/json"}
    )
    api_error(response, 413, "PAYLOAD_TOO_LARGE")
    api_error(control_plane.http.get("/models/chunked"), 404, "NOT_FOUND")


def test_a_body_under_the_limit_is_accepted(control_plane: ControlPlane) -> None:
    body = {"name": "just-fits", "description": "x" * (MAX_API_BODY_BYTES // 2)}
    assert control_plane.http.post("/models", json=body).status_code == 201


def test_an_upload_has_its_own_limit_not_the_json_one(control_plane: ControlPlane) -> None:
    row = b"0.1234567890123456,0.6543210987654321\n"
    csv = b"a,b\n" + row * (MAX_API_BODY_BYTES // len(row) + 10)  # larger than a JSON body may be
    assert len(csv) > MAX_API_BODY_BYTES
    response = control_plane.http.post(
        "/datasets/big-upload/versions", files={"file": ("f.csv", csv)}, data={"validation_fraction": "0.5"}
    )
    assert response.status_code == 201, response.text


def _raw_request(control_plane: ControlPlane, head: bytes) -> socket.socket:
    port = int(control_plane.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _head(path: str, length: int, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {API_KEY}\r\n"
        f"content-type: {content_type}\r\ncontent-length: {length}\r\n\r\n"
    ).encode()


def test_a_stalled_body_is_a_408_and_the_connection_is_closed(control_plane: ControlPlane) -> None:
    start = time.monotonic()
    sock = _raw_request(control_plane, _head("/api/v1/models", 100) + b'{"name": "sta')
    with sock:
        answer = _read_all(sock)  # returns once the server has closed the connection
    waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"REQUEST_TIMEOUT" in answer and b"AIAAS_BODY_READ_TIMEOUT_S" in answer
    assert waited >= BODY_READ_TIMEOUT_S  # it did wait for the body as long as allowed


def test_a_stalled_multipart_upload_is_cut_off_too(control_plane: ControlPlane) -> None:
    boundary = "b0undary"
    start = f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="f.csv"\r\n\r\na,b\n1,2\n'
    head = _head("/api/v1/datasets/stalled/versions", 10_000, f"multipart/form-data; boundary={boundary}")
    with _raw_request(control_plane, head + start.encode()) as sock:
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_a_trickling_body_is_cut_off_at_its_deadline(control_plane: ControlPlane) -> None:
    """A byte every half timeout never stalls long enough for the idle timeout, but the whole
    body must arrive within the timeout plus a second per MiB."""
    sock = _raw_request(control_plane, _head("/api/v1/models", 1000))
    sock.settimeout(BODY_READ_TIMEOUT_S / 2)  # paces the slow client: one byte per wait
    answer = b""
    give_up = time.monotonic() + 30
    with sock:
        while time.monotonic() < give_up:
            try:
                sock.sendall(b" ")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue  # nothing yet: send the next byte
            except OSError:
                break  # the server closed the connection
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_many_stalled_uploads_are_all_released(control_plane: ControlPlane) -> None:
    sockets = [_raw_request(control_plane, _head("/api/v1/models", 1000) + b"{") for _ in range(50)]
    try:
        for sock in sockets:
            assert _read_all(sock).startswith(b"HTTP/1.1 408")
    finally:
        for sock in sockets:
            sock.close()
    assert control_plane.http.get("/models").status_code == 200  # the server is fine


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("/models/a%2Fb", "a/b"),
        ("/models/a%2fb/versions", "a/b"),
        ("/datasets/x%2F..%2Fy/versions/1", "x/../y"),
    ],
)
def test_a_name_with_an_encoded_slash_is_a_400_naming_the_rule(
    control_plane: ControlPlane, path: str, segment: str
) -> None:
    for method in ("GET", "POST", "DELETE"):
        error = api_error(control_plane.http.request(method, path), 400, "INVALID_ARGUMENT")
        assert error["details"]["value"] == segment
        assert "letters, digits" in error["message"]


@pytest.mark.parametrize("name", ["a?b", "a#b", "caf é"])
def test_a_name_with_reserved_characters_is_refused_by_the_naming_rule(
    control_plane: ControlPlane, name: str
) -> None:
    from urllib.parse import quote

    error = api_error(control_plane.http.post("/models", json={"name": name}), 400, "INVALID_ARGUMENT")
    assert "letters, digits" in error["message"]
    response = control_plane.http.post(f"/datasets/{quote(name, safe='')}/versions", json={"sample": "iris"})
    assert "letters, digits" in api_error(response, 400, "INVALID_ARGUMENT")["message"]
