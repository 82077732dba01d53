"""Closed-loop HTTP load generator (aiohttp), the one the peer anchors were measured with.

Each of ``-c`` workers POSTs the payload, reads the whole reply and sends its next request
at once, so latency at high concurrency includes queueing in the server. Requests that
*start* during the warm-up are discarded; the measured window is the following ``-d``
seconds, and only requests that start and finish inside it count. Non-2xx replies and
transport errors count as errors. Prints one JSON line: rps, p50/p90/p99/mean ms, errors.

The measurement (percentile rule, what counts, the back-off after an error) is kept
identical to the peer harness's ``load.py`` so that figures compare with its anchors.

    python benchmarks/load.py URL PAYLOAD.json -c 32 -d 10 -w 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import aiohttp

__all__ = ["main", "percentile"]

_HEADERS = {"Content-Type": "application/json"}
# The auth on/off A/B (auth_serving_ab.py) passes the key this way: every request carries it.
if os.environ.get("BENCH_AUTHORIZATION"):
    _HEADERS["Authorization"] = os.environ["BENCH_AUTHORIZATION"]


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list; ``None`` when it is empty."""
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    t_measure: float,
    t_end: float,
    latencies: list[float],
    errors: list[float],
) -> None:
    while True:
        t0 = time.perf_counter()
        if t0 >= t_end:
            return
        try:
            async with session.post(url, data=body, headers=_HEADERS) as reply:
                await reply.read()
                ok = 200 <= reply.status < 300
        except Exception:
            ok = False
        t1 = time.perf_counter()
        if t0 >= t_measure and t1 <= t_end:
            (latencies if ok else errors).append(t1 - t0)
        if not ok:
            await asyncio.sleep(0.01)  # no hot loop against a dead server


async def _run(args: argparse.Namespace) -> dict[str, object]:
    body = Path(args.payload).read_bytes()
    latencies: list[float] = []
    errors: list[float] = []
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        t_measure, t_end = start + args.warmup, start + args.warmup + args.duration
        await asyncio.gather(
            *[
                _worker(session, args.url, body, t_measure, t_end, latencies, errors)
                for _ in range(args.concurrency)
            ]
        )
    latencies.sort()

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "generator": "aiohttp",
        "url": args.url,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "requests": len(latencies),
        "errors": len(errors),
        "rps": round(len(latencies) / args.duration, 2),
        "p50_ms": ms(percentile(latencies, 50)),
        "p90_ms": ms(percentile(latencies, 90)),
        "p99_ms": ms(percentile(latencies, 99)),
        "mean_ms": ms(sum(latencies) / len(latencies)) if latencies else None,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run one measurement and print its JSON line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("payload", help="file whose bytes are POSTed as application/json")
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="connections (default 1)")
    parser.add_argument("-d", "--duration", type=float, default=20.0, help="measured seconds (default 20)")
    parser.add_argument("-w", "--warmup", type=float, default=5.0, help="discarded seconds first (default 5)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s (default 30)")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("need -c >= 1, -d > 0 and -w >= 0")
    print(json.dumps(asyncio.run(_run(args))), flush=True)


if __name__ == "__main__":
    main()
