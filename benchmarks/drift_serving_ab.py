"""Serving throughput with drift counting on against off: the same server, interleaved runs.

Issue 12 asks that observing a deployment cost little of its throughput. This script measures
what drift counting (:mod:`aiaas.serving.drift_counter`) costs the inference server at c=32:

1. builds the ``tabular`` reference model (``reference_models.py``, 30 features) and registers
   and deploys it in a fresh home, with a drift reference from 2,000 rows around its request row
   (so every request is counted from the first one);
2. runs ``python -m aiaas.serving`` with ``AIAAS_DRIFT_COUNTING=false`` then ``=true``, and again,
   ``--rounds`` times (off, on, off, on...), each time a fresh process, the load generator of
   ``serving.py`` (single-row V2 requests, closed loop) at each concurrency;
3. after each "on" run, reads ``aiaas_drift_counted_rows`` from the server's ``/metrics`` to show
   the requests were really counted; records the load average before each run;
4. writes a markdown report and its JSON to ``benchmarks/results/``.

Examples:
    .venv/bin/python benchmarks/drift_serving_ab.py                  # 3 rounds, -d 8 -w 2, c=32
    .venv/bin/python benchmarks/drift_serving_ab.py --quick          # 2 rounds of 3 s
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
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import reference_models
from prometheus_client.parser import text_string_to_metric_families

import serving

HERE = Path(__file__).resolve().parent


def prepare(home: Path, model: reference_models.ReferenceModel) -> None:
    """Register and deploy ``model``, and store its drift reference."""
    from aiaas.registry import Registry, record_reference
    from aiaas.store import Database, open_artifact_store

    serving.prepare_aiaas_home(home, model)
    db = Database(f"sqlite:///{home / 'aiaas.db'}")
    try:
        registry = Registry(db, open_artifact_store(str(home / "artifacts")))
        row = np.asarray(model.row, dtype=np.float32)
        rows = row + np.random.default_rng(0).normal(size=(2000, len(row))).astype(np.float32)
        names = [f"f{j:02d}" for j in range(len(row))]
        table = {n: rows[:, j] for j, n in enumerate(names)}
        record_reference(registry, model.name, 1, table, names, {"kind": "dataset", "dataset": "benchmark"})
    finally:
        db.dispose()


def micro(requests: int = 3000, repeats: int = 5) -> dict[str, float]:
    """The counting work alone, in this process: the hot path's ``record`` and the thread's
    ``flush`` (block, count, database write) per single-row request of the tabular model's width."""
    from sklearn.linear_model import LogisticRegression

    from aiaas.formats import Signature, package_model
    from aiaas.registry import ReferenceStore, Registry, record_reference
    from aiaas.serving.drift_counter import DriftCounter
    from aiaas.store.drift import CountStore
    from aiaas.store import Database, open_artifact_store

    with tempfile.TemporaryDirectory(prefix="aiaas-drift-micro-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'aiaas.db'}")
        db.upgrade()
        registry = Registry(db, open_artifact_store(str(Path(tmp) / "artifacts")))
        x = np.random.default_rng(0).normal(size=(requests, 30)).astype(np.float32)
        version = registry.register_version(
            "m", package_model(LogisticRegression().fit(x, x[:, 0] > 0), x[:4])
        )
        names = [f"f{j:02d}" for j in range(30)]
        record_reference(
            registry, "m", 1, {n: x[:, j] for j, n in enumerate(names)}, names, {"kind": "dataset"}
        )
        signature = Signature.from_dict(version.signature)
        drift = DriftCounter(ReferenceStore(db), CountStore(db), max_queued=requests)
        rows = [({"X": x[i : i + 1]}, {"label": np.array([x[i, 0] > 0])}) for i in range(requests)]
        record_ns, flush_us = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            for inputs, outputs in rows:
                drift.record("d", "m", 1, signature, inputs, outputs)
            record_ns.append((time.perf_counter() - t) / requests * 1e9)
            t = time.process_time()
            drift.flush()
            flush_us.append((time.process_time() - t) / requests * 1e6)
        db.dispose()
    return {
        "requests_per_flush": requests,
        "record_ns_per_request": statistics.median(record_ns),
        "flush_cpu_us_per_request": statistics.median(flush_us),
    }


