"""Both servers held to their own OpenAPI documents by schemathesis, run as users run it.

The control plane and the inference server (authentication on, as always) start as real
processes on free ports, with a dataset, a model with two
versions, an alias and deployments to find. The ``schemathesis run`` command then fuzzes each
document through every phase (coverage, fuzzing, and stateful sequences that follow the
documents' links), bounded by a fixed seed and a number of examples per operation.

Every check runs but ``positive_data_acceptance``: the servers check rules no schema can
state (a name that exists, a job spec that fits its dataset, a tensor that fits the model),
and refuse schema-valid input that breaks them with a 400 or 404 that says why. What must
hold: no 5xx, every status and content type documented, every body matching its schema,
schema-invalid input refused, 405 with a correct ``Allow``, 401 without the key, a created
thing readable and a deleted one gone. Each server is fuzzed twice: with the admin key, and
without any key, where every operation but the health checks and the document must be a 401
(:mod:`tests.fuzz._unauthenticated`).

To see a run: ``pytest tests/fuzz -s``; a failure prints schemathesis's report, with a
``curl`` line that reproduces each case.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from aiaas.sdk import Client
from tests._auth import ADMIN_KEY
from tests._servers import ServerProcess, free_port
from tests.conftest import server_environment
from tests.e2e.conftest import start_api, start_inference

#: Fixed, so that a run is reproducible: the same cases in the same order. ``FUZZ_SEED`` and
#: ``FUZZ_EXAMPLES`` change them for a longer hunt by hand:
#: ``FUZZ_SEED=7 FUZZ_EXAMPLES=200 pytest tests/fuzz --timeout 0 -s``.
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
#: Examples per operation and phase; with ~50 operations this is a few thousand requests.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
API_KEY = ADMIN_KEY
#: Examples per operation and phase without a key: every answer is the same 401.
UNAUTHENTICATED_EXAMPLES = 5
#: The deployment the inference run aims at; the control plane run never names it.
SERVED = "served"


@dataclass
class Servers:
    home: Path
    api: ServerProcess
    inference: ServerProcess


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("fuzz")
    env = server_environment(home, f"sqlite:///{home / 'aiaas.db'}") | {
        "AIAAS_REPLICA_PROCESSES": "false",  # the HTTP layer is under test: models run in-process
        "AIAAS_TRAINING_SLOTS": "1",  # should a fuzzed job spec ever be valid, it trains on one core
    }
    api = start_api(env, home, free_port())
    inference = start_inference(env, home, free_port())
    client = Client(api.url, API_KEY, inference_url=inference.url)
    try:
        x, y = load_iris(return_X_y=True)
        x = x.astype(np.float32)
        client.create_dataset("iris", sample="iris")
        for c in (1.0, 0.1):
            client.register_model("iris", LogisticRegression(C=c, max_iter=500).fit(x, y), example=x[:3])
        client.set_alias("iris", "production", 1)
        client.deploy("iris", model="iris", alias="production")
        client.deploy(SERVED, model="iris", version=1, traffic=[{"version": 2, "weight": 10}])
        job = client.submit_job(
            {"dataset": "iris", "model": {"family": "logistic"}, "register_as": "trained"}
        )
        client.wait_until_served(SERVED, 1)
        assert client.wait_for_job(job.id, timeout=120).status == "succeeded"
        yield Servers(home=home, api=api, inference=inference)
    finally:
        client.close()
        inference.stop()
        api.stop()


def schemathesis(
    schema_url: str,
    config: str,
    workdir: Path,
    *options: str,
    max_examples: int = MAX_EXAMPLES,
    hooks: str | None = None,
    exclude: tuple[str, ...] = (),
) -> tuple[int, str, float]:
    """Run ``schemathesis run`` on ``schema_url``; its exit code, its report and the seconds it took.

    Args:
        hooks: a module of extra checks (``SCHEMATHESIS_HOOKS``).
        exclude: checks to skip besides ``positive_data_acceptance``.
    """
    workdir.mkdir(exist_ok=True)
    (workdir / "schemathesis.toml").write_text(config)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(workdir / "schemathesis.toml"),
        "--no-color",
        "run",
        schema_url,
        "--seed",
        str(SEED),
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(("positive_data_acceptance", *exclude)),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--report-dir",
        str(workdir / "report"),
        *options,
    ]
    start = time.monotonic()
    limit_s = 280 if MAX_EXAMPLES <= 25 else None  # within pytest's timeout, unless hunting by hand
    env = dict(os.environ)
    if hooks is not None:
        root = str(Path(__file__).resolve().parents[2])
        env.update(SCHEMATHESIS_HOOKS=hooks, PYTHONPATH=os.pathsep.join([root, env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=limit_s, check=False, env=env
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def _summary(report: str) -> str:
    """The report's last lines: phases, failures, and how many cases ran."""
    return "\n".join(report.strip().splitlines()[-22:])


