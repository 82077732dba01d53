"""Data-parallel training: DistributedDataParallel over N processes.

Two ways to get a process group:

* **Local** (``workers: N``, no torch distributed environment): the calling process is
  rank 0. It writes the spec, the arrays (an ``.npz``, no pickle) and any resume/warm-start
  bytes to a temporary folder, starts ranks 1..N-1 as ``python -m aiaas.training.distributed FOLDER``
  with ``MASTER_ADDR``/``MASTER_PORT`` (a free port)/``RANK``/``WORLD_SIZE`` in their
  environment, and joins them. If anything fails, the children are killed and the error
  (with their stderr) is raised.
* **External** (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` already set, by
  ``torchrun`` or by hand on several machines): ``train`` joins that group and spawns nothing;
  ``WORLD_SIZE`` decides the number of ranks. Rank 0 is the one whose reporter is used.

The backend is NCCL when every local rank can have its own CUDA device, gloo on CPU otherwise.
This module reads the process environment because that is the torch distributed contract.

Across machines with ``torchrun`` (the same folder, written by :func:`write_job_folder`, on
every machine; rank 0 writes the results there)::

    # machine A (rank 0, reachable as 10.0.0.1), and machine B with --node-rank=1
    torchrun --nnodes=2 --nproc-per-node=1 --node-rank=0 \\
        --master-addr=10.0.0.1 --master-port=29500 -m aiaas.training.distributed /data/job
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from aiaas.errors import AiaasError, InvalidArgument
from aiaas.formats import ModelPackage
from aiaas.processes import die_with_parent
from aiaas.schemas.training import JobSpec
from aiaas.training.data import TrainingData
from aiaas.training.text_data import TokenizedText
from aiaas.training.torch_trainer import Group

__all__ = [
    "ENV_KEYS",
    "FolderReporter",
    "external_env",
    "joined_group",
    "launch_local",
    "read_job_folder",
    "run_job_folder",
    "write_job_folder",
]

ENV_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: How long a rank waits for the others (to join, or at a collective) before failing.
TIMEOUT_S = 300


def external_env(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The torch distributed variables when all four are set, else None."""
    env = os.environ if environ is None else environ
    if all(env.get(k) for k in ENV_KEYS):
        return {k: env[k] for k in ENV_KEYS}
    return None


