"""Drift counting in-process: blocks counted exactly as one count of every row, the queue's bound
(drop and count), rows added per interval in the database and summed over a window, counts of
two servers adding up, first traffic becoming a reference, and requests that do not fit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from aiaas.formats import Signature, TensorSpec, package_model
from aiaas.monitoring import count_batch
from aiaas.registry import ReferenceStore, Registry, record_reference
from aiaas.serving.drift_counter import DriftCounter
from aiaas.store import Database, FileArtifactStore
from aiaas.store.drift import CountStore
from tests._clock import Clock

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()
NAMES = ["a", "b", "c", "code"]


@pytest.fixture
def registry(database_url: str, home: Path) -> Iterator[Registry]:
    db = Database(database_url)
    db.upgrade()
    yield Registry(db, FileArtifactStore(home / "artifacts"))
    db.dispose()


def _rows(n: int, seed: int, shift: float = 0.0) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[:, 0] += shift
    x[:, 3] = rng.integers(0, 4, n)  # a coded feature: categorical
    return x


@pytest.fixture
def model(registry: Registry) -> Signature:
    """Version 1 of ``m``: a classifier on three numeric features and a code."""
    x = _rows(400, 0)
    clf = LogisticRegression(max_iter=300).fit(x, (x[:, 0] + x[:, 3] > 1.5).astype(np.int64))
    version = registry.register_version("m", package_model(clf, x[:4]))
    return Signature.from_dict(version.signature)


def _counter(registry: Registry, clock: Clock, **kwargs: Any) -> DriftCounter:
    return DriftCounter(
        ReferenceStore(registry.db), CountStore(registry.db), clock=clock, monotonic=clock, **kwargs
    )


def _with_reference(registry: Registry) -> None:
    x = _rows(1000, 1)
    record_reference(registry, "m", 1, {n: x[:, j] for j, n in enumerate(NAMES)}, NAMES, {"kind": "dataset"})


def test_a_block_counts_exactly_what_one_count_of_all_its_rows_does(
    registry: Registry, model: Signature
) -> None:
    _with_reference(registry)
    clock = Clock()
    counter = _counter(registry, clock)
    sent = [_rows(n, 10 + n, shift=1.0) for n in (1, 7, 50, 3)]
    answers = [{"label": np.arange(len(x)) % 2, "probabilities": np.zeros((len(x), 2))} for x in sent]
    for x, out in zip(sent, answers, strict=True):
        assert counter.record("dep", "m", 1, model, {"X": x}, out)
    assert counter.flush() == 4

    reference = ReferenceStore(registry.db).get("m", 1)
    assert reference is not None and reference.layout.output == "label"
    assert reference.profile.feature("code").kind == "categorical"
    assert reference.profile.feature("a").kind == "numeric"
    everything = np.concatenate(sent)
    labels = np.concatenate([a["label"] for a in answers])
    expected = count_batch(
        reference.profile, {n: everything[:, j] for j, n in enumerate(NAMES)}, {"label": labels}
    )
    stored = CountStore(registry.db).window("dep")
    assert list(stored) == [(1, reference.profile.digest)]
    got = stored[(1, reference.profile.digest)]
    assert got.rows == 61 and np.array_equal(got.counts, expected.counts)
    assert counter.counted == {"dep": 61}


def test_past_its_bound_the_queue_drops_and_counts_and_never_blocks(
    registry: Registry, model: Signature
) -> None:
    _with_reference(registry)
    counter = _counter(registry, Clock(), max_queued=3)
    x = _rows(2, 3)
    queued = [counter.record("dep", "m", 1, model, {"X": x}, {"label": np.array([0, 1])}) for _ in range(5)]
    assert queued == [True, True, True, False, False]
    assert counter.dropped == {"dep": 2} and counter.queued == 3
    assert counter.flush() == 3 and counter.queued == 0
    assert counter.record("dep", "m", 1, model, {"X": x}, {"label": np.array([0, 1])})
    assert counter.flush() == 1
    assert (
        CountStore(registry.db)
        .window("dep")[(1, ReferenceStore(registry.db).get("m", 1).profile.digest)]
        .rows
        == 8
    )  # type: ignore[union-attr]


def test_counts_go_to_their_interval_and_a_window_sums_the_intervals_it_covers(
    registry: Registry, model: Signature
) -> None:
    _with_reference(registry)
    clock = Clock()
    first, second = _counter(registry, clock, interval_s=60), _counter(registry, clock, interval_s=60)
    x = _rows(10, 4)
    out = {"label": np.zeros(10, dtype=np.int64)}
    first.record("dep", "m", 1, model, {"X": x}, out)
    second.record("dep", "m", 1, model, {"X": x}, out)  # another server: adds into the same row
    first.flush(), second.flush()
    clock.now += 3600
    first.record("dep", "m", 1, model, {"X": x[:4]}, {"label": out["label"][:4]})
    first.flush()

    store = CountStore(registry.db)
    now = dt.datetime.fromtimestamp(clock.now, dt.UTC)
    ((_, recent),) = store.window("dep", start=now - dt.timedelta(minutes=5)).items()
    ((_, everything),) = store.window("dep").items()
    assert recent.rows == 4 and everything.rows == 24
    ((_, old),) = store.window("dep", end=now - dt.timedelta(minutes=5)).items()
    assert old.rows == 20
    assert store.prune(now - dt.timedelta(minutes=5)) == 1
    assert next(iter(store.window("dep").values())).rows == 4


def test_first_traffic_becomes_the_reference_of_a_version_without_one(
    registry: Registry, model: Signature
) -> None:
    counter = _counter(registry, Clock(), reference_rows=100)
    x = _rows(60, 5)
    out = {"label": np.zeros(60, dtype=np.int64)}
    counter.record("dep", "m", 1, model, {"X": x}, out)
    counter.flush()
    assert ReferenceStore(registry.db).get("m", 1) is None  # 60 of 100 rows kept so far
    counter.record("dep", "m", 1, model, {"X": _rows(60, 6)}, out)
    counter.flush()
    reference = ReferenceStore(registry.db).get("m", 1)
    assert reference is not None and reference.source == {"kind": "traffic", "rows": 120}
    assert reference.profile.rows == 120 and reference.layout.inputs == {
        "X": ["X[0]", "X[1]", "X[2]", "X[3]"]
    }
    assert CountStore(registry.db).window("dep") == {}  # the reference's rows are not live counts

    counter.record("dep", "m", 1, model, {"X": x}, out)
    counter.flush()
    assert CountStore(registry.db).window("dep")[(1, reference.profile.digest)].rows == 60


def test_requests_that_do_not_fit_are_counted_as_invalid_and_others_still_count(
    registry: Registry, model: Signature
) -> None:
    _with_reference(registry)
    counter = _counter(registry, Clock())
    counter.record("dep", "m", 1, model, {"X": np.zeros((2, 3), np.float32)}, {"label": np.zeros(2)})
    assert counter.flush() == 1 and counter.invalid == {"dep": 1}
    counter.record("dep", "m", 1, model, {"X": _rows(5, 7)}, {"label": np.zeros(5, dtype=np.int64)})
    counter.flush()
    assert sum(c.rows for c in CountStore(registry.db).window("dep").values()) == 5


def test_a_version_whose_inputs_are_not_tabular_is_never_queued_again(registry: Registry) -> None:
    counter = _counter(registry, Clock())
    images = Signature(inputs=(TensorSpec("img", "FP32", (-1, 3, 8, 8)),), outputs=())
    assert counter.record("dep", "m", 7, images, {"img": np.zeros((1, 3, 8, 8))}, {})
    counter.flush()
    assert not counter.record("dep", "m", 7, images, {"img": np.zeros((1, 3, 8, 8))}, {})
    assert counter.queued == 0


def test_requests_asking_for_other_outputs_still_count_their_inputs(
    registry: Registry, model: Signature
) -> None:
    _with_reference(registry)
    counter = _counter(registry, Clock())
    x = _rows(6, 8)
    counter.record("dep", "m", 1, model, {"X": x[:4]}, {"label": np.zeros(4, dtype=np.int64)})
    counter.record("dep", "m", 1, model, {"X": x[4:]}, {"probabilities": np.zeros((2, 2))})
    counter.flush()
    reference = ReferenceStore(registry.db).get("m", 1)
    assert reference is not None and counter.invalid == {}
    got = CountStore(registry.db).window("dep")[(1, reference.profile.digest)]
    inputs = count_batch(reference.profile, {n: x[:, j] for j, n in enumerate(NAMES)})
    outputs = count_batch(
        reference.profile, {n: x[:4, j] for j, n in enumerate(NAMES)}, {"label": np.zeros(4)}
    )
    label = reference.profile.names.index("label")
    start = int(reference.profile.offsets[label])
    assert got.rows == 6
    assert np.array_equal(got.counts[:start], inputs.counts[:start])
    assert np.array_equal(got.counts[start:], outputs.counts[start:])


def test_switched_off_it_records_nothing(registry: Registry, model: Signature) -> None:
    counter = _counter(registry, Clock(), enabled=False)
    assert not counter.record("dep", "m", 1, model, {"X": _rows(2, 9)}, {})
    assert counter.queued == 0 and counter.dropped == {}
