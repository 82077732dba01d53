"""The README's quickstart blocks run as written (against this test's servers)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.formats import package_model
from aiaas.sdk import Client
from tests._models import iris, iris_classifier
from tests.e2e.conftest import Platform

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(language: str) -> list[str]:
    """The fenced code blocks tagged ``language`` ("" for untagged ones), in order."""
    blocks, current, tag = [], None, ""
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current, tag = [], line[3:].strip()
            else:
                if tag == language:
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_python_quickstart_runs(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = [b for b in _blocks("python") if "aiaas.Client" in b]
    # As written: the client learns the inference server's URL from the control plane, and
    # finds the admin key the first start wrote under AIAAS_HOME; no key is given.
    monkeypatch.delenv("AIAAS_INFERENCE_URL", raising=False)
    monkeypatch.delenv("AIAAS_API_KEY")
    monkeypatch.setenv("AIAAS_HOME", str(platform.home))
    namespace: dict[str, object] = {}
    exec(compile(code.replace("http://127.0.0.1:8000", platform.api_url), "README.md", "exec"), namespace)
    client = namespace["client"]
    assert isinstance(client, Client)
    try:
        # the block ends by rolling production back to version 1
        aliases = [(a.name, a.version, a.previous_version) for a in client.list_aliases("flowers")]
        assert aliases == [("production", 1, 2)]
    finally:
        client.close()


def test_cli_quickstart_runs(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    X, _ = iris()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIAAS_API_KEY")  # the CLI reads the admin key file, as on the machine it runs on
    monkeypatch.setenv("AIAAS_HOME", str(platform.home))
    (tmp_path / "model.onnx").write_bytes(package_model(iris_classifier(), X[:3]).onnx)
    (quickstart,) = [b for b in _blocks("") if b.lstrip().startswith("aiaas register")]
    (serving,) = [b for b in _blocks("") if "--canary" in b]
    # The CLI section follows the Python one, which left version 1 behind; the serving
    # block uses versions 2 and 3. A name of its own keeps this test independent.
    register = "aiaas register model.onnx --name flowers\n"
    script = (register + quickstart + register + serving).replace("flowers", "flowers-cli")
    runner = CliRunner()
    for line in script.strip().splitlines():
        stdin = None
        if line.startswith("echo "):
            echoed, line = line.split(" | ", 1)
            stdin = shlex.split(echoed)[1]
        args = shlex.split(line.split("#")[0])[1:]
        result = runner.invoke(
            app, ["--url", platform.api_url, "--inference-url", platform.inference_url, *args], input=stdin
        )
        assert result.exit_code == 0, f"{line}\n{result.output}"
        if args[0] == "predict":
            assert '"predictions"' in result.stdout
        if args[:2] == ["deployments", "show"]:
            assert "v2" in result.stdout and "10%" in result.stdout


def test_training_blocks_run(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (spec,) = [b for b in _blocks("yaml") if "register_as: digits-cnn" in b]
    (commands,) = [b for b in _blocks("") if b.lstrip().startswith("aiaas datasets create digits --sample")]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits-cnn.yaml").write_text(spec)
    runner = CliRunner()
    for line in commands.strip().splitlines():
        args = shlex.split(line.split("#")[0])[1:]
        result = runner.invoke(
            app, ["--url", platform.api_url, "--inference-url", platform.inference_url, *args]
        )
        assert result.exit_code == 0, f"{line}\n{result.output}"
        if args[0] == "train":
            assert "succeeded: registered digits-cnn version 1" in result.stdout
    with Client(platform.api_url) as client:
        version = client.get_version("digits-cnn", 1)
    assert (version.lineage or {})["dataset"]["name"] == "digits"
    assert version.metrics["accuracy"] > 0.8
