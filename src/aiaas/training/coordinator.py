"""The coordinator of a local data-parallel run: rank 0, which starts ranks 1..N-1 and collects them.

It writes the job to a temporary folder (:mod:`aiaas.training.job_folder`), starts each other
rank as ``python -m aiaas.training.distributed FOLDER --rank R --world-size N --init-method
tcp://127.0.0.1:PORT`` (the role and rank on the command line; a free local port), joins the
group as rank 0 and trains. If anything fails, the children are killed and the error (with
their output) is raised.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from aiaas.errors import AiaasError
from aiaas.processes import die_with_parent
from aiaas.schemas.training import JobSpec
from aiaas.training.data import TrainingData
from aiaas.training.group import TIMEOUT_S, Group, Member, joined_group
from aiaas.training.job_folder import write_job_folder
from aiaas.training.text_data import TokenizedText

__all__ = ["RANK_MODULE", "launch_local", "rank_command"]

#: The module every rank but the coordinator runs (see :mod:`aiaas.training.distributed`).
RANK_MODULE = "aiaas.training.distributed"

T = TypeVar("T")


def rank_command(folder: Path, member: Member) -> list[str]:
    """The command line of a rank process: the folder, and the rank it plays in which group."""
    command = [sys.executable, "-m", RANK_MODULE, str(folder)]
    command += ["--rank", str(member.rank), "--world-size", str(member.world_size)]
    command += ["--init-method", member.init_method]
    if member.local_rank is not None:
        command += ["--local-rank", str(member.local_rank)]
    if member.local_world_size is not None:
        command += ["--local-world-size", str(member.local_world_size)]
    return command


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_local(
    spec: JobSpec,
    data: TrainingData | TokenizedText,
    run: Callable[[Group], T],
    *,
    resume: bytes | None,
    warm_start: bytes | None,
    threads: int | None,
) -> T:
    """Start ranks 1..N-1 as subprocesses, run ``run`` as rank 0, and collect the children.

    Raises:
        AiaasError: a child failed (its output's tail is in the message); the others are killed.
    """
    world_size = spec.workers
    folder = Path(tempfile.mkdtemp(prefix="aiaas-ddp-"))
    children: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        write_job_folder(folder, spec, data, resume, warm_start, threads)
        init = f"tcp://127.0.0.1:{_free_port()}"

        def member(rank: int) -> Member:
            return Member(rank, world_size, init, local_rank=rank, local_world_size=world_size)

        for rank in range(1, world_size):
            log = folder / f"rank{rank}.log"
            with log.open("wb") as out:
                child = subprocess.Popen(
                    rank_command(folder, member(rank)),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # A rank whose rank 0 was killed (kill -9 of the job) would otherwise wait
                    # in a collective until the group's timeout.
                    preexec_fn=die_with_parent(signal.SIGKILL),
                )
            children.append((child, log))
        with joined_group(member(0)) as group:
            result = run(group)
        for child, log in children:
            if child.wait(timeout=TIMEOUT_S) != 0:
                raise AiaasError(f"data-parallel rank failed: {_tail(log)}")
        return result
    except Exception as exc:
        failed = [_tail(log) for child, log in children if child.poll() not in (None, 0)]
        if failed and not isinstance(exc, AiaasError):
            raise AiaasError(f"data-parallel training failed: {exc}; a rank said: {failed[0]}") from exc
        raise
    finally:
        for child, _ in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _tail(log: Path, size: int = 2000) -> str:
    try:
        return log.read_bytes()[-size:].decode(errors="replace").strip()
    except OSError:
        return "(no output)"