# The inference run goes first: the control plane run may reconfigure or delete what it serves.


def test_inference_server_keeps_its_openapi_contract(servers: Servers, tmp_path: Path) -> None:
    config = f"""
[dictionaries.names]
values = ["{SERVED}"]
[dictionaries.versions]
values = ["1", "2"]
[dictionaries.targets]
values = ["{SERVED}", "{SERVED}:predict"]
[parameters]
"path.name" = {{ dictionary = "names", probability = 0.6 }}
"path.version" = {{ dictionary = "versions", probability = 0.6 }}
"path.target" = {{ dictionary = "targets", probability = 0.6 }}
"""
    code, report, seconds = schemathesis(
        f"{servers.inference.url}/openapi.json",
        config,
        tmp_path / "inference",
        "--header",
        f"Authorization: Bearer {API_KEY}",
    )
    print(f"inference server: schemathesis ran {seconds:.0f} s\n{_summary(report)}")
    assert code == 0, report
    assert "Traceback" not in servers.inference.output(), servers.inference.output()


def test_control_plane_keeps_its_openapi_contract(servers: Servers, tmp_path: Path) -> None:
    config = """
[dictionaries.names]
values = ["iris"]
[dictionaries.versions]
values = [1, 2, "latest", "production"]
[dictionaries.jobs]
values = [1]
[dictionaries.aliases]
values = ["production", "staging"]
[parameters]
"path.name" = { dictionary = "names", probability = 0.5 }
"path.version" = { dictionary = "versions", probability = 0.5 }
"path.ref" = { dictionary = "versions", probability = 0.5 }
"path.alias" = { dictionary = "aliases", probability = 0.5 }
"path.job_id" = { dictionary = "jobs", probability = 0.5 }
"""
    code, report, seconds = schemathesis(
        f"{servers.api.url}/openapi.json",
        config,
        tmp_path / "control-plane",
        "--header",
        f"Authorization: Bearer {API_KEY}",
    )
    print(f"control plane: schemathesis ran {seconds:.0f} s\n{_summary(report)}")
    assert code == 0, report
    assert "Traceback" not in servers.api.output(), servers.api.output()


@pytest.mark.parametrize("server", ["inference", "api"])
def test_without_a_key_every_operation_is_a_401(servers: Servers, tmp_path: Path, server: str) -> None:
    """Whatever is generated, on every operation: 401 (405 included: a request without a key
    learns nothing of the API, not even which methods a path takes)."""
    url = servers.inference.url if server == "inference" else servers.api.url
    code, report, seconds = schemathesis(
        f"{url}/openapi.json",
        "",
        tmp_path / server,
        "--phases",
        "examples,coverage,fuzzing",
        max_examples=UNAUTHENTICATED_EXAMPLES,
        hooks="tests.fuzz._unauthenticated",
        exclude=("unsupported_method",),
    )
    print(f"{server} without a key: schemathesis ran {seconds:.0f} s\n{_summary(report)}")
    assert code == 0, report
    tested = int(re.search(r"Tested: (\d+)", report).group(1))  # type: ignore[union-attr]
    refused = re.search(r"(\d+) operations returned only 401/403", report)
    open_operations = 3 if server == "inference" else 1  # the health checks (and the document)
    assert refused is not None and int(refused.group(1)) >= tested - open_operations, report
