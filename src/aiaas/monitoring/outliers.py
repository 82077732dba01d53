"""Outlier scores of single requests: an Isolation Forest fitted on a version's reference rows.

Drift (:mod:`aiaas.monitoring.drift`) says a window of traffic has moved; an outlier score
says one request looks like nothing the version was built on. The forest is fitted on half
of the seeded sample of reference rows stored with the version
(:func:`aiaas.registry.sample_rows`) and scores each row with the anomaly score of the
Isolation Forest's authors, ``s(x) = 2 ** (-E[h(x)] / c(n))`` in (0, 1]: the shorter the
average path that isolates a row, the higher.

A row is an outlier when it scores higher than every reference row of the other half, held
out of the fit. No threshold is set by hand, and the false alarm rate is known: a row drawn
from the reference's own distribution outscores all ``m`` held-out rows with probability
``1 / (m + 1)`` (a conformal test: 1 in 513 with a full sample of 1024 rows, 1 in 76 with
iris's 150). The forest's built-in rule (``contamination="auto"``, ``s(x) > 0.5``) is not
used: on iris it called 13 of 50 training rows outliers, since the compact clusters of a
small table isolate quickly wherever a row sits in them.

A request of several rows is as odd as its oddest row: its score is the highest of its
rows', and it is an outlier when one of them is (so a request of ``k`` rows from the
reference's distribution is called one with probability up to ``k / (m + 1)``).

Cost: fitting 100 trees on at most 512 rows takes a fraction of a second, once per version;
scoring is some tens of microseconds a row, in blocks. scikit-learn is imported when the
first forest is fitted, so a process that never scores never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["FOREST_SEED", "FOREST_TREES", "MIN_SAMPLE_ROWS", "OutlierForest", "request_scores"]

#: Trees per forest: the original paper's choice; scores settle well before it.
FOREST_TREES = 100
#: Seed of the forest's draws and of the split: the same reference always gives the same scores.
FOREST_SEED = 0
#: Fewest reference rows a forest is fitted on: half fit it, half set the threshold.
MIN_SAMPLE_ROWS = 4

Array = np.ndarray[Any, Any]


class OutlierForest:
    """An Isolation Forest fitted on one version's reference sample, with its threshold.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> forest = OutlierForest.fit(rng.normal(size=(500, 3)))
        >>> scores, flags = forest.score(np.array([[0.0, 0.0, 0.0], [40.0, -40.0, 40.0]]))
        >>> [bool(f) for f in flags]
        [False, True]
    """

    def __init__(self, forest: Any, features: int, threshold: float, held_out: int) -> None:
        self._forest = forest
        #: Columns a row must have.
        self.features = features
        #: The highest score of a held-out reference row: a row scoring above it is an outlier.
        self.threshold = threshold
        #: Reference rows held out of the fit to set :attr:`threshold`.
        self.held_out = held_out

    @classmethod
    def fit(cls, sample: Array, *, trees: int = FOREST_TREES, seed: int = FOREST_SEED) -> OutlierForest:
        """Fit on a seeded half of ``sample`` (``(rows, features)``, finite numbers); the
        other half sets the threshold.

        Raises:
            ValueError: ``sample`` is not a 2-D array of at least :data:`MIN_SAMPLE_ROWS` finite rows.
        """
        from sklearn.ensemble import IsolationForest

        sample = np.asarray(sample, dtype=np.float64)
        if sample.ndim != 2 or len(sample) < MIN_SAMPLE_ROWS or not np.isfinite(sample).all():
            raise ValueError(
                f"an outlier sample must be at least {MIN_SAMPLE_ROWS} finite rows; got shape {sample.shape}"
            )
        order = np.random.default_rng(seed).permutation(len(sample))
        half = len(sample) // 2
        fitted, held_out = sample[order[:half]], sample[order[half:]]
        forest = IsolationForest(n_estimators=trees, random_state=seed, n_jobs=1).fit(fitted)
        threshold = float(np.max(-forest.score_samples(held_out)))
        return cls(forest, sample.shape[1], threshold, len(held_out))

    def score(self, rows: Array) -> tuple[Array, Array]:
        """Each row's anomaly score in (0, 1] and whether it is an outlier (above :attr:`threshold`).

        Raises:
            ValueError: ``rows`` do not have :attr:`features` finite columns.
        """
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.features:
            raise ValueError(f"rows must have {self.features} columns; got shape {rows.shape}")
        scores: Array = -self._forest.score_samples(rows)
        return scores, scores > self.threshold


def request_scores(
    forest: OutlierForest, requests: Sequence[Array | None]
) -> list[tuple[float, bool] | None]:
    """The score and flag of each request (a ``(rows, features)`` block; None or a block
    with a non-finite value: not scored), all rows scored in one call."""
    blocks: list[Array] = []
    kept: list[int] = []
    for i, block in enumerate(requests):
        if block is None:
            continue
        block = np.asarray(block, dtype=np.float64)
        if len(block) and block.shape[1:] == (forest.features,) and np.isfinite(block).all():
            blocks.append(block)
            kept.append(i)
    out: list[tuple[float, bool] | None] = [None] * len(requests)
    if not kept:
        return out
    scores, flags = forest.score(np.concatenate(blocks))
    starts = np.cumsum([0] + [len(b) for b in blocks[:-1]])
    highest = np.maximum.reduceat(scores, starts)
    any_flag = np.logical_or.reduceat(flags, starts)
    for i, score, flag in zip(kept, highest, any_flag, strict=True):
        out[i] = (float(score), bool(flag))
    return out
