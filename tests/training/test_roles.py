"""A training process plays the role its caller names; the environment does not choose it."""

from __future__ import annotations

import pytest

from aiaas.training import Member, MemoryReporter, TrainingData, train
from tests import _servers
from tests.training.conftest import spec

JOB = {"model": {"family": "mlp", "hidden_sizes": [8]}, "epochs": 1}


def test_torchrun_variables_in_the_environment_do_not_make_a_plain_call_join_a_group(
    iris: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As inside a torchrun-launched program, with no rank 0 listening: joining would hang.
    for name, value in {
        "RANK": "1",
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_servers.free_port()),
    }.items():
        monkeypatch.setenv(name, value)
    reporter = MemoryReporter()
    result = train(spec(**JOB), iris, reporter)
    assert result.params["workers"] == 1
    assert [e for e, _ in reporter.epochs] == [1]
    assert not any("joined a data-parallel group" in line for line in reporter.logs)


def test_a_member_role_joins_the_group_it_names(iris: TrainingData) -> None:
    reporter = MemoryReporter()
    role = Member(rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{_servers.free_port()}")
    result = train(spec(**JOB), iris, reporter, role=role)
    assert "joined a data-parallel group as rank 0 of 1" in reporter.logs
    assert result.params["workers"] == 1 and [e for e, _ in reporter.epochs] == [1]


def test_a_member_outside_its_group_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 2 is not in a group of 2"):
        Member(rank=2, world_size=2)
