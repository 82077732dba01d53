"""A data-parallel job launched the way it would be across machines: one ``torchrun`` per node.

Both "nodes" run on this machine, against the same database and artifact store, with the exact
command the README gives for two machines (only the addresses differ).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiaas.datasets import DatasetService
from aiaas.registry import Registry
from aiaas.store import Database, FileArtifactStore
from aiaas.training.jobs import SUCCEEDED, JobStore
from tests._servers import free_port

pytestmark = pytest.mark.slow

SPEC = """\
dataset: iris:1
model: {family: mlp, hidden_sizes: [16]}
optimizer: {name: adam, lr: 0.02}
epochs: 4
batch_size: 16
workers: 2
register_as: iris-ddp
"""


def test_two_torchrun_nodes_train_one_registered_job(home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{home / 'aiaas.db'}"
    db = Database(url)
    db.upgrade()
    artifacts = FileArtifactStore(home / "artifacts")
    DatasetService(db, artifacts).create_sample_version("iris", "iris")
    spec = tmp_path / "iris-ddp.yaml"
    spec.write_text(SPEC)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIAAS_", "MASTER_", "RANK", "WORLD_"))}
    env.update(AIAAS_HOME=str(home), AIAAS_DATABASE_URL=url, AIAAS_ARTIFACT_ROOT=str(home / "artifacts"))
    torchrun = Path(sys.executable).with_name("torchrun")
    nodes = [
        subprocess.Popen(
            [
                str(torchrun),
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "aiaas.training.launch",
                str(spec),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=240)[0].decode(errors="replace") for node in nodes]
    for node, output in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, output

    jobs = JobStore(db, artifacts)
    (job,) = jobs.list_jobs()
    assert (job.status, job.launcher, job.workers, job.attempts) == (SUCCEEDED, "external", 2, 1)
    log = [line.message for line in jobs.logs(job.id)]
    assert any("joined a data-parallel group as rank 0 of 2" in line for line in log), log
    assert [m.epoch for m in jobs.metrics(job.id)] == [1, 2, 3, 4]
    version = Registry(db, artifacts).get_version("iris-ddp", job.result_version or 0)
    assert (version.lineage or {})["job"] == job.id
    assert version.metrics["accuracy"] > 0.6
    assert "registered iris-ddp version 1" in outputs[0]
    db.dispose()
