"""``python -m aiaas.training.launch SPEC``: one rank of a data-parallel job across machines.

Run it under ``torchrun`` (or with ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK`` and ``WORLD_SIZE``
set by hand) on every machine, all pointing at the same metadata database and artifact store
(``AIAAS_DATABASE_URL=postgresql+psycopg://...``, ``AIAAS_ARTIFACT_ROOT`` on a shared file
system). Every rank reads the same pinned dataset version; rank 0 records the job (as an
``external`` job that no scheduler starts or requeues), reports its metrics and checkpoints,
and registers the result, exactly as a job run by the scheduler would.

Every process started here is a :class:`~aiaas.training.group.Member` of the group torchrun
forms; its rank is read once, from torch distributed's own variables, and passed on as that role.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from dataclasses import dataclass

from aiaas.config import load_settings
from aiaas.errors import AiaasError
from aiaas.registry import ModelVersion
from aiaas.schemas.training import JobSpec
from aiaas.training.group import ENV_KEYS, Member, member_from_env
from aiaas.training.jobs import JobStore
from aiaas.training.service import TrainingService
from aiaas.training.worker import open_service, run_recorded

__all__ = ["main"]


@dataclass(frozen=True)
class _RankZero:
    """The service as a :class:`~aiaas.training.worker.JobRunner` whose runs are rank 0 of
    ``member``'s group."""

    service: TrainingService
    member: Member

    @property
    def jobs(self) -> JobStore:
        return self.service.jobs

    def run(self, job_id: int) -> ModelVersion | None:
        return self.service.run(job_id, role=self.member)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aiaas.training.launch",
        description="Run one rank of a data-parallel training job (under torchrun, on each machine).",
    )
    parser.add_argument("spec", help="job spec file (YAML or JSON); the same file on every machine")
    args = parser.parse_args(argv)
    member = member_from_env()
    if member is None:
        missing = [name for name in ENV_KEYS if not os.environ.get(name)]
        parser.error(f"{', '.join(missing)} not set: start it with torchrun, or set them on every machine")
    world_size = member.world_size
    with open(args.spec) as handle:
        spec = JobSpec.from_text(handle.read(), source=args.spec)
    if spec.workers != world_size:
        spec = spec.model_copy(update={"workers": world_size})
    service = open_service(load_settings(), slots=world_size)
    try:
        if member.rank != 0:
            service.run_rank(spec, member)  # rank 0 reports, checkpoints and registers for the group
            return 0
        job = service.submit(spec, external=f"torchrun rank 0 on {socket.gethostname()}")
        print(f"job {job.id}: {world_size} ranks, registering as {job.register_as}", flush=True)
        return run_recorded(_RankZero(service, member), job.id)
    except AiaasError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        service.jobs.db.dispose()


if __name__ == "__main__":
    sys.exit(main())
