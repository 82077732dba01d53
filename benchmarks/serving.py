"""Serving benchmark: the aiaas inference server against a hand-rolled FastAPI + ONNX Runtime baseline.

Every performance claim needs a peer measured in the same run on the same machine, so one
invocation does all of it. Two scenarios, both run by default (``--scenario``):

``serving``, aiaas against the baseline on the peer anchors' models:

1. builds the two reference models (``reference_models.py``: ``tabular``, 30 features;
   ``mlp``, 784 → 1024 → 1024 → 10) as ONNX into a scratch folder;
2. for each model, starts each server in turn, alone on the machine:
   ``baseline``, the FastAPI + ONNX Runtime service of ``baseline_fastapi_ort.py`` (uvicorn,
   1 worker, no access log, ``POST /predict {"inputs": [[...]]}``), and ``aiaas``,
   ``python -m aiaas.serving`` on a fresh ``AIAAS_HOME`` holding the model registered and
   deployed as a V2 deployment (``POST /v2/models/<model>/infer``, asking for the same first
   output the baseline returns);
3. per server: cold start (process launch → first 2xx prediction, median of several
   launches; the last one stays up), a check that the reply holds the model's real output,
   then the load generator at each concurrency (single-row requests, closed loop), then the
   RSS/PSS of the server's process tree once idle after the load;
4. writes a markdown report (and the raw JSON beside it) to ``benchmarks/results/`` and
   prints it, with MLflow/BentoML figures quoted from the anchor run for reference.

``batching``, dynamic batching on a compute-bound model (``mlp_wide``, 784 → 4096 → 4096 →
10), where one model call on 32 rows costs far less than 32 calls on one:

1. one aiaas inference server, one model version, several deployments of it: one with
   batching off and one per ``--batch-configs`` entry (``SIZE:DELAY_MS``, default ``32:2``);
2. waits until ``GET /v2/models/<deployment>`` reports each deployment's batching settings
   (the server reads them from the database), checks each reply against ONNX Runtime;
3. drives each deployment in turn with the same load generator, single-row requests, at
   each concurrency, and reads the batch-size distribution and per-batch compute time from
   ``GET /v2/models/<deployment>/stats`` (``batch_stats``) around each load run;
4. runs the baseline on the same model at the highest concurrency, for reference;
5. writes ``serving-batching-<date>.md`` (and its JSON) beside the other report.

Servers run in the interpreter running this script (the project's virtualenv), so both get
uvicorn with uvloop and httptools; load generators run in their own processes. The machine
should be otherwise idle: the generator shares its cores with the server.

Examples:
    .venv/bin/python benchmarks/serving.py                 # default: -d 10 -w 3, c = 1 and 32
    .venv/bin/python benchmarks/serving.py --scenario batching -d 8 -w 3
    .venv/bin/python benchmarks/serving.py --scenario batching --batch-configs 32:2 64:2 32:5
    .venv/bin/python benchmarks/serving.py --quick         # a smoke run of a few seconds per cell
    .venv/bin/python benchmarks/serving.py -g aiohttp wrk  # add wrk (apt-get install wrk)
    .venv/bin/python benchmarks/serving.py --profile --py-spy /tmp/venv-pyspy/bin/py-spy
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import peers
import profile_summary
import psutil
import reference_models
from reference_models import ReferenceModel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: ``aiaas`` runs the model in replica processes (the default deployment: one replica);
#: ``aiaas-inprocess`` in the server process itself (``AIAAS_REPLICA_PROCESSES=false``).
SERVERS = ("baseline", "aiaas", "aiaas-inprocess")
DEFAULT_SERVERS = ("baseline", "aiaas")
SCENARIOS = ("serving", "batching", "sizes")
GENERATORS = {"aiohttp": HERE / "load.py", "wrk": HERE / "wrk.py"}
#: How often the cold-start probe retries (the peer harness's interval, for comparable figures).
_PROBE_INTERVAL_S = 0.05
#: Pause after a server stops or a load run ends, so the next step starts on a quiet machine.
_SETTLE_S = 1.0
_PROFILE_RATE_HZ = 100


@dataclass
class LoadRun:
    """One load-generator run against one server (the generator's JSON line)."""

    generator: str
    concurrency: int
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    errors: int
    requests: int


@dataclass
class ServerResult:
    """Everything measured for one server serving one model."""

    server: str
    model: str
    command: list[str]
    cold_starts_s: list[float] = field(default_factory=list)
    #: CPU seconds the server's process tree used from launch to the first 2xx reply:
    #: what a cold start costs, much less swayed than wall time by other work on the box.
    cold_start_cpu_s: list[float] = field(default_factory=list)
    reply_ok: bool | None = None
    sample_reply: str = ""
    rss_after_start_mb: float | None = None
    rss_after_load_mb: float | None = None
    pss_after_load_mb: float | None = None
    processes: int = 0
    runs: list[LoadRun] = field(default_factory=list)
    profile: str | None = None
    error: str | None = None

    @property
    def cold_start_s(self) -> float | None:
        """Median of the timed launches."""
        return statistics.median(self.cold_starts_s) if self.cold_starts_s else None

    @property
    def cold_start_cpu_median_s(self) -> float | None:
        return statistics.median(self.cold_start_cpu_s) if self.cold_start_cpu_s else None


@dataclass(frozen=True)
class ServerSpec:
    """How to launch one server for one model and what to send it."""

    name: str
    model: ReferenceModel
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    path: str
    body: bytes
    #: Pulls the predicted values out of a reply body, to check them against the model's.
    predictions: Callable[[Any], Any]
    #: Rows per request: the model's row, repeated.
    rows: int = 1

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}{self.path}"


# -- the two servers -------------------------------------------------------------------


