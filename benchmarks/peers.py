"""Peer figures quoted from the anchor run, for reference only (not re-run here).

Source: the peer harness's ``RESULTS.md``, run of 2026-11-22 on a 2 vCPU / 24 GiB CPU-only
Linux box, Python 3.11, one server at a time, 1 worker process, 127.0.0.1, single-row
requests, 20 s measured after a 5 s warm-up. Peers and versions: MLflow 3.17.2
(``mlflow models serve``, pyfunc on the native model), BentoML 1.4.39 (native model,
``workers=1``; ``-batch`` = adaptive batching, ``max_batch_size=64``, ``max_latency_ms=1000``),
and the same FastAPI + ONNX Runtime baseline this benchmark re-runs.

These are other runs on another day: set this run's baseline beside the anchor's
``fastapi-ort`` rows to judge how comparable the two machines are before reading anything
into a ratio across them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANCHOR_DATE", "PEER_RUNS", "PEER_SERVERS", "PeerRun", "PeerServer"]

ANCHOR_DATE = "2026-11-22"


@dataclass(frozen=True)
class PeerRun:
    """One load run of one peer: generator, concurrency and what it measured."""

    server: str
    model: str
    generator: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class PeerServer:
    """Start-up and memory figures of one peer serving one model."""

    server: str
    model: str
    cold_start_s: float
    #: RSS of the whole process tree after the load runs (shared pages counted per process).
    rss_after_mb: int
    processes: int


PEER_RUNS: tuple[PeerRun, ...] = (
    PeerRun("mlflow", "tabular", "aiohttp", 1, 654, 1.35, 5.40, 0),
    PeerRun("mlflow", "tabular", "aiohttp", 32, 662, 35.90, 267.06, 0),
    PeerRun("mlflow", "tabular", "wrk", 1, 579, 1.29, 9.39, 0),
    PeerRun("mlflow", "tabular", "wrk", 32, 753, 31.27, 246.41, 0),
    PeerRun("bentoml", "tabular", "aiohttp", 1, 397, 1.75, 10.63, 0),
    PeerRun("bentoml", "tabular", "aiohttp", 32, 331, 73.32, 446.49, 0),
    PeerRun("bentoml", "tabular", "wrk", 1, 368, 2.31, 474.57, 0),
    PeerRun("bentoml", "tabular", "wrk", 32, 281, 106.75, 630.34, 0),
    PeerRun("bentoml-batch", "tabular", "aiohttp", 1, 278, 2.67, 12.49, 0),
    PeerRun("bentoml-batch", "tabular", "aiohttp", 32, 670, 34.44, 407.45, 0),
    PeerRun("bentoml-batch", "tabular", "wrk", 1, 68, 14.02, 345.42, 0),
    PeerRun("bentoml-batch", "tabular", "wrk", 32, 724, 31.42, 723.53, 0),
    PeerRun("fastapi-ort", "tabular", "aiohttp", 1, 2466, 0.34, 1.25, 0),
    PeerRun("fastapi-ort", "tabular", "aiohttp", 32, 5830, 5.45, 6.61, 0),
    PeerRun("fastapi-ort", "tabular", "wrk", 1, 4623, 0.19, 3.56, 0),
    PeerRun("fastapi-ort", "tabular", "wrk", 32, 5712, 5.53, 8.26, 0),
    PeerRun("mlflow", "mlp", "aiohttp", 1, 531, 1.80, 3.52, 0),
    PeerRun("mlflow", "mlp", "aiohttp", 32, 579, 47.41, 221.86, 0),
    PeerRun("mlflow", "mlp", "wrk", 1, 747, 1.27, 2.85, 0),
    PeerRun("mlflow", "mlp", "wrk", 32, 637, 44.12, 213.64, 0),
    PeerRun("bentoml", "mlp", "aiohttp", 1, 595, 1.48, 2.68, 0),
    PeerRun("bentoml", "mlp", "aiohttp", 32, 416, 62.85, 508.83, 0),
    PeerRun("bentoml", "mlp", "wrk", 1, 382, 2.45, 582.63, 0),
    PeerRun("bentoml", "mlp", "wrk", 32, 366, 73.46, 712.31, 0),
    PeerRun("bentoml-batch", "mlp", "aiohttp", 1, 484, 1.78, 3.48, 0),
    PeerRun("bentoml-batch", "mlp", "aiohttp", 32, 718, 31.62, 506.89, 0),
    PeerRun("bentoml-batch", "mlp", "wrk", 1, 150, 6.44, 332.09, 0),
    PeerRun("bentoml-batch", "mlp", "wrk", 32, 722, 31.72, 817.67, 0),
    PeerRun("fastapi-ort", "mlp", "aiohttp", 1, 1686, 0.58, 0.74, 0),
    PeerRun("fastapi-ort", "mlp", "aiohttp", 32, 2650, 10.77, 28.79, 0),
    PeerRun("fastapi-ort", "mlp", "wrk", 1, 3046, 0.31, 0.49, 0),
    PeerRun("fastapi-ort", "mlp", "wrk", 32, 2784, 11.32, 18.53, 0),
)

PEER_SERVERS: tuple[PeerServer, ...] = (
    PeerServer("mlflow", "tabular", 6.40, 669, 2),
    PeerServer("bentoml", "tabular", 2.16, 379, 2),
    PeerServer("bentoml-batch", "tabular", 2.06, 420, 2),
    PeerServer("fastapi-ort", "tabular", 0.36, 86, 1),
    PeerServer("mlflow", "mlp", 4.12, 601, 2),
    PeerServer("bentoml", "mlp", 2.26, 527, 2),
    PeerServer("bentoml-batch", "mlp", 2.00, 552, 2),
    PeerServer("fastapi-ort", "mlp", 0.36, 99, 1),
)
