"""The two test tiers, decided by where a test lives, and the guard that keeps them honest.

``inprocess``: the code under test runs inside the pytest process (services on a database,
the apps through ``httpx.ASGITransport``, the CLI through Typer's runner). ``make test-fast``
runs this tier on SQLite: the inner loop, under two minutes.

``process``: tests that start real processes (the servers on free ports, replica and training
workers, CLI and ``python -c`` subprocesses). ``make test`` runs both tiers.

The tier is never marked by hand: :func:`tier_of` reads it from :data:`TIERS`, whose keys are
prefixes of test ids (a folder, a module, or one test where a module holds both kinds), the
longest matching prefix winning. A test in the in-process tier that starts a process fails,
saying where to move it (:func:`no_processes`), so ``make test-fast`` stays fast and what it
runs stays in-process.
"""

from __future__ import annotations

import multiprocessing.process
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["INPROCESS", "PROCESS", "TIERS", "message", "no_processes", "tier_of"]

INPROCESS = "inprocess"
PROCESS = "process"

#: Test id prefix -> tier; the longest matching prefix wins, ``tests/`` is the default.
TIERS: dict[str, str] = {
    "tests/": INPROCESS,
    # Whole folders: every module starts servers or CLI processes.
    "tests/e2e/": PROCESS,
    "tests/fuzz/": PROCESS,
    # The control plane's limits (body size and read timeouts, keep-alive, its own /metrics)
    # are checked against the real server process; tests/api/inprocess/ goes through ASGI.
    "tests/api/": PROCESS,
    "tests/api/inprocess/": INPROCESS,
    # The inference server's tests share one real server (the ``stack`` fixture) or start
    # their own; the modules below test its parts in this process.
    "tests/serving/": PROCESS,
    "tests/serving/test_batcher.py": INPROCESS,
    "tests/serving/test_binary_codec.py": INPROCESS,
    "tests/serving/test_deployment_config.py": INPROCESS,
    "tests/serving/test_deployments.py": INPROCESS,
    "tests/serving/test_generation_runtime.py": INPROCESS,
    "tests/serving/test_metric_sampler.py": INPROCESS,
    "tests/serving/test_outlier_scorer.py": INPROCESS,
    "tests/serving/test_rate_limits.py": INPROCESS,
    "tests/serving/test_replicas_config.py": INPROCESS,
    # Single tests that check behaviour across processes, in modules that are otherwise
    # in-process.
    "tests/datasets/test_service.py::test_a_fresh_process_loads_the_same_arrays_and_split": PROCESS,
    "tests/datasets/test_split.py::test_split_is_the_same_in_another_process": PROCESS,
    "tests/store/test_artifacts.py::test_a_writer_killed_midway_leaves_a_temp_file": PROCESS,
    "tests/store/test_artifacts.py::test_the_sweep_spares_the_temp_file_of_a_live_writer": PROCESS,
    "tests/store/test_database.py::test_upgrade_from_two_processes_at_once": PROCESS,
    "tests/store/test_database.py::test_starting_on_a_current_schema_does_not_load_alembic": PROCESS,
    "tests/training/test_language_model.py::test_the_tokenizer_is_the_same_in_every_process": PROCESS,
    "tests/training/test_language_model.py::test_two_workers_train_one_model_and_resume_exactly": PROCESS,
    "tests/security/test_audit_cli.py": PROCESS,
    "tests/training/test_distributed.py": PROCESS,
    "tests/training/test_launch.py": PROCESS,
    "tests/training/test_scheduler.py": PROCESS,
    # The guard's own test: it starts a process once the guard is gone.
    "tests/test_tiers.py": PROCESS,
}


def tier_of(nodeid: str) -> str:
    """The tier of the test ``nodeid``: the value of the longest key of :data:`TIERS` it
    starts with."""
    best = max((prefix for prefix in TIERS if nodeid.startswith(prefix)), key=len, default="tests/")
    return TIERS[best]


@contextmanager
def no_processes(nodeid: str) -> Iterator[list[str]]:
    """Make starting a process (``subprocess``, ``asyncio`` subprocesses, ``multiprocessing``)
    raise while the block runs; yields the list of what was tried, so that a caller can fail
    the test even when the code under test swallowed the exception."""
    tried: list[str] = []
    original_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    original_start = multiprocessing.process.BaseProcess.start

    def refuse(what: str) -> RuntimeError:
        tried.append(what)
        return RuntimeError(message(nodeid, what))

    def execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise refuse(f"subprocess {args!r}"[:300])

    def start(self: multiprocessing.process.BaseProcess) -> None:
        raise refuse(f"multiprocessing {type(self).__name__} (target {getattr(self, '_target', None)!r})")

    subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]
    multiprocessing.process.BaseProcess.start = start  # type: ignore[method-assign]
    try:
        yield tried
    finally:
        subprocess.Popen._execute_child = original_child  # type: ignore[attr-defined]
        multiprocessing.process.BaseProcess.start = original_start  # type: ignore[method-assign]


def message(nodeid: str, what: str) -> str:
    module = nodeid.split("::", 1)[0]
    return (
        f"{nodeid} is in the in-process tier but started a process ({what}). Move it to a "
        f"process-tier folder (tests/e2e/, or next to its neighbours there), or, if it must stay "
        f"in {module}, add its id to TIERS in tests/_tiers.py as 'process'."
    )