def _device_for(rank: int, world_size: int) -> tuple[str, str]:
    """NCCL with one GPU per rank when this machine has a GPU for each of its ranks, else gloo.

    Every rank must choose the same backend, so the rule depends only on what torchrun
    tells every rank alike (``LOCAL_WORLD_SIZE``, the ranks per machine) and on the GPU
    count, which is assumed equal on every machine.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    if torch.cuda.is_available() and torch.cuda.device_count() >= local_world:
        return "nccl", f"cuda:{local_rank}"
    return "gloo", "cpu"


@contextmanager
def joined_group(rank: int, world_size: int, init_method: str) -> Iterator[Group]:
    """Join (and at the end leave) a process group, unless the caller already made one."""
    backend, device = _device_for(rank, world_size)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(
            backend,
            init_method=init_method,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=TIMEOUT_S),
        )
    try:
        yield Group(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_job_folder(
    folder: Path,
    spec: JobSpec,
    data: TrainingData | TokenizedText,
    resume: bytes | None = None,
    warm_start: bytes | None = None,
    threads: int | None = None,
) -> None:
    """Write what ``python -m aiaas.training.distributed FOLDER`` needs: ``job.json`` (spec,
    names, classes, threads; or the tokenizer of a language model), ``data.npz`` (plain arrays:
    features and labels, or token ids), ``resume.bin``/``warm_start.bin``."""
    meta: dict[str, Any] = {"spec": spec.model_dump(mode="json"), "threads": threads}
    if isinstance(data, TokenizedText):
        np.savez(folder / "data.npz", train_ids=data.train_ids, validation_ids=data.validation_ids)
        meta["text"] = {
            "tokenizer": data.tokenizer,
            "tokenizer_files": data.tokenizer_files,
            "eos_id": data.eos_id,
            "vocab_size": data.vocab_size,
            "documents": list(data.documents),
            "chat": data.chat,
        }
    else:
        np.savez(
            folder / "data.npz",
            x_train=data.x_train,
            y_train=data.y_train,
            x_val=data.x_val,
            y_val=data.y_val,
        )
        meta |= {
            "feature_names": data.feature_names,
            "task": data.task,
            "classes": data.classes,
            "image_shape": list(data.image_shape) if data.image_shape else None,
        }
    (folder / "job.json").write_text(json.dumps(meta))
    if resume is not None:
        (folder / "resume.bin").write_bytes(resume)
    if warm_start is not None:
        (folder / "warm_start.bin").write_bytes(warm_start)


def read_job_folder(
    folder: Path,
) -> tuple[JobSpec, TrainingData | TokenizedText, bytes | None, bytes | None, int | None]:
    """Read a folder of :func:`write_job_folder` (arrays without pickle, spec re-validated)."""
    meta = json.loads((folder / "job.json").read_text())
    data: TrainingData | TokenizedText
    with np.load(folder / "data.npz", allow_pickle=False) as arrays:
        text = meta.get("text")
        if text is not None:
            data = TokenizedText(
                train_ids=arrays["train_ids"],
                validation_ids=arrays["validation_ids"],
                tokenizer=text["tokenizer"],
                tokenizer_files=text["tokenizer_files"],
                eos_id=text["eos_id"],
                vocab_size=text["vocab_size"],
                documents=tuple(text["documents"]),
                chat=text["chat"],
            )
        else:
            data = TrainingData(
                arrays["x_train"],
                arrays["y_train"],
                arrays["x_val"],
                arrays["y_val"],
                meta["feature_names"],
                meta["task"],
                classes=meta["classes"],
                image_shape=tuple(meta["image_shape"]) if meta["image_shape"] else None,
            )
    resume = (folder / "resume.bin").read_bytes() if (folder / "resume.bin").exists() else None
    warm = (folder / "warm_start.bin").read_bytes() if (folder / "warm_start.bin").exists() else None
    return JobSpec.model_validate(meta["spec"]), data, resume, warm, meta["threads"]


def launch_local(
    spec: JobSpec,
    data: TrainingData | TokenizedText,
    run: Callable[[Group], Any],
    *,
    resume: bytes | None,
    warm_start: bytes | None,
    threads: int | None,
) -> Any:
    """Start ranks 1..N-1 as subprocesses, run ``run`` as rank 0, and collect the children.

    Raises:
        AiaasError: a child failed (its stderr tail is in the message); the others are killed.
    """
    world_size = spec.workers
    folder = Path(tempfile.mkdtemp(prefix="aiaas-ddp-"))
    children: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        write_job_folder(folder, spec, data, resume, warm_start, threads)
        port = _free_port()
        for rank in range(1, world_size):
            env = {
                **os.environ,
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "LOCAL_WORLD_SIZE": str(world_size),
                "WORLD_SIZE": str(world_size),
            }
            log = folder / f"rank{rank}.log"
            with log.open("wb") as out:
                child = subprocess.Popen(
                    [sys.executable, "-m", "aiaas.training.distributed", str(folder)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # A rank whose rank 0 was killed (kill -9 of the job) would otherwise wait
                    # in a collective until the group's timeout.
                    preexec_fn=die_with_parent(signal.SIGKILL),
                )
            children.append((child, log))
        with joined_group(0, world_size, f"tcp://127.0.0.1:{port}") as group:
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


class FolderReporter:
    """Rank 0's reporter of a job run from a folder: JSON lines on stdout and in
    ``metrics.jsonl``, the last checkpoint in ``checkpoint.bin`` (written to a temporary file,
    fsync'ed, then renamed, so a killed run leaves the previous one whole)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _line(self, record: dict[str, Any]) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        with (self.folder / "metrics.jsonl").open("a") as f:
            f.write(line + "\n")

    def log(self, message: str) -> None:
        self._line({"log": message})

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self._line({"epoch": epoch, **metrics})

    def checkpoint(self, epoch: int, state: bytes) -> None:
        _write_atomic(self.folder / "checkpoint.bin", state)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def run_job_folder(folder: Path) -> int:
    """Run one rank of the job in a folder; the environment names the rank.

    This is ``python -m aiaas.training.distributed DIR``: ranks 1..N-1 of a local run, and every rank
    under ``torchrun``. Rank 0 (when it is this entry point, not a caller of ``train``)
    reports through a :class:`FolderReporter` and writes ``model.onnx`` (a language model:
    the folder ``model/``), ``state.bin`` and ``result.json`` (metrics, params, history) into
    the folder.

    Returns:
        the process exit status: 0 done, 1 the job was refused, 2 no distributed environment.
    """
    from aiaas.training.reporter import NullReporter
    from aiaas.training.trainer import train

    if external_env() is None:
        print(
            "usage: RANK=.. WORLD_SIZE=.. MASTER_ADDR=.. MASTER_PORT=.. "
            "python -m aiaas.training.distributed DIR",
            file=sys.stderr,
        )
        return 2
    spec, data, resume, warm, threads = read_job_folder(folder)
    rank = int(os.environ["RANK"])
    reporter = FolderReporter(folder) if rank == 0 else NullReporter()
    try:
        result = train(spec, data, reporter, resume=resume, warm_start=warm, threads=threads)
    except InvalidArgument as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    if rank == 0:
        if isinstance(result.package, ModelPackage):
            _write_atomic(folder / "model.onnx", result.package.onnx)
        elif result.package is not None:
            for name, content in result.package.files.items():
                (folder / "model" / name).parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(folder / "model" / name, content)
        _write_atomic(folder / "state.bin", result.state)
        summary = {"metrics": result.metrics, "params": result.params, "history": result.history}
        _write_atomic(folder / "result.json", json.dumps(summary).encode())
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m aiaas.training.distributed DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_job_folder(Path(sys.argv[1])))
