"""CPU time and resident memory of a process, read from ``/proc``, for the metrics of both servers.

The inference server reports them for each replica process it runs (a replica is a child,
not the process answering the scrape, so prometheus_client's own process collector, which
describes only the process it runs in, cannot); the control plane reports its own.
``/proc`` is what that collector reads too, and needs no extra dependency. Elsewhere than
Linux, or for a process that has just exited, there is nothing to read: the caller leaves
that process out of the metrics rather than reporting zeros.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessUsage", "process_usage"]

_PROC = Path("/proc")
try:
    _TICKS_PER_S = float(os.sysconf("SC_CLK_TCK"))
    _PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):  # pragma: no cover - not a POSIX system
    _TICKS_PER_S, _PAGE_BYTES = 100.0, 4096


@dataclass(frozen=True)
class ProcessUsage:
    """What a process has used: CPU seconds (user + system, since it started) and resident bytes."""

    cpu_seconds: float
    resident_bytes: int


def process_usage(pid: int) -> ProcessUsage | None:
    """The usage of process ``pid``, or ``None`` when it cannot be read (gone, or not Linux)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        statm = (_PROC / str(pid) / "statm").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count from after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        resident_pages = int(statm.split()[1])
    except (IndexError, ValueError):
        return None
    return ProcessUsage(
        cpu_seconds=(utime + stime) / _TICKS_PER_S, resident_bytes=resident_pages * _PAGE_BYTES
    )
