"""The one interface every served version runs through, and its in-process implementation.

A version runs in one of three places: an ONNX Runtime session in this process
(``AIAAS_REPLICA_PROCESSES=false``), a :class:`~aiaas.serving.replica_set.ReplicaSet` of
replica processes (the default), or the PyTorch replica of a language or embedding model
(:class:`~aiaas.serving.generative.GenerativeModel`). The dispatcher and the batcher used to
branch on which one they held, and the in-process session was called from a worker thread
with a different signature than the others. Each is now a :class:`Runtime`: one ``async
run`` that returns the outputs and the model's own run time, under a deadline, so the code
above asks nothing about where the model is.

What differs stays inside the implementations:

- :class:`InProcessRuntime` runs a model measured under :data:`INLINE_BELOW_S` inline on the
  event loop (handing a 5 µs model to a thread costs far more than running it: the hop, not
  the model, was where the time went in ``benchmarks/serving.py``) and any other on the
  server's worker threads, so big models use every core and health checks keep answering.
- A replica set sends the arrays over a socket and awaits the answer; it counts requests
  for the autoscaler (:meth:`Runtime.request_in_flight`) and says how many batches it can
  run at once (:meth:`Runtime.concurrency`, one per ready replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

import numpy as np

from aiaas.errors import DeadlineExceeded
from aiaas.formats import OnnxModel

__all__ = ["INLINE_BELOW_S", "Arrays", "InProcessRuntime", "Runtime"]

Arrays = dict[str, np.ndarray[Any, Any]]

#: Models whose measured run time stays below this run on the event loop itself.
INLINE_BELOW_S = 0.00005
#: How many runs on the worker threads measure a model before it may run inline.
_MEASURED_RUNS = 8
_EWMA = 0.2


class Runtime(Protocol):
    """Where one served version runs: this process, replica processes, or a PyTorch replica."""

    async def run(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Sequence[str] | None,
        timeout_s: float,
        *,
        counted: bool = False,
    ) -> tuple[Arrays, float]:
        """Run one request or one batch: the outputs (in the order asked for) and the
        seconds the model itself took.

        Args:
            inputs: input name → array, already checked against the version's signature.
            outputs: the outputs to compute; all of them when ``None``.
            timeout_s: the deployment's ``timeout_s``; past it, :class:`DeadlineExceeded`.
            counted: the caller already counts this call's requests through
                :meth:`request_in_flight` (a batcher in front of the runtime does).
        """
        ...

    def request_in_flight(self) -> contextlib.AbstractContextManager[None]:
        """Count one request for the autoscaler while the block runs (a batched request is
        counted from the moment it is queued, not only during its batch's one call)."""
        ...

    def concurrency(self) -> int | None:
        """How many batches may run at once now; ``None``: the batcher's own limit."""
        ...


class InProcessRuntime:
    """An ONNX Runtime session in the inference server's own process.

    Args:
        model: the loaded session (shared by every deployment serving the same artifact).
        executor: the worker threads for models too slow to run inline; ``None`` is the
            event loop's default executor.
        label: names the deployment in a deadline error.

    Example:
        >>> runtime = InProcessRuntime(model, executor, label="deployment 'iris'")  # doctest: +SKIP
        >>> outputs, compute_s = await runtime.run({"X": x}, None, timeout_s=1.0)  # doctest: +SKIP
    """

    def __init__(
        self, model: OnnxModel, executor: Executor | None = None, *, label: str = "the model"
    ) -> None:
        self.model = model
        self.executor = executor
        self.label = label
        self.runs = 0
        #: Exponentially weighted mean of the model's run time, in seconds.
        self.mean_compute_s = 0.0

    @property
    def inline(self) -> bool:
        """Whether the next run happens on the event loop (the model was measured fast)."""
        return self.runs >= _MEASURED_RUNS and self.mean_compute_s < INLINE_BELOW_S

    async def run(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        outputs: Sequence[str] | None,
        timeout_s: float,
        *,
        counted: bool = False,
    ) -> tuple[Arrays, float]:
        if self.inline:
            result, compute_s = _timed_run(self.model, inputs, outputs)
        else:
            future = asyncio.get_running_loop().run_in_executor(
                self.executor, _timed_run, self.model, inputs, outputs
            )
            try:
                result, compute_s = await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"{self.label} did not answer within timeout_s={timeout_s}",
                    details={"timeout_s": timeout_s},
                ) from None
        self.runs += 1
        self.mean_compute_s = (
            compute_s if self.runs == 1 else (1 - _EWMA) * self.mean_compute_s + _EWMA * compute_s
        )
        return result, compute_s

    @contextlib.contextmanager
    def request_in_flight(self) -> Iterator[None]:
        """Nothing to count: an in-process version does not scale."""
        yield

    def concurrency(self) -> int | None:
        return None


def _timed_run(
    model: OnnxModel, inputs: Mapping[str, np.ndarray[Any, Any]], outputs: Sequence[str] | None
) -> tuple[Arrays, float]:
    started = time.perf_counter()
    result = model.run(inputs, outputs)
    return result, time.perf_counter() - started
