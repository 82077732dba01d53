"""Explanation latency per row: ``POST /v2/models/{name}/explain`` on a real platform.

Starts a control plane and an inference server (subprocesses, free ports, a temporary home),
trains two models on the platform on a 6-feature table (a ``linear`` regressor and an ``mlp``
classifier, so each version stores its background sample), deploys them, and times explain
requests of 1 and 32 rows over HTTP, one at a time after a warm-up (the first explanation pays
for the worker's start, shap's import and numba's compilation; it is reported apart).

Reported per model and request size: p50 and p95 of the request latency, the same per row, and
the median time in the explanation worker (``compute_ms``). The default ``max_evals`` (500) and
the 100-row background are used: one row costs ~50 000 model rows.

Examples::

    PYTHONPATH=src .venv/bin/python benchmarks/explain.py --quick   # results/explain-<date>.{md,json}
    PYTHONPATH=src .venv/bin/python benchmarks/explain.py --requests 50 --output /tmp/e.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' process helpers: the benchmark starts servers as they do

from tests._servers import free_port, spawn  # noqa: E402

from aiaas.sdk import Client  # noqa: E402

RESULTS = Path(__file__).parent / "results"
FEATURES = ["a", "b", "c", "d", "e", "f"]
SIZES = (1, 32)
SPECS = {
    "linear": "task: regression\nmodel: {family: linear}\nseed: 1\n",
    "mlp": "task: classification\nmodel: {family: mlp, hidden_sizes: [16]}\nepochs: 20\nseed: 3\n",
}


def _table(rows: int = 600) -> tuple[np.ndarray[Any, Any], bytes, bytes]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, len(FEATURES)))
    value = 3 * x[:, 2] - 2 * x[:, 0] + 0.5 * x[:, 4] + rng.normal(scale=0.05, size=rows)
    label = np.where(x[:, 3] > 0, "high", "low")

    def csv(target: Any) -> bytes:
        lines = [",".join([*FEATURES, "target"])]
        lines += [",".join([*(f"{v:.5f}" for v in row), str(t)]) for row, t in zip(x, target, strict=True)]
        return ("\n".join(lines) + "\n").encode()

    return x.astype(np.float32), csv([f"{v:.5f}" for v in value]), csv(label)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def measure(
    client: Client, inference_url: str, name: str, x: np.ndarray[Any, Any], requests: int
) -> dict[str, Any]:
    input_name = client.get_version(name, "latest").signature["inputs"][0]["name"]
    out: dict[str, Any] = {}
    with httpx.Client(base_url=inference_url, timeout=300) as http:

        def explain(rows: np.ndarray[Any, Any]) -> tuple[float, float]:
            tensor = {
                "name": input_name,
                "datatype": "FP32",
                "shape": list(rows.shape),
                "data": rows.ravel().tolist(),
            }
            started = time.perf_counter()
            r = http.post(f"/v2/models/{name}/explain", json={"inputs": [tensor]})
            elapsed = time.perf_counter() - started
            r.raise_for_status()
            return elapsed * 1000, float(r.json()["compute_ms"])

        out["first_request_ms"] = explain(x[:1])[0]
        for size in SIZES:
            explain(x[:size])  # warm-up at this size
            latencies, computes = [], []
            for i in range(requests):
                start = (i * size) % (len(x) - size)
                ms, compute_ms = explain(x[start : start + size])
                latencies.append(ms)
                computes.append(compute_ms)
            out[f"rows_{size}"] = {
                "requests": requests,
                "p50_ms": _percentile(latencies, 50),
                "p95_ms": _percentile(latencies, 95),
                "p50_ms_per_row": _percentile(latencies, 50) / size,
                "p95_ms_per_row": _percentile(latencies, 95) / size,
                "worker_p50_ms": _percentile(computes, 50),
            }
    return out


def write_report(result: dict[str, Any], output: Path) -> None:
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Explanation latency, {result['date']}",
        "",
        f"Machine: {result['machine']}; load average {result['load_start']:.2f} at the start, "
        f"{result['load_end']:.2f} at the end (other work on the machine shares its cores).",
        f"shap {result['shap']}, permutation explainer, max_evals {result['max_evals']}, "
        f"background {result['background_rows']} rows, 6 features; one request at a time over HTTP.",
        "",
        "| model | rows/request | requests | p50 ms | p95 ms | p50 ms/row | p95 ms/row | worker p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, figures in result["models"].items():
        for size in SIZES:
            f = figures[f"rows_{size}"]
            lines.append(
                f"| {model} | {size} | {f['requests']} | {f['p50_ms']:.1f} | {f['p95_ms']:.1f} | "
                f"{f['p50_ms_per_row']:.1f} | {f['p95_ms_per_row']:.1f} | {f['worker_p50_ms']:.1f} |"
            )
    lines += [
        "",
        "First explanation after the server started (worker spawn, shap import, numba compilation): "
        + ", ".join(f"{m} {f['first_request_ms']:.0f} ms" for m, f in result["models"].items())
        + " (the second model's first request finds the worker warm).",
        "",
    ]
    output.write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30, help="timed requests per model and size")
    parser.add_argument("--quick", action="store_true", help="10 requests per model and size")
    parser.add_argument("--output", type=Path, default=RESULTS / f"explain-{datetime.date.today()}.md")
    args = parser.parse_args()
    requests = 10 if args.quick else args.requests

    import shap

    from aiaas.explain import BACKGROUND_ROWS, DEFAULT_MAX_EVALS

    load_start = os.getloadavg()[0]
    x, regression_csv, classification_csv = _table()
    with tempfile.TemporaryDirectory(prefix="aiaas-explain-bench-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
        # Authentication off: the load generators send no key (the auth on/off A/B is its own row).
        env["AIAAS_AUTH"] = "off"
        env.update(
            AIAAS_HOME=str(home), AIAAS_DATABASE_URL=f"sqlite:///{home / 'aiaas.db'}", PYTHONUNBUFFERED="1"
        )
        inference_port = free_port()
        env["AIAAS_INFERENCE_PORT"] = str(inference_port)
        api_port = free_port()
        api = spawn(
            ["-m", "aiaas.api", "--port", str(api_port)],
            env=env,
            ready_url=f"http://127.0.0.1:{api_port}/api/v1/health",
            log=home / "api.log",
        )
        inference = spawn(
            ["-m", "aiaas.serving", "--port", str(inference_port)],
            env=env,
            ready_url=f"http://127.0.0.1:{inference_port}/v2/health/ready",
            log=home / "serve.log",
        )
        client = Client(api.url, inference_url=inference.url)
        models: dict[str, Any] = {}
        try:
            for family, csv in (("linear", regression_csv), ("mlp", classification_csv)):
                name = f"bench-{family}"
                client.create_dataset(name, csv, target="target")
                job = client.wait_for_job(
                    client.submit_job(f"dataset: {name}\nregister_as: {name}\n{SPECS[family]}").id,
                    timeout=600,
                )
                assert job.status == "succeeded", job.error
                client.deploy(name, model=name, version=job.result_version)
                client.wait_until_served(name, job.result_version)
                models[family] = measure(client, inference.url, name, x, requests)
                print(family, json.dumps(models[family]), file=sys.stderr)
        finally:
            client.close()
            inference.stop()
            api.stop()
    result = {
        "date": str(datetime.date.today()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "shap": shap.__version__,
        "max_evals": DEFAULT_MAX_EVALS,
        "background_rows": BACKGROUND_ROWS,
        "models": models,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_report(result, args.output)


if __name__ == "__main__":
    main()
