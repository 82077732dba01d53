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

Where the models run: with a :class:`~aiaas.serving.replicas.ReplicaManager` (what the
inference server uses unless ``AIAAS_REPLICA_PROCESSES=false``), every served version of
every deployment gets its own replica processes, started and ready *before* the route table
that uses them is swapped in; sets the new table no longer uses then drain and stop.
Without one (the explicit in-process mode, and unit tests of the pool itself), versions
are loaded as ONNX Runtime sessions in this process: faster to load, no crash isolation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from aiaas.errors import AiaasError, NotFound, Unavailable
from aiaas.formats import FOLDER_FLAVORS, OnnxModel, Signature
from aiaas.serving.deployments import DeploymentService, RouteTarget, ServedTarget
from aiaas.serving.generative import GenerativeModel, GenerativeModels
from aiaas.serving.replicas import ReplicaManager, ReplicaSet, ReplicaSettings
from aiaas.store import ArtifactStore

__all__ = ["DeploymentRoutes", "LoadedVersion", "ModelPool", "ServingConfig"]

logger = logging.getLogger("aiaas.serving.pool")

#: How long a failed load waits before the reconciler tries it again without a revision
#: change (a missing artifact may appear on a shared store; a corrupted one will not heal,
#: so this is kept long enough not to re-read large blobs all the time).
RETRY_FAILED_LOADS_S = 10.0

_ModelKey = tuple[str, int, str]  # (model, version, artifact digest)
_SetKey = tuple[str, str, int, str]  # (deployment, model, version, artifact digest)