def baseline_spec(model: ReferenceModel) -> ServerSpec:
    """The hand-rolled FastAPI + ONNX Runtime baseline, launched as in the anchor run."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "baseline_fastapi_ort:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--no-access-log",
        # Named, not left to auto-detection, so both servers run the same loop and parser.
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    return ServerSpec(
        name="baseline",
        model=model,
        argv=argv,
        env=_clean_env(BENCH_ONNX=str(model.onnx_path)),
        cwd=HERE,
        path="/predict",
        body=json.dumps({"inputs": [model.row]}).encode(),
        predictions=lambda reply: reply["predictions"],
    )


def aiaas_spec(
    model: ReferenceModel,
    home: Path,
    deployment: str | None = None,
    *,
    in_process: bool = False,
    rows: int = 1,
) -> ServerSpec:
    """The aiaas inference server on ``home``, which :func:`prepare_aiaas_home` filled.

    Requests go to ``deployment`` (default: the deployment named after the model) and carry
    ``rows`` copies of the model's row. The model runs in a replica process, unless
    ``in_process`` (``AIAAS_REPLICA_PROCESSES=false``).
    """
    deployment = deployment or model.name
    body = {
        "inputs": [
            {
                "name": model.input_name,
                "datatype": "FP32",
                "shape": [rows, len(model.row)],
                "data": model.row * rows,
            }
        ],
        # The baseline returns only the first output; asking aiaas for the same keeps the
        # work and the reply size alike (tabular also has a probabilities output).
        "outputs": [{"name": model.output_name}],
    }
    return ServerSpec(
        name="aiaas-inprocess" if in_process else "aiaas",
        model=model,
        argv=[sys.executable, "-m", "aiaas.serving", "--port", "{port}"],
        env=_clean_env(AIAAS_HOME=str(home), AIAAS_REPLICA_PROCESSES=str(not in_process).lower()),
        cwd=REPO,
        path=f"/v2/models/{deployment}/infer",
        body=json.dumps(body).encode(),
        predictions=lambda reply: reply["outputs"][0]["data"],
        rows=rows,
    )


def prepare_aiaas_home(home: Path, model: ReferenceModel) -> None:
    """Register ``model`` and deploy it under its own name, through the Python API.

    Each model gets its own home so that each aiaas process, like each baseline process,
    loads and serves exactly one model: cold start and memory then compare one to one.
    """
    prepare_batching_home(home, model, {model.name: {}})


def _clean_env(**extra: str) -> dict[str, str]:
    # An AIAAS_* variable left in the caller's shell (a PostgreSQL URL, another home) would
    # point the server somewhere else than the scratch home this run prepared.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    # Authentication off: the load generators send no key (the auth on/off A/B is its own row).
    env["AIAAS_AUTH"] = "off"
    env.update(extra)
    return env


# -- processes -------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """One JSON POST; urllib raises on non-2xx, which the probe treats as not ready yet. It
    carries ``BENCH_AUTHORIZATION`` when set (the auth on/off A/B, as ``load.py`` does)."""
    headers = {"Content-Type": "application/json"}
    if os.environ.get("BENCH_AUTHORIZATION"):
        headers["Authorization"] = os.environ["BENCH_AUTHORIZATION"]
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        return int(reply.status), reply.read()


def start(
    spec: ServerSpec, log: Path, timeout_s: float
) -> tuple[subprocess.Popen[bytes], int, float, bytes, float]:
    """Launch the server in a new process group and wait for its first 2xx prediction.

    Returns:
        the process, its port, seconds from launch to that first 2xx reply, the reply, and
        the CPU seconds the server's process tree had used by then.

    Raises:
        RuntimeError: the server exited, or gave no 2xx reply within ``timeout_s``; it is
            stopped first, and the message ends with the tail of its log.
    """
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in spec.argv]
    with log.open("ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=spec.cwd, env=spec.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = spec.url(port)
    while time.perf_counter() - t0 < timeout_s and proc.poll() is None:
        try:
            status, reply = post(url, spec.body)
            if 200 <= status < 300:
                return proc, port, time.perf_counter() - t0, reply, cpu_seconds(proc.pid)
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(_PROBE_INTERVAL_S)
    exit_code = proc.poll()
    stop(proc)
    why = (
        f"exited with {exit_code}" if exit_code is not None else f"gave no 2xx reply within {timeout_s:.0f}s"
    )
    tail = log.read_text(errors="replace")[-1500:]
    raise RuntimeError(f"{spec.name} ({spec.model.name}) {why}; its log ends with:\n{tail}")


def stop(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the process group this script created; SIGKILL it after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants so far."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def memory_mb(pid: int) -> tuple[float, float, int]:
    """RSS and PSS of a process and its descendants, in MiB, and how many processes.

    RSS counts shared pages once per process; PSS splits them fairly, so it is the better
    "memory cost" when a server forks workers.
    """
    root = psutil.Process(pid)
    rss = pss = 0
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        info = p.memory_full_info()
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss / 2**20, pss / 2**20, len(procs)


# -- measuring -------------------------------------------------------------------------


def run_load(
    generator: str, url: str, payload: Path, concurrency: int, duration_s: float, warmup_s: float
) -> LoadRun:
    """Run one generator in its own process, so it never shares an interpreter with this one."""
    argv = [sys.executable, str(GENERATORS[generator]), url, str(payload)]
    argv += ["-c", str(concurrency), "-d", str(duration_s), "-w", str(warmup_s)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{generator} load run failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadRun(
        generator=generator,
        concurrency=concurrency,
        rps=float(out["rps"]),
        p50_ms=out["p50_ms"],
        p90_ms=out["p90_ms"],
        p99_ms=out["p99_ms"],
        errors=int(out["errors"]),
        requests=int(out["requests"]),
    )


def check_reply(spec: ServerSpec, reply: bytes) -> bool:
    """Whether the reply carries what ONNX Runtime itself computes for the request row.

    A server that answers fast but wrong (another output, a mangled input) must not pass
    as a result.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(spec.model.onnx_path), providers=["CPUExecutionProvider"])
    row = np.asarray([spec.model.row] * spec.rows, dtype=np.float32)
    expected = np.asarray(session.run([spec.model.output_name], {spec.model.input_name: row})[0])
    try:
        got = np.asarray(spec.predictions(json.loads(reply)), dtype=np.float64)
    except (KeyError, IndexError, TypeError, ValueError):
        return False
    return got.size == expected.size and bool(np.allclose(got.reshape(-1), expected.reshape(-1), atol=1e-4))


