"""The ``aiaas`` command against running servers: tables for people, --json for scripts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.formats import package_model
from tests._models import iris, iris_classifier
from tests.e2e._cli import assert_readable, console_script
from tests.e2e.conftest import Platform

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
        ["undeploy"],
        ["deployments", "show"],
        ["deployments", "events"],
        ["deployments", "stats"],
        ["models", "rollback"],
        ["models", "unalias"],
        ["models", "archive"],
        ["models", "delete"],
        ["models", "download"],
        ["datasets", "create"],
        ["train"],
        ["jobs", "cancel"],
        ["monitor"],
        ["monitor", "predictions"],
        ["monitor", "feedback"],
        ["monitor", "performance"],
        ["monitor", "drift"],
        ["encryption", "new-key"],
        ["encryption", "status"],
        ["encryption", "rotate"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and "--help" in result.stdout


# -- the whole lifecycle, and tables an 80-column terminal can read --------------------------------

LONG = "iris-logistic-regression-candidate"


def test_the_model_lifecycle_from_the_cli(platform: Platform, onnx_file: Path, tmp_path: Path) -> None:
    c = platform.client
    X, _ = iris()
    clf = iris_classifier()
    example = tmp_path / "example.json"
    example.write_text(json.dumps(X[:3].tolist()))
    for parent in ("", "1", "2"):
        code, out, err = aiaas(
            platform,
            "register",
            str(onnx_file),
            "--name",
            LONG,
            "--example",
            str(example),
            "--metrics",
            '{"accuracy": 0.9666666666666667, "f1": 0.9665831244778613}',
            *(["--parent", parent] if parent else []),
        )
        assert code == 0, err

    # Aliases: a new one, an unchanged one, a move, and a rollback.
    code, out, _ = aiaas(platform, "models", "alias", LONG, "production", "1")
    assert code == 0 and f"{LONG}@production → v1 (new alias)" in out
    code, out, _ = aiaas(platform, "models", "alias", LONG, "production", "1")
    assert code == 0 and f"{LONG}@production → v1 (unchanged)" in out and "was" not in out
    code, out, _ = aiaas(platform, "models", "alias", LONG, "production", "2")
    assert code == 0 and f"{LONG}@production → v2 (was v1)" in out
    code, out, _ = aiaas(platform, "models", "rollback", LONG, "production")
    assert code == 0 and f"{LONG}@production rolled back: v2 → v1" in out
    assert next(a for a in c.list_aliases(LONG) if a.name == "production").version == 1
    code, out, _ = aiaas(platform, "models", "alias", LONG, "staging", "3")
    result = runner.invoke(app, ["--url", platform.api_url, "models", "rollback", LONG, "staging"])
    assert result.exit_code != 0
    assert "has pointed at v3 only; there is nothing to roll back to" in result.exception.message  # type: ignore[union-attr]

    # Deploy, call it with inline JSON, read its statistics and scaling events.
    code, out, err = aiaas(platform, "deploy", LONG, "--alias", "production")
    assert code == 0, err
    inline = json.dumps({"instances": X[:3].tolist()})
    code, out, err = aiaas(platform, "predict", LONG, inline, "--json")
    assert code == 0, err
    assert [p["label"] for p in json.loads(out)["predictions"]] == clf.predict(X[:3]).tolist()
    code, out, err = aiaas(platform, "deployments", "stats", LONG, "--json")
    assert code == 0, err
    (entry,) = json.loads(out)
    assert (entry["version"], entry["inference_count"]) == ("1", 3)
    assert entry["inference_stats"]["success"]["count"] == 1
    stats = console_script(platform, "deployments", "stats", LONG)
    assert_readable(stats, "Inference statistics of")
    assert re.search(r"^\s*1\s+1\s+0\s+3\s", stats, re.M), stats  # version 1: 1 ok, 0 failed, 3 rows
    code, out, err = aiaas(platform, "deployments", "events", LONG, "--json")
    assert code == 0, err
    assert json.loads(out) == [e.model_dump(mode="json") for e in c.scaling_events(LONG)]

    # Download the artifact: the very bytes registered.
    target = tmp_path / "out.onnx"
    code, out, err = aiaas(platform, "models", "download", f"{LONG}:2", "-o", str(target))
    assert code == 0, err
    assert target.read_bytes() == onnx_file.read_bytes() == c.download_artifact(LONG, 2)
    code, _, err = aiaas(platform, "models", "download", f"{LONG}:2", "-o", str(target))
    assert code == 2 and "--force" in err
    piped = runner.invoke(
        app, ["--url", platform.api_url, "models", "download", f"{LONG}:production", "-o", "-"]
    )
    assert piped.exit_code == 0 and piped.stdout_bytes == onnx_file.read_bytes()

    # One version in full, and the model with its aliases, at 80 columns.
    version = console_script(platform, "models", "show", f"{LONG}:2")
    assert_readable(version, f"{LONG} version 2", "accuracy=0.9667", "f1=0.9666", "parent", "v1")
    assert "sha256:" in version and "Signature" in version
    model = console_script(platform, "models", "show", LONG)
    assert_readable(model, LONG, "@production → v1 (was v2)", "@staging → v3", "accuracy=0.9667", "from v1")
    listing = console_script(platform, "models", "list")
    assert_readable(listing, LONG, "production→v1", "staging→v3")
    deployments = console_script(platform, "deployments", "list")
    assert_readable(deployments, LONG, "@production", "v1 100%")

    # Archive and delete versions; an alias a deployment follows stays until it is undeployed.
    code, out, err = aiaas(platform, "models", "unalias", LONG, "staging")
    assert code == 0 and f"deleted alias {LONG}@staging" in out
    code, out, err = aiaas(platform, "models", "archive", f"{LONG}:3")
    assert code == 0 and f"archived {LONG} version 3" in out
    assert c.get_version(LONG, 3).status == "archived"
    code, out, err = aiaas(platform, "models", "delete", f"{LONG}:3")
    assert code == 0 and f"deleted {LONG} version 3" in out
    assert [v.version for v in c.list_versions(LONG)] == [1, 2]
    result = runner.invoke(app, ["--url", platform.api_url, "models", "unalias", LONG, "production"])
    assert result.exit_code != 0 and "followed by deployments" in result.exception.message  # type: ignore[union-attr]
    code, out, err = aiaas(platform, "undeploy", LONG)
    assert code == 0 and f"deleted deployment {LONG}" in out
    assert all(d.name != LONG for d in c.list_deployments())
    code, out, err = aiaas(platform, "models", "delete", LONG, input="n\n")
    assert code == 1 and f"delete model '{LONG}' and its 2 version(s)?" in err
    assert [v.version for v in c.list_versions(LONG)] == [1, 2], "not deleted without a yes"
    code, out, err = aiaas(platform, "models", "delete", LONG, "--yes")
    assert code == 0 and f"deleted model {LONG}" in out
    assert all(m.name != LONG for m in c.list_models())


def test_recreating_an_identical_dataset_says_nothing_new_was_stored(
    platform: Platform, tmp_path: Path
) -> None:
    data = tmp_path / "petals.csv"
    data.write_text("length,width,kind\n1.4,0.2,a\n4.7,1.4,b\n1.3,0.2,a\n4.5,1.5,b\n1.5,0.2,a\n4.9,1.5,b\n")
    code, out, err = aiaas(platform, "datasets", "create", "petals", "--file", str(data), "--target", "kind")
    assert code == 0, err
    assert "dataset petals version 1: 6 rows" in out and "nothing new" not in out
    code, out, err = aiaas(platform, "datasets", "create", "petals", "--file", str(data), "--target", "kind")
    assert code == 0, err
    assert "nothing new stored: dataset petals version 1 already holds this data" in out
    assert [v.version for v in platform.client.list_dataset_versions("petals")] == [1]
    code, out, err = aiaas(platform, "datasets", "create", "petals", "--file", str(data), "--seed", "3")
    assert code == 0 and "dataset petals version 2" in out and "nothing new" not in out
    shown = console_script(platform, "datasets", "show", "petals:1")
    assert_readable(shown, "kind (target)", "length", "width")


def test_help_shows_no_type_after_flags() -> None:
    for command in (["models", "list"], ["train"], ["deploy"], ["models", "delete"], []):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.stdout, result.stdout
        assert ("--help" in result.stdout and "--json" in result.stdout) or command in (
            ["models", "delete"],
            [],
        )


README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    blocks, current = [], None
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if current is None and line[3:].strip() == "python":
                current = []
            elif current is not None:
                blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_readme_onnx_exports_give_files_the_registry_accepts(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    import torch

    exports = [b for b in _python_blocks() if "to_onnx(" in b or "torch.onnx.export(" in b]
    assert len(exports) == 2
    monkeypatch.chdir(tmp_path)
    spaces: list[dict[str, Any]] = [{}, {}]
    for block, space in zip(exports, spaces, strict=True):
        with warnings.catch_warnings():
            # torch's notice that the TorchScript exporter is legacy (the other one needs
            # onnxscript, which is not installed): for the reader, not a failure.
            warnings.simplefilter("ignore", DeprecationWarning)
            exec(compile(block, "README.md", "exec"), space)
    forest, net = spaces[0]["clf"], spaces[1]["net"]
    X, _ = iris()
    with torch.no_grad():
        logits = net(torch.from_numpy(X[:5])).numpy()
    expected = {"forest.onnx": ("probabilities", forest.predict_proba(X[:5])), "net.onnx": ("logits", logits)}
    for file, (output, want) in expected.items():
        name = f"readme-{Path(file).stem}"
        code, out, err = aiaas(platform, "register", file, "--name", name, "--json")
        assert code == 0, err
        signature = json.loads(out)["signature"]
        assert signature["inputs"][0]["shape"][0] in (-1, None), "a dynamic batch axis"
        code, out, err = aiaas(platform, "deploy", name, "--json")
        assert code == 0, err
        body = {"inputs": [{**signature["inputs"][0], "shape": [5, 4], "data": X[:5].ravel().tolist()}]}
        code, out, err = aiaas(platform, "predict", name, json.dumps(body), "--json")
        assert code == 0, err
        got = next(o for o in json.loads(out)["outputs"] if o["name"] == output)
        np.testing.assert_allclose(np.reshape(got["data"], want.shape), want, rtol=1e-5, atol=1e-6)


def _commands(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = getattr(command, "commands", None)
    if not subs:
        return [prefix]
    return [path for name, sub in subs.items() for path in _commands(sub, (*prefix, name))]


def test_every_command_is_in_the_readme_reference() -> None:
    import typer.main

    reference = README.read_text().split("The whole command line:", 1)[1].split("###", 1)[0]
    missing = [
        " ".join(path)
        for path in _commands(typer.main.get_command(app))
        if f"aiaas {' '.join(path)}" not in reference
        and f"aiaas {' '.join(path[:-1])} " not in reference  # `aiaas jobs list / show / ...`
        and not (path[-1] in reference and f"aiaas {path[0]}" in reference)
    ]
    assert not missing, f"commands missing from the README's command table: {missing}"
