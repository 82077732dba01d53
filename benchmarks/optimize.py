"""Optimization benchmark: each method against its parent, measured in one run (issue #14).

For each reference model the parent is trained by the platform's training engine, then every
method runs through :func:`aiaas.optimize.run_method` (what an optimization job runs), and the
parent and all candidates are measured *together* by :func:`aiaas.optimize.measure`: ONNX
Runtime, one intra-op thread, interleaved rounds (every model once per round on one row and on
a batch of 32 rows), the median per model. The task metric and the agreement with the parent
are computed on the validation split from the ONNX models' own ``label`` output (the user's
labels: digits are ``zero`` .. ``nine``, tumours ``malignant``/``benign``).

Reference models (scikit-learn's bundled data, 80/20 split, seeded):

* ``digits-cnn``: 8x8 digits, CNN channels [32, 64] then [128] hidden, 20 epochs;
* ``digits-mlp``: 64 pixels, MLP [256, 128], 30 epochs;
* ``cancer-mlp``: breast cancer, 30 tabular features, MLP [256, 128], 40 epochs.

Methods: dynamic int8, static int8 (QDQ, calibrated on 256 training rows), FP16 weights,
structured pruning 50% + 5 fine-tuning epochs, unstructured pruning 50% + 5 epochs, and
distillation into a student of 0.4x the teacher's widths (40 epochs, T=4, alpha=0.7).
The ``auto`` column says what ``--auto --max-metric-drop 0.01`` keeps from the same figures.

Acceptance (issue #14): dynamic int8 >= 3x smaller with a drop <= 1 point; structured 50% +
fine-tuning measurably faster at batch 32 with a drop <= 1 point; a distilled student <= 25% of
the teacher's parameters within 2 points.

Examples:
    .venv/bin/python benchmarks/optimize.py                 # writes results/optimize-<date>.{json,md}
    .venv/bin/python benchmarks/optimize.py --runs 100 --models digits-mlp --output /tmp/x.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from sklearn.datasets import load_breast_cancer, load_digits

from aiaas.optimize import Source, build_report, measure, run_method
from aiaas.optimize.quantize import finish_graph
from aiaas.schemas import JobSpec, OptimizeSpec
from aiaas.training import NullReporter, TrainingData, train

RESULTS = Path(__file__).parent / "results"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

MODELS: dict[str, dict[str, Any]] = {
    "digits-cnn": {
        "data": "digits",
        "model": {"family": "cnn", "channels": [32, 64], "hidden_sizes": [128]},
        "epochs": 20,
    },
    "digits-mlp": {"data": "digits", "model": {"family": "mlp", "hidden_sizes": [256, 128]}, "epochs": 30},
    "cancer-mlp": {"data": "cancer", "model": {"family": "mlp", "hidden_sizes": [256, 128]}, "epochs": 40},
}

#: (row name, method, settings given; the rest are the schema's defaults).
METHODS: list[tuple[str, str, dict[str, Any]]] = [
    ("dynamic_int8", "dynamic_int8", {}),
    ("static_int8", "static_int8", {"calibration_rows": 256}),
    ("fp16", "fp16", {}),
    ("prune-structured-50", "prune", {"structured": True, "sparsity": 0.5, "fine_tune_epochs": 5}),
    ("prune-unstructured-50", "prune", {"structured": False, "sparsity": 0.5, "fine_tune_epochs": 5}),
    ("distill-0.4", "distill", {"width_factor": 0.4, "epochs": 40, "temperature": 4.0, "alpha": 0.7}),
]


def dataset(name: str) -> TrainingData:
    if name == "digits":
        x, y = load_digits(return_X_y=True)
        classes: list[Any] = DIGITS
        shape: tuple[int, ...] | None = (1, 8, 8)
    else:
        x, y = load_breast_cancer(return_X_y=True)
        classes, shape = ["malignant", "benign"], None
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(len(x) * 0.8)
    names = [f"f{i}" for i in range(x.shape[1])]
    return TrainingData(x[:cut], y[:cut], x[cut:], y[cut:], names, "classification", classes, shape)


def settings(method: str, given: dict[str, Any]) -> dict[str, Any]:
    return OptimizeSpec.model_validate({"model": "m", "method": method, method: given}).settings(method)


def bench_model(name: str, config: dict[str, Any], runs: int) -> dict[str, Any]:
    data = dataset(config["data"])
    spec = JobSpec.parse(
        {"dataset": config["data"], "model": config["model"], "epochs": config["epochs"], "seed": 0}
    )
    began = time.perf_counter()
    trained = train(spec, data, NullReporter(), threads=1)
    assert trained.package is not None
    print(f"{name}: parent trained in {time.perf_counter() - began:.1f}s", flush=True)
    source = Source(trained.package.onnx, "input", spec.model.family, trained.state, spec.stored())
    candidates = {}
    seconds = {}
    for row, method, given in METHODS:
        began = time.perf_counter()
        candidates[row] = run_method(method, settings(method, given), source, data, NullReporter())
        seconds[row] = time.perf_counter() - began
        print(f"  {row}: {seconds[row]:.1f}s", flush=True)
    truth = [data.class_labels()[i] for i in data.y_val.tolist()]
    measured = measure(
        {"parent": source.onnx, **{row: c.onnx for row, c in candidates.items()}},
        data.x_val,
        truth,
        task=data.task,
        runs=runs,
    )
    rows = []
    for row, method, _ in METHODS:
        c = candidates[row]
        report = build_report(
            measured[row],
            measured["parent"],
            truth=truth,
            task=data.task,
            parameters=c.parameters,
            parent_parameters=c.parent_parameters,
        )
        rows.append({"name": row, "method": method, "seconds": seconds[row], "notes": c.notes, **report})
    within = [r for r in rows if r["metric_drop"] <= 0.01 + 1e-12]
    auto = min(within, key=lambda r: r["latency_32_ms"])["name"] if within else None
    parent = measured["parent"]
    return {
        "model": name,
        "config": config,
        "validation_rows": len(truth),
        "parent": {
            "size_bytes": parent.size_bytes,
            "compact_size_bytes": len(finish_graph(source.onnx, source.onnx)),
            "latency_1_ms": parent.latency_1_ms,
            "latency_32_ms": parent.latency_32_ms,
            "accuracy": parent.value,
        },
        "candidates": rows,
        "auto_keeps": auto,
    }


def verdicts(result: dict[str, Any]) -> list[str]:
    by = {r["name"]: r for r in result["candidates"]}
    out = []
    d = by["dynamic_int8"]
    ok = d["size_ratio"] >= 3 and d["metric_drop"] <= 0.01
    out.append(
        f"dynamic int8: {d['size_ratio']:.2f}x smaller, drop {d['metric_drop'] * 100:+.2f} pts "
        f"(target >= 3x, <= 1 pt): {'PASS' if ok else 'FAIL'}"
    )
    s = by["prune-structured-50"]
    ok = s["speedup_32"] > 1.1 and s["metric_drop"] <= 0.01
    out.append(
        f"structured 50% + fine-tune: batch-32 {s['speedup_32']:.2f}x faster, drop "
        f"{s['metric_drop'] * 100:+.2f} pts (target faster, <= 1 pt): {'PASS' if ok else 'FAIL'}"
    )
    t = by["distill-0.4"]
    share = t["parameters"] / t["parent_parameters"]
    ok = share <= 0.25 and t["metric_drop"] <= 0.02
    out.append(
        f"distilled student: {share:.1%} of the parameters, drop {t['metric_drop'] * 100:+.2f} pts "
        f"(target <= 25%, <= 2 pts): {'PASS' if ok else 'FAIL'}"
    )
    return out


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# Optimization benchmark, {meta['date']}",
        "",
        f"`benchmarks/optimize.py --runs {meta['runs']}` on {meta['machine']}; ONNX Runtime "
        f"{meta['onnxruntime']}, torch {meta['torch']}, one intra-op thread. Parent and candidates "
        "of each model measured in one run, interleaved; latencies are medians. Ratios are parent / "
        "candidate (> 1: smaller, faster). Drop is in accuracy points on the validation split.",
        "",
    ]
    for r in results:
        p = r["parent"]
        lines += [
            f"## {r['model']} ({r['validation_rows']} validation rows)",
            "",
            f"Parent: {p['size_bytes']} bytes, 1 row {p['latency_1_ms']:.4f} ms, batch 32 "
            f"{p['latency_32_ms']:.4f} ms, accuracy {p['accuracy']:.4f}. Results have compact tensor "
            f"names (lossless); the parent with compact names alone would be {p['compact_size_bytes']} "
            f"bytes ({p['size_bytes'] / p['compact_size_bytes']:.3f}x).",
            "",
            "| method | size bytes | size x | 1 row ms | 32 rows ms | speedup 32 | accuracy | drop pts "
            "| agreement | params | params share |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in r["candidates"]:
            share = f"{c['parameters'] / c['parent_parameters']:.1%}" if c["parameters"] else "-"
            lines.append(
                f"| {c['name']} | {c['size_bytes']} | {c['size_ratio']:.2f} | {c['latency_1_ms']:.4f} | "
                f"{c['latency_32_ms']:.4f} | {c['speedup_32']:.2f} | {c['value']:.4f} | "
                f"{c['metric_drop'] * 100:+.2f} | {c['agreement']:.1%} | {c['parameters'] or '-'} | {share} |"
            )
        lines += ["", f"`--auto --max-metric-drop 0.01` keeps: **{r['auto_keeps']}**.", ""]
        lines += [f"- {v}" for v in verdicts(r)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=500, help="Interleaved timing rounds (default 500).")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument(
        "--output", type=Path, default=None, help="Markdown report (default results/optimize-<date>.md)."
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    date = datetime.date.today().isoformat()
    meta = {
        "date": date,
        "runs": args.runs,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", python {sys.version.split()[0]}",
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
    }
    results = [bench_model(name, MODELS[name], args.runs) for name in args.models]
    output = args.output or RESULTS / f"optimize-{date}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    report = markdown(results, meta)
    output.write_text(report)
    output.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
