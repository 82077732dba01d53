"""``python -m aiaas.optimize.worker JOB_ID``: one attempt at one optimization job.

Started by the training scheduler (an optimization job is a job of its queue and slots) with
the platform's settings in the environment. How the job ended is written to its row, as a
training worker does: succeeded with the registered version, cancelled, or failed with the
reason (exit status 1). A worker killed by a signal marks nothing: the scheduler requeues it.
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from types import FrameType

from aiaas.config import load_settings
from aiaas.errors import AiaasError
from aiaas.optimize.service import OptimizationService
from aiaas.training import CANCELLED, FAILED, JobCancelled, open_service

__all__ = ["main", "run_recorded"]


def run_recorded(service: OptimizationService, job_id: int) -> int:
    """Run the job and record how it ended; 0 when it succeeded or was cancelled, else 1."""
    jobs = service.jobs
    try:
        version = service.run(job_id)
    except JobCancelled as exc:
        jobs.finish(job_id, CANCELLED, str(exc))
        return 0
    except AiaasError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        jobs.finish(job_id, FAILED, f"failed: {exc.message}", error=exc.message)
        return 1
    except Exception as exc:
        traceback.print_exc()
        jobs.finish(job_id, FAILED, f"failed: {type(exc).__name__}: {exc}", error=traceback.format_exc())
        return 1
    if version is not None:
        print(f"registered {version.model} version {version.version}", flush=True)
    return 0


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m aiaas.optimize.worker JOB_ID", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = OptimizationService(open_service(load_settings()))
    try:
        return run_recorded(service, int(args[0]))
    finally:
        service.jobs.db.dispose()


if __name__ == "__main__":
    sys.exit(main())
