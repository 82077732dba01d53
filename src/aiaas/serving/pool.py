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
version it had, if any. What is really served, and why not what was asked, is published to
the DB after each reconcile (:mod:`.observed`), for the control plane to show.

Where the models run: with a :class:`~aiaas.serving.replicas.ReplicaManager` (what the
inference server uses unless ``AIAAS_REPLICA_PROCESSES=false``), every served version of
every deployment gets its own replica processes, started and ready *before* the route table
that uses them is swapped in; sets the new table no longer uses then drain and stop.
Without one (the explicit in-process mode, and unit tests of the pool itself), versions
are loaded as ONNX Runtime sessions in this process: faster to load, no crash isolation.

Versions addressed by number (``/v2/models/{d}/versions/{n}``) that the routes do not
serve are loaded *on demand* and kept in a small LRU. Three rules keep that honest and
bounded:

- A number is resolved through the DB on every such request (the DB being down, the last
  resolution is used), and loaded versions are keyed by artifact digest, never by number
  alone: a deleted version is refused as deleted (404), an archived one as archived (409),
  and a number can never answer with another model's artifact.
- On-demand versions run one replica each and share ``AIAAS_CPU_BUDGET`` with the routes:
  they get what the routes leave, at least one and at most ``max_pinned_versions``. Past
  that, the least recently used idle one is stopped; when every one is busy, the request
  is refused with 429 naming the limit instead of starting one more process.
- Concurrent requests for one version share one load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from aiaas.deployments import DeploymentService, RouteTarget, ServedTarget
from aiaas.errors import AiaasError, Conflict, NotFound, ResourceExhausted, Unavailable
from aiaas.formats import FOLDER_FLAVORS, OnnxModel, Signature
from aiaas.schemas.deployment_settings import default_settings
from aiaas.serving.generative import GenerativeModel, GenerativeModels
from aiaas.serving.prediction_log import LogPolicy
from aiaas.serving.replicas import ReplicaManager, ReplicaSet, ReplicaSettings
from aiaas.store import ArtifactStore
from aiaas.store.serving_states import Observation, ServingStates

__all__ = ["DEFAULT_MAX_PINNED_VERSIONS", "DeploymentRoutes", "LoadedVersion", "ModelPool", "ServingConfig"]

logger = logging.getLogger("aiaas.serving.pool")

#: How long a failed load waits before the reconciler tries it again without a revision
#: change (a missing artifact may appear on a shared store; a corrupted one will not heal,
#: so this is kept long enough not to re-read large blobs all the time).
RETRY_FAILED_LOADS_S = 10.0

#: The most versions a pool keeps loaded on demand (besides the routed ones).
DEFAULT_MAX_PINNED_VERSIONS = 8
#: A deployment's settings when it gave none (their one definition: aiaas.schemas).
_DEFAULTS = default_settings()

