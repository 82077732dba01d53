"""Serving throughput with per-request outlier scores on against off: the same server, interleaved runs.

Outlier scores are computed in the prediction log's writer thread, off the request path; this
script measures what they cost the inference server anyway (the thread shares the process's
GIL and cores):

1. builds the ``tabular`` reference model (``reference_models.py``, 30 features), registers and
   deploys it in a fresh home with a drift reference from 2,000 rows (its outlier sample), as
   ``drift_serving_ab.py`` does; the deployment's log keeps up to ``--log-rows-per-s`` requests
   a second in both arms (the default setting is 100);
2. sets the deployment's ``outlier_scores`` off then on, and again, ``--rounds`` times, each time
   a fresh ``python -m aiaas.serving`` process and the load generator of ``serving.py``
   (single-row V2 requests, closed loop) at each concurrency;
3. after each run reads ``aiaas_prediction_log_scored`` from ``/metrics`` (requests really
   scored; 0 when off) and the server's CPU per request; records the load average before each run;
4. writes a markdown report and its JSON to ``benchmarks/results/``.

Examples:
    .venv/bin/python benchmarks/outlier_serving_ab.py                       # 3 rounds, -d 8 -w 2, c=32
    .venv/bin/python benchmarks/outlier_serving_ab.py --log-rows-per-s 5000  # score far more rows
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import reference_models
from drift_serving_ab import counter, prepare

import serving

HERE = Path(__file__).resolve().parent


def set_scores(home: Path, name: str, on: bool, rows_per_s: float) -> None:
    """Turn the deployment's outlier scores on or off, its log keeping ``rows_per_s`` a second."""
    from aiaas.deployments import DeploymentService
    from aiaas.registry import Registry
    from aiaas.store import Database, open_artifact_store

    db = Database(f"sqlite:///{home / 'aiaas.db'}")
    try:
        service = DeploymentService(Registry(db, open_artifact_store(str(home / "artifacts"))))
        service.update(name, outlier_scores=on, prediction_log={"max_rows_per_s": rows_per_s})
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs (default 3)")
    parser.add_argument("-d", "--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("-w", "--warmup", type=float, default=2.0, help="warm-up seconds per load run")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--log-rows-per-s", type=float, default=100.0, help="the log's cap in both arms")
    parser.add_argument(
        "--output", type=Path, help="report path (default: results/serving-<date>-outlier-ab.md)"
    )
    args = parser.parse_args(argv)
    date = datetime.date.today().isoformat()
    output = args.output or HERE / "results" / f"serving-{date}-outlier-ab.md"
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aiaas-outlier-ab-") as tmp:
        scratch = Path(tmp)
        model = reference_models.build(scratch / "models", ("tabular",))["tabular"]
        home = scratch / "home"
        prepare(home, model)
        base = serving.aiaas_spec(model, home)
        payload = scratch / "payload.json"
        payload.write_bytes(base.body)
        for round_ in range(1, args.rounds + 1):
            for scoring in (False, True):
                set_scores(home, model.name, scoring, args.log_rows_per_s)
                proc, port, _, _, _ = serving.start(base, scratch / "server.log", 120)
                try:
                    time.sleep(serving._SETTLE_S)
                    for c in args.concurrency:
                        load = os.getloadavg()[0]
                        cpu, served = serving.cpu_seconds(proc.pid), counter(port, "aiaas_inference_requests")
                        run = serving.run_load(
                            "aiohttp", base.url(port), payload, c, args.duration, args.warmup
                        )
                        time.sleep(2.5)  # one flush and more: what was queued is written (and scored)
                        cpu_ms = (serving.cpu_seconds(proc.pid) - cpu) * 1e3
                        per_request = cpu_ms / max(counter(port, "aiaas_inference_requests") - served, 1)
                        runs.append(
                            {
                                "round": round_,
                                "outlier_scores": "on" if scoring else "off",
                                "c": c,
                                "rps": run.rps,
                                "p50_ms": run.p50_ms,
                                "p99_ms": run.p99_ms,
                                "errors": run.errors,
                                "logged_rows": counter(port, "aiaas_prediction_log_rows"),
                                "scored_rows": counter(port, "aiaas_prediction_log_scored"),
                                "server_cpu_ms_per_request": per_request,
                                "loadavg_1m_before": load,
                            }
                        )
                        print(json.dumps(runs[-1]), flush=True)
                finally:
                    serving.stop(proc)
                time.sleep(serving._SETTLE_S)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(
        json.dumps({"args": vars(args) | {"output": str(output)}, "runs": runs}, indent=1, default=str) + "\n"
    )
    output.write_text(render(runs, args))
    print(output.read_text())
    return 0


def render(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"# Serving with outlier scores on against off, {datetime.date.today().isoformat()}",
        "",
        f"`benchmarks/outlier_serving_ab.py --rounds {args.rounds} -d {args.duration:g} -w {args.warmup:g} "
        f"--log-rows-per-s {args.log_rows_per_s:g}`: the `tabular` reference model (30 features) in one "
        "aiaas inference server, single-row V2 requests, off and on interleaved, a fresh server process "
        "per run. `scored` is `aiaas_prediction_log_scored` after the run (0 when off); the first "
        'requests of an "on" run are logged unscored while the forest is fitted.',
        "",
        "| round | outlier scores | c | req/s | p50 ms | p99 ms | errors | logged | scored "
        "| server CPU ms/request | load avg (1 min) before |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['round']} | {r['outlier_scores']} | {r['c']} | {r['rps']:,.0f} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['errors']} | {r['logged_rows']:,.0f} | {r['scored_rows']:,.0f} | "
            f"{r['server_cpu_ms_per_request']:.3f} | {r['loadavg_1m_before']:.2f} |"
        )
    lines.append("")
    for c in args.concurrency:
        on = [r for r in runs if r["c"] == c and r["outlier_scores"] == "on"]
        off = [r for r in runs if r["c"] == c and r["outlier_scores"] == "off"]
        if on and off:
            pairs = [a["rps"] / b["rps"] for a, b in zip(on, off, strict=True)]
            mean_on, mean_off = statistics.mean(r["rps"] for r in on), statistics.mean(r["rps"] for r in off)
            cpu_on = statistics.median(r["server_cpu_ms_per_request"] for r in on)
            cpu_off = statistics.median(r["server_cpu_ms_per_request"] for r in off)
            lines.append(
                f"c={c}: on ÷ off, mean req/s {mean_on:,.0f} ÷ {mean_off:,.0f} = {mean_on / mean_off:.3f}x; "
                "per round " + ", ".join(f"{p:.3f}x" for p in pairs)
            )
            lines.append(
                f"c={c}: server CPU per request, on ÷ off, medians {cpu_on:.3f} ÷ {cpu_off:.3f} ms "
                f"= {cpu_on / cpu_off:.3f}x"
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
