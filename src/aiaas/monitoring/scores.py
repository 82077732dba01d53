"""Drift scores of two count vectors over the same buckets: reference counts against live ones.

Every function takes counts, never raw values, so a score costs O(buckets) whatever the
traffic. Conventions (the tests check each against a direct computation):

* ``psi``: population stability index, ``sum((q - p) * ln(q / p))`` over buckets, with both
  shares floored at :data:`PSI_EPSILON` so an empty bucket gives a large finite value (the
  floor Evidently uses).
* ``jensen_shannon``: Jensen-Shannon *distance* (the square root of the divergence), base 2,
  so it lies in [0, 1]; ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
* ``ks``: Kolmogorov-Smirnov statistic of the binned CDFs, ``max |P - Q|`` at the bucket
  edges; equal to ``scipy.stats.ks_2samp`` on the bucket numbers of the values.
* ``wasserstein``: Wasserstein-1 with each bucket's mass at a point (its midpoint; the open
  ends at the reference min and max), ``sum |P - Q| * gap`` between points;
  ``scipy.stats.wasserstein_distance`` with those points as values and the counts as weights.
* ``chi2_p_value``: two-sample chi-squared test of homogeneity on the 2 x buckets table
  (buckets empty in both dropped); ``scipy.stats.chi2_contingency(..., correction=False)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PSI_EPSILON", "chi2_p_value", "jensen_shannon", "ks", "psi", "wasserstein"]

PSI_EPSILON = 1e-4


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def psi(reference: np.ndarray, live: np.ndarray) -> float:
    """Population stability index (see the module docstring)."""
    p = np.maximum(_shares(reference), PSI_EPSILON)
    q = np.maximum(_shares(live), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference: np.ndarray, live: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, in [0, 1]."""
    p, q = _shares(reference), _shares(live)
    m = (p + q) / 2
    divergence = 0.0
    for x in (p, q):
        nz = x > 0
        divergence += 0.5 * float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))
    return float(np.sqrt(max(divergence, 0.0)))


def ks(reference: np.ndarray, live: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic of the two binned CDFs."""
    return float(np.max(np.abs(np.cumsum(_shares(reference)) - np.cumsum(_shares(live))), initial=0.0))


def wasserstein(reference: np.ndarray, live: np.ndarray, points: np.ndarray) -> float:
    """Wasserstein-1 distance with bucket ``i``'s mass at ``points[i]`` (sorted)."""
    gaps = np.diff(points)
    cdf_gap = np.abs(np.cumsum(_shares(reference)) - np.cumsum(_shares(live)))[:-1]
    return float(np.sum(cdf_gap * gaps))


def chi2_p_value(reference: np.ndarray, live: np.ndarray) -> float:
    """p-value of the chi-squared test that both counts come from one distribution."""
    from scipy.stats import chi2  # imported on first use: a serving replica never scores

    keep = (reference + live) > 0
    table = np.vstack([reference[keep], live[keep]]).astype(np.float64)
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return float(chi2.sf(statistic, table.shape[1] - 1))
