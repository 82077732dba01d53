"""``python -m aiaas.training.worker JOB_ID``: one attempt at one job, in its own process.

The scheduler starts it with the platform's settings in the environment. It trains (resuming
from the job's checkpoint), registers the result and marks the job succeeded; a job that
cannot work (bad data, a bug) is marked failed with the reason and exit status 1. A worker
killed by a signal marks nothing: the scheduler sees the signal and requeues the job.
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from aiaas.config import Settings, load_settings
from aiaas.errors import AiaasError
from aiaas.registry import ModelVersion
from aiaas.training.jobs import CANCELLED, FAILED, JobStore
from aiaas.training.service import JobCancelled, TrainingService

__all__ = ["JobRunner", "main", "open_service", "run_recorded", "run_worker"]


class JobRunner(Protocol):
    """A service that runs a job of the queue by its id: training, or optimization."""

    @property
    def jobs(self) -> JobStore: ...

    def run(self, job_id: int) -> ModelVersion | None: ...


def open_service(
    settings: Settings, job_id: int | None = None, *, slots: int | None = None
) -> TrainingService:
    """The training service on the database and artifact store ``settings`` name, in the project
    of job ``job_id`` (its dataset and its model are that project's; none: ``default``).

    Opened through the composition root (:mod:`aiaas.platform`), unmigrated: the control
    plane that started this process migrated the database already.
    """
    from aiaas.platform import open_platform

    platform = open_platform(settings, migrate=False, slots=slots)
    return (platform if job_id is None else platform.for_job(job_id)).training


def run_recorded(service: JobRunner, job_id: int) -> int:
    """Run the job; how it ended is written to its row (cancelled, failed with the reason).

    Returns the exit status: 0 when it succeeded or was cancelled, 1 when it failed.
    """
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
    # SIGTERM (cancel, control plane stopping): leave without marking the job, quickly and
    # quietly; the checkpoint already on disk is where the next attempt resumes.
    raise SystemExit(128 + signum)


def run_worker(
    argv: list[str] | None, *, module: str, level: int, open_runner: Callable[[Settings, int], JobRunner]
) -> int:
    """The body of a worker process: ``python -m <module> JOB_ID`` runs that job once."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print(f"usage: python -m {module} JOB_ID", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = open_runner(load_settings(), int(args[0]))
    try:
        return run_recorded(service, int(args[0]))
    finally:
        service.jobs.db.dispose()


def main(argv: list[str] | None = None) -> int:
    return run_worker(argv, module="aiaas.training.worker", level=logging.INFO, open_runner=open_service)


if __name__ == "__main__":
    sys.exit(main())
