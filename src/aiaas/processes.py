"""Child processes that must not outlive the process that started them.

The platform starts servers (``aiaas up``), training jobs (the scheduler) and replicas as
children. If the parent is killed, even by SIGKILL, a child left running would hold a port,
a CPU slot or a half-finished job that a restarted parent then runs a second time; Linux can
signal the child when its parent dies, which closes that gap.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

__all__ = ["die_with_parent"]


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``signum`` when its parent dies.

    A no-op outside Linux (there the parent's own shutdown path has to stop its children).
    """

    def arm() -> None:
        if sys.platform.startswith("linux"):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signum)

    return arm
