"""The model pool: loaded ONNX models and the route table that requests read.

A daemon thread reconciles the pool towards the deployments' desired state in the DB. It
polls the cheap serving revision every ``interval_s`` and only when that changed does it
read the full desired state, load what is new and build a new route table. The table is
then swapped in one assignment, so a request sees either the whole old table or the whole
new one: moving an alias switches serving without a single failed request, and requests
already running on the old version finish on it (they hold a reference to it).

Serving never depends on the DB staying up. A DB error keeps the current table and is
retried on the next tick; a version that cannot be loaded (corrupted or missing artifact,
invalid ONNX) is recorded in :attr:`ModelPool.errors` and its deployment keeps serving the
version it had, if any.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from aiaas.errors import AiaasError, NotFound, Unavailable
from aiaas.formats import OnnxModel, Signature
from aiaas.serving.deployments import DeploymentService, ServedTarget
from aiaas.store import ArtifactStore

__all__ = ["LoadedVersion", "ModelPool"]

logger = logging.getLogger("aiaas.serving.pool")

#: How long a failed load waits before the reconciler tries it again without a revision
#: change (a missing artifact may appear on a shared store; a corrupted one will not heal,
#: so this is kept long enough not to re-read large blobs all the time).
RETRY_FAILED_LOADS_S = 10.0

_ModelKey = tuple[str, int, str]  # (model, version, artifact digest)


@dataclass(frozen=True)
class LoadedVersion:
    """One model version loaded for one deployment: everything a request needs.

    :meth:`run` is the single call point for inference, so batching or replica processes
    can later slot in behind it without touching the HTTP layer.
    """

    deployment: str
    model: str
    version: int
    artifact_digest: str
    runtime: OnnxModel
    signature: Signature

    def run(
        self,
        inputs: Mapping[str, np.ndarray[Any, Any]],
        output_names: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model on inputs already checked against :attr:`signature`.

        Args:
            inputs: input name → array.
            output_names: the outputs to compute; all of them when ``None``.

        Returns:
            output name → array, in the order asked for.
        """
        return self.runtime.run(inputs, output_names)


