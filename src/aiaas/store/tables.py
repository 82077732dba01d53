"""The metadata schema: SQLAlchemy 2 ORM classes, one per table.

The Alembic migrations under ``migrations/`` are the source of truth for the database
itself; these classes mirror them and a test checks both agree. Domain services query
these rows and hand plain entities to their callers, so rows never leave a service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Project names are at most 63 characters (:func:`aiaas.entities.projects.is_project_name`).
_PROJECT: String = String(63)
#: A qualified deployment name (:func:`aiaas.entities.projects.qualified_name`): ``project/name``,
#: 63 + 1 + 128 characters.
_DEPLOYMENT_KEY = String(192)


def _project_column() -> Mapped[str]:
    """The project a row belongs to (migration 0013): every owned resource has one.

    The repositories always set it; the default only serves rows written outside them
    (tests, scripts), as the migration's server default does for rows written before it.
    """
    return mapped_column(_PROJECT, ForeignKey("projects.name"), index=True, default="default")


__all__ = [
    "AlertEventRow",
    "AlertOutboxRow",
    "AlertRuleRow",
    "AlertSilenceRow",
    "AlertWebhookRow",
    "AliasRow",
    "ApiKeyRow",
    "AuditHeadRow",
    "AuditRow",
    "Base",
    "DatasetRow",
    "DatasetVersionRow",
    "DeploymentRow",
    "DeploymentStatusRow",
    "DriftCountRow",
    "DriftReferenceRow",
    "LeaseRow",
    "MetricSampleRow",
    "ModelRow",
    "ModelVersionCounterRow",
    "ModelVersionRow",
    "ProjectRow",
    "RetrainingEventRow",
    "RetrainingPolicyRow",
    "RetrainingRunRow",
    "RolloutEventRow",
    "RolloutRow",
    "ScalingEventRow",
    "StateRevisionRow",
    "TrainingJobLogRow",
    "TrainingJobMetricRow",
    "TrainingJobRow",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    SQLite has no timezone type and hands back naive datetimes, while PostgreSQL hands
    back aware ones; normalising here keeps entities identical on both back ends.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class ProjectRow(Base):
    """A project (migration 0013): the namespace of models, datasets, jobs, deployments, alerts."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(_PROJECT, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Quotas (migration 0018); NULL: unlimited. See aiaas.store.quotas.
    max_jobs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_slots: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("project", "name", name="uq_models_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    versions: Mapped[list[ModelVersionRow]] = relationship(
        back_populates="model", cascade="all, delete-orphan", order_by="ModelVersionRow.version"
    )
    aliases: Mapped[list[AliasRow]] = relationship(
        back_populates="model", cascade="all, delete-orphan", order_by="AliasRow.name"
    )


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    flavor: Mapped[str] = mapped_column(String(32))
    artifact_digest: Mapped[str] = mapped_column(String(64))
    artifact_size_bytes: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[dict[str, Any]] = mapped_column(JSON)
    example: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lineage: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    model: Mapped[ModelRow] = relationship(back_populates="versions")


class AliasRow(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name", name="uq_aliases_model_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    previous_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    model: Mapped[ModelRow] = relationship(back_populates="aliases")


class ModelVersionCounterRow(Base):
    """The highest version number ever given to a model name (migration 0006).

    Keyed by name, not by model id: it outlives the model, so a deleted version's number,
    or a deleted model's numbers should its name come back, are never given again.
    """

    __tablename__ = "model_version_counters"

    project: Mapped[str] = mapped_column(_PROJECT, primary_key=True, default="default")
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_version: Mapped[int] = mapped_column(Integer)


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("project", "name", name="uq_deployments_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    name: Mapped[str] = mapped_column(String(128))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alias: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Serving configuration (migration 0002). NULL means "the default", so rows written
    # before it existed, and settings never given, follow the defaults of the serving code;
    # none_as_null stores a cleared setting as SQL NULL rather than the JSON value null.
    traffic: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    shadow: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    batching: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    max_queue_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    timeout_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Replica processes and autoscaling (migration 0005); NULL means "the default".
    min_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_in_flight: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scale_down_delay_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What the prediction log keeps (migration 0007): {"sample_rate", "max_rows_per_s"}.
    prediction_log: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    # The settings without a column of their own, by name (migration 0010): {"drift": {...}}.
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)

    model: Mapped[ModelRow] = relationship()


class ScalingEventRow(Base):
    """One autoscaling decision of the inference server (migration 0005).

    Keyed by deployment *name*, not id: the history of a deployment that was deleted and
    created again reads as one, and a deleted deployment leaves no dangling key behind.
    """

    __tablename__ = "scaling_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(_DEPLOYMENT_KEY, index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_replicas: Mapped[int] = mapped_column(Integer)
    to_replicas: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)


