"""The outlier forest: far rows flagged, the false alarm rate its held-out threshold promises,
scores in (0, 1], one score per request (its oddest row), requests that cannot be scored."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from aiaas.monitoring import OutlierForest, request_scores

Array = np.ndarray[Any, Any]


def _normal(n: int, seed: int) -> Array:
    return np.random.default_rng(seed).normal(size=(n, 5))


def test_rows_far_from_the_reference_are_outliers_and_reference_like_rows_rarely_are() -> None:
    forest = OutlierForest.fit(_normal(1024, 0))
    assert forest.held_out == 512 and forest.features == 5
    far = _normal(200, 1) + 12.0  # twelve standard deviations off in every feature
    scores, flags = forest.score(far)
    assert flags.all() and (scores > forest.threshold).all()
    fresh = _normal(20_000, 2)  # new rows of the reference's own distribution
    scores, flags = forest.score(fresh)
    assert ((scores > 0) & (scores <= 1)).all()
    # A conformal bound: each fresh row outscores all 512 held-out rows with probability at
    # most 1/513 (0.2%). Five times that leaves room for chance over 20,000 rows.
    assert flags.mean() <= 5 / 513


def test_a_small_clustered_table_calls_few_of_its_own_rows_outliers() -> None:
    x, _ = load_iris(return_X_y=True)
    forest = OutlierForest.fit(x)
    _, flags = forest.score(x)
    assert flags.sum() <= len(x) // 20  # the forest's contamination="auto" rule called 26%
    assert forest.score(x[::15] * 50)[1].all()


def test_the_same_sample_gives_the_same_scores() -> None:
    sample, rows = _normal(300, 3), _normal(10, 4)
    first, second = OutlierForest.fit(sample), OutlierForest.fit(sample)
    np.testing.assert_array_equal(first.score(rows)[0], second.score(rows)[0])
    assert first.threshold == second.threshold


def test_a_request_is_as_odd_as_its_oddest_row() -> None:
    forest = OutlierForest.fit(_normal(512, 5))
    near, far = _normal(3, 6), np.full((1, 5), 30.0)
    row_scores, _ = forest.score(np.concatenate([near, far]))
    mixed = np.concatenate([near[:2], far])
    results = request_scores(forest, [near, mixed, None, near[:1]])
    assert results[0] == (pytest.approx(row_scores[:3].max()), False)
    assert results[1] == (pytest.approx(row_scores[3]), True)
    assert results[2] is None
    assert results[3] == (pytest.approx(row_scores[0]), False)


def test_requests_that_cannot_be_scored_get_none_and_the_others_still_do() -> None:
    forest = OutlierForest.fit(_normal(64, 7))
    good = _normal(2, 8)
    with_nan = good.copy()
    with_nan[0, 1] = np.nan
    results = request_scores(forest, [with_nan, _normal(2, 9)[:, :3], np.empty((0, 5)), good])
    assert results[:3] == [None, None, None]
    assert results[3] is not None
    assert request_scores(forest, []) == []


def test_a_sample_too_small_or_not_finite_is_refused_naming_the_rule() -> None:
    with pytest.raises(ValueError, match="at least 4 finite rows"):
        OutlierForest.fit(_normal(3, 0))
    bad = _normal(10, 0)
    bad[2, 2] = np.inf
    with pytest.raises(ValueError, match="at least 4 finite rows"):
        OutlierForest.fit(bad)
    with pytest.raises(ValueError, match="5 columns"):
        OutlierForest.fit(_normal(10, 0)).score(np.zeros((1, 4)))
