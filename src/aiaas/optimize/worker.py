"""``python -m aiaas.optimize.worker JOB_ID``: one attempt at one optimization job.

Started by the training scheduler (an optimization job is a job of its queue and slots) with
the platform's settings in the environment. How the job ended is written to its row, as a
training worker does: succeeded with the registered version, cancelled, or failed with the
reason (exit status 1). A worker killed by a signal marks nothing: the scheduler requeues it.
"""

from __future__ import annotations

import logging
import sys

from aiaas.config import Settings
from aiaas.optimize.service import OptimizationService
from aiaas.training import run_worker

__all__ = ["main"]


def _open(settings: Settings, job_id: int) -> OptimizationService:
    """Through the composition root, unmigrated (the control plane that started it migrated), in
    the project of job ``job_id``."""
    from aiaas.platform import open_platform

    return open_platform(settings, migrate=False).for_job(job_id).optimization


def main(argv: list[str] | None = None) -> int:
    return run_worker(argv, module="aiaas.optimize.worker", level=logging.WARNING, open_runner=_open)


if __name__ == "__main__":
    sys.exit(main())
