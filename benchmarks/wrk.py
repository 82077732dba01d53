"""The same measurement as ``load.py``, driven by ``wrk`` (C, one thread).

On a small machine the load generator shares the cores with the server, and the Python
generator needs about a core of its own at 32 connections, which caps fast servers. ``wrk``
costs much less, so its figures sit closer to the server's own limit. A separate ``wrk``
run of ``-w`` seconds warms the server before the measured one, as in the peer anchors.
Prints one JSON line in ``load.py``'s shape.

    python benchmarks/wrk.py URL PAYLOAD.json -c 32 -d 10 -w 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["main"]

_HERE = Path(__file__).resolve().parent
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _run_wrk(url: str, payload: Path, concurrency: int, seconds: float) -> str:
    env = dict(os.environ, WRK_BODY_FILE=str(payload.resolve()))
    cmd = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "30s",
        "-s",
        str(_HERE / "post.lua"),
        url,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout


def _find(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.M)
    return match.group(1) if match else None


def _to_ms(value: str | None, output: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", value or "")
    if not match:
        raise SystemExit(f"cannot parse latency {value!r} in wrk output:\n{output}")
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)], 3)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run the warm-up and the measured ``wrk`` runs, print JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("payload", type=Path, help="file whose bytes are POSTed as application/json")
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="connections (default 1)")
    parser.add_argument("-d", "--duration", type=float, default=20.0, help="measured seconds (default 20)")
    parser.add_argument("-w", "--warmup", type=float, default=5.0, help="warm-up run, s (default 5)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)")
    if args.warmup > 0:
        _run_wrk(args.url, args.payload, args.concurrency, args.warmup)
    out = _run_wrk(args.url, args.payload, args.concurrency, args.duration)
    total = int(_find(r"(\d+) requests in", out) or 0)
    non_2xx = int(_find(r"Non-2xx or 3xx responses: (\d+)", out) or 0)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = non_2xx + (sum(int(n) for n in sockets.groups()) if sockets else 0)
    # wrk's own Requests/sec counts failed replies too; count only the good ones, as load.py does.
    elapsed_s = _to_ms(_find(r"requests in ([\d.]+(?:us|ms|s|m)),", out), out) / 1000
    print(
        json.dumps(
            {
                "generator": "wrk",
                "url": args.url,
                "concurrency": args.concurrency,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "requests": total - non_2xx,
                "errors": errors,
                "rps": round((total - non_2xx) / elapsed_s, 2),
                "p50_ms": _to_ms(_find(r"^\s+50%\s+(\S+)", out), out),
                "p90_ms": _to_ms(_find(r"^\s+90%\s+(\S+)", out), out),
                "p99_ms": _to_ms(_find(r"^\s+99%\s+(\S+)", out), out),
                "mean_ms": _to_ms(_find(r"^\s+Latency\s+(\S+)", out), out),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
