"""Synthetic training and live tables for drift: 100 features, 20 of them shifted.

80 numeric features (normal, exponential, uniform, small integers) and 20 categorical ones
(text labels, integer codes, booleans). The shifted live table moves 7 numeric means by one
standard deviation, widens 7 numeric spreads 2x and re-weights 6 categorical features; the
unshifted one is a fresh sample of the reference distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUMERIC = 80
CATEGORICAL = 20
MEAN_SHIFTED = [f"num_{i:02d}" for i in range(0, 70, 10)]  # 7
SCALE_SHIFTED = [f"num_{i:02d}" for i in range(5, 75, 10)]  # 7
REWEIGHTED = [f"cat_{i:02d}" for i in range(0, 18, 3)]  # 6
SHIFTED = sorted(MEAN_SHIFTED + SCALE_SHIFTED + REWEIGHTED)
LABELS = np.array(["red", "green", "blue", "amber", "violet", "grey"])


@dataclass
class Tables:
    reference: dict[str, np.ndarray]
    shifted: dict[str, np.ndarray]
    unshifted: dict[str, np.ndarray]
    categorical: list[str]  # the integer-coded ones, which must be named as categorical


def _numeric(i: int, rows: int, rng: np.random.Generator, loc: float, scale: float) -> np.ndarray:
    """Feature ``i``'s family, moved by ``loc`` reference standard deviations and spread ``scale`` times."""
    family = i % 4
    if family == 0:
        base, mean, std = rng.normal(3.0, 2.0, rows), 3.0, 2.0
    elif family == 1:
        base, mean, std = rng.exponential(1.5, rows), 1.5, 1.5
    elif family == 2:
        base, mean, std = rng.uniform(-1.0, 1.0, rows), 0.0, 1 / np.sqrt(3)
    else:
        base, mean, std = rng.poisson(4.0, rows).astype(np.float64), 4.0, 2.0
    return mean + (base - mean) * scale + loc * std


def _categorical(i: int, rows: int, rng: np.random.Generator, reweight: bool) -> np.ndarray:
    family = i % 3
    if family == 0:
        p = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
        values = LABELS
    elif family == 1:
        p = np.array([0.5, 0.3, 0.15, 0.05])
        values = np.array([10, 20, 30, 40])
    else:
        p = np.array([0.7, 0.3])
        values = np.array([False, True])
    if reweight:
        p = p[::-1]
    return values[rng.choice(len(values), size=rows, p=p)]


def make_tables(rows: int, seed: int) -> Tables:
    """The three tables, each of ``rows`` rows, from one seed."""
    rng = np.random.default_rng(seed)

    def table(shift: bool) -> dict[str, np.ndarray]:
        columns = {}
        for i in range(NUMERIC):
            name = f"num_{i:02d}"
            loc = 1.0 if shift and name in MEAN_SHIFTED else 0.0
            scale = 2.0 if shift and name in SCALE_SHIFTED else 1.0
            columns[name] = _numeric(i, rows, rng, loc, scale)
        for i in range(CATEGORICAL):
            name = f"cat_{i:02d}"
            columns[name] = _categorical(i, rows, rng, shift and name in REWEIGHTED)
        return columns

    codes = [f"cat_{i:02d}" for i in range(CATEGORICAL) if i % 3 == 1]
    return Tables(table(False), table(True), table(False), codes)
