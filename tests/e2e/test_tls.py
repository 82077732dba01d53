"""HTTPS end to end: ``aiaas up`` with a certificate, and every client verifying it.

A throwaway CA signs a certificate for 127.0.0.1 and localhost (``tests/_tls.py``). With it,
both servers serve HTTPS only; the SDK, the CLI, ``tritonclient`` and the ``openai`` client
work when given the CA, and a client without it is refused with a message that names the
setting to give. A bad certificate or key stops a server at start with one line, not a
traceback.
"""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from aiaas.cli.main import app
from aiaas.errors import InvalidArgument, Unavailable
from aiaas.sdk import Client
from aiaas.tls import client_context, server_context
from tests._auth import ADMIN_KEY, AUTH, write_admin_key
from tests._models import iris, iris_classifier
from tests._servers import ServerProcess, free_port, spawn, wait_until
from tests._tls import Certificates, make_certificates

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


@dataclass
class Secure:
    """``aiaas up`` serving HTTPS, with the files it was given and its two URLs."""

    certs: Certificates
    up: ServerProcess
    api_url: str
    inference_url: str
    inference_port: int

    def client(self, **kwargs: object) -> Client:
        return Client(self.api_url, **kwargs)  # type: ignore[arg-type]


def _env(home: Path, certs: Certificates, *, ca: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    env.update(
        AIAAS_HOME=str(home),
        AIAAS_TLS_CERT_FILE=str(certs.cert),
        AIAAS_TLS_KEY_FILE=str(certs.key),
        AIAAS_RECONCILE_INTERVAL_S="0.05",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    if ca:
        env["AIAAS_TLS_CA_FILE"] = str(certs.ca)
    return env


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure(certs: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    home = tmp_path_factory.mktemp("tls-home")
    write_admin_key(home)  # up adopts it as the platform admin key: the test clients send it
    port, inference_port = free_port(), free_port()
    ports = ["--port", str(port), "--inference-port", str(inference_port)]
    up = spawn(
        ["-m", "aiaas.cli", "--ca-file", str(certs.ca), "up", *ports],
        env=_env(home, certs, ca=False),  # the CA by option: up's checks and demo use it too
        ready_url=f"https://127.0.0.1:{port}/api/v1/health",
        log=home / "up.log",
        timeout=180,
        verify=client_context(certs.ca),
    )
    try:
        wait_until(lambda: "aiaas is up" in up.output() or not up.alive(), timeout=180, what="aiaas up")
        assert up.alive(), up.output()
        yield Secure(
            certs, up, f"https://127.0.0.1:{port}", f"https://127.0.0.1:{inference_port}", inference_port
        )
    finally:
        up.stop()


@pytest.fixture(autouse=True)
def _no_ambient_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test's own clients trust is what it gives them, nothing from the environment."""
    for name in ("AIAAS_TLS_CA_FILE", "AIAAS_TLS_CERT_FILE", "AIAAS_TLS_KEY_FILE", "AIAAS_INFERENCE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def iris_deployed(secure: Secure) -> str:
    with secure.client(verify=secure.certs.ca) as c:
        x, _ = iris()
        c.register_model("iris-tls", iris_classifier(), example=x[:5])
        c.deploy("iris-tls", model="iris-tls", version=1)
        c.wait_until_served("iris-tls", 1)
    return "iris-tls"


def test_up_serves_both_servers_over_https_only(secure: Secure) -> None:
    out = secure.up.output()
    assert f"{secure.api_url}/docs" in out and f"{secure.inference_url}/v2/models/NAME/infer" in out
    assert "Traceback" not in out


def test_the_sdk_with_the_ca_finds_the_inference_server_predicts_and_lists_models(
    secure: Secure, iris_deployed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with secure.client(verify=secure.certs.ca) as c:
        # Discovered from the control plane's health: the https URL of the inference server.
        assert c.inference_url == secure.inference_url
        assert c.predict(iris_deployed, [IRIS_ROW])["label"].tolist() == [0]
        assert [m.name for m in c.list_models()] == [iris_deployed]
    # The same from AIAAS_TLS_CA_FILE, and with an ssl.SSLContext of the caller's own.
    with monkeypatch.context() as env:
        env.setenv("AIAAS_TLS_CA_FILE", str(secure.certs.ca))
        with secure.client() as c:
            assert [m.name for m in c.list_models()] == [iris_deployed]
    with secure.client(verify=ssl.create_default_context(cafile=str(secure.certs.ca))) as c:
        assert c.predict(iris_deployed, [IRIS_ROW])["label"].tolist() == [0]


def test_the_cli_with_the_ca_file_lists_models_and_predicts(secure: Secure, iris_deployed: str) -> None:
    runner = CliRunner()
    listed = runner.invoke(
        app, ["--url", secure.api_url, "--ca-file", str(secure.certs.ca), "models", "list"]
    )
    assert listed.exit_code == 0, listed.output
    assert iris_deployed in listed.stdout
    predicted = runner.invoke(
        app,
        ["--url", secure.api_url, "predict", iris_deployed, "--json"],
        input='{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        env={"AIAAS_TLS_CA_FILE": str(secure.certs.ca)},
    )
    assert predicted.exit_code == 0, predicted.output
    assert '"predictions"' in predicted.stdout


def test_a_client_without_the_ca_is_refused_with_a_message_naming_the_setting(secure: Secure) -> None:
    with secure.client() as c, pytest.raises(Unavailable) as refused:  # the system's CAs only
        c.list_models()
    message = refused.value.message
    assert "cannot verify the TLS certificate of the control plane" in message
    assert "AIAAS_TLS_CA_FILE" in message and "verify=" in message
    # The inference server's certificate is checked as well, not only the control plane's.
    with (
        Client(secure.api_url, inference_url=secure.inference_url) as c,
        pytest.raises(Unavailable) as refused,
    ):
        c.predict("iris-tls", [IRIS_ROW])
    assert "cannot verify the TLS certificate of the inference server" in refused.value.message
    # The CLI: one line naming its option, exit status 1, no traceback.
    done = subprocess.run(
        [str(Path(sys.executable).with_name("aiaas")), "--url", secure.api_url, "models", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")} | {"COLUMNS": "300"},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot verify the TLS certificate" in done.stderr and "--ca-file" in done.stderr
    assert "Traceback" not in done.stderr
    # Verification cannot be switched off by the SDK's argument.
    with pytest.raises(InvalidArgument, match="verify"):
        Client(secure.api_url, verify=False)  # type: ignore[arg-type]


def test_plain_http_to_an_https_port_fails_cleanly_and_the_server_keeps_serving(secure: Secure) -> None:
    plain_api = secure.api_url.replace("https://", "http://")
    plain_inference = secure.inference_url.replace("https://", "http://")
    for url in (f"{plain_api}/api/v1/health", f"{plain_inference}/v2/health/ready"):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=10)
    with Client(plain_api, verify=secure.certs.ca) as c, pytest.raises(Unavailable) as refused:
        c.list_models()
    assert "use an https:// URL" in refused.value.message
    # Nothing broke: both still answer over HTTPS, and logged no traceback.
    ca = client_context(secure.certs.ca)
    assert httpx.get(f"{secure.api_url}/api/v1/health", verify=ca).status_code == 200
    assert httpx.get(f"{secure.inference_url}/v2/health/ready", verify=ca).status_code == 200
    assert "Traceback" not in secure.up.output()


def test_an_https_url_to_a_plain_http_server_says_to_use_http(certs: Certificates) -> None:
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=plain.serve_forever, daemon=True)
    thread.start()
    try:
        with (
            Client(f"https://127.0.0.1:{plain.server_port}", verify=certs.ca) as c,
            pytest.raises(Unavailable) as refused,
        ):
            c.list_models()
    finally:
        plain.shutdown()
        plain.server_close()
        thread.join(timeout=10)
    assert "no TLS handshake with the control plane" in refused.value.message
    assert "use an http:// URL" in refused.value.message


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


def test_tritonclient_over_https_with_the_ca(secure: Secure, iris_deployed: str) -> None:
    import gevent.ssl
    import tritonclient.http as triton

    client = triton.InferenceServerClient(
        secure.inference_url.removeprefix("https://"),
        ssl=True,
        ssl_options={"ca_certs": str(secure.certs.ca)},
        ssl_context_factory=gevent.ssl.create_default_context,
    )
    try:
        assert client.is_server_ready()
        x = np.asarray([IRIS_ROW], dtype=np.float32)
        given = triton.InferInput("X", list(x.shape), "FP32")
        given.set_data_from_numpy(x)
        result = client.infer(iris_deployed, [given], headers=dict(AUTH))
        assert result.as_numpy("label").tolist() == [0]
    finally:
        client.close()


def test_the_openai_client_over_https_with_the_ca(secure: Secure) -> None:
    import openai

    with httpx.Client(verify=client_context(secure.certs.ca)) as http:
        client = openai.OpenAI(
            base_url=f"{secure.inference_url}/openai/v1", api_key=ADMIN_KEY, max_retries=0, http_client=http
        )
        assert [m.id for m in client.models.list()] == []  # no language model deployed: an empty list
    with httpx.Client() as http:  # certifi's CAs: the throwaway CA is not among them
        client = openai.OpenAI(
            base_url=f"{secure.inference_url}/openai/v1", api_key="unused", max_retries=0, http_client=http
        )
        with pytest.raises(openai.APIConnectionError):
            client.models.list()


# -- start-up errors ---------------------------------------------------------------------


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize("module", ["aiaas.api", "aiaas.serving"])
def test_a_server_given_a_missing_certificate_or_a_wrong_key_stops_with_one_line(
    module: str, certs: Certificates, tmp_path: Path
) -> None:
    env = _env(tmp_path, certs, ca=False)
    missing = _start(module, env | {"AIAAS_TLS_CERT_FILE": str(tmp_path / "nowhere.pem")})
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "cannot read the certificate" in missing.stderr and "AIAAS_TLS_CERT_FILE" in missing.stderr
    wrong_key = _start(module, env | {"AIAAS_TLS_KEY_FILE": str(certs.other_key)})
    assert wrong_key.returncode == 1, wrong_key.stdout + wrong_key.stderr
    assert "the private key does not belong to the certificate" in wrong_key.stderr
    for done in (missing, wrong_key):
        assert "Traceback" not in done.stderr, done.stderr


def test_up_refuses_a_bad_key_before_starting_anything(certs: Certificates, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiaas.cli",
            "up",
            "--port",
            str(free_port()),
            "--inference-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path / "home", certs) | {"AIAAS_TLS_KEY_FILE": str(certs.ca)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "AIAAS_TLS_KEY_FILE" in done.stderr and "holds no PEM private key" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home").exists(), (
        "nothing may start (or be created) with a certificate that cannot be used"
    )


def test_up_without_the_ca_says_which_setting_would_let_it_verify_its_servers(
    certs: Certificates, tmp_path: Path
) -> None:
    port, inference_port = free_port(), free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiaas.cli",
            "up",
            "--port",
            str(port),
            "--inference-port",
            str(inference_port),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(tmp_path / "home", certs, ca=False),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert "its TLS certificate cannot be verified" in out and "AIAAS_TLS_CA_FILE" in out, out
    assert "Traceback" not in out


def test_tls_files_are_checked_with_messages_naming_the_setting(certs: Certificates, tmp_path: Path) -> None:
    server_context(certs.cert, certs.key)  # the good pair loads
    with pytest.raises(InvalidArgument, match="does not belong to the certificate"):
        server_context(certs.cert, certs.other_key)
    with pytest.raises(InvalidArgument, match=r"server.pem \(AIAAS_TLS_CERT_FILE\) holds no PEM private key"):
        server_context(certs.cert)
    with pytest.raises(InvalidArgument, match=r"cannot read the CA bundle .*AIAAS_TLS_CA_FILE"):
        client_context(tmp_path / "nowhere.pem")
    with pytest.raises(InvalidArgument, match="holds no PEM certificate"):
        client_context(certs.key)
