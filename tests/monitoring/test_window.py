"""Live counts: batches, replicas and intervals add up; the ring forgets what is older than it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.monitoring import BinCounts, CountWindow, ReferenceProfile, count_batch
from aiaas.schemas import DriftSettings
from tests._clock import Clock
from tests.monitoring._tables import make_tables


@pytest.fixture(scope="module")
def data():
    t = make_tables(6000, 4)
    return ReferenceProfile.build(t.reference, categorical=t.categorical), t.shifted


def _rows(table, start: int, stop: int):
    return {name: column[start:stop] for name, column in table.items()}


def test_merged_replicas_equal_one_over_all_rows(data) -> None:
    profile, table = data
    clock = Clock(1_000_000.0)
    one, a, b = (CountWindow(profile, clock=clock) for _ in range(3))
    for start in range(0, 6000, 1000):  # batches, spread over three intervals
        clock.now += 30
        one.add(_rows(table, start, start + 1000))
        (a if start % 2000 == 0 else b).add(_rows(table, start, start + 1000))
    a.merge(json.loads(json.dumps(b.snapshot())))  # as a replica's ring travels
    assert a.counts().rows == one.counts().rows == 6000
    assert np.array_equal(a.counts().counts, one.counts().counts)
    assert np.array_equal(a.counts(window_s=60).counts, one.counts(window_s=60).counts)
    whole = count_batch(profile, table)
    assert np.array_equal(one.counts().counts, whole.counts)
    total = count_batch(profile, _rows(table, 0, 2500)) + count_batch(profile, _rows(table, 2500, 6000))
    assert np.array_equal(total.counts, whole.counts) and total.rows == 6000


def test_a_matrix_counts_like_named_columns() -> None:
    rng = np.random.default_rng(0)
    columns = {f"f{i}": rng.normal(size=2000) for i in range(5)}
    profile = ReferenceProfile.build(columns)
    matrix = np.column_stack(list(columns.values()))
    assert np.array_equal(count_batch(profile, matrix).counts, count_batch(profile, columns).counts)
    with pytest.raises(InvalidArgument, match="2-D array of 5 columns") as info:
        count_batch(profile, matrix[:, :4])
    assert info.value.details["field"] == "inputs"
    with pytest.raises(InvalidArgument, match=r"lack features of the reference: \['f4'\]"):
        count_batch(profile, {k: v for k, v in columns.items() if k != "f4"})


def test_the_ring_drops_old_intervals(data) -> None:
    profile, table = data
    clock = Clock(0.0)
    window = CountWindow(profile, DriftSettings(interval_s=10, intervals=3), clock=clock)
    for i in range(5):  # one batch of 100 rows in each of intervals 0..4
        clock.now = i * 10 + 1
        window.add(_rows(table, i * 100, i * 100 + 100 + i))
    # the ring holds intervals 2, 3 and 4 only: 102 + 103 + 104 rows
    assert window.counts().rows == 309
    assert window.counts(window_s=10).rows == 104
    assert window.counts(window_s=15).rows == 104 + 103  # rounded up to whole intervals
    assert window.counts(window_s=3600).rows == 309  # capped at the ring
    expected = sum(
        (count_batch(profile, _rows(table, i * 100, i * 100 + 100 + i)) for i in (3, 4)),
        BinCounts.zeros(profile),
    )
    assert np.array_equal(window.counts(window_s=20).counts, expected.counts)
    clock.now += 25  # two quiet intervals later only interval 4 is left
    assert window.counts().rows == 104
    clock.now += 100
    assert window.counts().rows == 0 and not window.counts().counts.any()
    assert window.nbytes == 3 * (profile.slots + 2) * 8  # bounded, whatever the traffic


def test_old_or_future_intervals_are_not_merged(data) -> None:
    profile, table = data
    clock = Clock(1000.0)
    window = CountWindow(profile, DriftSettings(interval_s=10, intervals=3), clock=clock)
    batch = count_batch(profile, _rows(table, 0, 10))
    window.add_counts(batch, interval=100 - 3)  # just out of the ring
    window.add_counts(batch, interval=101)  # a clock ahead of ours
    assert window.counts().rows == 0
    window.add_counts(batch, interval=98)
    assert window.counts().rows == 10


def test_counts_of_another_reference_or_ring_are_refused(data) -> None:
    profile, _ = data
    other = ReferenceProfile.build({"x": np.arange(10.0)})
    window = CountWindow(profile)
    with pytest.raises(InvalidArgument, match="do not belong") as info:
        window.add_counts(count_batch(other, {"x": np.arange(3.0)}))
    assert info.value.details["field"] == "profile"
    with pytest.raises(InvalidArgument, match="cannot be added"):
        _ = BinCounts.zeros(profile) + BinCounts.zeros(other)
    with pytest.raises(InvalidArgument, match="intervals cannot merge"):
        window.merge(CountWindow(profile, DriftSettings(interval_s=5)))
    with pytest.raises(InvalidArgument, match="window must be > 0"):
        window.counts(window_s=0)
