"""A real platform training job against a plain PyTorch loop: same model, data and thread count.

``benchmarks/training.py`` times the training engine (``train()``) in one process. This script
times what a user gets: a job submitted over HTTP to a running control plane, queued, run by
the scheduler in a worker process (one CPU slot, so one thread), reporting every epoch's
metrics and log lines into the database and a checkpoint into the artifact store, and
registering the ONNX result. The peer is ``plain_train.py``, what a user writes without a
platform (read the same CSV, train the same MLP with one thread, no checkpoints, no export),
run as its own process; the two alternate (plain, job, plain, job) so load hits both alike:

* epoch throughput: the job's training rows / the time between two consecutive epochs' metric
  rows in the database (training, validation, metrics, checkpoint and database writes), against
  the plain script's rows * epochs / its loop time;
* whole job: the plain process's wall time (start, imports, reading the CSV, the loop) against
  the job's, from its start to its registered version (the worker's start and imports, reading
  the dataset version, the loop, the ONNX export and the registration).

Example:
    .venv/bin/python benchmarks/training_job.py --rows 40000 --epochs 4 --repeats 2
"""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from aiaas.sdk import Client
from training import make_data

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _csv(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bytes:
    out = io.StringIO()
    np.savetxt(out, np.column_stack([x, y]), delimiter=",", fmt=["%.6g"] * x.shape[1] + ["%d"])
    header = ",".join([*(f"f{i}" for i in range(x.shape[1])), "label"])
    return (header + "\n" + out.getvalue()).encode()


def _start_control_plane(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_")}
    # Authentication off: the load generators send no key (the auth on/off A/B is its own row).
    env["AIAAS_AUTH"] = "off"
    env.update(AIAAS_HOME=str(home), AIAAS_TRAINING_SLOTS="1")
    log = (home / "api.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiaas.api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    with Client(f"http://127.0.0.1:{port}") as client:
        deadline = time.monotonic() + 120
        while True:
            try:
                client.health()
                return proc
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"control plane did not start; see {home / 'api.log'}") from None
                time.sleep(0.1)


def run_plain(csv_path: Path, args: argparse.Namespace, fraction: float) -> dict[str, float]:
    argv = [
        sys.executable,
        str(HERE / "plain_train.py"),
        str(csv_path),
        f"--hidden={args.hidden}",
        f"--epochs={args.epochs}",
        f"--batch-size={args.batch_size}",
        f"--validation-fraction={fraction}",
    ]
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    wall_s = time.perf_counter() - began
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "plain_samples_per_s": report["rows"] * report["epochs"] / report["loop_s"],
        "plain_s": wall_s,
        "plain_accuracy": report["accuracy"],
    }


def run_job(client: Client, spec: str, rows: int, epochs: int) -> dict[str, float]:
    job = client.wait_for_job(client.submit_job(spec).id, timeout=3600, poll_s=0.5)
    if job.status != "succeeded":
        raise RuntimeError(f"job {job.id} {job.status}: {job.error}")
    stamps = [m.created_at.timestamp() for m in client.job_metrics(job.id)]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert job.started_at is not None and job.finished_at is not None
    whole_s = (job.finished_at - job.started_at).total_seconds()
    version = client.get_version(job.register_as, job.result_version or 0)
    return {
        "epoch_samples_per_s": rows / statistics.median(gaps),
        "job_samples_per_s": rows * epochs / whole_s,
        "job_s": whole_s,
        "accuracy": float(version.metrics["accuracy"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs (plain, job)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the epoch figure needs two epochs)")
    load_start = psutil.getloadavg()[0]
    data = make_data(args.rows, args.features)
    spec = (
        "dataset: bench\n"
        f"model: {{family: mlp, hidden_sizes: [{args.hidden}, {args.hidden}]}}\n"
        "optimizer: {name: adam, lr: 0.001}\n"
        f"epochs: {args.epochs}\nbatch_size: {args.batch_size}\nseed: 0\nregister_as: bench-mlp\n"
    )
    pairs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="aiaas-bench-job-") as tmp:
        home, port = Path(tmp), _free_port()
        api = _start_control_plane(home, port)
        try:
            with Client(f"http://127.0.0.1:{port}", timeout=600) as client:
                x = np.concatenate([data.x_train, data.x_val])
                y = np.concatenate([data.y_train, data.y_val])
                fraction = len(data.y_val) / len(y)
                version = client.create_dataset(
                    "bench", _csv(x, y), filename="bench.csv", target="label", validation_fraction=fraction
                )
                train_rows = int(version.split.train_rows)
                csv_path = home / "bench.csv"
                csv_path.write_bytes(_csv(x, y))
                for _ in range(args.repeats):
                    plain = run_plain(csv_path, args, fraction)
                    job = run_job(client, spec, train_rows, args.epochs)
                    pair = {**plain, **job}
                    pairs.append(pair)
                    print(json.dumps({k: round(v, 3) for k, v in pair.items()}), flush=True)
        finally:
            api.terminate()
            api.wait(timeout=60)
    report = _report(pairs, args, load_start, psutil.getloadavg()[0])
    output = args.output or HERE / "results" / f"training-job-{datetime.date.today().isoformat()}.md"
    output.write_text(report)
    output.with_suffix(".json").write_text(json.dumps({"pairs": pairs, "args": vars(args)}, default=str))
    print(report)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _report(
    pairs: list[dict[str, float]], args: argparse.Namespace, load_start: float, load_end: float
) -> str:
    epoch_ratio = statistics.median(p["epoch_samples_per_s"] / p["plain_samples_per_s"] for p in pairs)
    whole_ratio = statistics.median(p["plain_s"] / p["job_s"] for p in pairs)
    lines = [
        f"# Training: a platform job against a plain PyTorch script, {datetime.date.today().isoformat()}",
        "",
        f"MLP {args.features} → {args.hidden} → {args.hidden} → 10, Adam, batch {args.batch_size}, "
        f"{args.epochs} epochs over {args.rows:,} synthetic rows; one thread each (the job holds one "
        f"CPU slot). Load average (1 min) {load_start:.1f} at the start, {load_end:.1f} at the end.",
        "",
        "| pair | plain loop samples/s | job epoch samples/s | ratio | plain process s | job s "
        "| ratio (plain s / job s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, p in enumerate(pairs, 1):
        plain = p["plain_samples_per_s"]
        lines.append(
            f"| {i} | {plain:,.0f} | {p['epoch_samples_per_s']:,.0f} "
            f"| {p['epoch_samples_per_s'] / plain:.3f} "
            f"| {p['plain_s']:.1f} | {p['job_s']:.1f} | {p['plain_s'] / p['job_s']:.3f} |"
        )
    lines += [
        "",
        f"Median ratios: epoch throughput **{epoch_ratio:.3f}** (overhead {1 - epoch_ratio:.1%}), "
        f"whole job **{whole_ratio:.3f}** (overhead {1 - whole_ratio:.1%}). The job's whole time also "
        "holds what the plain script does not do: evaluation on the validation split with every "
        "metric, a checkpoint per epoch, the ONNX export with its check, and the registration.",
        "",
        f"Command: `.venv/bin/python benchmarks/training_job.py --rows {args.rows} --epochs {args.epochs} "
        f"--repeats {args.repeats}`.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
