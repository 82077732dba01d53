"""The drift check: live counts against the reference, a score and a flag per feature and output.

Inputs and outputs go through the same code: a predicted class is a categorical feature, a
regression output a numeric one, both in the same profile with ``role="output"``.
"""

from __future__ import annotations

import numpy as np

from aiaas.errors import InvalidArgument
from aiaas.monitoring import scores
from aiaas.monitoring.counts import BinCounts
from aiaas.monitoring.reference import FeatureReference, ReferenceProfile
from aiaas.schemas.monitoring import DriftReport, DriftSettings, FeatureDrift

__all__ = ["check_drift", "numeric_points"]


def check_drift(
    profile: ReferenceProfile, live: BinCounts, settings: DriftSettings | None = None
) -> DriftReport:
    """Score every feature of ``live`` against ``profile`` and flag those past their threshold.

    Raises:
        InvalidArgument: the counts were made with another reference.
    """
    settings = settings or DriftSettings()
    if live.profile != profile.digest or len(live.counts) != profile.slots:
        raise InvalidArgument(
            f"counts of reference {live.profile} cannot be checked against reference {profile.digest}",
            details={"field": "profile", "expected": profile.digest, "got": live.profile},
        )
    features = []
    for i, feature in enumerate(profile.features):
        start = int(profile.offsets[i])
        features.append(_feature_drift(feature, live.counts[start : start + feature.slots], settings))
    inputs = [f for f in features if f.role == "input"]
    return DriftReport(
        rows=live.rows,
        features=features,
        drifted=[f.name for f in features if f.drifted],
        drifted_share=sum(f.drifted for f in inputs) / len(inputs) if inputs else 0.0,
    )


def numeric_points(feature: FeatureReference) -> np.ndarray:
    """Where each present bucket's mass sits for Wasserstein: midpoints, open ends at min and max."""
    assert feature.edges is not None
    edges = feature.edges[:-1]
    if len(edges) == 0:
        return np.zeros(1)
    high = float(np.nextafter(edges[-1], -np.inf))
    inner = (edges[:-1] + edges[1:]) / 2
    return np.concatenate([[edges[0]], inner, [high]])


def _feature_drift(feature: FeatureReference, live: np.ndarray, settings: DriftSettings) -> FeatureDrift:
    ref_present, live_present = feature.counts[:-1], live[:-1]
    rows, ref_rows = int(live_present.sum()), int(ref_present.sum())
    comparable = rows > 0 and ref_rows > 0
    psi = scores.psi(ref_present, live_present) if comparable else 0.0
    js = scores.jensen_shannon(ref_present, live_present) if comparable else 0.0
    ks = wasserstein = chi2 = None
    if feature.kind == "numeric":
        ks = scores.ks(ref_present, live_present) if comparable else 0.0
        scale = feature.std if feature.std else 1.0
        points = numeric_points(feature)
        distance = scores.wasserstein(ref_present, live_present, points) if comparable else 0.0
        wasserstein = distance / scale
        method: str = settings.numeric_method
    else:
        chi2 = scores.chi2_p_value(ref_present, live_present) if comparable else 1.0
        method = settings.categorical_method
    score, threshold, past = {
        "psi": (psi, settings.psi_threshold, psi >= settings.psi_threshold),
        "jensen_shannon": (js, settings.jensen_shannon_threshold, js >= settings.jensen_shannon_threshold),
        "ks": (ks, settings.ks_threshold, (ks or 0.0) >= settings.ks_threshold),
        "wasserstein": (
            wasserstein,
            settings.wasserstein_threshold,
            (wasserstein or 0.0) >= settings.wasserstein_threshold,
        ),
        "chi2": (chi2, settings.chi2_p_value, (1.0 if chi2 is None else chi2) < settings.chi2_p_value),
    }[method]
    enough = rows >= settings.min_rows
    return FeatureDrift(
        name=feature.name,
        role=feature.role,
        kind=feature.kind,
        method=method,
        score=float(score or 0.0),
        threshold=threshold,
        drifted=bool(past and enough and comparable),
        enough_rows=enough,
        rows=rows,
        reference_rows=ref_rows,
        psi=psi,
        jensen_shannon=js,
        ks=ks,
        wasserstein=wasserstein,
        chi2_p_value=chi2,
        missing_fraction=_share(int(live[-1]), int(live.sum())),
        reference_missing_fraction=_share(feature.missing, int(feature.counts.sum())),
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
