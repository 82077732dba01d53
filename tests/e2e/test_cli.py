"""The ``aiaas`` command against running servers: tables for people, --json for scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.formats import package_model
from tests._models import iris, iris_classifier
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

runner = CliRunner()


def aiaas(platform: Platform, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        app, ["--url", platform.api_url, "--inference-url", platform.inference_url, *args], input=input
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    X, _ = iris()
    path = tmp_path_factory.mktemp("cli") / "flowers.onnx"
    path.write_bytes(package_model(iris_classifier(), X[:3]).onnx)
    return path


def test_register_deploy_predict_with_the_cli(platform: Platform, onnx_file: Path, tmp_path: Path) -> None:
    X, _ = iris()
    clf = iris_classifier()
    example = tmp_path / "example.json"
    example.write_text(json.dumps(X[:4].tolist()))
    code, out, err = aiaas(
        platform,
        "register",
        str(onnx_file),
        "--metrics",
        '{"accuracy": 0.97}',
        "--example",
        str(example),
        "--json",
    )
    assert code == 0, err
    registered = json.loads(out)
    assert (registered["model"], registered["version"], registered["metrics"]) == (
        "flowers",
        1,
        {"accuracy": 0.97},
    )

    code, out, _ = aiaas(platform, "register", str(onnx_file), "--name", "flowers", "--parent", "1")
    assert code == 0 and "version 2" in out

    code, out, _ = aiaas(platform, "models", "alias", "flowers", "production", "1")
    assert code == 0 and "flowers@production → v1" in out

    code, out, err = aiaas(platform, "deploy", "flowers", "--alias", "production")
    assert code == 0, err
    assert "serves flowers v1" in out and f"{platform.inference_url}/v2/models/flowers/infer" in out

    code, out, _ = aiaas(platform, "deployments", "list", "--json")
    assert [(d["name"], d["alias"], d["serving_version"]) for d in json.loads(out)] == [
        ("flowers", "production", 1)
    ]

    request = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [2, 4], "data": X[:2].ravel().tolist()}]}
    body = tmp_path / "request.json"
    body.write_text(json.dumps(request))
    code, out, err = aiaas(platform, "predict", "flowers", str(body), "--json")
    assert code == 0, err
    response = json.loads(out)
    assert response["model_version"] == "1"
    probabilities = next(o for o in response["outputs"] if o["name"] == "probabilities")["data"]
    np.testing.assert_allclose(
        np.reshape(probabilities, (2, 3)), clf.predict_proba(X[:2]), rtol=1e-5, atol=1e-7
    )

    code, out, _ = aiaas(
        platform, "predict", "flowers", "-", "--json", input=json.dumps({"instances": X[:2].tolist()})
    )
    assert code == 0
    assert [p["label"] for p in json.loads(out)["predictions"]] == clf.predict(X[:2]).tolist()

    code, out, _ = aiaas(platform, "models", "list")
    assert code == 0 and "flowers" in out and "production" in out
    code, out, _ = aiaas(platform, "models", "versions", "flowers", "--json")
    assert [v["version"] for v in json.loads(out)] == [1, 2]
    code, out, _ = aiaas(platform, "models", "show", "flowers")
    assert code == 0 and "Versions" in out
    code, out, _ = aiaas(platform, "models", "compare", "flowers", "1", "2", "--json")
    comparison = json.loads(out)
    assert comparison["same_signature"] and comparison["example_rows"] == 4
    assert [(a["output"], a["equal_fraction"]) for a in comparison["agreement"]] == [
        ("label", 1.0),
        ("probabilities", 1.0),
    ]
    code, out, _ = aiaas(platform, "models", "compare", "flowers", "production", "latest")
    assert code == 0 and "Agreement" in out


def test_cli_errors_are_one_line_and_exit_non_zero(platform: Platform, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aiaas.cli", "--url", platform.api_url, "models", "show", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "model 'nope' not found" in proc.stderr and "Traceback" not in proc.stderr

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = aiaas(platform, "predict", "flowers", str(bad))
    assert code == 2 and "not valid JSON" in err

    unreachable = runner.invoke(app, ["--url", "http://127.0.0.1:9", "models", "list"])
    assert unreachable.exit_code != 0


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["up"],
        ["api"],
        ["serve"],
        ["db", "upgrade"],
        ["models"],
        ["models", "list"],
        ["models", "show"],
        ["models", "versions"],
        ["models", "compare"],
        ["models", "alias"],
        ["register"],
        ["deploy"],
        ["deployments", "list"],
        ["predict"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and "--help" in result.stdout
