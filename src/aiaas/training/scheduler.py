"""The training scheduler: queued jobs become child processes within a budget of CPU slots.

It runs inside the control plane as one thread. Each pass reaps finished children, stops the
ones whose job was cancelled, and starts queued jobs that fit in the free slots, oldest first
(a younger small job may start beside an older large one that is still waiting: slots are not
held back). A child that dies by a signal without finishing its job (``kill -9``, the out-of-
memory killer) is put back in the queue and resumes from its last checkpoint, up to
``max_attempts`` starts. When the control plane stops, its children stop and their jobs go back
to the queue; when it starts again, jobs still marked running are recovered the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aiaas.processes import die_with_parent
from aiaas.training.jobs import CANCELLED, FAILED, RUNNING, JobStore

__all__ = ["Scheduler", "worker_command"]

_log = logging.getLogger("aiaas.training")

#: Seconds a cancelled or stopped job gets to exit on SIGTERM before SIGKILL.
_STOP_GRACE_S = 5.0
#: Lines of a crashed worker's output kept as the job's error.
_ERROR_TAIL_LINES = 20


def worker_command() -> list[str]:
    """The command that runs one job (its id is appended): this interpreter, this package."""
    return [sys.executable, "-m", "aiaas.training.worker"]


@dataclass
class _Child:
    job_id: int
    workers: int
    proc: subprocess.Popen[bytes]
    output: IO[bytes]
    output_path: Path
    stop_sent_at: float | None = None


class Scheduler:
    """Runs queued training jobs as child processes, at most ``slots`` CPU slots at a time.

    Args:
        jobs: the job store (the only shared state; two schedulers never run one job twice,
            because claiming a job is a conditional update).
        slots: CPU slots to fill.
        env: environment of the worker processes (database URL, artifact root, home).
        log_dir: where each job's process output goes (``job-<id>.log``), kept for post-mortems.
        interval_s: seconds between passes.
        max_attempts: starts of one job before a job whose process keeps dying is failed.
        command: the worker command, its job id appended.
        commands: worker commands of other kinds of job, by the ``kind`` their stored spec
            names (an optimization job: ``{"optimize": [..., "-m", "aiaas.optimize.worker"]}``);
            a spec without a kind is a training job, run by ``command``.
    """

    def __init__(
        self,
        jobs: JobStore,
        *,
        slots: int,
        env: Mapping[str, str],
        log_dir: Path,
        interval_s: float = 0.25,
        max_attempts: int = 3,
        command: Sequence[str] | None = None,
        commands: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.jobs = jobs
        self.slots = slots
        self.env = dict(env)
        self.log_dir = log_dir
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self.command = list(command or worker_command())
        self.commands = {kind: list(c) for kind, c in (commands or {}).items()}
        self._children: dict[int, _Child] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def used_slots(self) -> int:
        return sum(child.workers for child in self._children.values())

    def start(self) -> None:
        """Recover jobs a previous control plane left running, then schedule in a thread."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="aiaas-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; running jobs stop and go back to the queue (they resume later)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for child in list(self._children.values()):
            _signal_group(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for child in list(self._children.values()):
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.proc, signal.SIGKILL)
                child.proc.wait()
            child.output.close()
            self.jobs.requeue(child.job_id, "control plane stopped; the job resumes from its last checkpoint")
        self._children.clear()

    def recover(self) -> None:
        """Jobs marked running that no child of ours runs belonged to a control plane that died.

        Their worker normally died with it (it gets SIGKILL when its parent dies); one that is
        somehow still running is killed first, so no job ever runs twice.
        """
        for job in self.jobs.running():
            if job.id in self._children:
                continue
            if job.pid is not None and _is_worker_of(job.pid, job.id, self._markers()):
                _kill_and_wait(job.pid)
            if job.cancel_requested:
                self.jobs.finish(job.id, CANCELLED, "cancelled")
            else:
                self.jobs.requeue(job.id, "control plane restarted; the job resumes from its last checkpoint")

    def tick(self) -> None:
        """One pass: reap, stop cancelled jobs, start queued ones."""
        self._reap()
        self._stop_cancelled()
        self._start_queued()

    # -- internals ----------------------------------------------------------------------------

    def _command(self, spec: Mapping[str, object]) -> list[str]:
        kind = spec.get("kind")
        return self.commands.get(kind, self.command) if isinstance(kind, str) else self.command

    def _markers(self) -> set[bytes]:
        """The last word of each worker command (its module), to recognise our workers by."""
        return {c[-1].encode() for c in [self.command, *self.commands.values()] if c}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the database may be briefly unavailable: try again next pass
                _log.exception("training scheduler pass failed; retrying")

    def _start_queued(self) -> None:
        free = self.slots - self.used_slots
        for job in self.jobs.queued():
            if job.workers > free:
                continue
            if not self.jobs.claim(job.id):
                continue
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output_path = self.log_dir / f"job-{job.id}.log"
            output = output_path.open("ab")
            try:
                proc = subprocess.Popen(
                    [*self._command(job.spec), str(job.id)],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: data-parallel ranks stop with it
                    preexec_fn=die_with_parent(signal.SIGKILL),
                )
            except OSError as exc:
                output.close()
                self.jobs.finish(job.id, FAILED, "could not start the worker", error=str(exc))
                continue
            self.jobs.set_pid(job.id, proc.pid)
            self._children[job.id] = _Child(job.id, job.workers, proc, output, output_path)
            free -= job.workers
            _log.info("job %d started (pid %d, %d slot(s))", job.id, proc.pid, job.workers)

    def _reap(self) -> None:
        for job_id, child in list(self._children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            del self._children[job_id]
            child.output.close()
            _signal_group(child.proc, signal.SIGKILL)  # ranks it started, should any linger
            job = self.jobs.get(job_id)
            if job.status != RUNNING:
                continue  # the worker recorded how it ended
            if job.cancel_requested:
                self.jobs.finish(job_id, CANCELLED, "cancelled")
            elif (signum := _death_signal(code)) and job.attempts < self.max_attempts:
                where = f"epoch {job.checkpoint_epoch}" if job.checkpoint_epoch else "the start"
                self.jobs.requeue(
                    job_id,
                    f"worker killed by signal {signum} ({_signal_name(signum)}); resuming from {where}",
                )
            else:
                signum = _death_signal(code)
                how = f"was killed by signal {signum}" if signum else f"exited with status {code}"
                self.jobs.finish(
                    job_id,
                    FAILED,
                    f"failed: the worker {how}",
                    error=f"the worker {how}\n{_tail(child.output_path)}".strip(),
                )

    def _stop_cancelled(self) -> None:
        now = time.monotonic()
        for job in self.jobs.running():
            child = self._children.get(job.id)
            if child is None or not job.cancel_requested:
                continue
            if child.stop_sent_at is None:
                _signal_group(child.proc, signal.SIGTERM)
                child.stop_sent_at = now
            elif now - child.stop_sent_at > _STOP_GRACE_S:
                _signal_group(child.proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _death_signal(code: int) -> int | None:
    """The signal that ended a child: negative codes from Popen, or 128 + N from a worker that
    caught SIGTERM and left quietly (see :mod:`aiaas.training.worker`)."""
    if code < 0:
        return -code
    if code == 128 + signal.SIGTERM:
        return int(signal.SIGTERM)
    return None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown"


def _is_worker_of(pid: int, job_id: int, markers: set[bytes]) -> bool:
    """True when ``pid`` is a live worker process of this job (Linux; elsewhere never)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(marker in argv for marker in markers) and str(job_id).encode() in argv


def _kill_and_wait(pid: int, timeout_s: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # not ours to wait() on: poll its /proc entry until it is gone


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_ERROR_TAIL_LINES:])