_ModelKey = tuple[str, int, str]  # (model, version, artifact digest)
_SetKey = tuple[str, str, int, str]  # (deployment, model, version, artifact digest)
_PinKey = tuple[str, int, str]  # (deployment, version, artifact digest)


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
    """How a deployment's requests are run: batching, queue bound and timeout; and how many of
    them the prediction log keeps."""

    batching: bool = _DEFAULTS.batching.enabled
    max_batch_size: int = _DEFAULTS.batching.max_batch_size
    max_queue_delay_ms: float = _DEFAULTS.batching.max_queue_delay_ms
    max_queue_size: int = _DEFAULTS.max_queue_size
    timeout_s: float = _DEFAULTS.timeout_s
    log_policy: LogPolicy = field(default_factory=LogPolicy)

    @classmethod
    def of(cls, target: ServedTarget) -> ServingConfig:
        settings = target.settings
        return cls(
            log_policy=LogPolicy.of(settings.prediction_log.model_dump()),
            batching=settings.batching.enabled,
            max_batch_size=settings.batching.max_batch_size,
            max_queue_delay_ms=settings.batching.max_queue_delay_ms,
            max_queue_size=settings.max_queue_size,
            timeout_s=settings.timeout_s,
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
            (``/v2/models/{d}/versions/{v}``) stay loaded besides the routed ones; with
            replicas, also bounded by the CPU budget the routes leave (at least one).
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
        max_pinned_versions: int = DEFAULT_MAX_PINNED_VERSIONS,
        replicas: ReplicaManager | None = None,
        generative: GenerativeModels | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0; got {interval_s!r}")
        if max_pinned_versions < 1:
            raise ValueError(f"max_pinned_versions must be >= 1; got {max_pinned_versions!r}")
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
        self._pinned: OrderedDict[_PinKey, LoadedVersion] = OrderedDict()
        self._loading: dict[_PinKey, Future[LoadedVersion]] = {}
        #: What each pinned (deployment, number) resolved to: used while the DB is down.
        self._resolved: dict[tuple[str, int], ServedTarget] = {}
        self._pinned_lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._retire_pending = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None
        #: What is served per deployment, as last computed and as last published.
        self.states = ServingStates(deployments.db)
        self._observed: dict[str, Observation] = {}
        self._published: tuple[int, dict[str, Observation]] | None = None

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
        DB (so a deleted or archived version is refused at once) and kept in a small LRU
        keyed by artifact digest, since clients that pin versions tend to reuse them.

        Raises:
            NotFound: unknown deployment, or its model has no such version (deleted, or
                never registered).
            Conflict: the version is archived.
            ResourceExhausted: every on-demand slot is busy (see the module docstring).
            Unavailable: the version cannot be loaded, or the DB cannot be reached and the
                version was not resolved before.
        """
        table = self._table
        served = table.served.get(deployment)
        if served is not None:
            for loaded in (*served.choices, served.shadow):
                if loaded is not None and loaded.version == version:
                    return loaded
        if served is None and deployment not in table.errors:
            raise self._missing(table, deployment)
        return self._on_demand(self._resolve(deployment, version))

    def _resolve(self, deployment: str, version: int) -> ServedTarget:
        """What ``version`` of ``deployment`` is now, from the DB; the last answer if it is down."""
        try:
            return self.deployments.target(deployment, version)
        except (NotFound, Conflict):
            raise
        except (Unavailable, SQLAlchemyError) as exc:
            with self._pinned_lock:
                known = self._resolved.get((deployment, version))
            if known is not None:
                return known  # serving goes on while the DB is down
            # Connection and damaged-file errors arrive as Unavailable from the store; any
            # other DB error here is just as much "the DB cannot answer now".
            orig = getattr(exc, "orig", None) if isinstance(exc, SQLAlchemyError) else None
            text = exc.message if isinstance(exc, AiaasError) else str(orig or exc)
            reason = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise Unavailable(
                f"cannot resolve version {version} of deployment {deployment!r}: {reason}",
                details={"deployment": deployment, "version": version},
            ) from None

    def _on_demand(self, target: ServedTarget) -> LoadedVersion:
        """``target`` loaded, from the LRU or by loading it (one load per version at a time)."""
        key: _PinKey = (target.deployment, target.version, target.artifact_digest)
        evicted: list[LoadedVersion] = []
        with self._pinned_lock:
            hit = self._pinned.get(key)
            if hit is not None:
                self._pinned.move_to_end(key)
                return hit
            pending = self._loading.get(key)
            owner = pending is None
            if pending is None:
                evicted = self._make_room(target)
                pending = self._loading[key] = Future()
        if not owner:
            return pending.result()  # the load another request started; raises as it did
        if evicted:
            self._retire_soon()
        try:
            loaded = self._loaded(target, self._known_runtimes(), on_demand=True)
        except Exception as exc:
            message = _load_error(target, exc)
            logger.warning("%s", message)
            error = Unavailable(message, details={"deployment": target.deployment, "version": target.version})
            with self._pinned_lock:
                del self._loading[key]
            pending.set_exception(error)
            raise error from None
        with self._pinned_lock:
            del self._loading[key]
            self._pinned[key] = loaded
            self._resolved[(target.deployment, target.version)] = target
        pending.set_result(loaded)
        return loaded

    def _make_room(self, target: ServedTarget) -> list[LoadedVersion]:
        """Free a slot for one more on-demand version (call holding ``_pinned_lock``).

        Returns:
            the versions evicted (least recently used, idle ones); retire them after
            releasing the lock.

        Raises:
            ResourceExhausted: every slot holds a version that is busy or being loaded.
        """
        limit, budget = self._on_demand_limit()
        evicted: list[LoadedVersion] = []
        while len(self._pinned) + len(self._loading) >= limit:
            victim = next((k for k, lv in self._pinned.items() if not _busy(lv)), None)
            if victim is None:
                raise ResourceExhausted(
                    f"cannot load version {target.version} of deployment {target.deployment!r} on "
                    f"demand: all {limit} on-demand slot(s) are busy with other versions ({budget}); "
                    "retry shortly, or deploy this version (as a deployment or a traffic route) so "
                    "it stays loaded",
                    details={
                        "deployment": target.deployment,
                        "version": target.version,
                        "limit": limit,
                        "retry_after_s": 1,
                    },
                )
            evicted.append(self._pinned.pop(victim))
            self._resolved.pop(victim[:2], None)
        return evicted

    def _on_demand_limit(self) -> tuple[int, str]:
        """How many versions may be loaded on demand now, and why (for the 429 message)."""
        if self.replicas is None:
            return self.max_pinned_versions, f"at most {self.max_pinned_versions} in this process"
        routed = {
            id(lv.replicas): lv.replicas
            for r in self._table.served.values()
            for lv in (*r.choices, r.primary, r.shadow)
            if lv is not None and lv.replicas is not None
        }
        used = sum(rs.desired for rs in routed.values())
        budget = self.replicas.cpu_budget
        limit = max(1, min(self.max_pinned_versions, budget - used))
        return limit, (
            f"on-demand versions run one replica each and share AIAAS_CPU_BUDGET={budget} replica "
            f"processes with the deployments' routes, which use {used}; at least 1 and at most "
            f"{self.max_pinned_versions} on-demand versions run at a time"
        )

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
            if self._retire_pending:
                self._retire_unused()  # evicted on demand while the last reconcile ran
            revision = self.deployments.db.revision()
            retry_failed = bool(self._table.errors) and (
                time.monotonic() - self._failed_at >= RETRY_FAILED_LOADS_S
            )
            if self.ready and revision == self._revision and not retry_failed:
                self._publish()  # a publish that failed on an earlier tick
                return False
            targets = self.deployments.desired_state()
            self._apply(targets)
            self._revision = revision
            self.ready = True
            self._observed = {
                t.deployment: Observation(
                    desired_version=t.version,
                    serving_version=(
                        self._table.served[t.deployment].primary.version
                        if t.deployment in self._table.served
                        else None
                    ),
                    error=self._table.errors.get(t.deployment),
                )
                for t in targets
            }
            self._publish()
            return True

    def _publish(self) -> None:
        """Record what is served in the DB for the control plane (see :mod:`.observed`), when
        it changed; a DB error leaves it for the next tick and never reaches serving."""
        if self._revision is None:
            return
        snapshot = (self._revision, self._observed)
        if snapshot == self._published:
            return
        try:
            self.states.publish(self._revision, self._observed)
        except Exception as exc:
            logger.debug("cannot publish the served state yet: %s", exc)
            return
        self._published = snapshot

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
        routed = {
            (lv.deployment, lv.version, lv.artifact_digest)
            for r in served.values()
            for lv in (*r.choices, r.shadow)
            if lv is not None
        }
        with self._pinned_lock:
            for key, pinned in list(self._pinned.items()):
                # Another model behind the deployment's name, or routed now (no longer on demand).
                if models.get(key[0]) != pinned.model or key in routed:
                    del self._pinned[key]
                    self._resolved.pop(key[:2], None)
        self._retire_unused()

    def _retire_soon(self) -> None:
        """Retire unused sets now, or, while a reconcile runs, on the reconciler's next tick.

        Only the reconciler's thread (holding ``_reconcile_lock``) retires: in the middle of
        a reconcile, the sets it has just started are not in the route table yet and would
        look unused to anyone else.
        """
        if self._reconcile_lock.acquire(blocking=False):
            try:
                self._retire_unused()
            finally:
                self._reconcile_lock.release()
        else:
            self._retire_pending = True

    def _retire_unused(self) -> None:
        """Drain and stop the replica sets that neither the routes nor the pinned versions
        (loaded or being loaded) use. Call holding ``_reconcile_lock``."""
        self._retire_pending = False
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
            loading = set(self._loading)
        with self._sets_lock:
            unused = [
                (k, rs)
                for k, rs in self._sets.items()
                if id(rs) not in used and (k[0], k[2], k[3]) not in loading
            ]
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

    def _loaded(
        self, target: ServedTarget, runtimes: Mapping[_ModelKey, OnnxModel], *, on_demand: bool = False
    ) -> LoadedVersion:
        """The target with its model, reusing an already loaded one for the same artifact.

        ``on_demand`` versions run exactly one replica (see the module docstring).
        """
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
                replicas=self._replica_set(target, self.replicas, on_demand=on_demand),
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

    def _replica_set(
        self, target: ServedTarget, manager: ReplicaManager, *, on_demand: bool = False
    ) -> ReplicaSet:
        """The running replica set for ``target``'s version, started (and ready) if new.

        An on-demand set runs one replica; a set the routes already run keeps its settings.
        """
        key = (target.deployment, target.model, target.version, target.artifact_digest)
        settings = _on_demand_settings(target) if on_demand else _replica_settings(target)
        with self._sets_lock:
            replica_set = self._sets.get(key)
        if replica_set is not None:
            if replica_set.settings != settings and not on_demand:
                manager.configure(replica_set, settings)
            replica_set.timeout_s = target.settings.timeout_s
            return replica_set
        data = self.artifacts.get(target.artifact_digest)  # verifies the SHA-256
        replica_set = manager.start_set(target.deployment, target.model, target.version, data, settings)
        replica_set.timeout_s = target.settings.timeout_s
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
        min_replicas=target.settings.min_replicas,
        max_replicas=target.settings.max_replicas,
        target_in_flight=target.settings.target_in_flight,
        scale_down_delay_s=target.settings.scale_down_delay_s,
    )


def _on_demand_settings(target: ServedTarget) -> ReplicaSettings:
    """One replica, never scaled: an on-demand version takes one slot of the CPU budget."""
    return ReplicaSettings(
        min_replicas=1,
        max_replicas=1,
        target_in_flight=target.settings.target_in_flight,
        scale_down_delay_s=target.settings.scale_down_delay_s,
    )


def _busy(loaded: LoadedVersion) -> bool:
    """Whether an on-demand version has requests running or waiting (it is not evicted then)."""
    return loaded.replicas is not None and loaded.replicas.active > 0


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