class DeploymentStatusRow(Base):
    """What the inference server really serves for one deployment (migration 0006).

    Written by the inference server after it reconciles: the serving ``revision`` it
    applied, the primary version it tried (``desired_version``), the one it serves
    (``serving_version``, NULL when none) and why the tried one could not be loaded
    (``error``). Keyed by deployment name, like :class:`ScalingEventRow`.
    """

    __tablename__ = "deployment_status"

    deployment: Mapped[str] = mapped_column(_DEPLOYMENT_KEY, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)
    desired_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    serving_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FeedbackRow(Base):
    """The ground truth of one answered request (migration 0008), keyed by deployment name and
    request id: posting feedback for the same request again replaces its label.

    ``label`` is JSON: a class label or a target value for a one-row request, or a list of
    them, one per row. Keyed by name like :class:`ScalingEventRow`, so it outlives a
    deployment deleted and created again, as its prediction log does.
    """

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("deployment", "request_id", name="uq_feedback_request"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(_DEPLOYMENT_KEY)
    request_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[Any] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DriftReferenceRow(Base):
    """A model version's drift reference (migration 0009): the bins and reference counts of
    :class:`aiaas.monitoring.ReferenceProfile` as JSON, the digest live counts are tagged
    with, which input tensor column is which feature (``layout``), and where it came from
    (``source``: the training dataset, a dataset named at registration, or first traffic),
    and a seeded sample of its feature rows (``sample``, migration 0020; NULL when it has
    none): what per-request outlier scores are fitted on.

    One per version, deleted with it. A profile of 100 features is some 50 kB of JSON: a
    column, not an artifact, so ``aiaas gc`` has nothing to learn about it.
    """

    __tablename__ = "drift_references"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    layout: Mapped[dict[str, Any]] = mapped_column(JSON)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    sample: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DriftCountRow(Base):
    """Live drift counts of one deployment, version and interval (migration 0009).

    ``counts`` is the :class:`aiaas.monitoring.BinCounts` vector of the reference whose
    digest is ``profile``; the inference server adds each block it counts into the row of
    its interval (several servers add into the same row), so a window is a sum of rows and
    survives a restart. Keyed by deployment name, like :class:`FeedbackRow`.
    """

    __tablename__ = "drift_counts"
    __table_args__ = (
        UniqueConstraint("deployment", "version", "profile", "started_at", name="uq_drift_counts_interval"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(_DEPLOYMENT_KEY)
    version: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    interval_s: Mapped[float] = mapped_column(Float)
    rows: Mapped[int] = mapped_column(BigInteger)
    counts: Mapped[list[int]] = mapped_column(JSON)


class StateRevisionRow(Base):
    """A single counter bumped in the same transaction as any change to what is served.

    The inference server polls this one integer and reloads the desired state only when
    it moved, so reconciling costs one tiny query per interval.
    """

    __tablename__ = "state_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class TrainingJobRow(Base):
    """A training job: its spec, where it stands, and its last checkpoint (to resume from)."""

    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    status: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    dataset: Mapped[str] = mapped_column(String(128))
    dataset_version: Mapped[int] = mapped_column(Integer)
    register_as: Mapped[str] = mapped_column(String(128))
    workers: Mapped[int] = mapped_column(Integer)
    launcher: Mapped[str] = mapped_column(String(16), default="scheduler")
    epochs: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    checkpoint_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checkpoint_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainingJobMetricRow(Base):
    """One epoch's metrics of a job; a resumed job rewrites the epochs after its checkpoint."""

    __tablename__ = "training_job_metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch", name="uq_training_job_metrics_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainingJobLogRow(Base):
    """One log line of a job; the row id orders lines and is the cursor of ``logs -f``."""

    __tablename__ = "training_job_logs"
    __table_args__ = (Index("ix_training_job_logs_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DatasetRow(Base):
    """A named dataset (migration 0003); its data lives in its versions."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project", "name", name="uq_datasets_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    versions: Mapped[list[DatasetVersionRow]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", order_by="DatasetVersionRow.version"
    )


class DatasetVersionRow(Base):
    """One immutable dataset version: its data file, schema, statistics and split."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    artifact_digest: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(BigInteger)
    schema: Mapped[list[Any]] = mapped_column(JSON)
    statistics: Mapped[dict[str, Any]] = mapped_column(JSON)
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    task: Mapped[str | None] = mapped_column(String(16), nullable=True)
    split: Mapped[dict[str, Any]] = mapped_column(JSON)
    # "metadata" is taken by SQLAlchemy's declarative base, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    dataset: Mapped[DatasetRow] = relationship(back_populates="versions")


class MetricSampleRow(Base):
    """What the inference server observed of one deployment's version in one interval (migration 0011).

    Counters (``requests``, ``errors``, ``rows``, ``latency_*``, ``restarts``,
    ``cpu_seconds``) are what happened in the interval and add up across servers; gauges
    (``queue_depth``, ``in_flight``, ``memory_bytes``) are the highest any server sampled in
    it. ``latency_buckets`` maps each upper bound (``"0.005"``, ``"+Inf"``) to the requests
    whose latency fell in that bucket (not cumulative), so windows merge by adding.
    """

    __tablename__ = "metric_samples"
    __table_args__ = (
        UniqueConstraint("deployment", "version", "started_at", name="uq_metric_samples_interval"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(_DEPLOYMENT_KEY)
    version: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    interval_s: Mapped[float] = mapped_column(Float)
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    latency_sum_s: Mapped[float] = mapped_column(Float)
    latency_buckets: Mapped[dict[str, Any]] = mapped_column(JSON)
    restarts: Mapped[int] = mapped_column(BigInteger)
    cpu_seconds: Mapped[float] = mapped_column(Float)
    memory_bytes: Mapped[float] = mapped_column(Float)
    queue_depth: Mapped[float] = mapped_column(Float)
    in_flight: Mapped[float] = mapped_column(Float)


class AlertRuleRow(Base):
    """An alert rule and where its evaluation stands (migration 0011).

    ``state`` is inactive, pending or firing; ``state_since`` when it entered it (a pending
    rule fires once its condition held ``for_s`` from then).
    """

    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("project", "name", name="uq_alert_rules_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    name: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str | None] = mapped_column(String(128), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metric: Mapped[str] = mapped_column(String(32))
    feature: Mapped[str | None] = mapped_column(String(256), nullable=True)
    op: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    window_s: Mapped[float] = mapped_column(Float)
    for_s: Mapped[float] = mapped_column(Float)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="inactive")
    state_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: threshold or anomaly (migration 0012); an anomaly rule's detector settings in ``anomaly``.
    kind: Mapped[str] = mapped_column(String(16), default="threshold", server_default="threshold")
    anomaly: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AlertEventRow(Base):
    """One transition of a rule (migration 0011): kept after the rule is deleted, so no foreign key.

    ``payload`` is the notification body, frozen when the transition is written, so every
    delivery attempt (across restarts too) sends the same bytes.
    """

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    rule_id: Mapped[int] = mapped_column(Integer, index=True)
    rule: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    silenced_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AlertOutboxRow(Base):
    """One notification of a transition to one target, until delivered or given up (migration 0011)."""

    __tablename__ = "alert_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(16))
    webhook_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AlertWebhookRow(Base):
    """Where transitions are POSTed, and the secret their signature is made with (migration 0011)."""

    __tablename__ = "alert_webhooks"
    __table_args__ = (UniqueConstraint("project", "name", name="uq_alert_webhooks_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertSilenceRow(Base):
    """A silence until ``ends_at`` of one rule, of one deployment's rules, or both (migration 0011)."""

    __tablename__ = "alert_silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = _project_column()
    rule: Mapped[str | None] = mapped_column(String(128), nullable=True)
    deployment: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LeaseRow(Base):
    """A named lease one process holds until ``expires_at`` (migration 0011): the alert evaluator's,
    so that of several control-plane workers exactly one evaluates and delivers."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Rows kept in modules of their own (each module short), re-exported so that every row is
# registered on ``Base.metadata`` and importable from here.
from aiaas.store.tables_actions import (  # noqa: E402
    RetrainingEventRow,
    RetrainingPolicyRow,
    RetrainingRunRow,
    RolloutEventRow,
    RolloutRow,
)
from aiaas.store.tables_security import ApiKeyRow, AuditHeadRow, AuditRow  # noqa: E402
