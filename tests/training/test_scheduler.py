"""The training scheduler on real child processes: CPU slots, kill and resume, cancel, recovery.

The worker command is ``_probe_worker.py``, a real process that does what its job's spec says
(finish, hold until released, crash), so these tests pin the scheduler's own behaviour; the
real worker is exercised end to end in ``tests/e2e/test_training.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiaas.store import Database, FileArtifactStore
from aiaas.training.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Job, JobStore, NewJob
from aiaas.training.scheduler import Scheduler
from tests._servers import wait_until

PROBE = Path(__file__).with_name("_probe_worker.py")


@pytest.fixture
def jobs(migrated_database_url: str, home: Path) -> Iterator[JobStore]:
    db = Database(migrated_database_url)
    db.upgrade()
    yield JobStore(db, FileArtifactStore(home / "artifacts"))
    db.dispose()


@pytest.fixture
def make_scheduler(jobs: JobStore, home: Path, migrated_database_url: str) -> Iterator[Any]:
    made: list[Scheduler] = []

    def make(slots: int = 2, max_attempts: int = 3) -> Scheduler:
        env = {
            **os.environ,
            "AIAAS_DATABASE_URL": migrated_database_url,
            "AIAAS_ARTIFACT_ROOT": str(home / "artifacts"),
        }
        scheduler = Scheduler(
            jobs,
            slots=slots,
            env=env,
            log_dir=home / "jobs",
            max_attempts=max_attempts,
            command=[sys.executable, str(PROBE)],
        )
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stop()


def _submit(jobs: JobStore, workers: int = 1, **spec: Any) -> Job:
    return jobs.create(
        NewJob(spec=spec, dataset="d", dataset_version=1, register_as="m", workers=workers, epochs=1)
    )


def _drive(scheduler: Scheduler, condition: Any, what: str, timeout: float = 60.0) -> None:
    def step() -> bool:
        scheduler.tick()
        return bool(condition())

    wait_until(step, timeout=timeout, what=what)


def _status(jobs: JobStore, job: Job) -> str:
    return jobs.get(job.id).status


def _logged(jobs: JobStore, job: Job, text: str) -> bool:
    return any(text in line.message for line in jobs.logs(job.id))


def test_a_job_waits_until_its_workers_fit_in_the_free_slots(
    jobs: JobStore, make_scheduler: Any, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    scheduler = make_scheduler(slots=2)
    big = _submit(jobs, workers=2, probe="hold", release=str(release))
    small = _submit(jobs, workers=1, probe="hold", release=str(release))
    _drive(scheduler, lambda: _logged(jobs, big, "probe hold"), "the 2-worker job to start")
    scheduler.tick()
    assert _status(jobs, small) == QUEUED  # both slots are taken
    assert scheduler.used_slots == 2
    release.touch()
    _drive(scheduler, lambda: _status(jobs, small) == SUCCEEDED, "the 1-worker job to run after it")
    assert _status(jobs, big) == SUCCEEDED
    _drive(scheduler, lambda: scheduler.used_slots == 0, "the slots to be given back")


def test_jobs_that_fit_run_side_by_side(jobs: JobStore, make_scheduler: Any, tmp_path: Path) -> None:
    release = tmp_path / "release"
    scheduler = make_scheduler(slots=2)
    first, second = (_submit(jobs, probe="hold", release=str(release)) for _ in range(2))
    _drive(
        scheduler,
        lambda: _logged(jobs, first, "probe hold") and _logged(jobs, second, "probe hold"),
        "both jobs to run at once",
    )
    release.touch()
    _drive(scheduler, lambda: {_status(jobs, first), _status(jobs, second)} == {SUCCEEDED}, "both to end")


def test_a_worker_killed_by_sigkill_is_requeued_and_runs_again(
    jobs: JobStore, make_scheduler: Any, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    scheduler = make_scheduler()
    job = _submit(jobs, probe="hold", release=str(release))
    _drive(scheduler, lambda: _logged(jobs, job, "attempt 1 pid"), "the first attempt")
    os.kill(jobs.get(job.id).pid or 0, signal.SIGKILL)
    _drive(scheduler, lambda: _logged(jobs, job, "attempt 2 pid"), "the second attempt")
    assert _logged(jobs, job, "worker killed by signal 9 (SIGKILL); resuming from the start")
    release.touch()
    _drive(scheduler, lambda: _status(jobs, job) == SUCCEEDED, "the job to finish")
    assert jobs.get(job.id).attempts == 2


def test_a_worker_that_keeps_dying_fails_after_max_attempts(
    jobs: JobStore, make_scheduler: Any, tmp_path: Path
) -> None:
    scheduler = make_scheduler(max_attempts=2)
    job = _submit(jobs, probe="hold", release=str(tmp_path / "never"))
    for attempt in (1, 2):
        _drive(scheduler, lambda a=attempt: _logged(jobs, job, f"attempt {a} pid"), f"attempt {attempt}")
        os.kill(jobs.get(job.id).pid or 0, signal.SIGKILL)
    _drive(scheduler, lambda: _status(jobs, job) == FAILED, "the job to fail")
    assert "killed by signal 9" in jobs.get(job.id).error


def test_a_crashed_worker_fails_the_job_with_its_output(jobs: JobStore, make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    job = _submit(jobs, probe="crash")
    _drive(scheduler, lambda: _status(jobs, job) == FAILED, "the job to fail")
    error = jobs.get(job.id).error
    assert "exited with status 3" in error
    assert "boom: the probe crashed" in error
    assert jobs.get(job.id).attempts == 1  # a bug is not retried


def test_cancel_stops_a_running_job(jobs: JobStore, make_scheduler: Any, tmp_path: Path) -> None:
    scheduler = make_scheduler()
    job = _submit(jobs, probe="hold", release=str(tmp_path / "never"))
    _drive(scheduler, lambda: _logged(jobs, job, "probe hold"), "the job to start")
    pid = jobs.get(job.id).pid
    assert jobs.cancel(job.id).cancel_requested
    _drive(scheduler, lambda: _status(jobs, job) == CANCELLED, "the job to be cancelled")
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert scheduler.used_slots == 0  # reaped in the pass that marked it cancelled


def test_cancel_of_a_queued_job_is_immediate_and_it_never_starts(
    jobs: JobStore, make_scheduler: Any, tmp_path: Path
) -> None:
    job = _submit(jobs, probe="finish")
    assert jobs.cancel(job.id).status == CANCELLED
    scheduler = make_scheduler()
    scheduler.tick()
    assert _status(jobs, job) == CANCELLED
    assert not _logged(jobs, job, "probe")


def test_recover_kills_an_orphaned_worker_and_requeues_its_job(
    jobs: JobStore, make_scheduler: Any, tmp_path: Path, migrated_database_url: str, home: Path
) -> None:
    """A control plane died (its scheduler is gone) while its worker somehow lived on."""
    job = _submit(jobs, probe="hold", release=str(tmp_path / "never"))
    assert jobs.claim(job.id)
    env = {
        **os.environ,
        "AIAAS_DATABASE_URL": migrated_database_url,
        "AIAAS_ARTIFACT_ROOT": str(home / "artifacts"),
    }
    # The extra argument makes it look like a real worker of this job to the scheduler's check.
    orphan = subprocess.Popen(
        [sys.executable, str(PROBE), str(job.id), "aiaas.training.worker"], env=env, start_new_session=True
    )
    jobs.set_pid(job.id, orphan.pid)
    wait_until(lambda: _logged(jobs, job, "probe hold"), what="the orphan to run")
    scheduler = make_scheduler()
    scheduler.recover()
    assert orphan.wait(timeout=30) == -signal.SIGKILL
    assert _status(jobs, job) == QUEUED
    assert _logged(jobs, job, "control plane restarted")


def test_stop_requeues_running_jobs(jobs: JobStore, make_scheduler: Any, tmp_path: Path) -> None:
    scheduler = make_scheduler()
    job = _submit(jobs, probe="hold", release=str(tmp_path / "never"))
    _drive(scheduler, lambda: _logged(jobs, job, "probe hold"), "the job to start")
    assert _status(jobs, job) == RUNNING
    scheduler.stop()
    assert _status(jobs, job) == QUEUED
    assert _logged(jobs, job, "control plane stopped")


def _is_zombie(pid: int | None) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
