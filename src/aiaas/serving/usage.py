"""What the inference server's models cost and how loaded they are, as Prometheus metrics.

Per replica process: CPU seconds and resident memory (read from ``/proc`` at scrape time,
see :mod:`aiaas.resources`), and the GPU memory it holds when there is a GPU (from the last
reading of :class:`aiaas.gpus.GpuSampler`). Per served version: replicas ready and desired, restarts,
requests in flight (running or waiting, in a batcher's queue too) and the batcher's queue
depth. The server's own process is described by prometheus_client's process collector
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``...).

Everything is read when ``/metrics`` is scraped, from state the server keeps anyway, so
none of it costs a request anything. Each series carries the deployment, model and version,
so a dashboard or an alert rule can follow one version through a canary or a rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from aiaas.gpus import GpuSampler
from aiaas.resources import process_usage
from aiaas.serving.replica_set import ReplicaSet

__all__ = ["UsageCollector"]

_LABELS = ["deployment", "model", "version"]


class UsageCollector:
    """A Prometheus collector over the server's replica sets and dispatch queues.

    Args:
        replica_sets: the replica sets the server runs now (ONNX and language models alike).
        load: ``(deployment, version) → (requests in flight, queued requests)`` of the
            versions the dispatcher runs in-process or in front of replicas.
        gpus: the server's GPU sampler, for the GPU memory each replica holds (none without a GPU).
    """

    def __init__(
        self,
        replica_sets: Callable[[], Iterable[ReplicaSet]],
        load: Callable[[], dict[tuple[str, str, int], tuple[int, int]]],
        gpus: GpuSampler | None = None,
    ) -> None:
        self._replica_sets = replica_sets
        self._load = load
        self._gpus = gpus

    def collect(self) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "aiaas_replica_cpu_seconds",
            "CPU time (user + system) a replica process has used since it started.",
            labels=[*_LABELS, "pid"],
        )
        memory = GaugeMetricFamily(
            "aiaas_replica_resident_memory_bytes",
            "Resident memory of a replica process.",
            labels=[*_LABELS, "pid"],
        )
        replicas = GaugeMetricFamily(
            "aiaas_replicas", "Replica processes of a version, ready and desired.", labels=[*_LABELS, "state"]
        )
        restarts = CounterMetricFamily(
            "aiaas_replica_restarts", "Replica processes restarted after dying.", labels=_LABELS
        )
        in_flight = GaugeMetricFamily(
            "aiaas_requests_in_flight",
            "Requests of a version running or waiting for a model run now.",
            labels=_LABELS,
        )
        queued = GaugeMetricFamily(
            "aiaas_queued_requests", "Requests waiting in a version's batcher queue now.", labels=_LABELS
        )
        gpu_memory = GaugeMetricFamily(
            "aiaas_replica_gpu_memory_bytes",
            "GPU memory a replica process holds (only with a GPU).",
            labels=[*_LABELS, "pid"],
        )
        gpu_sample = self._gpus.latest() if self._gpus is not None else None
        on_gpu = gpu_sample.process_memory if gpu_sample is not None else {}
        seen: set[int] = set()
        counted: dict[tuple[str, str, int], int] = {}
        for replica_set in list(self._replica_sets()):
            if id(replica_set) in seen or replica_set.closed:
                continue
            seen.add(id(replica_set))
            key = (replica_set.deployment, replica_set.model, replica_set.version)
            labels = [replica_set.deployment, replica_set.model, str(replica_set.version)]
            replicas.add_metric([*labels, "ready"], len(replica_set.ready_replicas()))
            replicas.add_metric([*labels, "desired"], replica_set.desired)
            restarts.add_metric(labels, replica_set.restarts)
            counted[key] = counted.get(key, 0) + replica_set.active
            for pid in replica_set.pids():
                usage = process_usage(pid)
                if usage is not None:
                    cpu.add_metric([*labels, str(pid)], usage.cpu_seconds)
                    memory.add_metric([*labels, str(pid)], usage.resident_bytes)
                if pid in on_gpu:
                    gpu_memory.add_metric([*labels, str(pid)], on_gpu[pid])
        waiting: dict[tuple[str, str, int], int] = {}
        for key, (running, in_queue) in self._load().items():
            waiting[key] = waiting.get(key, 0) + in_queue
            if key not in counted:  # a replica set counts its own, queued requests included
                counted[key] = running + in_queue
        for (deployment, model, version), value in sorted(counted.items()):
            in_flight.add_metric([deployment, model, str(version)], value)
        for (deployment, model, version), value in sorted(waiting.items()):
            queued.add_metric([deployment, model, str(version)], value)
        yield from (cpu, memory, replicas, restarts, in_flight, queued)
        if gpu_sample is not None:
            yield gpu_memory

    def describe(self) -> list[Any]:
        """Nothing up front: the families depend on what is served at scrape time."""
        return []
