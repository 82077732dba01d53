"""On/off A/B runs of one inference server: the loop the ``*_serving_ab.py`` scripts share.

Each of those scripts asks what one feature (authentication, drift counting, outlier scores)
costs the inference server. A difference of a few percent is below a shared machine's noise
between two separate runs, so they all measure the same way, written once here:

- the same deployment of the ``tabular`` reference model (``reference_models.py``) in one home;
- the feature off then on, ``--rounds`` times, interleaved, a fresh ``python -m aiaas.serving``
  process per run (an arm says how its server differs: environment and a hook run before the
  start), so a slow spell of the machine falls on both arms alike;
- per run and concurrency the load generator of ``serving.py`` (single-row V2 requests, closed
  loop), the load average before it, and the server's CPU per request (read from
  ``/proc/<pid>/stat`` and ``aiaas_inference_requests``): much less swayed than req/s by other
  work on the machine;
- a markdown report and its JSON in ``benchmarks/results/``, ratios on ÷ off per round and overall.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import reference_models
from prometheus_client.parser import text_string_to_metric_families

import serving

HERE = Path(__file__).resolve().parent

#: A run's fields beside the common ones, from the server's port (``after_start``, ``after_load``).
Probe = Callable[[int], dict[str, Any]]


@dataclass
class Arm:
    """One side of the comparison: ``label`` ("off"/"on"), what its server gets in its
    environment, and hooks: ``before_start`` (e.g. change the deployment in the database),
    ``after_start`` and ``after_load`` (fields of the run read from the server)."""

    label: str
    env: dict[str, str] = field(default_factory=dict)
    before_start: Callable[[], None] | None = None
    after_start: Probe | None = None
    after_load: Probe | None = None


@dataclass
class Column:
    """A column of the report's table beside the common ones: its header, the run's field,
    and how to show it."""

    header: str
    key: str
    show: Callable[[Any], str] = str


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """The options every A/B script takes (``name`` is its report's tag, e.g. ``auth``)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="off/on pairs (default 3)")
    p.add_argument("-d", "--duration", type=float, default=8.0, help="seconds per load run")
    p.add_argument("-w", "--warmup", type=float, default=2.0, help="warm-up seconds per load run")
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[32])
    p.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    p.add_argument("--output", type=Path, help=f"report path (default: results/serving-<date>-{name}-ab.md)")
    return p


def parse(p: argparse.ArgumentParser, name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``, apply ``--quick`` and fill in the default output path."""
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 3.0, 1.0
    if args.output is None:
        date = datetime.date.today().isoformat()
        args.output = HERE / "results" / f"serving-{date}-{name}-ab{'-quick' if args.quick else ''}.md"
    return args


def counter(port: int, name: str) -> float:
    """The sum of a counter's samples on the server's /metrics (0 when absent); the request
    carries ``BENCH_AUTHORIZATION`` when set, as the load generator's do."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if os.environ.get("BENCH_AUTHORIZATION"):
        request.add_header("Authorization", os.environ["BENCH_AUTHORIZATION"])
    with urllib.request.urlopen(request, timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return 0.0


def run(
    args: argparse.Namespace,
    prepare: Callable[[Path, reference_models.ReferenceModel], None],
    arms: Callable[[Path, reference_models.ReferenceModel], Sequence[Arm]],
    *,
    drain_s: float = 0.0,
) -> list[dict[str, Any]]:
    """Run the rounds: ``prepare(home, model)`` once (register and deploy), then each of
    ``arms(home, model)`` in turn per round. ``drain_s``: how long to wait after each load run
    before ``after_load`` and the CPU reading, so that work queued off the request path (a
    flush of the log, of the counts) is done and counted."""
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aiaas-ab-") as tmp:
        scratch = Path(tmp)
        model = reference_models.build(scratch / "models", ("tabular",))["tabular"]
        home = scratch / "home"
        prepare(home, model)
        base = serving.aiaas_spec(model, home)
        payload = scratch / "payload.json"
        payload.write_bytes(base.body)
        sides = arms(home, model)
        for round_ in range(1, args.rounds + 1):
            for arm in sides:
                if arm.before_start:
                    arm.before_start()
                spec = serving.ServerSpec(**{**base.__dict__, "env": {**base.env, **arm.env}})
                proc, port, _, _, _ = serving.start(spec, scratch / "server.log", 120)
                try:
                    time.sleep(serving._SETTLE_S)
                    started = arm.after_start(port) if arm.after_start else {}
                    for c in args.concurrency:
                        load = os.getloadavg()[0]
                        cpu, served = serving.cpu_seconds(proc.pid), counter(port, "aiaas_inference_requests")
                        result = serving.run_load(
                            "aiohttp", spec.url(port), payload, c, args.duration, args.warmup
                        )
                        time.sleep(drain_s)
                        cpu_ms = (serving.cpu_seconds(proc.pid) - cpu) * 1e3
                        requests = counter(port, "aiaas_inference_requests") - served
                        runs.append(
                            {
                                "round": round_,
                                "arm": arm.label,
                                "c": c,
                                "rps": result.rps,
                                "p50_ms": result.p50_ms,
                                "p99_ms": result.p99_ms,
                                "errors": result.errors,
                                "requests": result.requests,
                                "server_cpu_ms_per_request": cpu_ms / max(requests, 1),
                                "loadavg_1m_before": load,
                                **started,
                                **(arm.after_load(port) if arm.after_load else {}),
                            }
                        )
                        print(json.dumps(runs[-1]), flush=True)
                finally:
                    serving.stop(proc)
                time.sleep(serving._SETTLE_S)
    return runs


def report(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    *,
    title: str,
    command: str,
    setting: str,
    columns: Sequence[Column] = (),
    notes: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> str:
    """Write the markdown report to ``args.output`` and its JSON beside it (with ``extra``);
    return the markdown. ``setting`` heads the arm's column (e.g. ``auth``); ``notes`` are
    paragraphs after the table's ratios."""
    lines = [
        f"# Serving with {title} on against off, {datetime.date.today().isoformat()}",
        "",
        f"`{command} --rounds {args.rounds} -d {args.duration:g} -w {args.warmup:g}`: "
        + (notes[0] if notes else ""),
        "",
        f"| round | {setting} | c | req/s | p50 ms | p99 ms | errors | "
        + "".join(f"{col.header} | " for col in columns)
        + "server CPU ms/request | load avg (1 min) before |",
        "|---:|---|---:|---:|---:|---:|---:|" + "---:|" * len(columns) + "---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['round']} | {r['arm']} | {r['c']} | {r['rps']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['errors']} | "
            + "".join(f"{col.show(r.get(col.key))} | " for col in columns)
            + f"{r['server_cpu_ms_per_request']:.3f} | {r['loadavg_1m_before']:.2f} |"
        )
    lines.append("")
    for c in args.concurrency:
        on = [r for r in runs if r["c"] == c and r["arm"] == "on"]
        off = [r for r in runs if r["c"] == c and r["arm"] == "off"]
        if not (on and off):
            continue
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
    for note in notes[1:]:
        lines += ["", note]
    lines.append("")
    text = "\n".join(lines)
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"args": vars(args) | {"output": str(output)}, **(extra or {}), "runs": runs}
    output.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    output.write_text(text)
    print(text)
    return text