@dataclass(frozen=True)
class LoadedVersion:
    """One model version loaded for one deployment: everything a request needs.

    :meth:`run` is the single call point for inference. The model runs either in this
    process (``runtime``) or in replica processes (``replicas``), never both; a model folder
    (language or embedding model) runs in the PyTorch replica of its ``generative`` handle.
    """

    deployment: str
    model: str
    version: int
    artifact_digest: str
    runtime: OnnxModel | None
    signature: Signature
    replicas: ReplicaSet | None = None
    generative: GenerativeModel | None = None

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

        Runs in a worker thread (a batcher's batch): with replicas, it waits there for the
        replica's answer while the event loop does the I/O.
        """
        if self.replicas is not None:
            return self.replicas.run_blocking(inputs, output_names)
        if self.generative is not None:
            return self.generative.run_blocking(inputs, output_names)
        assert self.runtime is not None
        return self.runtime.run(inputs, output_names)


@dataclass(frozen=True)
class ServingConfig:
    """How a deployment's requests are run: batching, queue bound and timeout."""

    batching: bool = False
    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 1024
    timeout_s: float = 30.0

    @classmethod
    def of(cls, target: ServedTarget) -> ServingConfig:
        b = target.batching
        return cls(
            batching=bool(b.get("enabled", False)),
            max_batch_size=int(b.get("max_batch_size", cls.max_batch_size)),
            max_queue_delay_ms=float(b.get("max_queue_delay_ms", cls.max_queue_delay_ms)),
            max_queue_size=target.max_queue_size,
            timeout_s=target.timeout_s,
        )


@dataclass(frozen=True)
class DeploymentRoutes:
    """Everything one deployment serves: weighted versions, an optional shadow, its config.

    ``primary`` is the version a deployment is said to serve (metadata, readiness);
    :meth:`pick` draws the version for one request by weight.
    """

    target: ServedTarget
    primary: LoadedVersion
    choices: tuple[LoadedVersion, ...]
    cumulative_weights: tuple[int, ...]
    shadow: LoadedVersion | None
    config: ServingConfig
    replica_settings: ReplicaSettings = field(default_factory=ReplicaSettings)

    def pick(self, draw: float) -> LoadedVersion:
        """The version for a request, given ``draw`` uniform in [0, 1)."""
        if len(self.choices) == 1:
            return self.choices[0]
        point = draw * self.cumulative_weights[-1]
        for loaded, upto in zip(self.choices, self.cumulative_weights, strict=True):
            if point < upto:
                return loaded
        return self.choices[-1]


@dataclass(frozen=True)
class _Table:
    """What requests read; replaced as a whole, never mutated."""

    served: dict[str, DeploymentRoutes] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def routes(self) -> dict[str, LoadedVersion]:
        return {name: r.primary for name, r in self.served.items()}


class ModelPool:
    """Loaded models and the deployment → version routes, kept in step with the DB.

    Args:
        deployments: where the desired state comes from (and the artifact store, through
            its registry).
        interval_s: how often the reconciler polls the serving revision.
        intra_op_threads: ONNX Runtime intra-op threads for each loaded model.
        replicas: run every served version in replica processes started by this manager;
            ``None`` loads them in this process (no crash isolation).
        max_pinned_versions: how many explicitly addressed versions
            (``/v2/models/{d}/versions/{v}``) stay loaded besides the routed ones.
        generative: serves the versions that are model folders (language and embedding
            models, PyTorch replicas under a memory budget); without it they cannot load.

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
        replicas: ReplicaManager | None = None,
        generative: GenerativeModels | None = None,
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
        self.replicas = replicas
        self.generative = generative
        self._sets: dict[_SetKey, ReplicaSet] = {}
        self._sets_lock = threading.Lock()
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
    def served(self) -> dict[str, DeploymentRoutes]:
        """Deployment name → everything it serves now (a snapshot; do not mutate)."""
        return self._table.served

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
        return self.route(deployment).primary

    def route(self, deployment: str) -> DeploymentRoutes:
        """Everything a deployment serves now: one dict lookup, no I/O (raises as :meth:`get`)."""
        table = self._table
        served = table.served.get(deployment)
        if served is not None:
            return served
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
        served = table.served.get(deployment)
        if served is not None:
            for loaded in (*served.choices, served.shadow):
                if loaded is not None and loaded.version == version:
                    return loaded
        if served is None and deployment not in table.errors:
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
            # Connection and damaged-file errors already arrive as Unavailable from the
            # store; any other DB error here is just as much "the DB cannot answer now".
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
        self._retire_unused()
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
        served: dict[str, DeploymentRoutes] = {}
        errors: dict[str, str] = {}
        for target in targets:
            before = old.served.get(target.deployment)
            if before is not None and before.target == target:
                served[target.deployment] = before  # unchanged: keep the very same objects
                continue
            try:
                routes = self._routes(target, runtimes)
            except _LoadFailed as failed:
                errors[target.deployment] = failed.message
                if before is not None and before.target.model == target.model:
                    served[target.deployment] = before
                    logger.error("%s; it keeps serving version %d", failed.message, before.primary.version)
                else:
                    logger.error("%s; it is not servable", failed.message)
                continue
            served[target.deployment] = routes
            split = ", ".join(f"v{r.version} {r.weight}%" for r in target.routes)
            shadow = f", shadow v{target.shadow.version}" if target.shadow is not None else ""
            logger.info(
                "deployment %r now serves model %r: %s%s", target.deployment, target.model, split, shadow
            )
        for gone in old.served.keys() - {t.deployment for t in targets}:
            logger.info("deployment %r is no longer served", gone)
        if errors:
            self._failed_at = time.monotonic()
        # The one assignment requests can observe: old table or new table, never a mix.
        self._table = _Table(served=served, errors=errors)
        models = {t.deployment: t.model for t in targets}
        with self._pinned_lock:
            for d, v in list(self._pinned):
                if models.get(d) != self._pinned[(d, v)].model:
                    del self._pinned[(d, v)]
        self._retire_unused()

    def _retire_unused(self) -> None:
        """Drain and stop the replica sets that neither the routes nor the pinned versions use."""
        self._retire_generative()
        if self.replicas is None:
            return
        table = self._table
        used = {
            id(lv.replicas)
            for r in table.served.values()
            for lv in (*r.choices, r.primary, r.shadow)
            if lv is not None and lv.replicas is not None
        }
        with self._pinned_lock:
            used |= {id(lv.replicas) for lv in self._pinned.values() if lv.replicas is not None}
        with self._sets_lock:
            unused = [(k, rs) for k, rs in self._sets.items() if id(rs) not in used]
            for key, _ in unused:
                del self._sets[key]
        for _, replica_set in unused:
            self.replicas.retire(replica_set, max_wait_s=replica_set.timeout_s + 1.0)

    def _retire_generative(self) -> None:
        if self.generative is None:
            return
        loaded = [lv for r in self._table.served.values() for lv in (*r.choices, r.primary, r.shadow)]
        with self._pinned_lock:
            loaded += list(self._pinned.values())
        self.generative.retain(lv.generative for lv in loaded if lv is not None and lv.generative is not None)

    def _routes(self, target: ServedTarget, runtimes: dict[_ModelKey, OnnxModel]) -> DeploymentRoutes:
        """Load every version ``target`` routes to (and its shadow); all or nothing."""

        def load(route: RouteTarget) -> LoadedVersion:
            one = replace(
                target,
                version=route.version,
                artifact_digest=route.artifact_digest,
                signature=route.signature,
                flavor=route.flavor,
                routes=(),
                shadow=None,
            )
            try:
                loaded = self._loaded(one, runtimes)
            except Exception as exc:
                raise _LoadFailed(_load_error(one, exc)) from None
            if loaded.runtime is not None:
                runtimes[_model_key(one)] = loaded.runtime
            return loaded

        weighted = [r for r in target.routes if r.weight > 0] or list(target.routes[:1])
        choices = tuple(load(r) for r in weighted)
        primary = choices[0] if weighted[0] is target.routes[0] else load(target.routes[0])
        cumulative, total = [], 0
        for r in weighted:
            total += r.weight
            cumulative.append(total)
        return DeploymentRoutes(
            target=target,
            primary=primary,
            choices=choices,
            cumulative_weights=tuple(cumulative) if total else (1,),
            shadow=load(target.shadow) if target.shadow is not None else None,
            config=ServingConfig.of(target),
            replica_settings=_replica_settings(target),
        )

    def _known_runtimes(self) -> dict[_ModelKey, OnnxModel]:
        runtimes = {
            _route_key(lv): lv.runtime
            for r in self._table.served.values()
            for lv in (*r.choices, r.primary, r.shadow)
            if lv is not None and lv.runtime is not None
        }
        with self._pinned_lock:
            for lv in self._pinned.values():
                if lv.runtime is not None:
                    runtimes.setdefault(_route_key(lv), lv.runtime)
        return runtimes

    def _loaded(self, target: ServedTarget, runtimes: Mapping[_ModelKey, OnnxModel]) -> LoadedVersion:
        """The target with its model, reusing an already loaded one for the same artifact."""
        signature = Signature.from_dict(target.signature)
        if target.flavor in FOLDER_FLAVORS:
            if self.generative is None:
                raise Unavailable(f"this server runs no PyTorch runtime for {target.flavor} models")
            return LoadedVersion(
                deployment=target.deployment,
                model=target.model,
                version=target.version,
                artifact_digest=target.artifact_digest,
                runtime=None,
                signature=signature,
                generative=self.generative.handle(target),  # loaded on its first request
            )
        if self.replicas is not None:
            return LoadedVersion(
                deployment=target.deployment,
                model=target.model,
                version=target.version,
                artifact_digest=target.artifact_digest,
                runtime=None,
                signature=signature,
                replicas=self._replica_set(target, self.replicas),
            )
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

    def _replica_set(self, target: ServedTarget, manager: ReplicaManager) -> ReplicaSet:
        """The running replica set for ``target``'s version, started (and ready) if new."""
        key = (target.deployment, target.model, target.version, target.artifact_digest)
        settings = _replica_settings(target)
        with self._sets_lock:
            replica_set = self._sets.get(key)
        if replica_set is not None:
            if replica_set.settings != settings:
                manager.configure(replica_set, settings)
            replica_set.timeout_s = target.timeout_s
            return replica_set
        data = self.artifacts.get(target.artifact_digest)  # verifies the SHA-256
        replica_set = manager.start_set(target.deployment, target.model, target.version, data, settings)
        replica_set.timeout_s = target.timeout_s
        with self._sets_lock:
            self._sets[key] = replica_set
        return replica_set

    def replica_sets(self) -> list[ReplicaSet]:
        """Every replica set the pool runs now (routed, shadow and pinned versions)."""
        with self._sets_lock:
            return list(self._sets.values())

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


def _replica_settings(target: ServedTarget) -> ReplicaSettings:
    return ReplicaSettings(
        min_replicas=target.min_replicas,
        max_replicas=target.max_replicas,
        target_in_flight=target.target_in_flight,
        scale_down_delay_s=target.scale_down_delay_s,
    )


def _model_key(target: ServedTarget) -> _ModelKey:
    return (target.model, target.version, target.artifact_digest)


def _route_key(loaded: LoadedVersion) -> _ModelKey:
    return (loaded.model, loaded.version, loaded.artifact_digest)


class _LoadFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _load_error(target: ServedTarget, exc: Exception) -> str:
    reason = exc.message if isinstance(exc, AiaasError) else f"{type(exc).__name__}: {exc}"
    return (
        f"deployment {target.deployment!r} cannot load version {target.version} of model "
        f"{target.model!r}: {reason}"
    )
