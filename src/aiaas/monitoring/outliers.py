"""Outlier scores of single requests: an Isolation Forest fitted on a version's reference rows.

Drift (:mod:`aiaas.monitoring.drift`) says a window of traffic has moved; an outlier score
says one request looks like nothing the version was built on. The forest is fitted on the
seeded sample of reference rows stored with the version
(:func:`aiaas.registry.sample_rows`) and scores each row with the anomaly score of the
Isolation Forest's authors, ``s(x) = 2 ** (-E[h(x)] / c(n))`` in (0, 1]: the shorter the
average path that isolates a row, the higher. A row is an outlier when the forest's own
decision function says so (``contamination="auto"``: ``s(x) > 0.5``, the paper's rule),
so no threshold is set by hand.

A request of several rows is as odd as its oddest row: its score is the highest of its
rows', and it is an outlier when one of them is.

Cost: fitting 100 trees on at most 1024 rows takes a fraction of a second, once per
version; scoring is some tens of microseconds a row, in blocks. scikit-learn is imported
when the first forest is fitted, so a process that never scores never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["FOREST_SEED", "FOREST_TREES", "OutlierForest", "request_scores"]

#: Trees per forest: the original paper's choice; scores settle well before it.
FOREST_TREES = 100
#: Seed of the forest's draws: the same reference always gives the same scores.
FOREST_SEED = 0

Array = np.ndarray[Any, Any]


class OutlierForest:
    """An Isolation Forest fitted on one version's reference sample.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> forest = OutlierForest.fit(rng.normal(size=(500, 3)))
        >>> scores, flags = forest.score(np.array([[0.0, 0.0, 0.0], [40.0, -40.0, 40.0]]))
        >>> [bool(f) for f in flags]
        [False, True]
    """

    def __init__(self, forest: Any, features: int) -> None:
        self._forest = forest
        #: Columns a row must have.
        self.features = features

    @classmethod
    def fit(cls, sample: Array, *, trees: int = FOREST_TREES, seed: int = FOREST_SEED) -> OutlierForest:
        """Fit on ``sample`` (``(rows, features)``, finite numbers).

        Raises:
            ValueError: ``sample`` is not a 2-D array of at least two finite rows.
        """
        from sklearn.ensemble import IsolationForest

        sample = np.asarray(sample, dtype=np.float64)
        if sample.ndim != 2 or len(sample) < 2 or not np.isfinite(sample).all():
            raise ValueError(f"an outlier sample must be at least 2 finite rows; got shape {sample.shape}")
        forest = IsolationForest(n_estimators=trees, contamination="auto", random_state=seed, n_jobs=1).fit(
            sample
        )
        return cls(forest, sample.shape[1])

    def score(self, rows: Array) -> tuple[Array, Array]:
        """Each row's anomaly score in (0, 1] and whether the forest calls it an outlier.

        Raises:
            ValueError: ``rows`` do not have :attr:`features` finite columns.
        """
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.features:
            raise ValueError(f"rows must have {self.features} columns; got shape {rows.shape}")
        scores: Array = -self._forest.score_samples(rows)
        flags: Array = self._forest.predict(rows) == -1
        return scores, flags


def request_scores(
    forest: OutlierForest, requests: Sequence[Array | None]
) -> list[tuple[float, bool] | None]:
    """The score and flag of each request (a ``(rows, features)`` block; None or a block
    with a non-finite value: not scored), all rows scored in one call."""
    kept = [
        i
        for i, block in enumerate(requests)
        if block is not None
        and len(block)
        and block.shape[1:] == (forest.features,)
        and np.isfinite(block).all()
    ]
    out: list[tuple[float, bool] | None] = [None] * len(requests)
    if not kept:
        return out
    blocks = [np.asarray(requests[i], dtype=np.float64) for i in kept]
    scores, flags = forest.score(np.concatenate(blocks))
    starts = np.cumsum([0] + [len(b) for b in blocks[:-1]])
    highest = np.maximum.reduceat(scores, starts)
    any_flag = np.logical_or.reduceat(flags, starts)
    for i, score, flag in zip(kept, highest, any_flag, strict=True):
        out[i] = (float(score), bool(flag))
    return out
