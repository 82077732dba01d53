"""A controllable stand-in for ``aiaas.training.worker``, to test the scheduler on real processes.

The job's spec says what to do: ``{"probe": "finish"}`` succeeds at once, ``"hold"`` logs and
waits until the file named by ``"release"`` exists, then succeeds; ``"crash"`` prints and
exits with status 3 without marking the job (as a worker hit by a bug in the platform would).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from aiaas.store import Database, open_artifact_store
from aiaas.training.jobs import SUCCEEDED, JobStore


def main() -> int:
    job_id = int(sys.argv[1])
    db = Database(os.environ["AIAAS_DATABASE_URL"])
    jobs = JobStore(db, open_artifact_store(os.environ["AIAAS_ARTIFACT_ROOT"]))
    job = jobs.get(job_id)
    action = job.spec["probe"]
    jobs.log(job_id, f"probe {action} attempt {job.attempts} pid {os.getpid()}")
    if action == "crash":
        print("boom: the probe crashed", flush=True)
        return 3
    if action == "hold":
        release = Path(job.spec["release"])
        while not release.exists():
            time.sleep(0.02)
    jobs.finish(job_id, SUCCEEDED, "probe finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
