"""Reference statistics: the buckets, their counts, the JSON form, and refused input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.monitoring import ReferenceProfile, count_batch
from aiaas.schemas import DriftSettings


def test_numeric_bins_are_quantiles_with_open_ends() -> None:
    x = np.random.default_rng(0).normal(size=40_000)
    feature = ReferenceProfile.build({"x": x}).feature("x")
    counts = feature.counts
    # slots: below min | 20 quantile bins | above max | missing
    assert len(counts) == 20 + 3
    assert counts[0] == 0 and counts[-2] == 0 and counts[-1] == 0
    assert counts.sum() == 40_000
    assert np.all(np.abs(counts[1:-2] - 2000) < 40)  # about 1/20 of the rows each
    assert feature.edges[0] == x.min() and feature.edges[-2] > x.max() and np.isnan(feature.edges[-1])


def test_nan_is_missing_and_infinities_fall_outside_the_range() -> None:
    feature = ReferenceProfile.build({"x": np.arange(100.0)}).feature("x")
    values = np.array([np.nan, np.inf, -np.inf, -5.0, 1000.0, 50.0, np.nan])
    slots = feature.slot_of(values)
    assert list(slots[[0, 6]]) == [feature.slots - 1] * 2  # missing
    assert slots[1] == slots[4] == feature.slots - 2  # above max
    assert slots[2] == slots[3] == 0  # below min
    assert list(feature.count(values)) == list(np.bincount(slots, minlength=feature.slots))


@pytest.mark.parametrize("bins", [3, 20, 200])
def test_fast_counting_equals_the_bucket_of_each_value(bins: int) -> None:
    """``count`` (comparisons for few edges, binary search for many) == bincount of ``slot_of``."""
    rng = np.random.default_rng(bins)
    reference = np.concatenate([rng.normal(size=5000), rng.integers(0, 5, 3000).astype(float)])
    feature = ReferenceProfile.build({"x": reference}, settings=DriftSettings(numeric_bins=bins)).feature("x")
    live = np.concatenate([rng.normal(0.5, 2, 4000), [np.nan, np.inf, -np.inf, 0.0, 4.0], feature.edges[:-1]])
    assert np.array_equal(feature.count(live), np.bincount(feature.slot_of(live), minlength=feature.slots))


def test_constant_and_discrete_columns_keep_distinct_buckets() -> None:
    feature = ReferenceProfile.build({"x": np.full(1000, 5.0)}).feature("x")
    assert list(feature.count(np.array([4.0, 5.0, 5.0, 6.0]))) == [1, 2, 1, 0]


def test_categories_keep_the_most_frequent_and_count_the_rest_as_other() -> None:
    values = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5, dtype=object)
    values[3] = None
    profile = ReferenceProfile.build({"w": values}, settings=DriftSettings(max_categories=2))
    feature = profile.feature("w")
    assert feature.categories == ("a", "b")
    assert list(feature.counts) == [49, 30, 20, 1]  # a, b, other, missing
    live = np.array(["b", "zz", None, "a", "c"], dtype=object)
    assert list(count_batch(profile, {"w": live}).counts) == [1, 1, 2, 1]
    # numpy text and object arrays count alike
    assert list(feature.count(np.array(["b", "zz", "a"]))) == list(
        feature.count(np.array(["b", "zz", "a"], dtype=object))
    )


def test_integer_codes_are_categorical_when_named() -> None:
    codes = np.array([1, 2, 2, 3, 3, 3])
    profile = ReferenceProfile.build({"code": codes, "n": codes}, categorical=["code"])
    assert profile.feature("code").kind == "categorical" and profile.feature("n").kind == "numeric"
    assert profile.feature("code").categories == (3, 2, 1)
    live = np.array([3.0, 7.0, np.nan, 1.0])
    assert list(profile.feature("code").count(live)) == [1, 0, 1, 1, 1]
    assert ReferenceProfile.build({"b": np.array([True, False, True])}).feature("b").categories == (
        True,
        False,
    )


def test_json_round_trip_keeps_buckets_and_digest() -> None:
    rng = np.random.default_rng(1)
    columns = {"x": rng.normal(size=5000), "w": np.array(["p", "q"])[rng.integers(0, 2, 5000)]}
    profile = ReferenceProfile.build(columns, {"y": rng.integers(0, 3, 5000)}, categorical=["y"])
    loaded = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert loaded.digest == profile.digest
    batch = {"x": rng.normal(size=300), "w": np.array(["q"] * 300)}
    outputs = {"y": rng.integers(0, 4, 300)}
    assert np.array_equal(
        count_batch(loaded, batch, outputs).counts, count_batch(profile, batch, outputs).counts
    )
    with pytest.raises(InvalidArgument, match="format"):
        ReferenceProfile.from_dict({**profile.to_dict(), "format": 99})


@pytest.mark.parametrize(
    ("inputs", "kwargs", "match", "field"),
    [
        ({"x": np.zeros((3, 2))}, {}, "must be 1-D", "x"),
        ({"x": np.zeros(3), "y": np.zeros(4)}, {}, "differ in length", "inputs"),
        ({"x": np.zeros(3)}, {"categorical": ["nope"]}, "not given", "categorical"),
        ({"x": np.zeros(0)}, {}, "no rows", "inputs"),
        ({}, {}, "at least one column", "inputs"),
    ],
)
def test_bad_reference_tables_are_refused(inputs, kwargs, match, field) -> None:
    with pytest.raises(InvalidArgument, match=match) as info:
        ReferenceProfile.build(inputs, **kwargs)
    assert info.value.details["field"] == field
