from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from aiaas.training import MemoryReporter, TrainingData, train
from aiaas.training.distributed import external_env, write_job_folder
from tests.training.conftest import spec

JOB = {
    "model": {"family": "mlp", "hidden_sizes": [64]},
    "epochs": 6,
    "batch_size": 64,
    "seed": 1,
    "optimizer": {"name": "adam", "lr": 0.003},
}


@pytest.mark.slow
def test_two_workers_end_with_identical_parameters_and_single_process_accuracy(digits: TrainingData) -> None:
    single = train(spec(**JOB), digits, MemoryReporter())
    reporter = MemoryReporter()
    parallel = train(spec(**JOB, workers=2), digits, reporter)

    digests = parallel.params["parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert parallel.params["workers"] == 2
    assert abs(parallel.metrics["accuracy"] - single.metrics["accuracy"]) <= 0.02
    # Rank 0 alone reports and checkpoints, once per epoch; samples/s counts both ranks' rows.
    assert [e for e, _ in reporter.epochs] == list(range(1, 7))
    assert [e for e, _ in reporter.checkpoints] == list(range(1, 7))
    assert any("over 2 processes" in line for line in reporter.logs)


@pytest.mark.slow
def test_a_failing_rank_0_kills_the_other_ranks(digits: TrainingData) -> None:
    import psutil

    class Cancelled(Exception):
        pass

    class CancelAfterFirst(MemoryReporter):
        def checkpoint(self, epoch: int, state: bytes) -> None:
            raise Cancelled

    me = psutil.Process()
    with pytest.raises(Cancelled):
        train(spec(**JOB, workers=2), digits, CancelAfterFirst())
    ranks = [p for p in me.children(recursive=True) if "aiaas.training.distributed" in " ".join(p.cmdline())]
    assert ranks == []


@pytest.mark.slow
def test_two_workers_resume_exactly_with_dropout(digits: TrainingData) -> None:
    import torch

    from aiaas.training.checkpoint import load_torch_state
    from tests.training.test_torch_trainer import _Crash, _StopAfter

    small = TrainingData(
        digits.x_train[:300],
        digits.y_train[:300],
        digits.x_val,
        digits.y_val,
        digits.feature_names,
        "classification",
        digits.classes,
    )
    job = spec(
        model={"family": "mlp", "hidden_sizes": [32], "dropout": 0.3},
        epochs=3,
        batch_size=32,
        workers=2,
        optimizer={"name": "momentum", "lr": 0.05},
    )
    full = train(job, small, MemoryReporter())
    interrupted = _StopAfter(1)
    with pytest.raises(_Crash):
        train(job, small, interrupted)
    resumed = train(job, small, MemoryReporter(), resume=interrupted.checkpoints[-1][1])
    assert resumed.metrics == full.metrics
    a, b = (load_torch_state(r.state, field="state")["model"] for r in (full, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_external_env_needs_all_four_variables() -> None:
    full = {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    assert external_env(full) == full
    assert external_env({**full, "MASTER_PORT": ""}) is None
    assert external_env({"RANK": "0"}) is None


@pytest.mark.slow
def test_ranks_started_by_hand_join_one_group(digits: TrainingData, tmp_path: Path) -> None:
    """The torchrun way: every rank is its own process with the four variables set."""
    from tests import _servers

    write_job_folder(tmp_path, spec(**{**JOB, "epochs": 2}, workers=2), digits, threads=1)
    port = _servers.free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aiaas.training.distributed", str(tmp_path)],
            env={
                **os.environ,
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "RANK": str(rank),
                "WORLD_SIZE": "2",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    result = json.loads((tmp_path / "result.json").read_text())
    digests = result["params"]["parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert [json.loads(line)["epoch"] for line in outputs[0].splitlines() if '"epoch"' in line] == [1, 2]
    assert '"epoch"' not in outputs[1]  # only rank 0 reports
    assert (tmp_path / "checkpoint.bin").stat().st_size > 0
    session = ort.InferenceSession((tmp_path / "model.onnx").read_bytes(), providers=["CPUExecutionProvider"])
    label, _ = session.run(None, {"input": digits.x_val})
    assert float(np.mean(label == digits.y_val)) == pytest.approx(result["metrics"]["accuracy"])