def bench_server(spec: ServerSpec, args: argparse.Namespace, scratch: Path) -> ServerResult:
    """Cold starts, reply check, load runs, memory and (optionally) a profile of one server."""
    result = ServerResult(server=spec.name, model=spec.model.name, command=spec.argv)
    log = scratch / f"{spec.name}-{spec.model.name}.log"
    payload = scratch / f"{spec.name}-{spec.model.name}.json"
    payload.write_bytes(spec.body)
    print(f"== {spec.name} / {spec.model.name}: {' '.join(spec.argv)}", flush=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for launch in range(args.cold_starts):
            proc, port, cold_s, reply, cpu_s = start(spec, log, args.start_timeout)
            result.cold_starts_s.append(round(cold_s, 3))
            result.cold_start_cpu_s.append(round(cpu_s, 3))
            took = f"{cold_s:.2f}s, {cpu_s:.2f} CPU s"
            print(f"   cold start {launch + 1}/{args.cold_starts}: {took}", flush=True)
            if launch < args.cold_starts - 1:
                stop(proc)
                proc = None
                time.sleep(_SETTLE_S)
        assert proc is not None
        result.sample_reply = reply[:200].decode(errors="replace")
        result.reply_ok = check_reply(spec, reply)
        if not result.reply_ok:
            print(f"   WARNING: reply does not match the model's output: {result.sample_reply}", flush=True)
        time.sleep(_SETTLE_S)
        result.rss_after_start_mb = round(memory_mb(proc.pid)[0], 1)
        url = spec.url(port)
        for generator in args.generators:
            for concurrency in args.concurrency:
                run = run_load(generator, url, payload, concurrency, args.duration, args.warmup)
                result.runs.append(run)
                print(
                    f"   {generator:7} c={concurrency:<3} {run.rps:>9.1f} req/s  p50 {run.p50_ms} ms  "
                    f"p99 {run.p99_ms} ms  errors {run.errors}",
                    flush=True,
                )
                time.sleep(_SETTLE_S)
        rss, pss, result.processes = memory_mb(proc.pid)
        result.rss_after_load_mb, result.pss_after_load_mb = round(rss, 1), round(pss, 1)
        if args.profile:
            result.profile = profile(spec, proc.pid, url, payload, args)
    except RuntimeError as exc:
        result.error = str(exc)
        print(f"   FAILED: {exc}", flush=True)
    finally:
        if proc is not None:
            stop(proc)
        time.sleep(_SETTLE_S)
    return result


def profile(spec: ServerSpec, pid: int, url: str, payload: Path, args: argparse.Namespace) -> str:
    """Sample the server with py-spy under the highest concurrency; not part of the table.

    The run is separate from the measured ones because sampling slows the server a little.
    """
    concurrency = max(args.concurrency)
    args.profile_dir.mkdir(parents=True, exist_ok=True)
    raw = args.profile_dir / f"{spec.name}-{spec.model.name}-c{concurrency}.txt"
    seconds = max(2, round(args.duration))
    spy = subprocess.Popen(
        [
            *(args.py_spy, "record", "--pid", str(pid), "--format", "raw", "--threads"),
            *("--rate", str(_PROFILE_RATE_HZ), "--duration", str(seconds), "-o", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The load outlasts the recording on both ends, so every sample is taken under load.
    run = run_load("aiohttp", url, payload, concurrency, seconds + 1, 0.5)
    _, spy_err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        return f"py-spy failed ({spy.returncode}): {spy_err.strip()[-500:]}"
    summary = profile_summary.summarize(raw)
    shown = raw.relative_to(REPO) if raw.is_relative_to(REPO) else raw
    head = (
        f"`{shown}`: {seconds}s at {_PROFILE_RATE_HZ} Hz under aiohttp c={concurrency} "
        f"({run.rps:.0f} req/s while sampled)."
    )
    return head + "\n\n" + profile_summary.render(summary, top=args.profile_top, duration_s=seconds)


# -- the batching scenario -------------------------------------------------------------


@dataclass(frozen=True)
class BatchStats:
    """The ``/v2/models/<deployment>/stats`` counters the batching table reads.

    ``batches`` maps a batch size (rows per model call) to how many calls ran that size and
    their total compute time in ns. The counters only grow, so the difference of two
    snapshots is what happened between them.
    """

    batches: dict[int, tuple[int, int]] = field(default_factory=dict)
    requests: int = 0
    #: Summed time of the answered requests inside the model's dispatch: waiting for a model
    #: call plus running it. (The stats' own ``queue`` is not comparable across deployments:
    #: a batched request records its batch's run time there too, and zero as compute.)
    server_ns: int = 0

    def __sub__(self, before: BatchStats) -> BatchStats:
        batches = {}
        for size, (count, ns) in self.batches.items():
            count0, ns0 = before.batches.get(size, (0, 0))
            if count > count0:
                batches[size] = (count - count0, ns - ns0)
        return BatchStats(
            batches=batches,
            requests=self.requests - before.requests,
            server_ns=self.server_ns - before.server_ns,
        )

    @property
    def executions(self) -> int:
        return sum(count for count, _ in self.batches.values())

    @property
    def rows(self) -> int:
        return sum(size * count for size, (count, _) in self.batches.items())


@dataclass
class BatchingRun:
    """One load run against one deployment, with what the server says it batched."""

    deployment: str
    batching: dict[str, Any]
    run: LoadRun
    stats: BatchStats


@dataclass
class BatchingResult:
    """Everything the batching scenario measured."""

    model: str
    baseline: ServerResult | None = None
    runs: list[BatchingRun] = field(default_factory=list)
    reply_ok: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


def parse_batch_config(text: str) -> dict[str, Any]:
    """``"32:2"`` → the batching settings of a deployment: max batch size 32, 2 ms delay."""
    try:
        size, delay = text.split(":")
        config = {"enabled": True, "max_batch_size": int(size), "max_queue_delay_ms": float(delay)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIZE:DELAY_MS such as 32:2, got {text!r}") from None
    return config


def batching_deployments(model: str, configs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployment name → batching settings: batching off first, then one per config."""
    out: dict[str, dict[str, Any]] = {f"{model}-unbatched": {"enabled": False}}
    for c in configs:
        out[f"{model}-batched-{c['max_batch_size']}-{c['max_queue_delay_ms']:g}ms"] = c
    return out


def prepare_batching_home(home: Path, model: ReferenceModel, deployments: dict[str, dict[str, Any]]) -> None:
    """Register ``model`` once and deploy that one version under every name of ``deployments``.

    One version and one server for all of them, so the deployments differ in their batching
    settings alone.
    """
    from aiaas.deployments import DeploymentService
    from aiaas.formats import package_model
    from aiaas.registry import Registry
    from aiaas.store import Database, open_artifact_store

    home.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{home / 'aiaas.db'}")
    try:
        db.upgrade()
        registry = Registry(db, open_artifact_store(str(home / "artifacts")))
        example = np.asarray([model.row], dtype=np.float32)
        version = registry.register_version(model.name, package_model(model.onnx_path, example))
        service = DeploymentService(registry)
        for name, batching in deployments.items():
            service.create(name, model=model.name, version=version.version, batching=batching)
    finally:
        db.dispose()


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    """One GET whose reply is JSON; urllib raises on non-2xx."""
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:
        return json.loads(reply.read())


def wait_for_batching(port: int, deployment: str, expected: dict[str, Any], timeout_s: float) -> None:
    """Wait until the server reports ``expected`` as the deployment's batching settings.

    What was written to the database is only what the server should do; the table must
    describe what it does, so every setting given is checked against ``parameters.batching``.

    Raises:
        RuntimeError: the settings were not reported within ``timeout_s``.
    """
    url = f"http://127.0.0.1:{port}/v2/models/{deployment}"
    seen: Any = None
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            seen = get_json(url).get("parameters", {}).get("batching")
            if isinstance(seen, dict) and all(seen.get(k) == v for k, v in expected.items()):
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(_PROBE_INTERVAL_S)
    raise RuntimeError(f"{deployment}: batching never reported as {expected}; last seen {seen}")


def batch_stats(port: int, deployment: str) -> BatchStats:
    """The deployment's counters now, summed over its versions (there is one here)."""
    reply = get_json(f"http://127.0.0.1:{port}/v2/models/{deployment}/stats")
    batches: dict[int, tuple[int, int]] = {}
    requests = server_ns = 0
    for entry in reply["model_stats"]:
        for b in entry["batch_stats"]:
            count, ns = batches.get(int(b["batch_size"]), (0, 0))
            batches[int(b["batch_size"])] = (
                count + b["compute_infer"]["count"],
                ns + b["compute_infer"]["ns"],
            )
        requests += entry["inference_stats"]["success"]["count"]
        server_ns += entry["inference_stats"]["success"]["ns"]
    return BatchStats(batches, requests, server_ns)


def bench_batching(model: ReferenceModel, args: argparse.Namespace, scratch: Path) -> BatchingResult:
    """Batching off against each batching config: one server, one model, load on one at a time."""
    result = BatchingResult(model=model.name)
    deployments = batching_deployments(model.name, args.batch_configs)
    home = scratch / f"aiaas-home-{model.name}-batching"
    shutil.rmtree(home, ignore_errors=True)
    prepare_batching_home(home, model, deployments)
    specs = {name: aiaas_spec(model, home, name) for name in deployments}
    first = next(iter(specs.values()))
    log = scratch / f"aiaas-{model.name}-batching.log"
    print(f"== aiaas / {model.name}: {' '.join(first.argv)}; deployments {list(deployments)}", flush=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, port, cold_s, _, _ = start(first, log, args.start_timeout)
        print(f"   up in {cold_s:.2f}s", flush=True)
        for name, spec in specs.items():
            wait_for_batching(port, name, deployments[name], args.start_timeout)
            _, reply = post(spec.url(port), spec.body)
            result.reply_ok[name] = check_reply(spec, reply)
            if not result.reply_ok[name]:
                print(
                    f"   WARNING: {name} reply does not match the model's output: {reply[:200]!r}", flush=True
                )
        for name, spec in specs.items():
            payload = scratch / f"aiaas-{name}.json"
            payload.write_bytes(spec.body)
            for generator in args.generators:
                for concurrency in args.concurrency:
                    # Counters are read around the whole load run, warm-up included: the
                    # server cannot tell the generator's phases apart.
                    before = batch_stats(port, name)
                    run = run_load(
                        generator, spec.url(port), payload, concurrency, args.duration, args.warmup
                    )
                    stats = batch_stats(port, name) - before
                    result.runs.append(BatchingRun(name, deployments[name], run, stats))
                    mean_rows = stats.rows / stats.executions if stats.executions else 0.0
                    print(
                        f"   {name:32} {generator:7} c={concurrency:<3} {run.rps:>8.1f} req/s  "
                        f"p50 {run.p50_ms} ms  p99 {run.p99_ms} ms  errors {run.errors}  "
                        f"mean batch {mean_rows:.1f} rows",
                        flush=True,
                    )
                    time.sleep(_SETTLE_S)
    except (RuntimeError, OSError, urllib.error.URLError) as exc:
        result.error = str(exc)
        print(f"   FAILED: {exc}", flush=True)
    finally:
        if proc is not None:
            stop(proc)
        time.sleep(_SETTLE_S)
    if "baseline" in args.servers:
        # For reference only: the baseline runs each request alone, at the highest concurrency.
        base_args = copy.copy(args)
        base_args.concurrency, base_args.cold_starts, base_args.profile = [max(args.concurrency)], 1, False
        result.baseline = bench_server(baseline_spec(model), base_args, scratch)
    return result


# -- the sizes scenario ----------------------------------------------------------------


@dataclass
class SizesRun:
    """One load run of the sizes scenario: one deployment, one request size, one concurrency."""

    deployment: str
    batching: dict[str, Any]
    rows: int
    run: LoadRun
    stats: BatchStats
    round: int = 0


@dataclass
class SizesResult:
    """Everything the sizes scenario measured."""

    model: str
    batching: dict[str, Any]
    runs: list[SizesRun] = field(default_factory=list)
    reply_ok: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


def bench_sizes(model: ReferenceModel, args: argparse.Namespace, scratch: Path) -> SizesResult:
    """Batching on against off, per request size and concurrency, on one server.

    For each size and concurrency the two deployments run back to back (off, then on),
    ``--sizes-rounds`` times, so whatever else the machine does weighs on both halves of each
    ratio alike, and one disturbed pair does not decide the result (the report takes medians).
    """
    batched = args.sizes_batching
    result = SizesResult(model=model.name, batching=batched)
    deployments = batching_deployments(model.name, [batched])
    home = scratch / f"aiaas-home-{model.name}-sizes"
    shutil.rmtree(home, ignore_errors=True)
    prepare_batching_home(home, model, deployments)
    log = scratch / f"aiaas-{model.name}-sizes.log"
    first = aiaas_spec(model, home, next(iter(deployments)))
    print(
        f"== aiaas / {model.name} sizes: {' '.join(first.argv)}; deployments {list(deployments)}", flush=True
    )
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, port, cold_s, _, _ = start(first, log, args.start_timeout)
        print(f"   up in {cold_s:.2f}s", flush=True)
        for name, expected in deployments.items():
            wait_for_batching(port, name, expected, args.start_timeout)
        for rows in args.sizes_rows:
            specs = {name: aiaas_spec(model, home, name, rows=rows) for name in deployments}
            for name, spec in specs.items():
                _, reply = post(spec.url(port), spec.body, timeout_s=30.0)
                result.reply_ok[f"{name} x{rows}"] = ok = check_reply(spec, reply)
                if not ok:
                    print(
                        f"   WARNING: {name} ({rows} rows) reply does not match the model's output",
                        flush=True,
                    )
                (scratch / f"sizes-{name}-{rows}.json").write_bytes(spec.body)
            for concurrency in args.sizes_concurrency:
                for round_ in range(args.sizes_rounds):
                    for name, spec in specs.items():
                        before = batch_stats(port, name)
                        payload = scratch / f"sizes-{name}-{rows}.json"
                        url = spec.url(port)
                        run = run_load("aiohttp", url, payload, concurrency, args.duration, args.warmup)
                        stats = batch_stats(port, name) - before
                        result.runs.append(SizesRun(name, deployments[name], rows, run, stats, round_))
                        print(
                            f"   {name:32} rows={rows:<5} c={concurrency:<3} round {round_ + 1} "
                            f"{run.rps:>8.1f} req/s  p50 {run.p50_ms} ms  p99 {run.p99_ms} ms  "
                            f"errors {run.errors}",
                            flush=True,
                        )
                        time.sleep(_SETTLE_S)
    except (RuntimeError, OSError, urllib.error.URLError) as exc:
        result.error = str(exc)
        print(f"   FAILED: {exc}", flush=True)
    finally:
        if proc is not None:
            stop(proc)
        time.sleep(_SETTLE_S)
    return result


def render_sizes_report(result: SizesResult, args: argparse.Namespace, meta: dict[str, str]) -> str:
    """The sizes report: batching on against off, per request size and concurrency, as medians
    over the rounds (each ratio and difference taken within a round's back-to-back pair)."""
    delay_ms = float(result.batching["max_queue_delay_ms"])
    pairs: dict[tuple[int, int], dict[int, dict[bool, SizesRun]]] = {}
    for r in result.runs:
        cell = pairs.setdefault((r.rows, r.run.concurrency), {})
        cell.setdefault(r.round, {})[bool(r.batching.get("enabled"))] = r
    lines = [
        f"# Serving benchmark: batching on against off by request size, {meta['date']}"
        + (" (quick run: not for comparison)" if args.quick else ""),
        "",
        f"aiaas {meta['aiaas']} ({meta['commit']}), {meta['machine']}. Model `{result.model}`, one version "
        f"deployed twice on one inference server: batching off, and batching on "
        f"({_batching_label(result.batching)}). V2 JSON requests of N copies of one row, closed loop, "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up per run; for each size and "
        f"concurrency the two deployments run back to back, {args.sizes_rounds} round(s).",
        "",
        "Claim: batching never makes a workload slower than batching off by more than its configured "
        f"delay ({delay_ms:g} ms): the batched p50 stays within that of the unbatched p50. Rows marked ⚠ "
        "miss it. A request of max_batch_size rows or more runs at once, alone and whole.",
        "",
        "## This run",
        "",
        "Medians over the rounds. on ÷ off and p50 on - off are computed within each round's pair, "
        "then their median is taken; rows per call is that of the batched deployment (`batch_stats`, "
        "warm-up included).",
        "",
        "| rows | c | req/s off | req/s on | on ÷ off | p50 ms off | p50 ms on | p50 on - off, ms "
        "| p99 ms off | p99 ms on | errors | rows per call on |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (rows, concurrency), rounds in sorted(pairs.items()):
        complete = [p for p in rounds.values() if True in p and False in p]
        if not complete:
            continue
        off = [p[False].run for p in complete]
        on = [p[True].run for p in complete]
        ratios = [b.rps / a.rps for a, b in zip(off, on, strict=True) if a.rps]
        gaps = [
            b.p50_ms - a.p50_ms
            for a, b in zip(off, on, strict=True)
            if a.p50_ms is not None and b.p50_ms is not None
        ]
        gap = statistics.median(gaps) if gaps else None
        flag = " ⚠" if gap is not None and gap > delay_ms else ""
        calls = sum(p[True].stats.executions for p in complete)
        per_call = sum(p[True].stats.rows for p in complete) / calls if calls else None
        lines.append(
            f"| {rows:,} | {concurrency} | {_fmt(_median([r.rps for r in off]), 1)} | "
            f"{_fmt(_median([r.rps for r in on]), 1)} | "
            f"{f'{statistics.median(ratios):.2f}x' if ratios else ''} | "
            f"{_fmt(_median([r.p50_ms for r in off]))} | {_fmt(_median([r.p50_ms for r in on]))} | "
            f"{_fmt(gap)}{flag} | {_fmt(_median([r.p99_ms for r in off]))} | "
            f"{_fmt(_median([r.p99_ms for r in on]))} | {sum(r.errors for r in off + on)} | "
            f"{_fmt(per_call, 1)} |"
        )
    reply = ", ".join(f"{name} {'yes' if ok else '**no**'}" for name, ok in result.reply_ok.items())
    lines += [
        "",
        "## How this was run",
        "",
        f"* Command: `{meta['command']}`",
        f"* Versions: {meta['versions']}.",
        "* aiaas: `python -m aiaas.serving` on a fresh `AIAAS_HOME` (SQLite + file artifacts), the model "
        "registered once and deployed twice through `DeploymentService.create(..., batching=...)`; "
        "server defaults otherwise (the model in one replica process, one ONNX Runtime intra-op thread).",
        f"* Replies checked against ONNX Runtime's output: {reply or 'none (the server failed)'}.",
        "* Load: `benchmarks/load.py` (aiohttp) in its own process on the same cores as the server.",
    ]
    if result.error:
        lines += ["", "## Failures", "", "```", result.error, "```"]
    return "\n".join(lines) + "\n"


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


# -- report ----------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    return "" if value is None or not base else f"{value / base:.2f}x"


def render_report(results: list[ServerResult], args: argparse.Namespace, meta: dict[str, str]) -> str:
    """The markdown report: this run's table, start-up and memory, the quoted peers, how it ran."""
    lines = [
        f"# Serving benchmark, {meta['date']}" + (" (quick run: not for comparison)" if args.quick else "")
    ]
    lines += [
        "",
        f"aiaas {meta['aiaas']} ({meta['commit']}) against the hand-rolled FastAPI + ONNX Runtime baseline, "
        f"same machine, same run: {meta['machine']}. Single-row requests, closed loop, "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up per cell; servers one at a time.",
        "",
        "## This run",
        "",
        "req/s ratio: aiaas ÷ baseline, higher is better; p99 ratio: aiaas ÷ baseline, lower is better. "
        f"Rows marked ⚠ are below the {args.target_ratio:g}x req/s target.",
        "",
        "| server | model | gen | c | req/s | p50 ms | p99 ms | errors "
        "| req/s vs baseline | p99 vs baseline |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_runs = {
        (r.model, run.generator, run.concurrency): run
        for r in results
        if r.server == "baseline"
        for run in r.runs
    }
    for r in results:
        if r.error and not r.runs:
            lines.append(f"| {r.server} | {r.model} | | | failed: see below | | | | | |")
        for run in r.runs:
            base = base_runs.get((r.model, run.generator, run.concurrency))
            rps_ratio = _ratio(run.rps, base.rps if base else None)
            low = base is not None and r.server != "baseline" and run.rps < args.target_ratio * base.rps
            lines.append(
                f"| {r.server} | {r.model} | {run.generator} | {run.concurrency} | {run.rps:,.0f} | "
                f"{_fmt(run.p50_ms)} | {_fmt(run.p99_ms)} | {run.errors} | "
                f"{rps_ratio}{' ⚠' if low else ''} | {_ratio(run.p99_ms, base.p99_ms if base else None)} |"
            )
    lines += [
        "",
        "### Start-up and memory",
        "",
        f"Cold start: process launch → first 2xx prediction (median of {args.cold_starts}; warm page cache). "
        "CPU s: CPU time the server's process tree used until that reply (median), which other "
        "work on a shared box inflates far less than the wall time. "
        "Memory: the server's process tree, idle, after start-up and after the load runs.",
        "",
        "| server | model | cold start s | each launch s | CPU s to first reply | reply correct | "
        "RSS MB after start | RSS MB after load | PSS MB after load | processes |",
        "|---|---|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        launches = " / ".join(f"{c:.2f}" for c in r.cold_starts_s)
        ok = "" if r.reply_ok is None else ("yes" if r.reply_ok else "**no**")
        lines.append(
            f"| {r.server} | {r.model} | {_fmt(r.cold_start_s)} | {launches} | "
            f"{_fmt(r.cold_start_cpu_median_s)} | {ok} | "
            f"{_fmt(r.rss_after_start_mb, 0)} | {_fmt(r.rss_after_load_mb, 0)} | "
            f"{_fmt(r.pss_after_load_mb, 0)} | {r.processes or ''} |"
        )
    lines += _peer_section(args)
    lines += [
        "",
        "## How this was run",
        "",
        f"* Command: `{meta['command']}`",
        f"* Versions: {meta['versions']}.",
        "* baseline: `benchmarks/baseline_fastapi_ort.py` under uvicorn, 1 worker, no access log, uvloop + "
        'httptools; `POST /predict {"inputs": [[...]]}`; ONNX Runtime defaults, run on the event loop.',
        "* aiaas: `python -m aiaas.serving` on a fresh `AIAAS_HOME` (SQLite + file artifacts) holding only "
        "this model, registered and deployed through the Python API; V2 JSON body asking for the first "
        "output only (what the baseline returns); server defaults otherwise.",
        "* Load: `benchmarks/load.py` (aiohttp, the anchor run's generator) and, where listed, "
        "`benchmarks/wrk.py` (wrk, 1 thread), each in its own process on the same cores as the server.",
        "* Models: `benchmarks/reference_models.py`, the anchor run's models rebuilt deterministically "
        "and checked against the native ones; each reply above was checked against ONNX Runtime's output.",
    ]
    failures = [r for r in results if r.error]
    if failures:
        lines += ["", "## Failures", ""]
        for r in failures:
            lines += [f"### {r.server} / {r.model}", "", "```", r.error or "", "```"]
    profiled = [r for r in results if r.profile]
    if profiled:
        lines += ["", "## Profiles (py-spy, separate run under load; not part of the table)"]
        for r in profiled:
            lines += ["", f"### {r.server} / {r.model}", "", r.profile or ""]
    return "\n".join(lines) + "\n"


def _size_buckets(batches: dict[int, tuple[int, int]]) -> list[tuple[str, int, int, int]]:
    """Batch sizes grouped by power of two: (label, model calls, rows, compute ns) each.

    A closed loop of 32 clients makes batches of every size near the top; one line per
    size would drown the shape of the distribution.
    """
    groups: dict[int, list[int]] = {}
    for size in sorted(batches):
        groups.setdefault(size.bit_length(), []).append(size)
    out = []
    for sizes in groups.values():
        label = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        calls = sum(batches[s][0] for s in sizes)
        rows = sum(s * batches[s][0] for s in sizes)
        out.append((label, calls, rows, sum(batches[s][1] for s in sizes)))
    return out


def _batching_label(batching: dict[str, Any]) -> str:
    if not batching.get("enabled"):
        return "off"
    return f"max {batching['max_batch_size']}, {batching['max_queue_delay_ms']:g} ms"


def render_batching_report(result: BatchingResult, args: argparse.Namespace, meta: dict[str, str]) -> str:
    """The batching report: throughput against batching off, then what the server batched."""
    top = max(args.concurrency)
    unbatched = {
        (r.run.generator, r.run.concurrency): r.run for r in result.runs if not r.batching.get("enabled")
    }
    lines = [
        f"# Serving benchmark: dynamic batching, {meta['date']}"
        + (" (quick run: not for comparison)" if args.quick else ""),
        "",
        f"aiaas {meta['aiaas']} ({meta['commit']}), {meta['machine']}. Model `{result.model}` "
        "(784 → 4096 → 4096 → 10, ONNX, dynamic batch axis), one version deployed several times on one "
        "inference server, differing only in batching. Single-row V2 requests, closed loop, "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up per cell; one deployment under load "
        "at a time.",
        "",
        f"Target (issue #4): at c={top}, batching on gives ≥ {args.batching_target:g}x the req/s of batching "
        "off. Rows marked ⚠ miss it.",
        "",
        "## This run",
        "",
        "req/s vs unbatched: this row ÷ the batching-off row of the same generator and concurrency. "
        "Model calls, rows per call, model ms and compute come from `GET /v2/models/<deployment>/stats`, "
        "read before and after each load run (warm-up included). Model ms/req: mean time a request spent "
        "waiting for its model call and in it (`inference_stats.success`; the rest of its latency is HTTP, "
        "JSON and the event loop); compute ms/call: mean run time of one model call (`batch_stats`).",
        "",
        "| server | deployment | batching | gen | c | req/s | p50 ms | p99 ms | errors | req/s vs unbatched "
        "| model calls | rows per call | model ms/req | compute ms/call |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.runs:
        run, st = r.run, r.stats
        base = unbatched.get((run.generator, run.concurrency))
        low = (
            r.batching.get("enabled")
            and run.concurrency == top
            and base is not None
            and run.rps < args.batching_target * base.rps
        )
        rows_per_call = st.rows / st.executions if st.executions else None
        model_ms = st.server_ns / st.requests / 1e6 if st.requests else None
        compute_ms = sum(ns for _, ns in st.batches.values()) / st.executions / 1e6 if st.executions else None
        lines.append(
            f"| aiaas | {r.deployment} | {_batching_label(r.batching)} | {run.generator} | "
            f"{run.concurrency} | {run.rps:,.0f} | {_fmt(run.p50_ms)} | {_fmt(run.p99_ms)} | {run.errors} | "
            f"{_ratio(run.rps, base.rps if base else None)}{' ⚠' if low else ''} | {st.executions:,} | "
            f"{_fmt(rows_per_call, 1)} | {_fmt(model_ms)} | {_fmt(compute_ms)} |"
        )
    if result.baseline is not None:
        b = result.baseline
        if b.error and not b.runs:
            lines.append(
                f"| baseline | | one call per request | | {top} | failed: see below | | | | | | | | |"
            )
        for run in b.runs:
            base = unbatched.get((run.generator, run.concurrency))
            lines.append(
                f"| baseline | | one call per request | {run.generator} | {run.concurrency} | "
                f"{run.rps:,.0f} | {_fmt(run.p50_ms)} | {_fmt(run.p99_ms)} | {run.errors} | "
                f"{_ratio(run.rps, base.rps if base else None)} | | | | |"
            )
    lines += [
        "",
        "### Batch sizes",
        "",
        "Model calls by rows per call (sizes grouped by power of two), from `batch_stats`. ms per row = "
        "compute of those calls ÷ their rows: what batching saves is the gap between the size-1 line and "
        "the others.",
        "",
        "| deployment | gen | c | rows per call | calls | share of rows | ms per call | ms per row |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in result.runs:
        total_rows = r.stats.rows
        for label, calls, rows, ns in _size_buckets(r.stats.batches):
            lines.append(
                f"| {r.deployment} | {r.run.generator} | {r.run.concurrency} | {label} | {calls:,} | "
                f"{100 * rows / total_rows:.1f}% | {ns / calls / 1e6:.2f} | {ns / rows / 1e6:.2f} |"
            )
    reply = ", ".join(f"{name} {'yes' if ok else '**no**'}" for name, ok in result.reply_ok.items())
    lines += [
        "",
        "## How this was run",
        "",
        f"* Command: `{meta['command']}`",
        f"* Versions: {meta['versions']}.",
        "* aiaas: `python -m aiaas.serving` on a fresh `AIAAS_HOME` (SQLite + file artifacts); the model "
        "registered once and deployed under each name above through `DeploymentService.create(..., "
        "batching=...)`; each deployment's `parameters.batching` checked on `GET /v2/models/<deployment>` "
        "before any load; server defaults otherwise (one ONNX Runtime intra-op thread per model).",
        f"* Replies checked against ONNX Runtime's output: {reply or 'none (the server failed)'}.",
        "* baseline: `benchmarks/baseline_fastapi_ort.py` on the same model (ONNX Runtime defaults, every "
        "request its own model call), for reference.",
        "* Load: `benchmarks/load.py` (aiohttp) in its own process on the same cores as the server.",
    ]
    failures = [(name, err) for name, err in (("aiaas", result.error),) if err]
    if result.baseline is not None and result.baseline.error:
        failures.append(("baseline", result.baseline.error))
    if failures:
        lines += ["", "## Failures", ""]
        for name, err in failures:
            lines += [f"### {name}", "", "```", err, "```"]
    return "\n".join(lines) + "\n"


def _peer_section(args: argparse.Namespace) -> list[str]:
    lines = [
        "",
        f"## Reference: peers in the anchor run ({peers.ANCHOR_DATE}; quoted, not re-run)",
        "",
        "From the peer harness's RESULTS.md (2 vCPU box, 20 s after 5 s warm-up). Ratios there are to "
        "that run's own FastAPI + ONNX Runtime baseline (`fastapi-ort`), listed too so it can be set "
        "beside this run's baseline.",
        "",
        "| server | model | gen | c | req/s | p50 ms | p99 ms | errors | req/s vs anchor baseline | "
        "p99 vs anchor baseline |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    anchor = {(p.model, p.generator, p.concurrency): p for p in peers.PEER_RUNS if p.server == "fastapi-ort"}
    for p in peers.PEER_RUNS:
        if (
            p.model not in args.models
            or p.generator not in args.generators
            or p.concurrency not in args.concurrency
        ):
            continue
        base = anchor[(p.model, p.generator, p.concurrency)]
        lines.append(
            f"| {p.server} | {p.model} | {p.generator} | {p.concurrency} | {p.rps:,.0f} | {p.p50_ms:.2f} | "
            f"{p.p99_ms:.2f} | {p.errors} | {_ratio(p.rps, base.rps)} | {_ratio(p.p99_ms, base.p99_ms)} |"
        )
    lines += [
        "",
        "| server | model | cold start s | RSS MB after load | processes |",
        "|---|---|---:|---:|---:|",
    ]
    for s in peers.PEER_SERVERS:
        if s.model in args.models:
            lines.append(
                f"| {s.server} | {s.model} | {s.cold_start_s:.2f} | {s.rss_after_mb} | {s.processes} |"
            )
    return lines


def run_metadata(argv: Sequence[str]) -> dict[str, str]:
    """Date, code revision, machine and package versions, so a report can be reproduced."""
    names = [
        "onnxruntime",
        "numpy",
        "orjson",
        "starlette",
        "fastapi",
        "uvicorn",
        "uvloop",
        "httptools",
        "aiohttp",
    ]
    versions = ", ".join(f"{n} {_version(n)}" for n in names)
    return {
        "date": datetime.date.today().isoformat(),
        "aiaas": _version("aiaas"),
        "commit": _git_revision(),
        "machine": (
            f"{platform.system()} {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs usable, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
        ),
        "versions": versions,
        "command": " ".join(["python", os.path.relpath(__file__, REPO), *argv]),
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "commit unknown"
    return f"commit {commit}" + (
        " + uncommitted changes" if git("status", "--porcelain", "--", "src") else ""
    )


# -- command line ----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``--quick`` overrides durations and the number of cold starts."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/serving.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-d", "--duration", type=float, default=10.0, help="measured seconds per cell (default 10)"
    )
    parser.add_argument(
        "-w", "--warmup", type=float, default=3.0, help="warm-up seconds per cell (default 3)"
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, nargs="+", default=[1, 32], help="connections (default: 1 32)"
    )
    parser.add_argument(
        "-g",
        "--generators",
        nargs="+",
        choices=sorted(GENERATORS),
        default=["aiohttp"],
        help="load generators (default: aiohttp; wrk needs the wrk binary)",
    )
    parser.add_argument(
        "--scenario",
        dest="scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=list(SCENARIOS),
        help="serving: aiaas against the baseline; batching: batching on against off; sizes: batching "
        "on against off by request size (default: all three)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=reference_models.PEER_MODELS,
        default=list(reference_models.PEER_MODELS),
        help="models of the serving scenario (the batching one always uses mlp_wide)",
    )
    parser.add_argument(
        "--batch-configs",
        nargs="+",
        type=parse_batch_config,
        default=[parse_batch_config("32:2")],
        metavar="SIZE:DELAY_MS",
        help="batching scenario: one batched deployment per entry (default: 32:2)",
    )
    parser.add_argument(
        "--sizes-rows",
        nargs="+",
        type=int,
        default=[1, 1000, 3000],
        help="sizes scenario: rows per request (default: 1 1000 3000)",
    )
    parser.add_argument(
        "--sizes-concurrency",
        nargs="+",
        type=int,
        default=[1, 4, 16],
        help="sizes scenario: connections (default: 1 4 16)",
    )
    parser.add_argument(
        "--sizes-rounds",
        type=int,
        default=3,
        help="sizes scenario: off/on pairs per size and concurrency; the report takes medians (default 3)",
    )
    parser.add_argument(
        "--sizes-model",
        choices=reference_models.PEER_MODELS,
        default="tabular",
        help="sizes scenario: the model (default: tabular, 30 features)",
    )
    parser.add_argument(
        "--sizes-batching",
        type=parse_batch_config,
        default=parse_batch_config("32:2"),
        metavar="SIZE:DELAY_MS",
        help="sizes scenario: the batched deployment's settings (default: 32:2)",
    )
    parser.add_argument(
        "--batching-target",
        type=float,
        default=3.0,
        help="batched ÷ unbatched req/s at the highest -c to flag below (3.0)",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=list(DEFAULT_SERVERS),
        help="aiaas: models in replica processes (the default); aiaas-inprocess: in the server "
        "process (AIAAS_REPLICA_PROCESSES=false); default: baseline aiaas",
    )
    parser.add_argument("--cold-starts", type=int, default=3, help="launches timed per server (default 3)")
    parser.add_argument(
        "--start-timeout", type=float, default=120.0, help="seconds to wait for a first reply"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: -d 2 -w 1, one cold start, report name ends in -quick",
    )
    parser.add_argument(
        "--target-ratio", type=float, default=0.8, help="req/s vs baseline to flag below (0.8)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="serving report path (default benchmarks/results/serving-<date>.md)",
    )
    parser.add_argument(
        "--batching-output",
        type=Path,
        help="batching report path (default: serving-batching-<date>.md beside the serving report)",
    )
    parser.add_argument(
        "--sizes-output",
        type=Path,
        help="sizes report path (default: serving-sizes-<date>.md beside the serving report)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep models, homes, logs and profiles here (default: temp dir)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also record each server with py-spy under load"
    )
    parser.add_argument(
        "--py-spy", default="py-spy", help="py-spy executable for --profile (default: on PATH)"
    )
    parser.add_argument("--profile-top", type=int, default=12, help="functions listed per profile table")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.cold_starts = 2.0, 1.0, 1
    if args.duration <= 0 or args.warmup < 0 or args.cold_starts < 1 or min(args.concurrency) < 1:
        parser.error("need -d > 0, -w >= 0, --cold-starts >= 1 and every -c >= 1")
    if min(args.sizes_rows) < 1 or min(args.sizes_concurrency) < 1 or args.sizes_rounds < 1:
        parser.error("need every --sizes-rows and --sizes-concurrency >= 1, and --sizes-rounds >= 1")
    if "wrk" in args.generators and shutil.which("wrk") is None:
        parser.error("-g wrk needs the wrk binary (Debian/Ubuntu: apt-get install -y wrk)")
    if args.profile and shutil.which(args.py_spy) is None:
        parser.error(
            f"--profile needs py-spy; {args.py_spy!r} not found (pip install py-spy, then --py-spy PATH)"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a server failed or answered wrongly."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    meta = run_metadata(argv)
    suffix = "-quick" if args.quick else ""
    output = args.output or HERE / "results" / f"serving-{meta['date']}{suffix}.md"
    batching_output = args.batching_output or output.parent / f"serving-batching-{meta['date']}{suffix}.md"
    sizes_output = args.sizes_output or output.parent / f"serving-sizes-{meta['date']}{suffix}.md"
    # Raw profiles go beside the report: the scratch folder is deleted at the end.
    args.profile_dir = output.parent / f"{output.stem}-profiles"
    failed = False
    with tempfile.TemporaryDirectory(prefix="aiaas-bench-") as tmp:
        scratch = args.workdir or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        names = list(args.models) if "serving" in args.scenarios else []
        if "batching" in args.scenarios:
            names.append(reference_models.BATCHING_MODEL)
        if "sizes" in args.scenarios and args.sizes_model not in names:
            names.append(args.sizes_model)
        print(f"building reference models {names} in {scratch}", flush=True)
        models = reference_models.build(scratch / "models", tuple(names))
        if "serving" in args.scenarios:
            results = [bench_server(spec, args, scratch) for spec in serving_specs(models, args, scratch)]
            raw: dict[str, Any] = {
                "results": [dataclasses.asdict(r) | {"cold_start_s": r.cold_start_s} for r in results]
            }
            write_report(output, render_report(results, args, meta), raw, args, meta)
            failed |= any(r.error or r.reply_ok is False for r in results)
        if "batching" in args.scenarios:
            batching = bench_batching(models[reference_models.BATCHING_MODEL], args, scratch)
            write_report(
                batching_output,
                render_batching_report(batching, args, meta),
                {"batching": dataclasses.asdict(batching)},
                args,
                meta,
            )
            failed |= bool(batching.error) or not all(batching.reply_ok.values())
            failed |= batching.baseline is not None and bool(
                batching.baseline.error or batching.baseline.reply_ok is False
            )
        if "sizes" in args.scenarios:
            sizes = bench_sizes(models[args.sizes_model], args, scratch)
            write_report(
                sizes_output,
                render_sizes_report(sizes, args, meta),
                {"sizes": dataclasses.asdict(sizes)},
                args,
                meta,
            )
            failed |= bool(sizes.error) or not all(sizes.reply_ok.values())
    return 1 if failed else 0


def serving_specs(
    models: dict[str, ReferenceModel], args: argparse.Namespace, scratch: Path
) -> list[ServerSpec]:
    """The serving scenario's servers, model by model; each aiaas one gets a fresh home."""
    specs = []
    for name in args.models:
        for server in args.servers:
            if server == "baseline":
                specs.append(baseline_spec(models[name]))
            else:
                home = scratch / f"{server}-home-{name}"
                shutil.rmtree(home, ignore_errors=True)
                prepare_aiaas_home(home, models[name])
                specs.append(aiaas_spec(models[name], home, in_process=server == "aiaas-inprocess"))
    return specs


def write_report(
    output: Path, report: str, raw: dict[str, Any], args: argparse.Namespace, meta: dict[str, str]
) -> None:
    """Write the markdown report and its raw figures (``.json`` beside it), and print it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    everything = {"meta": meta, "args": {k: str(v) for k, v in vars(args).items()}, **raw}
    output.with_suffix(".json").write_text(json.dumps(everything, indent=1) + "\n")
    print("\n" + report)
    print(f"report written to {output} (raw: {output.with_suffix('.json').name})", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
