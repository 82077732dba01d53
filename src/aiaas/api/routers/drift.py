"""``GET /api/v1/deployments/{name}/drift``: each served version's live inputs and outputs against
its reference statistics, per feature, with a drifted flag.

Read from counts only: the inference server counts every request into its version's
reference bins and adds them to per-interval rows in the database
(:mod:`aiaas.store.drift`); a check sums the rows of the window and scores them
(:func:`aiaas.monitoring.check_drift`), so it costs O(bins) whatever the traffic and never
re-reads a logged row. The thresholds are the deployment's ``drift`` setting (by default
:class:`aiaas.schemas.DriftThresholds`' defaults), each overridable in the query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import APIRouter, Query

from aiaas import schemas
from aiaas.api.deps import Services, ServicesDep
from aiaas.api.params import Name
from aiaas.api.routers.monitoring import End, Start, Window, time_range
from aiaas.monitoring import BinCounts, check_drift
from aiaas.registry import ReferenceStore, StoredReference
from aiaas.store.drift import CountStore

__all__ = ["deployment_drift", "router"]

router = APIRouter(prefix="/deployments", tags=["monitoring"])

_NO_REFERENCE = (
    "no reference yet: a trained version gets one from its training dataset, an uploaded one from "
    "the dataset named at registration (reference_dataset) or else from its first "
    "AIAAS_DRIFT_REFERENCE_ROWS rows of traffic"
)


@router.get(
    "/{name}/drift",
    summary="Drift of live inputs and outputs per version: scores and a drifted flag per feature",
    description="For each version the deployment serves (and any other counted in the window): "
    "per feature and output, PSI and Jensen-Shannon, Kolmogorov-Smirnov and normed Wasserstein "
    "(numeric) or the chi-squared p-value (categorical), and `drifted` when the score of the "
    "chosen method passes its threshold with at least `min_rows` live values. The window is "
    "`window` back from now (or `start`/`end`; default: every count kept), read in whole "
    "AIAAS_DRIFT_INTERVAL_S intervals. Thresholds default to the deployment's `drift` setting and "
    "can be overridden here. "
    "A version without a reference has `report: null` and a note saying how it gets one.",
)
def drift(
    name: Name,
    services: ServicesDep,
    start: str | None = Start,
    end: str | None = End,
    window: str | None = Window,
    numeric_method: Literal["psi", "ks", "wasserstein", "jensen_shannon"] | None = Query(
        default=None,
        description="The score that decides a numeric feature's flag (default: the "
        "deployment's drift setting, else psi; likewise below).",
    ),
    categorical_method: Literal["psi", "chi2", "jensen_shannon"] | None = Query(
        default=None, description="The score that decides a categorical feature's flag (default psi)."
    ),
    psi_threshold: float | None = Query(default=None, description="Drifted when PSI >= this (default 0.2)."),
    ks_threshold: float | None = Query(default=None, description="Drifted when KS >= this (default 0.1)."),
    wasserstein_threshold: float | None = Query(
        default=None, description="Drifted when Wasserstein / reference std >= this (default 0.1)."
    ),
    jensen_shannon_threshold: float | None = Query(
        default=None, description="Drifted when the Jensen-Shannon distance >= this (default 0.1)."
    ),
    chi2_p_value: float | None = Query(
        default=None, description="Drifted when the chi-squared p-value < this (default 0.05)."
    ),
    min_rows: int | None = Query(default=None, description="Fewest live values for a flag (default 1000)."),
) -> schemas.DeploymentDrift:
    overrides = {
        "numeric_method": numeric_method,
        "categorical_method": categorical_method,
        "psi_threshold": psi_threshold,
        "ks_threshold": ks_threshold,
        "wasserstein_threshold": wasserstein_threshold,
        "jensen_shannon_threshold": jensen_shannon_threshold,
        "chi2_p_value": chi2_p_value,
        "min_rows": min_rows,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    schemas.DriftSettings.parse(given)  # a bad query is refused naming the parameter, before any read
    low, high = time_range(start, end, window)
    return deployment_drift(services, name, low, high, given)


def deployment_drift(
    services: Services,
    name: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    overrides: Mapping[str, Any] | None = None,
) -> schemas.DeploymentDrift:
    """The drift of deployment ``name`` over ``[start, end)`` (also what the gauges show), with
    the deployment's thresholds, any of them replaced by ``overrides``."""
    deployment = services.deployments.get(name)
    settings = schemas.DriftSettings.parse({**deployment.settings.drift.model_dump(), **(overrides or {})})
    counted = CountStore(services.deployments.db).window(services.deployment_key(name), start=start, end=end)
    served = {route.version for route in deployment.routes} | {deployment.serving_version}
    references = ReferenceStore(services.deployments.db, project=services.project)
    versions = []
    for version in sorted(served | {v for v, _ in counted}):
        reference = references.get(deployment.model, version)
        versions.append(_version_drift(version, reference, counted, settings))
    return schemas.DeploymentDrift(
        deployment=name, start=start, end=end, settings=settings, versions=versions
    )


def _version_drift(
    version: int,
    reference: StoredReference | None,
    counted: dict[tuple[int, str], BinCounts],
    settings: schemas.DriftSettings,
) -> schemas.VersionDrift:
    if reference is None:
        return schemas.VersionDrift(version=version, reference=None, report=None, note=_NO_REFERENCE)
    profile = reference.profile
    live = counted.get((version, profile.digest), BinCounts.zeros(profile))
    stale = sum(c.rows for (v, digest), c in counted.items() if v == version and digest != profile.digest)
    note: str | None = None
    if stale:
        note = f"{stale} rows counted against an earlier reference of this version are left out"
    elif live.rows == 0:
        note = "no traffic counted in the window"
    info: dict[str, Any] = {
        "digest": profile.digest,
        "source": reference.source,
        "rows": profile.rows,
        "outlier_sample_rows": None if reference.sample is None else len(reference.sample),
        "created_at": reference.created_at,
    }
    return schemas.VersionDrift(
        version=version,
        reference=schemas.DriftReference.model_validate(info),
        report=check_drift(profile, live, settings),
        note=note,
    )