@dataclass(frozen=True)
class _Table:
    """What requests read; replaced as a whole, never mutated."""

    routes: dict[str, LoadedVersion] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class ModelPool:
    """Loaded models and the deployment → version routes, kept in step with the DB.

    Args:
        deployments: where the desired state comes from (and the artifact store, through
            its registry).
        interval_s: how often the reconciler polls the serving revision.
        intra_op_threads: ONNX Runtime intra-op threads for each loaded model.
        max_pinned_versions: how many explicitly addressed versions
            (``/v2/models/{d}/versions/{v}``) stay loaded besides the routed ones.

    Example:
        >>> pool = ModelPool(DeploymentService(registry), interval_s=0.5)  # doctest: +SKIP
        >>> pool.start()  # doctest: +SKIP
        >>> pool.get("iris").run({"X": x})  # doctest: +SKIP
    """

    def __init__(
        self,
        deployments: DeploymentService,
        *,
        interval_s: float = 0.5,
        intra_op_threads: int = 1,
        max_pinned_versions: int = 8,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0; got {interval_s!r}")
        if max_pinned_versions < 0:
            raise ValueError(f"max_pinned_versions must be >= 0; got {max_pinned_versions!r}")
        self.deployments = deployments
        self.artifacts: ArtifactStore = deployments.registry.artifacts
        self.interval_s = interval_s
        self.intra_op_threads = intra_op_threads
        self.max_pinned_versions = max_pinned_versions
        #: True once the first reconcile completed; the server's readiness.
        self.ready = False
        self._table = _Table()
        self._revision: int | None = None
        self._failed_at = 0.0
        self._pinned: OrderedDict[tuple[str, int], LoadedVersion] = OrderedDict()
        self._pinned_lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None

    # -- what requests read ------------------------------------------------------------

    @property
    def routes(self) -> dict[str, LoadedVersion]:
        """Deployment name → the version it serves now (a snapshot; do not mutate)."""
        return self._table.routes

    @property
    def errors(self) -> dict[str, str]:
        """Deployment name → why its desired version could not be loaded (a snapshot)."""
        return self._table.errors

    def get(self, deployment: str) -> LoadedVersion:
        """The version a deployment serves now: one dict lookup, no I/O.

        Raises:
            NotFound: no such deployment (or it was created after the last reconcile).
            Unavailable: the pool has not loaded anything yet, or the deployment's version
                could not be loaded and it has no older one to serve.
        """
        table = self._table
        loaded = table.routes.get(deployment)
        if loaded is not None:
            return loaded
        raise self._missing(table, deployment)

    def get_version(self, deployment: str, version: int) -> LoadedVersion:
        """A specific version of a deployment's model, loaded on demand if needed.

        The routed version is answered without I/O; any other one is resolved through the
        DB and kept in a small LRU, since clients that pin versions tend to reuse them.

        Raises:
            NotFound: unknown deployment, or its model has no such version.
            Unavailable: the version cannot be loaded, or the DB cannot be reached.
        """
        table = self._table
        current = table.routes.get(deployment)
        if current is not None and current.version == version:
            return current
        if current is None and deployment not in table.errors:
            raise self._missing(table, deployment)
        key = (deployment, version)
        with self._pinned_lock:
            hit = self._pinned.get(key)
            if hit is not None:
                self._pinned.move_to_end(key)
                return hit
        try:
            target = self.deployments.target(deployment, version)
        except SQLAlchemyError as exc:
            # Only OperationalError arrives as Unavailable; a damaged SQLite file raises
            # DatabaseError, which is just as much "the DB cannot answer now".
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise Unavailable(
                f"cannot resolve version {version} of deployment {deployment!r}: metadata "
                f"database unavailable: {reason}",
                details={"deployment": deployment, "version": version},
            ) from None
        try:
            loaded = self._loaded(target, self._known_runtimes())
        except Exception as exc:
            message = _load_error(target, exc)
            logger.warning("%s", message)
            raise Unavailable(message, details={"deployment": deployment, "version": version}) from None
        if self.max_pinned_versions:
            with self._pinned_lock:
                self._pinned[key] = loaded
                self._pinned.move_to_end(key)
                while len(self._pinned) > self.max_pinned_versions:
                    self._pinned.popitem(last=False)
        return loaded

    def _missing(self, table: _Table, deployment: str) -> AiaasError:
        error = table.errors.get(deployment)
        if error is not None:
            return Unavailable(error, details={"deployment": deployment})
        if not self.ready:
            # Before the first reconcile nothing is known: "not found" would be a lie.
            return Unavailable(
                "the inference server is still loading its deployments; retry shortly",
                details={"deployment": deployment},
            )
        return NotFound(f"deployment {deployment!r} not found", details={"deployment": deployment})

    # -- reconciling -------------------------------------------------------------------

    def reconcile_once(self) -> bool:
        """Converge on the desired state once, if the serving revision moved.

        Returns:
            True when the route table was rebuilt.

        Raises:
            Exception: whatever the DB raised (the table is left as it was); the background
                loop logs it and tries again on its next tick.
        """
        with self._reconcile_lock:
            revision = self.deployments.db.revision()
            retry_failed = bool(self._table.errors) and (
                time.monotonic() - self._failed_at >= RETRY_FAILED_LOADS_S
            )
            if self.ready and revision == self._revision and not retry_failed:
                return False
            targets = self.deployments.desired_state()
            self._apply(targets)
            self._revision = revision
            self.ready = True
            return True

    def _apply(self, targets: list[ServedTarget]) -> None:
        old = self._table
        runtimes = self._known_runtimes()
        routes: dict[str, LoadedVersion] = {}
        errors: dict[str, str] = {}
        for target in targets:
            before = old.routes.get(target.deployment)
            if before is not None and _model_key(target) == _route_key(before):
                routes[target.deployment] = before  # unchanged: keep the very same object
                continue
            try:
                loaded = self._loaded(target, runtimes)
            except Exception as exc:
                errors[target.deployment] = _load_error(target, exc)
                if before is not None and before.model == target.model:
                    routes[target.deployment] = before
                    logger.error("%s; it keeps serving version %d", errors[target.deployment], before.version)
                else:
                    logger.error("%s; it is not servable", errors[target.deployment])
                continue
            runtimes[_model_key(target)] = loaded.runtime
            routes[target.deployment] = loaded
            logger.info(
                "deployment %r now serves model %r version %d",
                target.deployment,
                target.model,
                target.version,
            )
        for gone in old.routes.keys() - {t.deployment for t in targets}:
            logger.info("deployment %r is no longer served", gone)
        if errors:
            self._failed_at = time.monotonic()
        # The one assignment requests can observe: old table or new table, never a mix.
        self._table = _Table(routes=routes, errors=errors)
        models = {t.deployment: t.model for t in targets}
        with self._pinned_lock:
            for d, v in list(self._pinned):
                if models.get(d) != self._pinned[(d, v)].model:
                    del self._pinned[(d, v)]

    def _known_runtimes(self) -> dict[_ModelKey, OnnxModel]:
        runtimes = {_route_key(lv): lv.runtime for lv in self._table.routes.values()}
        with self._pinned_lock:
            for lv in self._pinned.values():
                runtimes.setdefault(_route_key(lv), lv.runtime)
        return runtimes

    def _loaded(self, target: ServedTarget, runtimes: Mapping[_ModelKey, OnnxModel]) -> LoadedVersion:
        """The target with its model, reusing an already loaded one for the same artifact."""
        signature = Signature.from_dict(target.signature)
        runtime = runtimes.get(_model_key(target))
        if runtime is None:
            data = self.artifacts.get(target.artifact_digest)  # verifies the SHA-256
            runtime = OnnxModel(data, intra_op_threads=self.intra_op_threads)
        return LoadedVersion(
            deployment=target.deployment,
            model=target.model,
            version=target.version,
            artifact_digest=target.artifact_digest,
            runtime=runtime,
            signature=signature,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the background reconciler; the first reconcile runs at once."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="aiaas-model-pool", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the reconciler; loaded models keep serving until the pool is dropped."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_once()
            except Exception as exc:
                self._report_problem(exc)
            else:
                if self._last_problem is not None:
                    logger.warning("desired state readable again; reconciling resumed")
                    self._last_problem = None
            self._stop.wait(self.interval_s)

    def _report_problem(self, exc: Exception) -> None:
        # Logged once per distinct problem, not on every tick while the DB is down.
        problem = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        if problem != self._last_problem:
            logger.warning(
                "cannot read desired state (%s); serving the current routes and retrying every %.2fs",
                problem,
                self.interval_s,
            )
            self._last_problem = problem


def _model_key(target: ServedTarget) -> _ModelKey:
    return (target.model, target.version, target.artifact_digest)


def _route_key(loaded: LoadedVersion) -> _ModelKey:
    return (loaded.model, loaded.version, loaded.artifact_digest)


def _load_error(target: ServedTarget, exc: Exception) -> str:
    reason = exc.message if isinstance(exc, AiaasError) else f"{type(exc).__name__}: {exc}"
    return (
        f"deployment {target.deployment!r} cannot load version {target.version} of model "
        f"{target.model!r}: {reason}"
    )
