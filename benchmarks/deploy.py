"""Deploy-to-first-prediction on a running aiaas, beside the baseline's launch-to-first-prediction.

Issue #4's cold-start target reads "deploy-to-first-prediction ≤ 1 s for both reference models;
idle replica RSS ≤ 150 MB". ``benchmarks/serving.py`` times a whole server process from launch
(for aiaas: its Python start, the database, then the replica); this script times what a user
waits for once the platform is up: the deployment is written (as the control plane writes it),
the running inference server notices it, starts the model's replica process, and the first
request is answered. Then the deployment is deleted and the next round starts cold again.

For scale, the hand-rolled FastAPI + ONNX Runtime baseline has no deployments: its figure is
the launch of a fresh process that loads the model, to its first 2xx reply.

Example:
    .venv/bin/python benchmarks/deploy.py --rounds 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import reference_models

from serving import _clean_env, aiaas_spec, baseline_spec, free_port, post, start, stop

HERE = Path(__file__).resolve().parent


def _replica_rss_mb(server_pid: int) -> list[float]:
    """RSS of the server's replica processes, MB."""
    out = []
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            if "serving/replica_process.py" in command or "aiaas.serving.replica_process" in command:
                out.append(child.memory_info().rss / 2**20)
        except psutil.Error:
            continue
    return out


def deploy_rounds(models: dict[str, Any], rounds: int, scratch: Path, timeout_s: float) -> dict[str, Any]:
    from aiaas.deployments import DeploymentService
    from aiaas.formats import package_model
    from aiaas.registry import Registry
    from aiaas.store import Database, open_artifact_store

    home = scratch / "aiaas-home"
    home.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{home / 'aiaas.db'}")
    db.upgrade()
    registry = Registry(db, open_artifact_store(str(home / "artifacts")))
    versions = {
        name: registry.register_version(
            name, package_model(m.onnx_path, np.asarray([m.row], dtype=np.float32))
        ).version
        for name, m in models.items()
    }
    service = DeploymentService(registry)
    # A server with nothing deployed, started before the clock runs.
    spec = aiaas_spec(next(iter(models.values())), home)
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in spec.argv]
    log = scratch / "aiaas-deploy.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=spec.cwd,
            env=_clean_env(AIAAS_HOME=str(home)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() signals the process group
        )
    results: dict[str, Any] = {}
    try:
        _wait_ready(port, timeout_s)
        for name, model in models.items():
            body = aiaas_spec(model, home).body
            url = f"http://127.0.0.1:{port}/v2/models/{name}/infer"
            times, rss = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                service.create(name, model=name, version=versions[name])
                while True:
                    try:
                        if post(url, body)[0] == 200:
                            break
                    except (OSError, urllib.error.URLError):
                        pass
                    if time.perf_counter() - t0 > timeout_s:
                        raise RuntimeError(f"{name}: no prediction {timeout_s}s after deploying")
                    time.sleep(0.005)
                times.append(time.perf_counter() - t0)
                time.sleep(1.0)  # idle: what a replica holds between requests
                rss.extend(_replica_rss_mb(proc.pid))
                service.delete(name)
                _wait_gone(url, body, timeout_s)
            results[name] = {
                "deploy_to_first_prediction_s": [round(t, 3) for t in times],
                "median_s": round(statistics.median(times), 3),
                "idle_replica_rss_mb": round(max(rss), 1) if rss else None,
            }
            print(f"aiaas {name}: deploy → first prediction {results[name]}", flush=True)
    finally:
        stop(proc)
        db.dispose()
    return results


def baseline_rounds(models: dict[str, Any], rounds: int, scratch: Path, timeout_s: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, model in models.items():
        spec = baseline_spec(model)
        times, rss = [], []
        for _ in range(rounds):
            proc, _port, seconds, _reply, _cpu = start(spec, scratch / "baseline.log", timeout_s)
            time.sleep(1.0)
            rss.append(psutil.Process(proc.pid).memory_info().rss / 2**20)
            stop(proc)
            times.append(seconds)
        results[name] = {
            "launch_to_first_prediction_s": [round(t, 3) for t in times],
            "median_s": round(statistics.median(times), 3),
            "idle_rss_mb": round(max(rss), 1),
        }
        print(f"baseline {name}: launch → first prediction {results[name]}", flush=True)
    return results


def _wait_ready(port: int, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            time.sleep(0.05)
    raise RuntimeError("the aiaas inference server did not start")


def _wait_gone(url: str, body: bytes, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            post(url, body)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} still answered {timeout_s}s after its deployment was deleted")


def render(aiaas: dict[str, Any], baseline: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"# Deploy to first prediction, {datetime.date.today().isoformat()}",
        "",
        f"Command: `.venv/bin/python benchmarks/deploy.py --rounds {args.rounds}`; load average at the "
        f"start: {args.load}.",
        "",
        "| model | aiaas deploy → first prediction, median s | rounds | idle replica RSS MB "
        "| baseline launch → first prediction, median s | baseline idle RSS MB |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name in aiaas:
        a, b = aiaas[name], baseline.get(name, {})
        rounds, rss = a["deploy_to_first_prediction_s"], a["idle_replica_rss_mb"]
        lines.append(
            f"| {name} | {a['median_s']:.3f} | {rounds} | {rss} "
            f"| {b.get('median_s', '-')} | {b.get('idle_rss_mb', '-')} |"
        )
    lines += [
        "",
        "aiaas: a deployment is written to the database of a running inference server (default "
        "settings: it polls every 0.25 s), which starts the model's replica process and answers; the "
        "baseline: a fresh process that loads its one model. Targets: ≤ 1 s and ≤ 150 MB.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="deployments timed per model (default 5)")
    parser.add_argument("--timeout-s", type=float, default=60.0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    args.load = ", ".join(f"{v:.2f}" for v in psutil.getloadavg())
    with tempfile.TemporaryDirectory(prefix="aiaas-deploy-") as tmp:
        scratch = Path(tmp)
        models = reference_models.build(scratch / "models", reference_models.PEER_MODELS)
        aiaas = deploy_rounds(models, args.rounds, scratch, args.timeout_s)
        baseline = baseline_rounds(models, args.rounds, scratch, args.timeout_s)
    report = render(aiaas, baseline, args)
    output = args.output or HERE / "results" / f"deploy-{datetime.date.today().isoformat()}.md"
    output.write_text(report)
    output.with_suffix(".json").write_text(json.dumps({"aiaas": aiaas, "baseline": baseline}, indent=2))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
