"""``aiaas train`` and ``aiaas jobs`` against a running control plane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

runner = CliRunner()

SPEC = """\
dataset: wine
model: {family: random_forest, n_estimators: 20, max_depth: 4}
seed: 1
register_as: wine-forest
"""


def aiaas(platform: Platform, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout, and stderr or the message of the platform error the command raised
    (``main`` prints that message; the runner invokes the app beneath it)."""
    result = runner.invoke(app, ["--url", platform.api_url, "--inference-url", platform.inference_url, *args])
    return result.exit_code, result.stdout, result.stderr or getattr(result.exception, "message", "")


def test_train_wait_shows_progress_and_registers_the_model(platform: Platform, tmp_path: Path) -> None:
    code, out, err = aiaas(platform, "datasets", "create", "wine", "--sample", "wine")
    assert code == 0, err
    spec = tmp_path / "wine.yaml"
    spec.write_text(SPEC)
    # The real console script in a subprocess: what a user types.
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("aiaas")),
            "--url",
            platform.api_url,
            "train",
            str(spec),
            "--wait",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded: registered wine-forest version 1" in done.stdout
    # The progress bar, drawn on stderr: epochs done of all, and the last epoch's metrics.
    assert "1/1 epochs" in done.stderr and "val_accuracy=" in done.stderr, done.stderr

    code, out, err = aiaas(platform, "jobs", "list", "--json")
    assert code == 0, err
    (job,) = [j for j in json.loads(out) if j["register_as"] == "wine-forest"]
    assert (job["status"], job["result_version"]) == ("succeeded", 1)

    code, out, _ = aiaas(platform, "jobs", "logs", str(job["id"]), "--follow")
    assert code == 0
    assert "succeeded: registered version 1" in out

    code, out, _ = aiaas(platform, "jobs", "show", str(job["id"]))
    assert code == 0
    assert "registered: wine-forest version 1" in out

    code, out, _ = aiaas(platform, "jobs", "metrics", str(job["id"]), "--json")
    assert code == 0
    (epoch,) = json.loads(out)
    assert epoch["epoch"] == 1 and epoch["metrics"]["val_accuracy"] > 0.8

    code, out, err = aiaas(platform, "jobs", "cancel", str(job["id"]))
    assert code == 1
    assert "already succeeded" in err


def test_train_refuses_a_bad_spec_before_sending_it(platform: Platform, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("dataset: wine\nmodel: {family: mlp}\nepochs: 0\nlearning_rate: 3\n")
    code, _, err = aiaas(platform, "train", str(spec))
    assert code == 1
    assert "epochs" in err and "learning_rate" in err
