"""Each score from counts equals a direct computation on the same bins (scipy or the formula)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from aiaas.monitoring import PSI_EPSILON, ReferenceProfile, count_batch, scores
from aiaas.monitoring.drift import check_drift, numeric_points


@pytest.fixture(scope="module")
def numeric() -> tuple[ReferenceProfile, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    reference = rng.gamma(2.0, 1.5, 30_000)
    live = rng.gamma(2.4, 1.5, 12_000) - 0.3
    return ReferenceProfile.build({"x": reference}), reference, live


def _psi_by_hand(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    total = 0.0
    for a, b in zip(p_counts / p_counts.sum(), q_counts / q_counts.sum(), strict=True):
        a, b = max(a, PSI_EPSILON), max(b, PSI_EPSILON)
        total += (b - a) * np.log(b / a)
    return total


def test_numeric_scores_match_direct_computations(numeric) -> None:
    profile, reference, live = numeric
    feature = profile.feature("x")
    ref_slots, live_slots = feature.slot_of(reference), feature.slot_of(live)
    ref = np.bincount(ref_slots, minlength=feature.slots)[:-1]
    cur = np.bincount(live_slots, minlength=feature.slots)[:-1]
    report = check_drift(profile, count_batch(profile, {"x": live})).features[0]

    assert report.psi == pytest.approx(_psi_by_hand(ref, cur), abs=1e-9)
    # KS of the binned CDFs is the exact two-sample KS of the values' bucket numbers
    assert report.ks == pytest.approx(ks_2samp(ref_slots, live_slots).statistic, abs=1e-9)
    assert report.jensen_shannon == pytest.approx(jensenshannon(ref, cur, base=2), abs=1e-9)
    points = numeric_points(feature)
    expected_w = wasserstein_distance(points, points, ref, cur) / reference.std()
    assert report.wasserstein == pytest.approx(expected_w, abs=1e-9)
    assert report.psi > 0.01 and report.ks > 0.05  # the shift is real, so the checks are not 0 == 0


def test_categorical_scores_match_direct_computations() -> None:
    rng = np.random.default_rng(5)
    words = np.array(["a", "b", "c", "d", "e"])
    reference = words[rng.choice(5, 8000, p=[0.4, 0.3, 0.15, 0.1, 0.05])]
    live = np.concatenate([words[rng.choice(5, 3000, p=[0.3, 0.3, 0.2, 0.1, 0.1])], ["zz"] * 40])
    profile = ReferenceProfile.build({"w": reference})
    report = check_drift(profile, count_batch(profile, {"w": live})).features[0]
    ref = profile.feature("w").counts[:-1]
    cur = np.array([(live == w).sum() for w in ["a", "b", "c", "d", "e"]] + [40])  # "zz" is other

    assert report.psi == pytest.approx(_psi_by_hand(ref, cur), abs=1e-9)
    assert report.jensen_shannon == pytest.approx(jensenshannon(ref, cur, base=2), abs=1e-9)
    keep = (ref + cur) > 0  # "other" is empty in the reference and holds "zz" live
    p_value = chi2_contingency(np.vstack([ref[keep], cur[keep]]), correction=False).pvalue
    assert report.chi2_p_value == pytest.approx(p_value, rel=1e-9, abs=1e-300)
    assert report.ks is None and report.wasserstein is None


def test_identical_counts_score_zero() -> None:
    counts = np.array([5, 0, 7, 9])
    assert scores.psi(counts, counts * 3) == pytest.approx(0.0, abs=1e-12)
    assert scores.jensen_shannon(counts, counts * 3) == pytest.approx(0.0, abs=1e-7)
    assert scores.ks(counts, counts * 3) == pytest.approx(0.0, abs=1e-12)
    assert scores.wasserstein(counts, counts, np.arange(4.0)) == 0.0
    assert scores.chi2_p_value(counts, counts * 3) == pytest.approx(1.0)
