"""``python -m aiaas.training.distributed DIR``: one rank of a data-parallel run, from a job folder.

Data-parallel training is DistributedDataParallel over N processes, each in a named role (see
:mod:`aiaas.training.group`). This module is the entry point of a :class:`Member` process:

* **Started by a coordinator** (``workers: N`` in a plain process, see
  :mod:`aiaas.training.coordinator`): the command line names the rank, the group size and the
  rendezvous (``--rank R --world-size N --init-method tcp://127.0.0.1:PORT``).
* **Started by torchrun** (or by hand, on several machines): no ``--rank``; the rank is read
  from torch distributed's own variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
  ``MASTER_PORT``), and ``WORLD_SIZE`` decides the number of ranks. Rank 0 reports.

The backend is NCCL when every local rank can have its own CUDA device, gloo on CPU otherwise.

Across machines with ``torchrun`` (the same folder, written by :func:`write_job_folder`, on
every machine; rank 0 writes the results there)::

    # machine A (rank 0, reachable as 10.0.0.1), and machine B with --node-rank=1
    torchrun --nnodes=2 --nproc-per-node=1 --node-rank=0 \\
        --master-addr=10.0.0.1 --master-port=29500 -m aiaas.training.distributed /data/job
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiaas.errors import InvalidArgument
from aiaas.training.group import ENV_KEYS, Member, external_env, member_from_env
from aiaas.training.job_folder import FolderReporter, read_job_folder, write_job_folder, write_result
from aiaas.training.reporter import NullReporter, Reporter
from aiaas.training.trainer import train

__all__ = ["ENV_KEYS", "external_env", "main", "run_job_folder", "write_job_folder"]


def run_job_folder(folder: Path, member: Member) -> int:
    """Train as rank ``member.rank`` on the job in ``folder``.

    Rank 0 (when it is this entry point, not a coordinator) reports through a
    :class:`FolderReporter` and writes its result into the folder (:func:`write_result`).

    Returns:
        the process exit status: 0 done, 1 the job was refused.
    """
    spec, data, resume, warm, threads = read_job_folder(folder)
    reporter: Reporter = FolderReporter(folder) if member.rank == 0 else NullReporter()
    try:
        result = train(spec, data, reporter, resume=resume, warm_start=warm, threads=threads, role=member)
    except InvalidArgument as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    if member.rank == 0:
        write_result(folder, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; 2 when no rank is named, neither there nor by torchrun."""
    parser = argparse.ArgumentParser(
        prog="python -m aiaas.training.distributed",
        description="Run one rank of a data-parallel job written to DIR. The rank comes from "
        "--rank/--world-size/--init-method, or else from torch distributed's variables "
        f"({', '.join(ENV_KEYS)}, as torchrun sets them).",
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="the job folder (write_job_folder)")
    parser.add_argument("--rank", type=int, help="this process' rank, 0..world_size-1")
    parser.add_argument("--world-size", type=int, help="ranks in the group")
    parser.add_argument("--init-method", default="env://", help="rendezvous URL, e.g. tcp://host:port")
    parser.add_argument("--local-rank", type=int, help="rank on this machine (default: --rank)")
    parser.add_argument("--local-world-size", type=int, help="ranks on this machine (default: all)")
    args = parser.parse_args(argv)
    member: Member | None
    if args.rank is not None and args.world_size is not None:
        try:
            member = Member(
                args.rank, args.world_size, args.init_method, args.local_rank, args.local_world_size
            )
        except ValueError as exc:
            parser.error(str(exc))
    else:
        member = member_from_env()
    if member is None:
        print(
            "usage: python -m aiaas.training.distributed DIR --rank R --world-size N --init-method URL, "
            "or under torchrun (RANK=.. WORLD_SIZE=.. MASTER_ADDR=.. MASTER_PORT=..)",
            file=sys.stderr,
        )
        return 2
    return run_job_folder(args.folder, member)


if __name__ == "__main__":
    sys.exit(main())
