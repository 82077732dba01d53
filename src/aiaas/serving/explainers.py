"""Explanations for served versions, computed in a worker process of their own.

An explanation costs thousands of model evaluations per row (see :mod:`aiaas.explain`), so it
never runs on the inference server's event loop nor in the replicas that answer predictions:
a replica answers its frames in order, and one explanation there would hold every prediction
queued behind it. Instead the server keeps a small pool of explanation worker processes
(:data:`EXPLAIN_WORKERS`, started on the first explanation, spawned rather than forked: the
server is multi-threaded). The event loop awaits their answers; shap and its numba kernels are
imported only there, so a server that never explains never pays for them.

Bounds, all named here: :data:`EXPLAIN_MAX_PENDING` explanations in flight at once (429 past
it), :data:`EXPLAIN_TIMEOUT_S` for one answer (504; the worker still finishes that explanation,
whose cost rows per request and evaluations per row bound), rows per request and evaluations per
row in :mod:`aiaas.explain`. A worker that dies (killed, out of memory) is replaced on the next
request; the request it was running gets 503.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.errors import Conflict, DeadlineExceeded, ResourceExhausted, Unavailable
from aiaas.explain import (
    Attributions,
    ExplainTask,
    decode_background,
    explain_rows,
    explained_input,
    explained_output,
)
from aiaas.formats import Signature
from aiaas.registry import ModelVersion, ReferenceStore, Registry
from aiaas.store import ArtifactStore

__all__ = [
    "EXPLAIN_MAX_PENDING",
    "EXPLAIN_TIMEOUT_S",
    "EXPLAIN_WORKERS",
    "ExplainTarget",
    "Explainers",
    "background_for",
]

#: Explanation worker processes per inference server.
EXPLAIN_WORKERS = 1
#: Explanations admitted at once (running or waiting for a worker); more get 429.
EXPLAIN_MAX_PENDING = 8
#: How long one explanation may take, the first one's worker start and imports included.
EXPLAIN_TIMEOUT_S = 120.0
#: Versions whose explanation inputs (model bytes, background) the server keeps in memory.
_TARGETS_KEPT = 8

Array = np.ndarray[Any, Any]


def background_for(
    version: ModelVersion, artifacts: ArtifactStore, references: ReferenceStore | None = None
) -> tuple[Array, list[str]] | None:
    """The background sample a version is explained against and its feature names (``[]``:
    unknown), or ``None`` when it has none.

    The one place that decides where a background comes from: versions trained by a training
    job store a seeded sample of their training rows at registration (``lineage.background``);
    an uploaded version gets one from the dataset named as its drift reference (at
    registration or deployment, ``reference_dataset``), kept with that reference.
    """
    lineage = version.lineage or {}
    stored = lineage.get("background")
    if isinstance(stored, dict) and stored.get("digest"):
        names = lineage.get("feature_names")
        return decode_background(artifacts.get(str(stored["digest"]))), list(names or [])
    reference = references.get(version.model, version.version) if references is not None else None
    kept = reference.source.get("background") if reference is not None else None
    if reference is not None and isinstance(kept, dict) and kept.get("digest"):
        names = reference.source.get("feature_names")
        return decode_background(artifacts.get(str(kept["digest"]))), list(names or [])
    return None


@dataclass(frozen=True)
class ExplainTarget:
    """Everything an explanation of one version needs besides the rows.

    ``output_columns`` label the explained output's columns: the class labels of a classifier's
    score output, else the output's name (one column).
    """

    model: str
    version: int
    digest: str
    onnx: bytes
    input_name: str
    input_dtype: np.dtype[Any]
    output_name: str
    output_columns: tuple[Any, ...]
    classes: bool
    feature_names: tuple[str, ...]
    background: Array

    def task(self, rows: Array, max_evals: int, seed: int) -> ExplainTask:
        return ExplainTask(
            model_digest=self.digest,
            model=self.onnx,
            input_name=self.input_name,
            output_name=self.output_name,
            background=self.background,
            rows=np.ascontiguousarray(rows, dtype=self.input_dtype),
            max_evals=max_evals,
            seed=seed,
        )


class Explainers:
    """The server's explanation workers and what they need per version.

    Args:
        registry: where versions, their artifacts and background samples are read.
        workers: explanation worker processes.
        max_pending: explanations admitted at once.
        timeout_s: the most one explanation may take.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        workers: int = EXPLAIN_WORKERS,
        max_pending: int = EXPLAIN_MAX_PENDING,
        timeout_s: float = EXPLAIN_TIMEOUT_S,
    ) -> None:
        if workers < 1 or max_pending < 1 or timeout_s <= 0:
            raise ValueError(
                f"workers and max_pending must be >= 1 and timeout_s > 0; "
                f"got {workers}, {max_pending}, {timeout_s}"
            )
        self.registry = registry
        self.workers = workers
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self._pool: ProcessPoolExecutor | None = None
        self._pending = 0
        self._targets: OrderedDict[tuple[str, int, str], ExplainTarget] = OrderedDict()
        self._lock = threading.Lock()

    def target(self, model: str, version: int, digest: str, signature: Signature) -> ExplainTarget:
        """What explaining ``model`` ``version`` needs (blocking: reads the DB and artifacts).

        Raises:
            Conflict: the model cannot be explained (its inputs or outputs), or the version has
                no background sample.
        """
        input_name, dtype, features = explained_input(signature)
        output_name, columns, classes = explained_output(signature)
        key = (model, version, digest)
        with self._lock:
            known = self._targets.get(key)
            if known is not None:
                self._targets.move_to_end(key)
                return known
        stored = self.registry.get_version(model, version)
        found = background_for(
            stored, self.registry.artifacts, ReferenceStore(self.registry.db, project=self.registry.project)
        )
        if found is None:
            raise Conflict(
                f"version {version} of model {model!r} has no background sample to explain against: "
                "versions trained by a training job (aiaas jobs submit) store one from their training "
                "data; for an uploaded model, name a dataset of the rows it is meant to see as its "
                "reference_dataset (at registration or deployment)",
                details={"model": model, "version": version, "field": "background"},
            )
        background, names = found
        if background.ndim != 2 or background.shape[1] != features:
            raise Conflict(
                f"the background sample of version {version} of {model!r} has shape "
                f"{list(background.shape)}; the model takes {features} features",
                details={"model": model, "version": version, "field": "background"},
            )
        if len(names) != features:
            names = [f"{input_name}[{i}]" for i in range(features)]
        target = ExplainTarget(
            model=model,
            version=version,
            digest=digest,
            onnx=self.registry.artifacts.get(digest),
            input_name=input_name,
            input_dtype=dtype,
            output_name=output_name,
            output_columns=columns,
            classes=classes,
            feature_names=tuple(str(n) for n in names),
            background=background,
        )
        with self._lock:
            self._targets[key] = target
            while len(self._targets) > _TARGETS_KEPT:
                self._targets.popitem(last=False)
        return target

    async def explain(self, task: ExplainTask) -> Attributions:
        """Run ``task`` in a worker process and await its answer.

        Raises:
            ResourceExhausted: :attr:`max_pending` explanations are already admitted.
            DeadlineExceeded: no answer within :attr:`timeout_s`.
            Unavailable: the worker died while running it.
            InvalidArgument: the model rejected the rows.
        """
        if self._pending >= self.max_pending:
            raise ResourceExhausted(
                f"{self.max_pending} explanations are already running or waiting "
                "(EXPLAIN_MAX_PENDING); retry shortly",
                details={"limit": self.max_pending},
            )
        self._pending += 1
        pool = self._worker_pool()
        try:
            future = asyncio.get_running_loop().run_in_executor(pool, explain_rows, task)
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the explanation did not finish within {self.timeout_s:.0f} s (EXPLAIN_TIMEOUT_S); "
                "send fewer rows or a smaller max_evals",
                details={"limit_s": self.timeout_s},
            ) from None
        except BrokenProcessPool:
            self._replace(pool)
            raise Unavailable("the explanation worker died while explaining; retry") from None
        finally:
            self._pending -= 1

    def _worker_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:
            self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (running explanations are abandoned)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
