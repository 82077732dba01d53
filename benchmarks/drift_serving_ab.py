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
   the requests were really counted;
4. writes a markdown report and its JSON to ``benchmarks/results/`` (the loop, the load and
   CPU readings and the report are ``ab.py``'s, shared with the other A/B scripts), with the
   counting work alone measured in this process (``micro``).

Examples:
    .venv/bin/python benchmarks/drift_serving_ab.py                  # 3 rounds, -d 8 -w 2, c=32
    .venv/bin/python benchmarks/drift_serving_ab.py --quick          # 2 rounds of 3 s
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import ab
import numpy as np
import reference_models

import serving


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
    from aiaas.store import Database, open_artifact_store
    from aiaas.store.drift import CountStore

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


def main(argv: Sequence[str] | None = None) -> int:
    args = ab.parse(ab.parser(__doc__ or "", "drift"), "drift", argv)
    work = micro()
    print(work, flush=True)

    def counted(port: int) -> dict[str, float]:
        return {"counted_rows": ab.counter(port, "aiaas_drift_counted_rows")}

    def arms(home: Path, model: reference_models.ReferenceModel) -> list[ab.Arm]:
        return [
            ab.Arm("off", {"AIAAS_DRIFT_COUNTING": "false"}, after_load=counted),
            ab.Arm("on", {"AIAAS_DRIFT_COUNTING": "true"}, after_load=counted),
        ]

    # 2.5 s: one flush and more, so what was queued is counted.
    runs = ab.run(args, prepare, arms, drain_s=2.5)
    per_flush, record_ns = work["requests_per_flush"], work["record_ns_per_request"]
    flush_us = work["flush_cpu_us_per_request"]
    ab.report(
        args,
        runs,
        title="drift counting",
        command="benchmarks/drift_serving_ab.py",
        setting="drift",
        columns=[ab.Column("counted", "counted_rows", lambda v: f"{v:,.0f}")],
        notes=[
            "the `tabular` reference model (30 features) in one aiaas inference server, single-row V2 "
            "requests, off and on interleaved, a fresh server process per run. `counted` is "
            "`aiaas_drift_counted_rows` after the run (0 when off).",
            f"The counting work alone, in-process ({per_flush:,.0f} single-row requests of 30 features "
            f"per flush, medians): `record` on the event loop {record_ns:.0f} ns per request; the "
            f"thread's block count and database write {flush_us:.1f} µs of CPU per request.",
        ],
        extra={"micro": work},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
