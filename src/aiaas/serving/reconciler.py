"""The pool's reconciler: it keeps the loaded versions and the route table in step with the DB.

A daemon thread reconciles the pool towards the deployments' desired state in the DB. It
polls the cheap serving revision every ``interval_s`` and only when that changed does it
read the full desired state, load what is new and build a new route table. The table is
then swapped in one assignment, so a request sees either the whole old table or the whole
new one: moving an alias switches serving without a single failed request, and requests
already running on the old version finish on it (they hold a reference to it).

Serving never depends on the DB staying up. A DB error keeps the current table and is
retried on the next tick; a version that cannot be loaded (corrupted or missing artifact,
invalid ONNX) is recorded in :attr:`~.pool.ModelPool.errors` and its deployment keeps
serving the version it had, if any. What is really served, and why not what was asked, is
published to the DB after each reconcile (:mod:`.observed`), for the control plane to show.

Where the models run: with a :class:`~aiaas.serving.replica_manager.ReplicaManager` (what
the inference server uses unless ``AIAAS_REPLICA_PROCESSES=false``), every served version
of every deployment gets its own replica processes, started and ready *before* the route
table that uses them is swapped in; sets the new table no longer uses then drain and stop.
Without one (the explicit in-process mode, and unit tests of the pool itself), versions
are loaded as ONNX Runtime sessions in this process: faster to load, no crash isolation.

:class:`Reconciler` is the half of :class:`~.pool.ModelPool` that writes the table; the
pool itself holds the state and the lookups requests make (:mod:`.pool`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import replace

from aiaas.deployments import DeploymentService, RouteTarget, ServedTarget
from aiaas.errors import AiaasError, Unavailable
from aiaas.formats import FOLDER_FLAVORS, OnnxModel, Signature
from aiaas.serving.generative import GenerativeModels
from aiaas.serving.replica_manager import ReplicaManager
from aiaas.serving.replica_set import ReplicaSet, ReplicaSettings
from aiaas.serving.routes import (
    DeploymentRoutes,
    LoadedVersion,
    ServingConfig,
    _model_key,
    _ModelKey,
    _route_key,
    _Table,
)
from aiaas.serving.runtime import InProcessRuntime, Runtime
from aiaas.store import ArtifactStore
from aiaas.store.serving_states import Observation, ServingStates

__all__ = ["RETRY_FAILED_LOADS_S", "Reconciler"]

logger = logging.getLogger("aiaas.serving.pool")

#: How long a failed load waits before the reconciler tries it again without a revision
#: change (a missing artifact may appear on a shared store; a corrupted one will not heal,
#: so this is kept long enough not to re-read large blobs all the time).
RETRY_FAILED_LOADS_S = 10.0

_SetKey = tuple[str, str, int, str]  # (deployment, model, version, artifact digest)
_PinKey = tuple[str, int, str]  # (deployment, version, artifact digest)


class Reconciler:
    """Reconciling and lifecycle of a :class:`~.pool.ModelPool` (its base class).

    The state it works on is the pool's, set by ``ModelPool.__init__``; it is declared
    here so that each method reads as it would in one class.
    """

    deployments: DeploymentService
    artifacts: ArtifactStore
    interval_s: float
    intra_op_threads: int
    executor: Executor | None
    replicas: ReplicaManager | None
    generative: GenerativeModels | None
    ready: bool
    states: ServingStates
    _sets: dict[_SetKey, ReplicaSet]
    _sets_lock: threading.Lock
    _table: _Table
    _revision: int | None
    _failed_at: float
    _pinned: OrderedDict[_PinKey, LoadedVersion]
    _loading: dict[_PinKey, Future[LoadedVersion]]
    _resolved: dict[tuple[str, int], ServedTarget]
    _pinned_lock: threading.Lock
    _reconcile_lock: threading.Lock
    _retire_pending: bool
    _stop: threading.Event
    _thread: threading.Thread | None
    _last_problem: str | None
    _observed: dict[str, Observation]
    _published: tuple[int, dict[str, Observation]] | None

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

    def _routes(self, target: ServedTarget, runtimes: dict[_ModelKey, InProcessRuntime]) -> DeploymentRoutes:
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
            if isinstance(loaded.runtime, InProcessRuntime):
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

    def _known_runtimes(self) -> dict[_ModelKey, InProcessRuntime]:
        runtimes = {
            _route_key(lv): lv.runtime
            for r in self._table.served.values()
            for lv in (*r.choices, r.primary, r.shadow)
            if lv is not None and isinstance(lv.runtime, InProcessRuntime)
        }
        with self._pinned_lock:
            for lv in self._pinned.values():
                if isinstance(lv.runtime, InProcessRuntime):
                    runtimes.setdefault(_route_key(lv), lv.runtime)
        return runtimes

    def _loaded(
        self, target: ServedTarget, runtimes: Mapping[_ModelKey, InProcessRuntime], *, on_demand: bool = False
    ) -> LoadedVersion:
        """The target with its model, reusing an already loaded one for the same artifact.

        ``on_demand`` versions run exactly one replica (see the module docstring).
        """
        signature = Signature.from_dict(target.signature)
        if target.flavor in FOLDER_FLAVORS:
            if self.generative is None:
                raise Unavailable(f"this server runs no PyTorch runtime for {target.flavor} models")
            runtime: Runtime = self.generative.handle(target)  # loaded on its first request
        elif self.replicas is not None:
            runtime = self._replica_set(target, self.replicas, on_demand=on_demand)
        else:
            shared = runtimes.get(_model_key(target))
            if shared is None:
                data = self.artifacts.get(target.artifact_digest)  # verifies the SHA-256
                shared = InProcessRuntime(
                    OnnxModel(data, intra_op_threads=self.intra_op_threads),
                    self.executor,
                    label=f"model {target.model!r} version {target.version}",
                )
            runtime = shared
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
