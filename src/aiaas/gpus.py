"""GPU utilisation and memory, per device and per process, for the metrics of both servers.

Read from ``nvidia-smi`` (it ships with every NVIDIA driver, so this needs no extra
dependency and no CUDA library in the server's process). Asking it takes tens of
milliseconds, too long for a scrape answered on the inference server's event loop, so a
:class:`GpuSampler` asks from its own thread every :data:`SAMPLE_INTERVAL_S` seconds and a
scrape reads the last sample. Without ``nvidia-smi`` on ``PATH`` (no GPU, or not NVIDIA's)
no thread starts and there are no GPU series at all, rather than zeros that would read as
an idle GPU.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

__all__ = ["SAMPLE_INTERVAL_S", "GpuDevice", "GpuSample", "GpuSampler", "parse_devices", "parse_processes"]

#: Seconds between two readings: about a third of Prometheus' usual 15 s scrape interval.
SAMPLE_INTERVAL_S = 5.0
#: A reading that takes longer is abandoned (a hung driver must not hang the sampler).
QUERY_TIMEOUT_S = 10.0
_MIB = 1024 * 1024

_DEVICE_QUERY = "index,uuid,name,utilization.gpu,memory.used,memory.total"
_PROCESS_QUERY = "pid,gpu_uuid,used_memory"


@dataclass(frozen=True)
class GpuDevice:
    """One GPU: its index, its name, how busy it is (0 to 1) and its memory in bytes."""

    index: int
    uuid: str
    name: str
    utilization: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None


@dataclass(frozen=True)
class GpuSample:
    """One reading: the devices, and the GPU memory of each process that holds some, by pid."""

    devices: tuple[GpuDevice, ...]
    process_memory: dict[int, int]


def _number(text: str) -> float | None:
    """A field of nvidia-smi's CSV; ``[N/A]``/``[Not Supported]`` (some boards, MIG) are ``None``."""
    try:
        return float(text)
    except ValueError:
        return None


def parse_devices(text: str) -> tuple[GpuDevice, ...]:
    """Parse ``nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total
    --format=csv,noheader,nounits`` (memory in MiB, utilisation in percent).

    >>> parse_devices("0, GPU-5e1f, NVIDIA H200, 37, 1024, 143771\\n")[0].utilization
    0.37
    """
    devices = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 6 or not fields[0].isdigit():
            continue
        busy, used, total = (_number(field) for field in fields[3:])
        devices.append(
            GpuDevice(
                index=int(fields[0]),
                uuid=fields[1],
                name=fields[2],
                utilization=None if busy is None else busy / 100,
                memory_used_bytes=None if used is None else int(used * _MIB),
                memory_total_bytes=None if total is None else int(total * _MIB),
            )
        )
    return tuple(devices)


def parse_processes(text: str) -> dict[int, int]:
    """Parse ``nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits``:
    GPU bytes by pid, summed over the GPUs a process uses.

    >>> parse_processes("4242, GPU-5e1f, 512\\n4242, GPU-77aa, 256\\n")
    {4242: 805306368}
    """
    memory: dict[int, int] = {}
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 3 or not fields[0].isdigit():
            continue
        used = _number(fields[2])
        if used is not None:
            memory[int(fields[0])] = memory.get(int(fields[0]), 0) + int(used * _MIB)
    return memory


class GpuSampler:
    """Reads the GPUs every :data:`SAMPLE_INTERVAL_S` seconds from its own daemon thread.

    ``latest()`` never blocks: it is ``None`` until the first reading (and always without
    ``nvidia-smi``). The thread starts on the first ``latest()``, so a server that is never
    scraped never runs ``nvidia-smi``.
    """

    def __init__(self, executable: str | None = None, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self._executable = executable if executable is not None else shutil.which("nvidia-smi")
        self._interval_s = interval_s
        self._sample: GpuSample | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        """Whether there is an ``nvidia-smi`` to ask."""
        return self._executable is not None

    def latest(self) -> GpuSample | None:
        """The last reading, starting the sampler on first use."""
        if self._executable is None:
            return None
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="aiaas-gpu-sampler", daemon=True)
                self._thread.start()
            return self._sample

    def read(self) -> GpuSample | None:
        """One reading now (blocking, tens of milliseconds); ``None`` when ``nvidia-smi`` fails."""
        if self._executable is None:
            return None
        devices = self._query(f"--query-gpu={_DEVICE_QUERY}")
        processes = self._query(f"--query-compute-apps={_PROCESS_QUERY}")
        if devices is None:
            return None
        return GpuSample(parse_devices(devices), parse_processes(processes or ""))

    def close(self) -> None:
        """Stop the thread (it is a daemon, so an exit without this loses nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=QUERY_TIMEOUT_S)

    def _query(self, query: str) -> str | None:
        assert self._executable is not None
        try:
            done = subprocess.run(
                [self._executable, query, "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=QUERY_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.read()
            with self._lock:
                self._sample = sample
            self._stop.wait(self._interval_s)


class GpuCollector:
    """Prometheus families of the GPUs: utilisation and memory per device (no series without one)."""

    def __init__(self, sampler: GpuSampler) -> None:
        self._sampler = sampler

    def collect(self) -> Iterator[Metric]:
        sample = self._sampler.latest()
        if sample is None or not sample.devices:
            return
        labels = ["gpu", "uuid", "name"]
        busy = GaugeMetricFamily(
            "aiaas_gpu_utilization_ratio", "Share of time a GPU was busy (0 to 1).", labels=labels
        )
        used = GaugeMetricFamily("aiaas_gpu_memory_used_bytes", "GPU memory in use.", labels=labels)
        total = GaugeMetricFamily("aiaas_gpu_memory_total_bytes", "GPU memory in all.", labels=labels)
        for device in sample.devices:
            values = [str(device.index), device.uuid, device.name]
            if device.utilization is not None:
                busy.add_metric(values, device.utilization)
            if device.memory_used_bytes is not None:
                used.add_metric(values, device.memory_used_bytes)
            if device.memory_total_bytes is not None:
                total.add_metric(values, device.memory_total_bytes)
        yield from (busy, used, total)

    def describe(self) -> list[Metric]:
        """Nothing up front: whether there are GPUs is known at scrape time."""
        return []
