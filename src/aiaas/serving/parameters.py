"""How a deployment is served now, as ``GET /v2/models/{name}`` shows it beside the OIP metadata."""

from __future__ import annotations

from typing import Any

from aiaas.serving.routes import DeploymentRoutes

__all__ = ["replica_parameters", "serving_parameters"]


def serving_parameters(served: DeploymentRoutes) -> dict[str, Any]:
    """How the deployment is served now, beside the OIP metadata: routes by weight, shadow,
    batching, limits and what the log keeps. Clients (and tests) read it to see a config
    change take effect."""
    target, config = served.target, served.config
    return {
        "routes": [{"version": r.version, "weight": r.weight} for r in target.routes],
        "shadow_version": target.shadow.version if target.shadow is not None else None,
        "batching": {
            "enabled": config.batching,
            "max_batch_size": config.max_batch_size,
            "max_queue_delay_ms": config.max_queue_delay_ms,
        },
        "max_queue_size": config.max_queue_size,
        "timeout_s": config.timeout_s,
        "replicas": replica_parameters(served),
        "prediction_log": {
            "sample_rate": config.log_policy.sample_rate,
            "max_rows_per_s": config.log_policy.max_rows_per_s,
        },
        "outlier_scores": config.log_policy.outliers is not None,
    }


def replica_parameters(served: DeploymentRoutes) -> dict[str, Any]:
    """The replica settings, and how many replica processes serve the primary version now
    (``null`` counts when the server runs models in-process)."""
    settings, replicas = served.replica_settings, served.primary.replicas
    return {
        "min_replicas": settings.min_replicas,
        "max_replicas": settings.max_replicas,
        "target_in_flight": settings.target_in_flight,
        "scale_down_delay_s": settings.scale_down_delay_s,
        "in_process": replicas is None,
        "running": None if replicas is None else len(replicas.ready_replicas()),
        "desired": None if replicas is None else replicas.desired,
        "restarts": None if replicas is None else replicas.restarts,
    }
