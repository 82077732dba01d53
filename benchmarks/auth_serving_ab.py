"""Serving throughput with authentication on against off: the same server, interleaved runs.

Issue 11 asks that authentication on the inference server cost at most 5% of its throughput
(on ÷ off ≥ 0.95). This script:

1. builds the ``tabular`` reference model (``reference_models.py``) and registers and deploys
   it in a fresh home, with an admin key written to ``<home>/admin.key`` (registered by the
   server at its start, as an operator's chosen key is);
2. runs ``python -m aiaas.serving`` with ``AIAAS_AUTH=off`` then ``=on``, and again,
   ``--rounds`` times, a fresh process each time, with the load generator of ``serving.py``
   (single-row V2 requests, closed loop), which sends the key in both: the requests are the
   same bytes, and only whether the server checks the key differs;
3. checks that a request without the key is refused (401) in each "on" run, so the key
   check really ran; records the load average before each run;
4. writes a markdown report and its JSON to ``benchmarks/results/``.

Examples:
    .venv/bin/python benchmarks/auth_serving_ab.py                   # 3 rounds, -d 8 -w 2, c=32
    .venv/bin/python benchmarks/auth_serving_ab.py --quick           # 2 rounds of 3 s
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
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import reference_models

import serving

HERE = Path(__file__).resolve().parent


def refused_without_key(url: str, body: bytes) -> bool:
    """Whether the server answers 401 to the benchmark request sent without a key."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401


def main(argv: list[str] | None = None) -> int:
    from aiaas.security import generate_key, write_key_file

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs (default 3)")
    parser.add_argument("-d", "--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("-w", "--warmup", type=float, default=2.0, help="warm-up seconds per load run")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    parser.add_argument(
        "--output", type=Path, help="report path (default: results/serving-<date>-auth-ab.md)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 3.0, 1.0
    date = datetime.date.today().isoformat()
    output = args.output or HERE / "results" / f"serving-{date}-auth-ab{'-quick' if args.quick else ''}.md"
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aiaas-auth-ab-") as tmp:
        scratch = Path(tmp)
        model = reference_models.build(scratch / "models", ("tabular",))["tabular"]
        home = scratch / "home"
        serving.prepare_aiaas_home(home, model)
        key = generate_key().key
        write_key_file(home / "admin.key", key)
        base = serving.aiaas_spec(model, home)
        payload = scratch / "payload.json"
        payload.write_bytes(base.body)
        for round_ in range(1, args.rounds + 1):
            for auth in (False, True):
                env = {**base.env, "AIAAS_AUTH": "on" if auth else "off"}
                spec = serving.ServerSpec(**{**base.__dict__, "env": env})
                # The same requests either way, the key included (read by serving.post, the
                # start probe, and load.py): what differs is only whether the server checks it.
                os.environ["BENCH_AUTHORIZATION"] = f"Bearer {key}"
                proc, port, _, _, _ = serving.start(spec, scratch / "server.log", 120)
                try:
                    time.sleep(serving._SETTLE_S)
                    checked = refused_without_key(spec.url(port), base.body) if auth else None
                    for c in args.concurrency:
                        load = os.getloadavg()[0]
                        run = serving.run_load(
                            "aiohttp", spec.url(port), payload, c, args.duration, args.warmup
                        )
                        runs.append(
                            {
                                "round": round_,
                                "auth": "on" if auth else "off",
                                "c": c,
                                "rps": run.rps,
                                "p50_ms": run.p50_ms,
                                "p99_ms": run.p99_ms,
                                "errors": run.errors,
                                "requests": run.requests,
                                "refused_without_key": checked,
                                "loadavg_1m_before": load,
                            }
                        )
                        print(json.dumps(runs[-1]), flush=True)
                finally:
                    os.environ.pop("BENCH_AUTHORIZATION", None)
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
        f"# Serving with authentication on against off, {datetime.date.today().isoformat()}",
        "",
        f"`benchmarks/auth_serving_ab.py --rounds {args.rounds} -d {args.duration:g} -w {args.warmup:g}`: "
        "the `tabular` reference model in one aiaas inference server, single-row V2 requests, off and on "
        "interleaved, a fresh server process per run; every request carries the key in both (the same "
        "bytes: only the server's check differs), and with auth on a request without it was checked to "
        "be refused (401).",
        "",
        "| round | auth | c | req/s | p50 ms | p99 ms | errors | 401 without key | load avg (1 min) before |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        refused = "" if r["refused_without_key"] is None else str(r["refused_without_key"]).lower()
        lines.append(
            f"| {r['round']} | {r['auth']} | {r['c']} | {r['rps']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['errors']} | {refused} | {r['loadavg_1m_before']:.2f} |"
        )
    lines.append("")
    for c in args.concurrency:
        on = [r["rps"] for r in runs if r["c"] == c and r["auth"] == "on"]
        off = [r["rps"] for r in runs if r["c"] == c and r["auth"] == "off"]
        if on and off:
            pairs = [a / b for a, b in zip(on, off, strict=True)]
            lines.append(
                f"c={c}: on ÷ off, mean req/s {statistics.mean(on):,.0f} ÷ {statistics.mean(off):,.0f} = "
                f"{statistics.mean(on) / statistics.mean(off):.3f}x; per round "
                + ", ".join(f"{p:.3f}x" for p in pairs)
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
