"""Training benchmark: samples/s of ``aiaas.training.train`` against a plain PyTorch loop.

Issue #3's claim: a platform job trains at most 10% slower than the loop a user would write
by hand, on the same model, data and thread count. One invocation measures both, in the same
process, alternating (plain, platform, plain, platform, ...) so that machine load hits both
alike; the figure is the median of the pairs' ratios.

* Data: a synthetic classification set (``sklearn.datasets.make_classification``, seeded),
  ``--rows`` training rows of ``--features`` float32 features, 10 classes, plus a validation
  split of ``--rows // 10``.
* Model: an MLP ``features → hidden → hidden → 10`` (ReLU), Adam, cross-entropy, the same
  ``--batch-size`` and ``--epochs``. The plain loop uses ``nn.Sequential`` on data
  standardised beforehand; the platform's MLP standardises inside the module (so its ONNX
  takes raw rows): the same layers plus one subtract-and-divide per batch.
* Plain loop, per epoch: ``torch.randperm`` shuffle, batches, zero_grad/forward/loss/
  backward/step, then validation accuracy, as a hand-written script would.
* Platform: ``train(spec, data, reporter)`` with a reporter that does what the orchestrator's
  does: each epoch's metrics serialised to JSON and appended to a file, each checkpoint's
  bytes written to a temp file, fsync'ed and renamed over the last one. Its time includes
  everything ``train`` does (validation metrics by scikit-learn's definitions, checkpoints
  with optimiser and RNG state, the final ONNX export and its check in ONNX Runtime).
* samples/s = training rows * epochs / wall time of the whole run.

Examples:
    .venv/bin/python benchmarks/training.py                  # default: 3 pairs, threads = 1
    .venv/bin/python benchmarks/training.py --threads 2 --repeats 5
    .venv/bin/python benchmarks/training.py --quick          # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aiaas.schemas import JobSpec
from aiaas.training import TrainingData, train

RESULTS = Path(__file__).parent / "results"


class FileReporter:
    """What the platform's reporter does per epoch, minus the database: JSON lines and an
    atomically replaced checkpoint file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log_path = folder / "metrics.jsonl"

    def log(self, message: str) -> None:
        with self.log_path.open("a") as f:
            f.write(json.dumps({"log": message}) + "\n")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        with self.log_path.open("a") as f:
            f.write(json.dumps({"epoch": epoch, **metrics}) + "\n")

    def checkpoint(self, epoch: int, state: bytes) -> None:
        tmp = self.folder / f"checkpoint-{epoch}.tmp"
        with tmp.open("wb") as f:
            f.write(state)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.folder / "checkpoint.bin")


def make_data(rows: int, features: int, seed: int = 0) -> TrainingData:
    from sklearn.datasets import make_classification

    val = max(1, rows // 10)
    x, y = make_classification(
        n_samples=rows + val,
        n_features=features,
        n_informative=features // 2,
        n_classes=10,
        n_clusters_per_class=1,
        random_state=seed,
    )
    x = (x * 3 + 5).astype(np.float32)  # raw units, not already standardised
    names = [f"f{i}" for i in range(features)]
    return TrainingData(x[:rows], y[:rows], x[rows:], y[rows:], names, "classification", list(range(10)))


def plain_loop(data: TrainingData, hidden: int, epochs: int, batch_size: int, lr: float, seed: int) -> float:
    """A hand-written loop; returns the final validation accuracy."""
    torch.manual_seed(seed)
    mean, std = data.x_train.mean(0), data.x_train.std(0) + 1e-12
    x = torch.from_numpy((data.x_train - mean) / std)
    y = torch.from_numpy(data.y_train)
    xv = torch.from_numpy((data.x_val - mean) / std)
    yv = torch.from_numpy(data.y_val)
    model = nn.Sequential(
        nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(xv).argmax(1) == yv).float().mean())
    return accuracy


