"""The ``aiaas optimize`` command line: what it refuses before calling the server, and how
``--set`` becomes settings."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from aiaas.cli import app
from aiaas.cli.optimize import _settings

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["m:1"], "either --method METHOD or --auto"),
        (["m:1", "--method", "fp16", "--auto"], "either --method METHOD or --auto"),
        (["m:1", "--method", "fp16", "--max-metric-drop", "0.1"], "is for --auto"),
    ],
)
def test_contradictory_options_are_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["--url", "http://127.0.0.1:9", "optimize", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_settings_are_json_values_by_method_under_auto() -> None:
    assert _settings(["sparsity=0.5", "structured=false", "calibration_dataset=digits:2"], auto=False) == {
        "sparsity": 0.5,
        "structured": False,
        "calibration_dataset": "digits:2",
    }
    assert _settings(["prune.sparsity=0.3", "distill.epochs=5"], auto=True) == {
        "prune": {"sparsity": 0.3},
        "distill": {"epochs": 5},
    }
    with pytest.raises(typer.BadParameter, match=r"METHOD\.KEY=VALUE"):
        _settings(["sparsity=0.3"], auto=True)
