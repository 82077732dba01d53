"""Evidently's side of benchmarks/drift.py, run in Evidently's own venv (it is not in aiaas's lock).

Reads the reference and live tables the benchmark wrote as Parquet, runs one Evidently
Report per preset given, and prints one JSON line: the seconds each ``Report.run`` took (the
drift check: Evidently recomputes the reference's statistics on every run), and which columns
each flagged.

    /tmp/evidently-venv/bin/python benchmarks/_evidently_drift.py DIR --categorical c1,c2 --preset psi default
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import evidently
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

#: Evidently's scores where a value at or past the threshold is drift; the others are p-values.
DISTANCES = {"psi", "wasserstein", "jensenshannon", "hellinger", "kl_div", "energy", "empirical_mmd"}


def flagged(snapshot: dict) -> tuple[list[str], dict[str, str]]:
    """Columns whose ValueDrift crossed its threshold, and the method used per column."""
    drifted, methods = [], {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        column, method, threshold = config["column"], config["method"], config["threshold"]
        # the method's own name, as the metric names it ("Wasserstein distance (normed)" -> wasserstein)
        name = re.sub(r"[^a-z_]", "", str(method).lower().split("(")[0].split(" ")[0])
        methods[column] = str(method)
        value = metric["value"]
        is_distance = any(name.startswith(d) for d in DISTANCES)
        if (value >= threshold) if is_distance else (value < threshold):
            drifted.append(column)
    return sorted(drifted), methods


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--categorical", default="")
    parser.add_argument("--live", default="shifted", help="which live table: shifted or unshifted")
    parser.add_argument("--preset", nargs="+", default=["psi"], choices=["psi", "default"])
    parser.add_argument("--psi-threshold", type=float, default=0.2)
    args = parser.parse_args()

    started = time.perf_counter()
    reference = pd.read_parquet(args.data / "reference.parquet")
    live = pd.read_parquet(args.data / f"{args.live}.parquet")
    read_s = time.perf_counter() - started
    categorical = [c for c in args.categorical.split(",") if c]
    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in categorical],
        categorical_columns=categorical,
    )
    results = {"evidently": evidently.__version__, "pandas": pd.__version__, "read_s": read_s, "runs": []}
    for preset in args.preset:
        report = Report(
            [
                DataDriftPreset(method="psi", threshold=args.psi_threshold)
                if preset == "psi"
                else DataDriftPreset()
            ]
        )
        started, cpu = time.perf_counter(), time.process_time()
        current_ds = Dataset.from_pandas(live, data_definition=definition)
        reference_ds = Dataset.from_pandas(reference, data_definition=definition)
        snapshot = report.run(current_ds, reference_ds)
        run_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        drifted, methods = flagged(snapshot.dict())
        results["runs"].append(
            {
                "preset": preset,
                "seconds": run_s,
                "cpu_s": cpu_s,
                "flagged": drifted,
                "methods": sorted(set(methods.values())),
            }
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
