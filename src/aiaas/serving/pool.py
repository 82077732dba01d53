"""The model pool: loaded models and the route table that requests read.

The route table and what it holds are in :mod:`.routes`; the thread that keeps it in step
with the deployments' desired state in the DB is :mod:`.reconciler` (whose docstring says
how serving goes on while the DB is down, and where the models run). This module holds the
pool's state and the lookups requests make: one dict lookup for a routed deployment, and
versions loaded on demand.

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
from collections import OrderedDict
from concurrent.futures import Executor, Future

from sqlalchemy.exc import SQLAlchemyError

from aiaas.deployments import DeploymentService, ServedTarget
from aiaas.entities.projects import split_qualified_name
from aiaas.errors import AiaasError, Conflict, NotFound, ResourceExhausted, Unavailable
from aiaas.serving.generative import GenerativeModels
from aiaas.serving.reconciler import Reconciler, _load_error, _PinKey, _SetKey
from aiaas.serving.replica_manager import ReplicaManager
from aiaas.serving.replica_set import ReplicaSet
from aiaas.serving.routes import DeploymentRoutes, LoadedVersion, ServingConfig, _busy, _Table
from aiaas.store import ArtifactStore
from aiaas.store.serving_states import Observation, ServingStates

__all__ = ["DEFAULT_MAX_PINNED_VERSIONS", "DeploymentRoutes", "LoadedVersion", "ModelPool", "ServingConfig"]

logger = logging.getLogger("aiaas.serving.pool")

#: The most versions a pool keeps loaded on demand (besides the routed ones).
DEFAULT_MAX_PINNED_VERSIONS = 8


class ModelPool(Reconciler):
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
        executor: the worker threads of versions loaded in this process (see
            :class:`~aiaas.serving.runtime.InProcessRuntime`); ``None`` is the event loop's
            default executor.

    Example:
        >>> pool = ModelPool(DeploymentService(registry), interval_s=0.5)  # doctest: +SKIP
        >>> pool.start()  # doctest: +SKIP
        >>> await pool.get("iris").runtime.run({"X": x}, None, timeout_s=1.0)  # doctest: +SKIP
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
        executor: Executor | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0; got {interval_s!r}")
        if max_pinned_versions < 1:
            raise ValueError(f"max_pinned_versions must be >= 1; got {max_pinned_versions!r}")
        self.deployments = deployments
        self.artifacts: ArtifactStore = deployments.registry.artifacts
        self.interval_s = interval_s
        self.intra_op_threads = intra_op_threads
        self.executor = executor
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
        name = split_qualified_name(deployment)[1]  # as the client named it, in its project
        return NotFound(f"deployment {name!r} not found", details={"deployment": name})
