"""What requests read: loaded versions, each deployment's weighted routes, the route table.

The reconciler (:mod:`.reconciler`) builds a new :class:`_Table` whenever the desired state
changes and swaps it into the pool (:mod:`.pool`) in one assignment; a request reads the
table once and holds on to the :class:`LoadedVersion` it picked, so it finishes on that
version even if the table moves on meanwhile. Everything here is immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiaas.deployments import ServedTarget
from aiaas.formats import OnnxModel, Signature
from aiaas.schemas.deployment_settings import DeploymentSettings, default_settings
from aiaas.serving.generative import GenerativeModel
from aiaas.serving.prediction_log import LogPolicy
from aiaas.serving.replica_set import ReplicaSet, ReplicaSettings
from aiaas.serving.runtime import InProcessRuntime, Runtime

__all__ = ["DeploymentRoutes", "LoadedVersion", "ServingConfig"]

_ModelKey = tuple[str, int, str]  # (model, version, artifact digest)


#: A deployment's settings when it gave none (their one definition: aiaas.schemas).
_DEFAULTS = default_settings()


@dataclass(frozen=True)
class LoadedVersion:
    """One model version loaded for one deployment: everything a request needs.

    :attr:`runtime` is the single call point for inference, wherever the model runs (see
    :mod:`aiaas.serving.runtime`): an ONNX Runtime session in this process, replica
    processes, or the PyTorch replica of a model folder (a language or embedding model).
    """

    deployment: str
    model: str
    version: int
    artifact_digest: str
    runtime: Runtime
    signature: Signature

    @property
    def replicas(self) -> ReplicaSet | None:
        """The replica processes running this version, when it runs on them."""
        return self.runtime if isinstance(self.runtime, ReplicaSet) else None

    @property
    def generative(self) -> GenerativeModel | None:
        """The handle of a language or embedding model (the OpenAI routes use it)."""
        return self.runtime if isinstance(self.runtime, GenerativeModel) else None

    @property
    def session(self) -> OnnxModel | None:
        """The ONNX Runtime session, when the version runs in this process."""
        return self.runtime.model if isinstance(self.runtime, InProcessRuntime) else None


@dataclass(frozen=True)
class ServingConfig:
    """How a deployment's requests are run: batching, queue bound and timeout; and how many of
    them the prediction log keeps.

    ``settings`` is the deployment's whole :class:`DeploymentSettings`, for the request path to
    read a setting from directly: a new setting then needs no field here (it is left out of
    the comparison that decides whether a version's runner is rebuilt).
    """

    batching: bool = _DEFAULTS.batching.enabled
    max_batch_size: int = _DEFAULTS.batching.max_batch_size
    max_queue_delay_ms: float = _DEFAULTS.batching.max_queue_delay_ms
    max_queue_size: int = _DEFAULTS.max_queue_size
    timeout_s: float = _DEFAULTS.timeout_s
    log_policy: LogPolicy = field(default_factory=LogPolicy)
    settings: DeploymentSettings = field(default=_DEFAULTS, compare=False)

    @classmethod
    def of(cls, target: ServedTarget) -> ServingConfig:
        settings = target.settings
        return cls(
            log_policy=LogPolicy.of(
                settings.prediction_log.model_dump(),
                outliers=target.model if settings.outlier_scores else None,
            ),
            batching=settings.batching.enabled,
            max_batch_size=settings.batching.max_batch_size,
            max_queue_delay_ms=settings.batching.max_queue_delay_ms,
            max_queue_size=settings.max_queue_size,
            timeout_s=settings.timeout_s,
            settings=settings,
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


def _busy(loaded: LoadedVersion) -> bool:
    """Whether an on-demand version has requests running or waiting (it is not evicted then)."""
    return loaded.replicas is not None and loaded.replicas.active > 0


def _model_key(target: ServedTarget) -> _ModelKey:
    return (target.model, target.version, target.artifact_digest)


def _route_key(loaded: LoadedVersion) -> _ModelKey:
    return (loaded.model, loaded.version, loaded.artifact_digest)
