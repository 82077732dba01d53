"""The test tiers: the path decides the tier, and the in-process tier cannot start a process.

In the process tier itself (``TIERS``), since it checks that starting a process works again
once the guard is gone.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import subprocess
import sys

import pytest

from tests._tiers import INPROCESS, PROCESS, no_processes, tier_of


@pytest.mark.parametrize(
    ("nodeid", "tier"),
    [
        ("tests/registry/test_service.py::test_x[sqlite]", INPROCESS),
        ("tests/e2e/test_lifecycle.py::test_x[sqlite]", PROCESS),
        ("tests/serving/test_app.py::test_x", PROCESS),
        ("tests/serving/test_batcher.py::test_x", INPROCESS),
        ("tests/api/test_guards.py::test_x[sqlite]", PROCESS),
        ("tests/api/inprocess/test_params.py::test_x[sqlite]", INPROCESS),
        ("tests/store/test_database.py::test_upgrade_from_two_processes_at_once[sqlite]", PROCESS),
        ("tests/store/test_database.py::test_upgrade_twice_is_a_no_op[sqlite]", INPROCESS),
        ("tests/test_tiers.py::test_x", PROCESS),
    ],
)
def test_the_longest_matching_path_decides_the_tier(nodeid: str, tier: str) -> None:
    assert tier_of(nodeid) == tier


def _child() -> None:
    """A multiprocessing target (never reached under the guard)."""


def test_every_way_of_starting_a_process_is_refused_and_recorded_then_works_again() -> None:
    nodeid = "tests/registry/test_service.py::test_x"
    with no_processes(nodeid) as tried:
        with pytest.raises(RuntimeError, match="in-process tier but started a process"):
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        with pytest.raises(RuntimeError, match=r"TIERS in tests/_tiers\.py"):
            multiprocessing.get_context("spawn").Process(target=_child).start()
        with pytest.raises(RuntimeError, match=re.escape(nodeid)):
            asyncio.run(asyncio.create_subprocess_exec(sys.executable, "-c", "pass"))
    assert len(tried) == 3
    after = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True)
    assert after.stdout == "ok\n"
