"""The REST contract: request and response bodies shared by the API and the SDK.

Both sides import these models, so a field renamed here is renamed for both, and the
OpenAPI document at ``/openapi.json`` is generated from exactly what the SDK parses.
"""

from __future__ import annotations

from aiaas.schemas._base import MAX_ID
from aiaas.schemas.datasets import (
    Dataset,
    DatasetColumn,
    DatasetList,
    DatasetSampleCreate,
    DatasetSplit,
    DatasetText,
    DatasetVersion,
    DatasetVersionList,
)
from aiaas.schemas.deployments import (
    Batching,
    Deployment,
    DeploymentCreate,
    DeploymentList,
    DeploymentUpdate,
    Route,
    RouteRef,
    ScalingEvent,
    ScalingEventList,
    ServedState,
    TrafficRoute,
)
from aiaas.schemas.jobs import Job, JobList, JobLogLine, JobLogs, JobMetrics, JobMetricsList, JobRegistration
from aiaas.schemas.registry import (
    Alias,
    AliasList,
    AliasSet,
    Comparison,
    Health,
    Model,
    ModelCreate,
    ModelList,
    ModelUpdate,
    ModelVersion,
    ModelVersionList,
    OutputAgreement,
    VersionMetadata,
)
from aiaas.schemas.training import (
    EarlyStoppingSpec,
    JobSpec,
    ModelSpec,
    OptimizerSpec,
    ScheduleSpec,
    WarmStartRef,
)

__all__ = [
    "MAX_ID",
    "Alias",
    "AliasList",
    "AliasSet",
    "Batching",
    "Comparison",
    "Dataset",
    "DatasetColumn",
    "DatasetList",
    "DatasetSampleCreate",
    "DatasetSplit",
    "DatasetText",
    "DatasetVersion",
    "DatasetVersionList",
    "Deployment",
    "DeploymentCreate",
    "DeploymentList",
    "DeploymentUpdate",
    "EarlyStoppingSpec",
    "Health",
    "Job",
    "JobList",
    "JobLogLine",
    "JobLogs",
    "JobMetrics",
    "JobMetricsList",
    "JobRegistration",
    "JobSpec",
    "Model",
    "ModelCreate",
    "ModelList",
    "ModelSpec",
    "ModelUpdate",
    "ModelVersion",
    "ModelVersionList",
    "OptimizerSpec",
    "OutputAgreement",
    "Route",
    "RouteRef",
    "ScalingEvent",
    "ScalingEventList",
    "ScheduleSpec",
    "ServedState",
    "TrafficRoute",
    "VersionMetadata",
    "WarmStartRef",
]
