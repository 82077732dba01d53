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
from tests._auth import AUTH
from tests.e2e._cli import assert_readable, console_script
from tests.e2e.conftest import Platform

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


def test_a_field_the_family_ignores_is_refused_by_cli_sdk_and_api(platform: Platform, tmp_path: Path) -> None:
    import httpx

    from aiaas.errors import InvalidArgument

    platform.client.create_dataset("vino", sample="wine")
    spec = tmp_path / "forest.yaml"
    spec.write_text("dataset: vino\nmodel: {family: random_forest}\noptimizer: {name: adam}\nepochs: 3\n")
    code, _, err = aiaas(platform, "train", str(spec))
    assert code == 1
    assert "optimizer: is not used by 'random_forest' (nor are epochs)" in err
    assert "['mlp', 'cnn', 'transformer']" in err

    with pytest.raises(InvalidArgument, match="epochs: is not used by 'gradient_boosting'"):
        platform.client.submit_job({"dataset": "vino", "model": {"family": "gradient_boosting"}, "epochs": 3})

    body = {"dataset": "vino", "model": {"family": "logistic"}, "batch_size": 16}
    response = httpx.post(f"{platform.api_url}/api/v1/jobs", json=body, timeout=30, headers=AUTH)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == "batch_size"
    assert "batch_size: is not used by 'logistic'" in error["message"]
    assert all(j.dataset != "vino" for j in platform.client.list_jobs()), "nothing was queued"


def test_a_spec_without_register_as_says_the_model_it_will_add_to(platform: Platform, tmp_path: Path) -> None:
    from aiaas.formats import package_model
    from tests._models import iris, iris_classifier

    c = platform.client
    c.create_dataset("rosso", sample="wine")
    spec = tmp_path / "forest.yaml"
    spec.write_text("dataset: rosso\nmodel: {family: random_forest, n_estimators: 5}\n")

    code, out, err = aiaas(platform, "train", str(spec))
    assert code == 0, err
    assert "→ rosso-random-forest" in out
    assert "the spec has no register_as: the result is registered as 'rosso-random-forest'" in out
    assert "a new model" in out

    # Someone else's model under that name: the answer says a version is added to it.
    x, _ = iris()
    c.register_model("rosso-gradient-boosting", package_model(iris_classifier(), x[:2]).onnx)
    c.register_model("rosso-gradient-boosting", package_model(iris_classifier(C=0.1), x[:2]).onnx)
    job = c.submit_job("dataset: rosso\nmodel: {family: gradient_boosting, n_estimators: 5}\n")
    assert job.register_as == "rosso-gradient-boosting"
    assert job.registration is not None
    assert (
        job.registration.defaulted,
        job.registration.existing_versions,
        job.registration.latest_version,
    ) == (
        True,
        2,
        2,
    )
    assert (
        "already has 2 versions (latest 2): the result becomes a new version of it" in job.registration.note
    )
    assert "set register_as" in job.registration.note
    # The stored spec holds no field the family ignores.
    assert not {"optimizer", "epochs", "batch_size"} & set(job.spec)

    named = c.submit_job(
        "dataset: rosso\nmodel: {family: linear}\ntask: regression\ntarget: alcohol\nregister_as: mine\n"
    )
    assert named.registration is not None and not named.registration.defaulted
    assert named.registration.note == "the result is registered as 'mine', a new model"
    # Not in what GET answers: it describes the submission.
    assert c.get_job(job.id).registration is None
    assert c.wait_for_job(job.id, timeout=300).result_version == 3
    assert c.wait_for_job(named.id, timeout=300).status == "succeeded"

    # The trained version's lineage and metrics, readable at 80 columns (not only in --json).
    model = console_script(platform, "models", "show", "rosso-gradient-boosting")
    assert_readable(model, "rosso-gradient-boosting", f"job {job.id} on", "rosso:1", "accuracy=")
    version = console_script(platform, "models", "show", "rosso-gradient-boosting:3")
    assert_readable(version, f"job {job.id}", "rosso:1", "gradient_boosting", "classification", "alcohol")
    trained = c.get_version("rosso-gradient-boosting", 3)
    assert f"accuracy={trained.metrics['accuracy']:.4g}" in version
    jobs = console_script(platform, "jobs", "list")
    assert_readable(jobs, "rosso-gradient-boosting:3", "succeeded")


def test_dataset_typo_and_yaml_errors_read_well(platform: Platform, tmp_path: Path) -> None:
    spec = tmp_path / "typo.yaml"
    spec.write_text("dataset: nope\nmodel: {family: mlp}\n")
    code, _, err = aiaas(platform, "train", str(spec))
    assert code == 1
    assert "dataset: there is no dataset 'nope' to train on; register it first" in err
    assert "dataset 'nope'" not in err.replace("no dataset 'nope'", "")

    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: iris\nmodel: {family: mlp\nepochs: 3\n")
    code, _, err = aiaas(platform, "train", str(broken))
    assert code == 1
    assert f"{broken} is neither JSON nor YAML: line " in err and "<unicode string>" not in err
