"""Monitoring of served models: drift of live inputs and outputs against a version's reference.

The pieces, in the order a served version uses them:

* :class:`ReferenceProfile` — built once from the training table (and the model's outputs
  on it), stored with the version as JSON: per feature, the buckets and reference counts.
* :class:`CountWindow` — in each serving replica: each batch is counted into those buckets
  (O(rows x features), numpy), kept per interval in a bounded ring; rings of several
  replicas merge by adding counts (:meth:`CountWindow.snapshot` travels as JSON).
* :func:`check_drift` — from counts only: PSI, Jensen-Shannon, Kolmogorov-Smirnov,
  Wasserstein (numeric), chi-squared (categorical), and a drifted flag per feature against
  :class:`aiaas.schemas.DriftSettings` thresholds.
* :class:`OutlierForest` — per request rather than per window: an Isolation Forest fitted on
  the version's reference rows scores how unlike them one request's inputs are.
"""

from __future__ import annotations

from aiaas.monitoring.counts import Batch, BinCounts, count_batch
from aiaas.monitoring.drift import check_drift
from aiaas.monitoring.outliers import OutlierForest, request_scores
from aiaas.monitoring.reference import PROFILE_FORMAT, FeatureReference, ReferenceProfile
from aiaas.monitoring.scores import PSI_EPSILON
from aiaas.monitoring.window import CountWindow

__all__ = [
    "PROFILE_FORMAT",
    "PSI_EPSILON",
    "Batch",
    "BinCounts",
    "CountWindow",
    "FeatureReference",
    "OutlierForest",
    "ReferenceProfile",
    "check_drift",
    "count_batch",
    "request_scores",
]
