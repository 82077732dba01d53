"""GPU series in ``/metrics``: per device utilisation and memory, and each replica's GPU memory.

No GPU is lent to these tests, so ``nvidia-smi`` (outside the project: it ships with NVIDIA's
driver) is replaced by a script on ``PATH`` that answers its two queries in its documented CSV
form; everything from there on (the sampler thread, the parsing, the collectors, the server's
``/metrics``) is the real code.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiaas.deployments import DeploymentService
from aiaas.gpus import GpuCollector, GpuSampler, parse_devices, parse_processes
from aiaas.registry import Registry
from aiaas.store import Database, open_artifact_store
from tests._auth import AUTH
from tests._servers import free_port, spawn, wait_until
from tests.conftest import server_environment
from tests.serving.conftest import IrisModel, artifact_root

_FAKE = """#!{python}
import os, sys
query = sys.argv[1]
if query.startswith("--query-gpu="):
    print("0, GPU-aaaa, Test GPU, 37, 1024, 81920")
    print("1, GPU-bbbb, Test GPU, [N/A], 0, 81920")
elif query.startswith("--query-compute-apps="):
    path = os.environ.get("FAKE_GPU_PIDS", "")
    for pid in (open(path).read().split() if path and os.path.exists(path) else []):
        print(pid + ", GPU-aaaa, 512")
else:
    sys.exit(2)
"""


@pytest.fixture
def fake_smi(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(_FAKE.format(python=sys.executable))
    script.chmod(0o755)
    return script


def test_parses_nvidia_smi_csv_including_unsupported_fields() -> None:
    devices = parse_devices(
        "0, GPU-aa, NVIDIA H200, 37, 1024, 143771\n1, GPU-bb, MIG 1g, [N/A], [N/A], 4096\n"
    )
    assert [d.index for d in devices] == [0, 1]
    assert devices[0].utilization == pytest.approx(0.37)
    assert devices[0].memory_used_bytes == 1024 * 2**20 and devices[0].memory_total_bytes == 143771 * 2**20
    assert devices[1].utilization is None and devices[1].memory_used_bytes is None
    assert parse_devices("No devices were found\n") == ()
    assert parse_processes("7, GPU-aa, 100\n7, GPU-bb, 28\n8, GPU-aa, [N/A]\n") == {7: 128 * 2**20}


def test_sampler_reads_devices_and_processes(
    fake_smi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "pids"
    pids.write_text("4242\n")
    monkeypatch.setenv("FAKE_GPU_PIDS", str(pids))
    sampler = GpuSampler(executable=str(fake_smi), interval_s=0.05)
    try:
        wait_until(lambda: sampler.latest() is not None, timeout=20, what="a first GPU reading")
        sample = sampler.latest()
        assert sample is not None
        assert [d.uuid for d in sample.devices] == ["GPU-aaaa", "GPU-bbbb"]
        assert sample.process_memory == {4242: 512 * 2**20}
        families = {f.name: f for f in GpuCollector(sampler).collect()}
        busy = families["aiaas_gpu_utilization_ratio"].samples
        assert [(s.labels["gpu"], s.value) for s in busy] == [("0", pytest.approx(0.37))], "N/A is left out"
        assert len(families["aiaas_gpu_memory_total_bytes"].samples) == 2
    finally:
        sampler.close()


def test_no_nvidia_smi_means_no_gpu_series(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no nvidia-smi to find
    sampler = GpuSampler()
    assert not sampler.available and sampler.latest() is None
    assert list(GpuCollector(sampler).collect()) == []


def _samples(text: str, name: str) -> list[Any]:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


@pytest.mark.e2e
def test_inference_server_reports_gpu_and_each_replicas_gpu_memory(
    fake_smi: Path,
    home: Path,
    database_url: str,
    iris_model: Callable[[float], IrisModel],
    iris_x: np.ndarray[Any, Any],
    tmp_path: Path,
) -> None:
    """A server of its own, with the script first on its ``PATH``."""
    pids = tmp_path / "pids"
    port = free_port()
    env = {
        **server_environment(home, database_url),
        "AIAAS_INFERENCE_PORT": str(port),
        "PATH": f"{fake_smi.parent}{os.pathsep}{os.environ['PATH']}",
        "FAKE_GPU_PIDS": str(pids),
    }
    url = f"http://127.0.0.1:{port}"
    server = spawn(
        ["-m", "aiaas.serving"], env=env, ready_url=f"{url}/v2/health/ready", log=tmp_path / "serve.log"
    )
    try:
        model = f"gpu-{uuid.uuid4().hex[:8]}"
        db = Database(database_url)
        db.upgrade()
        registry = Registry(db, open_artifact_store(artifact_root(home)))
        registry.register_version(model, iris_model(1.0).package)
        DeploymentService(registry).create(model, model=model, version=1, min_replicas=1, max_replicas=1)
        with httpx.Client(base_url=url, timeout=30, headers=AUTH) as http:
            body = {
                "inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": iris_x[0].tolist()}]
            }
            wait_until(
                lambda: http.post(f"/v2/models/{model}/infer", json=body).status_code == 200,
                timeout=60,
                what="the model to be served",
            )

            def replica_pid() -> str | None:
                found = [
                    s.labels["pid"]
                    for s in _samples(http.get("/metrics").text, "aiaas_replica_cpu_seconds_total")
                    if s.labels["deployment"] == model
                ]
                return found[0] if found else None

            wait_until(lambda: replica_pid() is not None, timeout=30, what="the replica in /metrics")
            pid = replica_pid()
            pids.write_text(f"{pid}\n")

            def replica_gpu_memory() -> list[Any]:
                return [
                    s
                    for s in _samples(http.get("/metrics").text, "aiaas_replica_gpu_memory_bytes")
                    if s.labels["deployment"] == model
                ]

            wait_until(lambda: bool(replica_gpu_memory()), timeout=30, what="the replica's GPU memory")
            (sample,) = replica_gpu_memory()
            assert sample.labels["pid"] == pid and sample.value == 512 * 2**20
            text = http.get("/metrics").text
            busy = {s.labels["gpu"]: s.value for s in _samples(text, "aiaas_gpu_utilization_ratio")}
            assert busy == {"0": pytest.approx(0.37)}
    finally:
        server.stop()