def counter(port: int, name: str) -> float:
    """The sum of a counter's samples on the server's /metrics (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs (default 3)")
    parser.add_argument("-d", "--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("-w", "--warmup", type=float, default=2.0, help="warm-up seconds per load run")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    parser.add_argument(
        "--output", type=Path, help="report path (default: results/serving-<date>-drift-ab.md)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 3.0, 1.0
    date = datetime.date.today().isoformat()
    output = args.output or HERE / "results" / f"serving-{date}-drift-ab{'-quick' if args.quick else ''}.md"
    runs: list[dict[str, Any]] = []
    work = micro()
    print(json.dumps(work), flush=True)
    with tempfile.TemporaryDirectory(prefix="aiaas-drift-ab-") as tmp:
        scratch = Path(tmp)
        model = reference_models.build(scratch / "models", ("tabular",))["tabular"]
        home = scratch / "home"
        prepare(home, model)
        base = serving.aiaas_spec(model, home)
        payload = scratch / "payload.json"
        payload.write_bytes(base.body)
        for round_ in range(1, args.rounds + 1):
            for counting in (False, True):
                env = {**base.env, "AIAAS_DRIFT_COUNTING": str(counting).lower()}
                spec = serving.ServerSpec(**{**base.__dict__, "env": env})
                proc, port, _, _, _ = serving.start(spec, scratch / "server.log", 120)
                try:
                    time.sleep(serving._SETTLE_S)
                    for c in args.concurrency:
                        load = os.getloadavg()[0]
                        cpu, served = serving.cpu_seconds(proc.pid), counter(port, "aiaas_inference_requests")
                        run = serving.run_load(
                            "aiohttp", spec.url(port), payload, c, args.duration, args.warmup
                        )
                        time.sleep(2.5)  # one flush and more: what was queued is counted
                        counted = counter(port, "aiaas_drift_counted_rows")
                        # Server CPU per request (warm-up included, counting of the tail too):
                        # much less swayed than req/s by other work on a shared machine.
                        cpu_ms = (serving.cpu_seconds(proc.pid) - cpu) * 1e3
                        per_request = cpu_ms / max(counter(port, "aiaas_inference_requests") - served, 1)
                        runs.append(
                            {
                                "round": round_,
                                "drift": "on" if counting else "off",
                                "c": c,
                                "rps": run.rps,
                                "p50_ms": run.p50_ms,
                                "p99_ms": run.p99_ms,
                                "errors": run.errors,
                                "requests": run.requests,
                                "counted_rows": counted,
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
        json.dumps(
            {"args": vars(args) | {"output": str(output)}, "micro": work, "runs": runs},
            indent=1,
            default=str,
        )
        + "\n"
    )
    output.write_text(render(runs, work, args))
    print(output.read_text())
    return 0


def render(runs: list[dict[str, Any]], work: dict[str, float], args: argparse.Namespace) -> str:
    lines = [
        f"# Serving with drift counting on against off, {datetime.date.today().isoformat()}",
        "",
        f"`benchmarks/drift_serving_ab.py --rounds {args.rounds} -d {args.duration:g} -w {args.warmup:g}`: "
        "the `tabular` reference model (30 features) in one aiaas inference server, single-row V2 "
        "requests, off and on interleaved, a fresh server process per run. `counted` is "
        "`aiaas_drift_counted_rows` after the run (0 when off).",
        "",
        "| round | drift | c | req/s | p50 ms | p99 ms | errors | counted | server CPU ms/request "
        "| load avg (1 min) before |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['round']} | {r['drift']} | {r['c']} | {r['rps']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['errors']} | {r['counted_rows']:,.0f} | {r['server_cpu_ms_per_request']:.3f} | "
            f"{r['loadavg_1m_before']:.2f} |"
        )
    lines.append("")
    for c in args.concurrency:
        on = [r["rps"] for r in runs if r["c"] == c and r["drift"] == "on"]
        off = [r["rps"] for r in runs if r["c"] == c and r["drift"] == "off"]
        if on and off:
            pairs = [a / b for a, b in zip(on, off, strict=True)]
            cpu_on = [r["server_cpu_ms_per_request"] for r in runs if r["c"] == c and r["drift"] == "on"]
            cpu_off = [r["server_cpu_ms_per_request"] for r in runs if r["c"] == c and r["drift"] == "off"]
            median_on, median_off = statistics.median(cpu_on), statistics.median(cpu_off)
            lines.append(
                f"c={c}: server CPU per request, on ÷ off, medians {median_on:.3f} ÷ {median_off:.3f} ms "
                f"= {median_on / median_off:.3f}x"
            )
            lines.append(
                f"c={c}: on ÷ off, mean req/s {statistics.mean(on):,.0f} ÷ {statistics.mean(off):,.0f} = "
                f"{statistics.mean(on) / statistics.mean(off):.3f}x; per round "
                + ", ".join(f"{p:.3f}x" for p in pairs)
            )
    per_flush, record_ns = work["requests_per_flush"], work["record_ns_per_request"]
    flush_us = work["flush_cpu_us_per_request"]
    lines += [
        "",
        f"The counting work alone, in-process ({per_flush:,.0f} single-row requests of 30 features per "
        f"flush, medians): `record` on the event loop {record_ns:.0f} ns per request; the thread's block "
        f"count and database write {flush_us:.1f} µs of CPU per request.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
