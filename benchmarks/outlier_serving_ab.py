"""Serving throughput with per-request outlier scores on against off: the same server, interleaved runs.

Outlier scores are computed in the prediction log's writer thread, off the request path; this
script measures what they cost the inference server anyway (the thread shares the process's
GIL and cores):

1. builds the ``tabular`` reference model (``reference_models.py``, 30 features), registers and
   deploys it in a fresh home with a drift reference from 2,000 rows (its outlier sample), as
   ``drift_serving_ab.py`` does; the deployment's log keeps up to ``--log-rows-per-s`` requests
   a second in both arms (the default setting is 100);
2. sets the deployment's ``outlier_scores`` off then on, and again, ``--rounds`` times, each time
   a fresh ``python -m aiaas.serving`` process and the load generator of ``serving.py``
   (single-row V2 requests, closed loop) at each concurrency;
3. after each run reads ``aiaas_prediction_log_scored`` from ``/metrics`` (requests really
   scored; 0 when off);
4. writes a markdown report and its JSON to ``benchmarks/results/`` (the loop, the load and
   CPU readings and the report are ``ab.py``'s, shared with the other A/B scripts).

Examples:
    .venv/bin/python benchmarks/outlier_serving_ab.py                       # 3 rounds, -d 8 -w 2, c=32
    .venv/bin/python benchmarks/outlier_serving_ab.py --log-rows-per-s 5000  # score far more rows
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import ab
import reference_models
from drift_serving_ab import prepare


def set_scores(home: Path, name: str, on: bool, rows_per_s: float) -> None:
    """Turn the deployment's outlier scores on or off, its log keeping ``rows_per_s`` a second."""
    from aiaas.deployments import DeploymentService
    from aiaas.registry import Registry
    from aiaas.store import Database, open_artifact_store

    db = Database(f"sqlite:///{home / 'aiaas.db'}")
    try:
        service = DeploymentService(Registry(db, open_artifact_store(str(home / "artifacts"))))
        service.update(name, outlier_scores=on, prediction_log={"max_rows_per_s": rows_per_s})
    finally:
        db.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    p = ab.parser(__doc__ or "", "outlier")
    p.add_argument("--log-rows-per-s", type=float, default=100.0, help="the log's cap in both arms")
    args = ab.parse(p, "outlier", argv)

    def logged(port: int) -> dict[str, float]:
        return {
            "logged_rows": ab.counter(port, "aiaas_prediction_log_rows"),
            "scored_rows": ab.counter(port, "aiaas_prediction_log_scored"),
        }

    def arms(home: Path, model: reference_models.ReferenceModel) -> list[ab.Arm]:
        return [
            ab.Arm(
                label,
                before_start=lambda on=on: set_scores(home, model.name, on, args.log_rows_per_s),
                after_load=logged,
            )
            for label, on in (("off", False), ("on", True))
        ]

    # 2.5 s: one flush and more, so what was queued is written (and scored).
    runs = ab.run(args, prepare, arms, drain_s=2.5)
    count = lambda v: f"{v:,.0f}"  # noqa: E731
    ab.report(
        args,
        runs,
        title="outlier scores",
        command=f"benchmarks/outlier_serving_ab.py --log-rows-per-s {args.log_rows_per_s:g}",
        setting="outlier scores",
        columns=[ab.Column("logged", "logged_rows", count), ab.Column("scored", "scored_rows", count)],
        notes=[
            "the `tabular` reference model (30 features) in one aiaas inference server, single-row V2 "
            "requests, off and on interleaved, a fresh server process per run. `scored` is "
            "`aiaas_prediction_log_scored` after the run (0 when off); the first requests of an "
            '"on" run are logged unscored while the forest is fitted.'
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
