"""Drift benchmark: aiaas's binned drift check against Evidently's, on the same data in one run.

The data is the recipe the tests use (``tests/monitoring/_tables.py``) at full size: a
reference table and a live table of ``--rows`` rows (1M by default) x 100 columns (80 numeric,
20 categorical), 20 of them shifted in the live table (7 numeric means by one standard
deviation, 7 numeric spreads 2x, 6 categorical re-weightings), and an unshifted live table.

aiaas (in this process, the project's venv):

* ``reference``: :meth:`ReferenceProfile.build` over the reference table (done once per
  model version, at registration);
* ``ingest``: the live rows counted into a :class:`CountWindow`, as one block and in batches of
  ``--batch-rows`` (what the inference server does per request batch, spread over traffic);
  plus the cost per call of small batches (1 and 32 rows);
* ``check``: :func:`check_drift` from the window's counts (the median of ``--repeats``): what
  a drift check costs, since the counts are already there.

Evidently (``--evidently-python``, its own venv: it is not in aiaas's lock) gets the same
tables as Parquet files and runs ``Report([DataDriftPreset(method="psi", threshold=0.2)])``
and, with ``--evidently-presets psi default``, its default preset (normed Wasserstein for
numeric and Jensen-Shannon for categorical columns at this size). Each run recomputes the
reference's statistics, so Evidently's check is its whole ``Report.run``; reading the Parquet
files is timed apart and left out.

Set up Evidently once (pandas 3 breaks evidently 0.7.23, hence the pin)::

    python3.11 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install evidently==0.7.23 "pandas<3" pyarrow

Examples::

    PYTHONPATH=src .venv/bin/python benchmarks/drift.py            # results/drift-<date>.{md,json}
    PYTHONPATH=src .venv/bin/python benchmarks/drift.py --rows 100000 --evidently-presets psi \
        --output /tmp/d.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' table recipe, so the benchmark's data is the tested data

from tests.monitoring._tables import SHIFTED, make_tables  # noqa: E402

from aiaas.monitoring import CountWindow, ReferenceProfile, check_drift  # noqa: E402
from aiaas.schemas import DriftSettings  # noqa: E402

RESULTS = Path(__file__).parent / "results"


CPU: dict[str, float] = {}


def _timed(fn: Any, cpu_key: str | None = None) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` (its CPU seconds go to ``CPU[cpu_key]`` when named)."""
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    if cpu_key:
        CPU[cpu_key] = time.process_time() - cpu
    return time.perf_counter() - started, value


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    """CPU seconds (user + system) so far: less sensitive than wall time to a shared machine."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _load() -> float:
    return os.getloadavg()[0]


def measure_aiaas(tables: Any, batch_rows: int, repeats: int) -> dict[str, Any]:
    rows = len(next(iter(tables.reference.values())))
    reference_s, profile = _timed(
        lambda: ReferenceProfile.build(tables.reference, categorical=tables.categorical), "reference"
    )
    clock = [1_000_000.0]
    settings = DriftSettings()
    out: dict[str, Any] = {
        "reference_s": reference_s,
        "profile_json_bytes": len(json.dumps(profile.to_dict())),
    }

    for name in ("shifted", "unshifted"):
        table = getattr(tables, name)
        window = CountWindow(profile, settings, clock=lambda: clock[0])
        ingest_s, _ = _timed(lambda table=table, window=window: window.add(table), f"ingest_{name}")
        batched = CountWindow(profile, settings, clock=lambda: clock[0])

        def in_batches(table: dict[str, np.ndarray] = table, window: CountWindow = batched) -> None:
            for start in range(0, rows, batch_rows):
                window.add({k: v[start : start + batch_rows] for k, v in table.items()})

        batched_s, _ = _timed(in_batches)
        assert np.array_equal(batched.counts().counts, window.counts().counts)
        checks = []
        for _ in range(repeats):
            check_s, report = _timed(lambda window=window: check_drift(profile, window.counts(), settings))
            checks.append(check_s)
        if name == "shifted":
            out["snapshot_json_bytes"] = len(json.dumps(window.snapshot()))
        out[name] = {
            "ingest_one_block_s": ingest_s,
            f"ingest_batches_of_{batch_rows}_s": batched_s,
            "check_s": statistics.median(checks),
            "check_runs": len(checks),
            "flagged": sorted(report.drifted),
            "exact": sorted(report.drifted) == (SHIFTED if name == "shifted" else []),
            "max_psi_unflagged": max(f.psi for f in report.features if not f.drifted),
            "min_psi_flagged": min((f.psi for f in report.features if f.drifted), default=None),
        }
    window = CountWindow(profile, settings, clock=lambda: clock[0])
    out["window_ring_bytes"] = window.nbytes
    small = {}
    for size, calls in ((1, 2000), (32, 500)):
        batches = [{k: v[i * size : (i + 1) * size] for k, v in tables.shifted.items()} for i in range(calls)]
        seconds, _ = _timed(lambda batches=batches: [window.add(b) for b in batches])
        small[f"{size}_rows_us_per_call"] = seconds / calls * 1e6
    out["small_batches"] = small
    return out


def run_evidently(python: str, data: Path, categorical: list[str], presets: list[str]) -> dict[str, Any]:
    command = [python, str(Path(__file__).parent / "_evidently_drift.py"), str(data)]
    command += ["--categorical", ",".join(categorical), "--preset", *presets]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"Evidently failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_report(result: dict[str, Any], output: Path) -> None:
    a, ev = result["aiaas"], result["evidently"]
    rows = result["rows"]
    shifted = a["shifted"]
    raw_s = a["reference_s"] + shifted["ingest_one_block_s"] + shifted["check_s"]
    batched_key = f"ingest_batches_of_{result['batch_rows']}_s"
    cpu = a.get("cpu_s", {})
    raw_cpu = cpu.get("reference", 0.0) + cpu.get("ingest_shifted", 0.0) + shifted["check_s"]
    lines = [
        f"# Drift benchmark, {result['date']}",
        "",
        f"{rows:,} reference rows and {rows:,} live rows x 100 columns (80 numeric, 20 categorical), "
        f"20 shifted; `benchmarks/drift.py`, one run, {result['machine']}. "
        f"Load average (1 min; 2 cores shared with other work) at start {result['load_start']:.2f}, "
        f"when Evidently started {ev.get('load_start', float('nan')):.2f}, at end {result['load_end']:.2f}. "
        f"Evidently {ev['evidently']} (pandas {ev['pandas']}) in its own venv, same Parquet data. "
        "CPU seconds (user + system) are less sensitive than wall seconds to the other work.",
        "",
        "| what | wall s | CPU s | flagged | exactly the 20 |",
        "|---|---:|---:|---|---|",
        f"| aiaas reference statistics (once per version) | {a['reference_s']:.2f} | "
        f"{cpu.get('reference', float('nan')):.2f} | | |",
        f"| aiaas ingest of the live rows, one block | {shifted['ingest_one_block_s']:.2f} | "
        f"{cpu.get('ingest_shifted', float('nan')):.2f} | | |",
        f"| aiaas ingest in batches of {result['batch_rows']:,} rows | {shifted[batched_key]:.2f} | | | |",
        f"| **aiaas drift check from counts** | **{shifted['check_s']:.4f}** | | {len(shifted['flagged'])} | "
        f"{'yes' if shifted['exact'] else 'NO'} |",
        f"| aiaas from raw rows (reference + ingest + check) | {raw_s:.2f} | {raw_cpu:.2f} | | |",
    ]
    for run in ev["runs"]:
        exact = run["flagged"] == SHIFTED
        lines.append(
            f"| Evidently DataDriftPreset `{run['preset']}` ({', '.join(run['methods'])}) | "
            f"{run['seconds']:.1f} | {run.get('cpu_s', float('nan')):.1f} | {len(run['flagged'])} | "
            f"{'yes' if exact else 'NO'} |"
        )
    lines += ["", "Ratios (Evidently seconds / aiaas seconds, same run):", ""]
    for run in ev["runs"]:
        cpu_ratio = run.get("cpu_s", float("nan")) / raw_cpu if raw_cpu else float("nan")
        lines.append(
            f"* `{run['preset']}`: {run['seconds'] / shifted['check_s']:,.0f}x the drift check from counts; "
            f"{run['seconds'] / raw_s:,.1f}x aiaas from raw rows "
            f"(reference statistics and counting included; {cpu_ratio:,.1f}x in CPU seconds)."
        )
    un = a["unshifted"]
    lines += [
        "",
        f"Unshifted live table (aiaas): flagged {un['flagged'] or 'none'}; largest PSI "
        f"{un['max_psi_unflagged']:.4f} (threshold 0.2); on the shifted table the smallest flagged PSI is "
        f"{shifted['min_psi_flagged']:.3f} and the largest unflagged {shifted['max_psi_unflagged']:.4f}.",
        "",
        f"Flagged by aiaas: {', '.join(shifted['flagged'])}.",
        "",
    ]
    for run in ev["runs"]:
        lines.append(f"Flagged by Evidently `{run['preset']}`: {', '.join(run['flagged'])}.")
    small = a["small_batches"]
    lines += [
        "",
        "Counting cost per call in a serving replica: "
        f"{small['1_rows_us_per_call']:.0f} us for a 1-row batch, "
        f"{small['32_rows_us_per_call']:.0f} us for 32 rows (100 features). Ring of "
        f"{DriftSettings().intervals} intervals: {a['window_ring_bytes']:,} bytes; a replica's snapshot "
        f"{a['snapshot_json_bytes']:,} bytes of JSON; "
        f"reference statistics {a['profile_json_bytes']:,} bytes.",
        "",
    ]
    output.write_text("\n".join(lines))
    output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--evidently-python", default="/tmp/evidently-venv/bin/python")
    parser.add_argument(
        "--evidently-presets", nargs="+", default=["psi", "default"], choices=["psi", "default"]
    )
    parser.add_argument("--output", type=Path, default=RESULTS / f"drift-{datetime.date.today()}.md")
    args = parser.parse_args()

    load_start = _load()
    gen_s, tables = _timed(lambda: make_tables(args.rows, args.seed))
    print(f"tables made in {gen_s:.1f} s", file=sys.stderr)
    cpu_before = _cpu_s()
    aiaas = measure_aiaas(tables, args.batch_rows, args.repeats)
    aiaas["cpu_s_all_measurements"] = _cpu_s() - cpu_before
    aiaas["cpu_s"] = dict(CPU)
    print(json.dumps(aiaas), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="aiaas-drift-") as tmp:
        data = Path(tmp)
        for name in ("reference", "shifted"):
            pq.write_table(pa.table(getattr(tables, name)), data / f"{name}.parquet")
        categorical = sorted(
            set(tables.categorical) | {k for k, v in tables.reference.items() if v.dtype.kind not in "iuf"}
        )
        del tables
        load_evidently = _load()
        cpu_before = _cpu_s(resource.RUSAGE_CHILDREN)
        evidently = run_evidently(args.evidently_python, data, categorical, args.evidently_presets)
        evidently["cpu_s_whole_process"] = _cpu_s(resource.RUSAGE_CHILDREN) - cpu_before
        evidently["load_start"] = load_evidently
    result = {
        "date": str(datetime.date.today()),
        "rows": args.rows,
        "seed": args.seed,
        "batch_rows": args.batch_rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_start": load_start,
        "load_end": _load(),
        "numpy": np.__version__,
        "aiaas": aiaas,
        "evidently": evidently,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_report(result, args.output)


if __name__ == "__main__":
    main()
