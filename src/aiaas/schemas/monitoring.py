"""Monitoring on the wire: drift settings and scores, the prediction log, feedback and live
performance.

:class:`DriftSettings` is the one definition of every drift knob. The reference statistics
stored with a model version, the counting in the inference server and the check that the
control plane answers all take it, so a threshold changed here changes everywhere. The
prediction log, feedback and performance answers are what the control plane's
``/api/v1/deployments/{name}/predictions``, ``/feedback`` and ``/performance`` send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError

from aiaas.schemas._base import Wire, WireIn
from aiaas.translate import invalid_argument

__all__ = [
    "CATEGORICAL_DRIFT_METHODS",
    "MAX_FEEDBACK_ITEMS",
    "NUMERIC_DRIFT_METHODS",
    "DeploymentDrift",
    "DriftReference",
    "DriftReport",
    "DriftSettings",
    "DriftThresholds",
    "FeatureDrift",
    "FeedbackBatch",
    "FeedbackItem",
    "FeedbackResult",
    "Performance",
    "Prediction",
    "PredictionList",
    "VersionDrift",
    "VersionPerformance",
]

#: The score that decides a numeric feature's flag (all are computed and reported).
NUMERIC_DRIFT_METHODS = ("psi", "ks", "wasserstein", "jensen_shannon")
#: The score that decides a categorical feature's flag.
CATEGORICAL_DRIFT_METHODS = ("psi", "chi2", "jensen_shannon")

NumericMethod = Literal["psi", "ks", "wasserstein", "jensen_shannon"]
CategoricalMethod = Literal["psi", "chi2", "jensen_shannon"]


class DriftThresholds(WireIn):
    """When a feature counts as drifted: the deciding score per kind of feature, its threshold
    and the fewest live values for a flag.

    The defaults follow common practice (PSI >= 0.2 is "significant shift"; Evidently's
    defaults for Jensen-Shannon and normed Wasserstein are 0.1). The chi-squared p-value is
    exact but, on large windows, flags differences too small to matter: it is reported, and
    decides only when chosen. These are what a deployment may set for itself (its ``drift``
    setting) and a drift query may override; the binning and the count intervals below are
    the server's, fixed when a reference is built.
    """

    numeric_method: NumericMethod = Field(
        default="psi", description="The score that decides a numeric feature's drifted flag."
    )
    categorical_method: CategoricalMethod = Field(
        default="psi", description="The score that decides a categorical feature's drifted flag."
    )
    psi_threshold: float = Field(default=0.2, gt=0, description="Drifted when PSI >= this.")
    ks_threshold: float = Field(
        default=0.1, gt=0, le=1, description="Drifted when the Kolmogorov-Smirnov statistic >= this."
    )
    wasserstein_threshold: float = Field(
        default=0.1,
        gt=0,
        description="Drifted when the Wasserstein-1 distance divided by the reference standard "
        "deviation >= this.",
    )
    jensen_shannon_threshold: float = Field(
        default=0.1, gt=0, le=1, description="Drifted when the Jensen-Shannon distance (base 2) >= this."
    )
    chi2_p_value: float = Field(
        default=0.05, gt=0, lt=1, description="Drifted when the chi-squared p-value < this."
    )
    min_rows: int = Field(
        default=1000,
        ge=1,
        description="Fewest present live values for a flag: below it a feature is reported with "
        "enough_rows false and never flagged (small samples give noisy scores).",
    )


class DriftSettings(DriftThresholds):
    """How reference statistics are binned and counted, and (from :class:`DriftThresholds`)
    when a feature counts as drifted."""

    numeric_bins: int = Field(
        default=20,
        ge=2,
        le=1000,
        description="Quantile bins of a numeric feature between its reference min and max "
        "(plus one open bin below and one above).",
    )
    max_categories: int = Field(
        default=20,
        ge=1,
        le=10000,
        description="Most frequent reference categories kept per categorical feature; the rest "
        "(and categories never seen in the reference) count as 'other'.",
    )
    interval_s: float = Field(
        default=60.0, gt=0, le=86400, description="Seconds of traffic per count snapshot in the ring."
    )
    intervals: int = Field(
        default=60,
        ge=1,
        le=10080,
        description="Snapshots kept in the ring: the longest window is interval_s * intervals.",
    )

    @classmethod
    def parse(cls, data: Any) -> DriftSettings:
        """Validate decoded settings; pydantic's errors become one InvalidArgument naming each field."""
        try:
            return cls.model_validate({} if data is None else data)
        except ValidationError as exc:
            raise invalid_argument(exc, what="drift settings", default_field="spec") from None


class FeatureDrift(Wire):
    """One feature's (or output's) scores against its reference, and whether it drifted."""

    name: str
    role: Literal["input", "output"]
    kind: Literal["numeric", "categorical"]
    method: str = Field(description="The score that decided the flag.")
    score: float = Field(description="That score's value.")
    threshold: float
    drifted: bool
    enough_rows: bool = Field(description="Whether live rows reached min_rows (else never drifted).")
    rows: int = Field(description="Present live values counted.")
    reference_rows: int
    psi: float
    jensen_shannon: float
    ks: float | None = Field(description="Kolmogorov-Smirnov statistic (numeric only).")
    wasserstein: float | None = Field(description="Wasserstein-1 / reference std (numeric only).")
    chi2_p_value: float | None = Field(description="Two-sample chi-squared p-value (categorical only).")
    missing_fraction: float
    reference_missing_fraction: float