def platform_run(data: TrainingData, spec: JobSpec, threads: int) -> tuple[float, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="aiaas-bench-train-") as folder:
        result = train(spec, data, FileReporter(Path(folder)), threads=threads)
    return result.metrics["accuracy"], {
        "epoch_samples_per_s": [h["samples_per_s"] for h in result.history],
        "epoch_s": [h["epoch_s"] for h in result.history],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs (plain, platform)")
    parser.add_argument("--target", type=float, default=0.10, help="largest acceptable overhead")
    parser.add_argument("--quick", action="store_true", help="small data, one pair: a smoke run")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.epochs = 5_000, 1, 2

    args.load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    data = make_data(args.rows, args.features)
    lr = 1e-3
    spec = JobSpec.parse(
        {
            "dataset": "synthetic",
            "model": {"family": "mlp", "hidden_sizes": [args.hidden, args.hidden]},
            "optimizer": {"name": "adam", "lr": lr},
            "epochs": args.epochs,
            "batch_size": args.batch_size,
        }
    )
    samples = args.rows * args.epochs
    # One untimed run of each first: imports, allocator and ONNX exporter warm-up.
    plain_loop(make_data(2_000, args.features), args.hidden, 1, args.batch_size, lr, 0)
    platform_run(make_data(2_000, args.features), spec.model_copy(update={"epochs": 1}), args.threads)

    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        began, cpu_began = time.perf_counter(), time.process_time()
        accuracy = plain_loop(data, args.hidden, args.epochs, args.batch_size, lr, repeat)
        plain_s, plain_cpu_s = time.perf_counter() - began, time.process_time() - cpu_began
        began, cpu_began = time.perf_counter(), time.process_time()
        p_accuracy, extra = platform_run(data, spec, args.threads)
        platform_s, platform_cpu_s = time.perf_counter() - began, time.process_time() - cpu_began
        runs.append(
            {
                "plain_s": plain_s,
                "platform_s": platform_s,
                "plain_cpu_s": plain_cpu_s,
                "platform_cpu_s": platform_cpu_s,
                "plain_samples_per_s": samples / plain_s,
                "platform_samples_per_s": samples / platform_s,
                "plain_accuracy": accuracy,
                "platform_accuracy": p_accuracy,
                **extra,
            }
        )
        print(
            f"pair {repeat + 1}: plain {samples / plain_s:,.0f} samples/s ({plain_s:.2f} s), "
            f"platform {samples / platform_s:,.0f} samples/s ({platform_s:.2f} s); "
            f"CPU s {plain_cpu_s:.2f} vs {platform_cpu_s:.2f}",
            flush=True,
        )

    plain = statistics.median(r["plain_samples_per_s"] for r in runs)
    plat = statistics.median(r["platform_samples_per_s"] for r in runs)
    # Each pair runs back to back, so the load of other processes hits both alike: the
    # median of the pairs' ratios is steadier than the ratio of the medians.
    ratio = statistics.median(r["platform_samples_per_s"] / r["plain_samples_per_s"] for r in runs)
    overhead = 1 - ratio
    cpu_ratio = statistics.median(r["plain_cpu_s"] / r["platform_cpu_s"] for r in runs)
    args.cpu_ratio = cpu_ratio
    report = _report(args, runs, plain, plat, ratio, overhead)
    output = args.output or RESULTS / f"training-{datetime.date.today().isoformat()}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    output.with_suffix(".json").write_text(
        json.dumps({"args": vars(args) | {"output": str(output)}, "runs": runs}, indent=2)
    )
    print(report)
    return 0 if overhead <= args.target else 1


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _report(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    plain: float,
    plat: float,
    ratio: float,
    overhead: float,
) -> str:
    verdict = "within" if overhead <= args.target else "**above**"
    lines = [
        f"# Training benchmark, {datetime.date.today().isoformat()}",
        "",
        f"aiaas (commit {_commit()}) `train()` against a plain PyTorch loop, same process, same run, "
        f"alternating: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__}, {args.threads} thread(s) for both.",
        "",
        f"MLP {args.features} → {args.hidden} → {args.hidden} → 10, Adam lr 1e-3, batch {args.batch_size}, "
        f"{args.epochs} epochs over {args.rows:,} synthetic rows (validation {args.rows // 10:,}); "
        f"{args.repeats} pair(s), medians.",
        "",
        f"Load average (1 min) at start {args.load_before:.1f}, at end {os.getloadavg()[0]:.1f}, on "
        f"{os.cpu_count()} CPUs: other processes shared the machine, so absolute figures are noisy; "
        "pairs run back to back, and their ratio is the figure to read.",
        "",
        "| run | plain samples/s | platform samples/s | ratio | CPU s plain | CPU s platform | CPU ratio |"
        " plain acc | platform acc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['plain_samples_per_s']:,.0f} | {r['platform_samples_per_s']:,.0f} | "
            f"{r['platform_samples_per_s'] / r['plain_samples_per_s']:.3f} | {r['plain_cpu_s']:.2f} | "
            f"{r['platform_cpu_s']:.2f} | {r['plain_cpu_s'] / r['platform_cpu_s']:.3f} | "
            f"{r['plain_accuracy']:.3f} | {r['platform_accuracy']:.3f} |"
        )
    lines += [
        f"| **median** | **{plain:,.0f}** | **{plat:,.0f}** | **{ratio:.3f}** | | | "
        f"**{args.cpu_ratio:.3f}** | | |",
        "",
        "Ratios are platform ÷ plain in samples/s (wall clock), and plain ÷ platform in process CPU "
        "seconds (the work each did, much less disturbed by other processes than wall time, but blind "
        "to time spent waiting on fsync); medians of the pairs' ratios.",
        "",
        f"Platform overhead: **{overhead * 100:.1f}%** ({verdict} the {args.target * 100:.0f}% target). "
        "Platform time includes per-epoch validation metrics (accuracy, macro P/R/F1, ROC-AUC), a "
        "JSON metrics line and an fsync'ed, atomically renamed checkpoint (model + Adam state + RNG) "
        "per epoch, and the final ONNX export with its ONNX Runtime check.",
        "",
        "Per-epoch `samples_per_s` reported by the platform (training steps only): "
        + "; ".join(", ".join(f"{v:,.0f}" for v in r["epoch_samples_per_s"]) for r in runs)
        + ".",
        "",
        f"Command: `.venv/bin/python benchmarks/training.py {' '.join(sys.argv[1:])}`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
