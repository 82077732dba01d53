"""A training process' role in a run, and the data-parallel group it joins.

Three roles, each named by whoever starts the process and passed to
:func:`aiaas.training.train` as an argument, never guessed from the environment:

* :class:`Alone`: one process trains the whole model (``workers: 1``, a scikit-learn family, a
  distillation).
* :class:`Coordinator`: the process that owns a local ``workers: N`` run. It is rank 0: it starts
  ranks 1..N-1 (:func:`aiaas.training.coordinator.launch_local`), trains with them, reports, and
  collects them.
* :class:`Member`: one rank of a group that someone else formed: the ranks a coordinator starts
  (it passes their rank on the command line), and every rank under ``torchrun``.

Only the entry points of a rank process (``python -m aiaas.training.distributed`` and
``python -m aiaas.training.launch``) read the environment, and only the variables that are
torch distributed's own contract (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, and
``LOCAL_RANK``/``LOCAL_WORLD_SIZE`` when torchrun sets them): :func:`member_from_env`.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from aiaas.schemas.training import JobSpec

__all__ = [
    "ENV_KEYS",
    "TIMEOUT_S",
    "Alone",
    "Coordinator",
    "Group",
    "Member",
    "Role",
    "default_role",
    "external_env",
    "joined_group",
    "member_from_env",
]

#: The variables torch's ``env://`` rendezvous needs; all four set means "a rank of a group".
ENV_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: How long a rank waits for the others (to join, or at a collective) before failing.
TIMEOUT_S = 300


@dataclass(frozen=True)
class Group:
    """This process' place in a data-parallel run (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@dataclass(frozen=True)
class Alone:
    """One process trains the whole model; nothing is spawned, no group is joined."""


@dataclass(frozen=True)
class Coordinator:
    """Rank 0 of a local run of ``spec.workers`` processes: starts the others and collects them."""


@dataclass(frozen=True)
class Member:
    """One rank of a group formed elsewhere.

    Attributes:
        rank: this process' rank, 0..world_size-1 (rank 0 reports, checkpoints and registers).
        world_size: ranks in the group, all machines together.
        init_method: torch's rendezvous: ``env://`` (torchrun) or ``tcp://host:port``.
        local_rank: this rank's index on its machine (its GPU, when each rank has one).
        local_world_size: ranks on this machine; equal on every machine.
    """

    rank: int
    world_size: int
    init_method: str = "env://"
    local_rank: int | None = None
    local_world_size: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in a group of {self.world_size}")


Role = Alone | Coordinator | Member


def default_role(spec: JobSpec) -> Alone | Coordinator:
    """The role of a process that is handed a whole job: alone, or the coordinator of
    ``spec.workers`` local ranks."""
    return Coordinator() if spec.workers > 1 else Alone()


def external_env(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The torch distributed variables when all four are set, else None."""
    env = os.environ if environ is None else environ
    if all(env.get(k) for k in ENV_KEYS):
        return {k: env[k] for k in ENV_KEYS}
    return None


def member_from_env(environ: Mapping[str, str] | None = None) -> Member | None:
    """This process' membership as torchrun (or a person) describes it in the environment:
    None unless all of :data:`ENV_KEYS` are set."""
    env = os.environ if environ is None else environ
    found = external_env(env)
    if found is None:
        return None
    local_rank, local_world = env.get("LOCAL_RANK"), env.get("LOCAL_WORLD_SIZE")
    return Member(
        rank=int(found["RANK"]),
        world_size=int(found["WORLD_SIZE"]),
        init_method="env://",
        local_rank=int(local_rank) if local_rank else None,
        local_world_size=int(local_world) if local_world else None,
    )


def _device_for(member: Member) -> tuple[str, str]:
    """NCCL with one GPU per rank when this machine has a GPU for each of its ranks, else gloo.

    Every rank must choose the same backend, so the rule depends only on what every rank is
    told alike (the ranks per machine) and on the GPU count, which is assumed equal on every
    machine.
    """
    local_rank = member.rank if member.local_rank is None else member.local_rank
    local_world = member.world_size if member.local_world_size is None else member.local_world_size
    if torch.cuda.is_available() and torch.cuda.device_count() >= local_world:
        return "nccl", f"cuda:{local_rank}"
    return "gloo", "cpu"


@contextmanager
def joined_group(member: Member) -> Iterator[Group]:
    """Join (and at the end leave) a process group, unless the caller already made one."""
    backend, device = _device_for(member)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(
            backend,
            init_method=member.init_method,
            rank=member.rank,
            world_size=member.world_size,
            timeout=datetime.timedelta(seconds=TIMEOUT_S),
        )
    try:
        yield Group(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