class DriftReport(Wire):
    """Every feature's drift for one window of live counts."""

    rows: int = Field(description="Live rows in the window.")
    features: list[FeatureDrift]
    drifted: list[str] = Field(description="Names of the drifted features, inputs and outputs.")
    drifted_share: float = Field(description="Drifted inputs / inputs.")


class DriftReference(Wire):
    """Where a version's reference statistics came from."""

    digest: str = Field(description="The reference's digest; live counts are tagged with it.")
    source: dict[str, Any] = Field(
        description="kind: training (its training dataset), dataset (named at registration) or "
        "traffic (its first rows served); dataset: name:version where one was used."
    )
    rows: int = Field(description="Rows the reference was built from.")
    outlier_sample_rows: int | None = Field(
        default=None,
        description="Reference rows kept to fit per-request outlier scores on (the outlier_scores "
        "setting). null: none kept, because a feature is not a number (text, string categories) or "
        "the reference predates outlier scores; the version's requests are then logged unscored.",
    )
    created_at: datetime


class VersionDrift(Wire):
    """One served version's drift over the window; ``report`` is null when it cannot be checked."""

    version: int
    reference: DriftReference | None = Field(description="null: the version has no reference yet.")
    report: DriftReport | None = Field(
        description="Each feature's scores and flag (null without a reference)."
    )
    note: str | None = Field(default=None, description="Why there is no report, or what to know about it.")


class DeploymentDrift(Wire):
    """``GET /api/v1/deployments/{name}/drift``: per version, live counts against its reference."""

    deployment: str
    start: datetime | None = Field(description="The window's start (null: every count kept).")
    end: datetime | None = Field(description="The window's end (null: now).")
    settings: DriftSettings = Field(description="The thresholds and methods the flags were decided with.")
    versions: list[VersionDrift] = Field(
        description="The versions the deployment serves, and any other with counts in the window."
    )


#: The most labels one feedback request may carry.
MAX_FEEDBACK_ITEMS = 10_000


class Prediction(Wire):
    """One logged request: what was sent, what was answered, by which version, how fast."""

    request_id: str = Field(description="The answer's x-request-id: the key for feedback.")
    version: int = Field(description="The model version that answered.")
    time: datetime = Field(description="When the answer was ready (UTC).")
    latency_ms: float = Field(description="From the request's body read to its answer, in ms.")
    inputs: dict[str, Any] = Field(description="Input name → the values sent (nested lists).")
    outputs: dict[str, Any] = Field(description="Output name → the values answered (nested lists).")
    outlier_score: float | None = Field(
        default=None,
        description="With the deployment's outlier_scores on: how unlike its version's reference rows "
        "the request's inputs are, the Isolation Forest anomaly score in (0, 1] (its oddest row's); "
        "null when not scored.",
    )
    outlier: bool | None = Field(
        default=None,
        description="The forest's verdict on the request (score above 0.5, its own decision rule); "
        "null when not scored.",
    )


class PredictionList(Wire):
    deployment: str
    predictions: list[Prediction] = Field(description="Oldest first.")
    truncated: bool = Field(
        description="More rows match than `limit`: ask again from the last row's time, or download "
        "them all as Parquet (format=parquet)."
    )


Label = str | int | float | bool | list[str | int | float | bool]


class FeedbackItem(WireIn):
    """The ground truth of one answered request."""

    request_id: str = Field(
        min_length=1, max_length=128, description="The answer's x-request-id (or V2 body id)."
    )
    label: Label = Field(
        description="What the answer should have been: a class label or a target value, or a list "
        "of them for a request of several rows (one per row)."
    )


class FeedbackBatch(WireIn):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS)


class FeedbackResult(Wire):
    deployment: str
    accepted: int = Field(description="Labels stored (a request labelled before gets the new label).")
    unknown_request_ids: list[str] = Field(
        description="Request ids not in the deployment's prediction log (never answered, not "
        "sampled, past retention, or answered in the last few seconds and not written yet): "
        "their labels were not stored; post them again later if they were just answered."
    )


class VersionPerformance(Wire):
    version: int
    task: str = Field(description="classification or regression, from the version's signature.")
    labelled_rows: int = Field(description="Logged rows with a label, in the window.")
    metrics: dict[str, float | None] = Field(
        description="classification: accuracy, precision, recall, f1 (macro averages over the "
        "classes seen) and roc_auc (one-vs-rest macro, from the logged scores); regression: mae, "
        "rmse, r2. null where undefined (no rows; roc_auc with one class)."
    )
    notes: list[str] = Field(default_factory=list, description="Why some rows or metrics are left out.")


class Performance(Wire):
    deployment: str
    start: datetime | None = Field(description="The window's start (null: the whole log).")
    end: datetime | None = Field(description="The window's end (null: now).")
    versions: list[VersionPerformance] = Field(description="One entry per version with labelled rows.")
