"""Outlier scores in-process, on SQLite and PostgreSQL: a reference keeps a bounded numeric sample
(from a dataset, from first traffic, none for text); the scorer fits its forest off the
writer's thread and scores once it is ready; a version without a reference, or whose fit
fails, is logged unscored and never breaks the log; the prediction log writes the scores."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from aiaas.formats import Signature, package_model
from aiaas.monitoring import OutlierForest
from aiaas.registry import ReferenceStore, Registry, record_reference, sample_rows
from aiaas.registry.references import SAMPLE_CELLS, SAMPLE_ROWS, Layout
from aiaas.serving.drift_counter import DriftCounter
from aiaas.serving.outlier_scorer import OutlierScorer
from aiaas.serving.prediction_log import LogPolicy, PredictionLog
from aiaas.serving.segment_writer import InProcessWriter
from aiaas.store import Database, FileArtifactStore
from aiaas.store.drift import CountStore
from aiaas.store.predictions import read_predictions
from tests._clock import Clock

NAMES = ["a", "b", "c", "d"]
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def registry(database_url: str, home: Path) -> Iterator[Registry]:
    db = Database(database_url)
    db.upgrade()
    yield Registry(db, FileArtifactStore(home / "artifacts"))
    db.dispose()


def _rows(n: int, seed: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


@pytest.fixture
def model(registry: Registry) -> Signature:
    """Version 1 of ``m``: a classifier on four numeric features, tensor ``X``."""
    x = _rows(400, 0)
    clf = LogisticRegression(max_iter=300).fit(x, (x[:, 0] > 0).astype(np.int64))
    return Signature.from_dict(registry.register_version("m", package_model(clf, x[:4])).signature)


def _with_reference(registry: Registry, rows: int = 600) -> None:
    x = _rows(rows, 1)
    record_reference(registry, "m", 1, {n: x[:, j] for j, n in enumerate(NAMES)}, NAMES, {"kind": "dataset"})


def _ready(scorer: OutlierScorer, model: str = "m", version: int = 1) -> None:
    """Ask once (which starts the fit) and wait for the fitting thread to be done."""
    scorer.score(model, version, [])
    assert scorer.wait_idle()


def test_a_reference_keeps_a_seeded_bounded_sample_of_its_rows(registry: Registry, model: Signature) -> None:
    _with_reference(registry, rows=3000)
    stored = ReferenceStore(registry.db).get("m", 1)
    assert stored is not None and stored.sample is not None
    assert stored.sample.shape == (SAMPLE_ROWS, 4)
    x = _rows(3000, 1).astype(np.float64)
    # Rows of the table, in feature order, as stored (a round trip through the database's JSON).
    assert {tuple(r) for r in stored.sample} <= {tuple(r) for r in x}
    layout = Layout({"X": NAMES}, None)
    wide = {f"f{j}": np.arange(5000, dtype=np.float64) for j in range(200)}
    sample = sample_rows(Layout({"X": list(wide)}, None), wide)
    assert sample is not None and sample.size <= SAMPLE_CELLS and sample.shape[1] == 200
    text = {"a": np.array(["x", "y"]), "b": np.ones(2), "c": np.ones(2), "d": np.ones(2)}
    assert sample_rows(layout, text) is None  # a text feature: no sample, no scores
    holes = {n: np.array([1.0, np.nan, 3.0]) if n == "a" else np.ones(3) for n in NAMES}
    kept = sample_rows(layout, holes)
    assert kept is not None and kept.tolist() == [[1.0, 1.0, 1.0, 1.0], [3.0, 1.0, 1.0, 1.0]]


def test_a_reference_built_from_first_traffic_keeps_a_sample(registry: Registry, model: Signature) -> None:
    clock = Clock()
    counter = DriftCounter(
        ReferenceStore(registry.db), CountStore(registry.db), reference_rows=100, clock=clock, monotonic=clock
    )
    x = _rows(100, 2)
    for block in np.split(x, 4):
        counter.record("dep", "m", 1, model, {"X": block}, {"label": np.zeros(len(block), np.int64)})
    counter.flush()
    stored = ReferenceStore(registry.db).get("m", 1)
    assert stored is not None and stored.source["kind"] == "traffic"
    assert stored.sample is not None
    np.testing.assert_allclose(np.sort(stored.sample, axis=0), np.sort(x.astype(np.float64), axis=0))


def test_requests_are_scored_once_the_forest_is_fitted(registry: Registry, model: Signature) -> None:
    _with_reference(registry)
    scorer = OutlierScorer(ReferenceStore(registry.db))
    near, far = {"X": _rows(3, 3)}, {"X": _rows(1, 4) + 25}
    assert scorer.score("m", 1, [near, far]) == [None, None]  # not fitted yet: at once, unscored
    assert scorer.wait_idle()
    (near_score, near_flag), (far_score, far_flag) = scorer.score("m", 1, [near, far])  # type: ignore[misc]
    assert far_flag is True and near_flag is False and far_score > near_score
    assert scorer.reason("m", 1) is None
    wrong = {"X": np.zeros((1, 3), np.float32)}
    assert scorer.score("m", 1, [wrong, far])[0] is None  # a request that does not fit: unscored
    assert scorer.score("m", 1, [{"other": far["X"]}])[0] is None
    scorer.close()


def test_a_version_without_a_reference_is_unscored_until_one_is_stored(
    registry: Registry, model: Signature
) -> None:
    clock = Clock()
    scorer = OutlierScorer(ReferenceStore(registry.db), refresh_s=30, monotonic=clock)
    _ready(scorer)
    far = {"X": _rows(1, 4) + 25}
    assert scorer.score("m", 1, [far]) == [None]
    assert scorer.reason("m", 1) == "its version has no drift reference yet"
    _with_reference(registry)
    clock.now += 29
    _ready(scorer)
    assert scorer.score("m", 1, [far]) == [None]  # not read again before refresh_s
    clock.now += 1
    _ready(scorer)
    result = scorer.score("m", 1, [far])[0]
    assert result is not None and result[1] is True
    scorer.close()


def test_a_fit_that_fails_leaves_scores_empty_and_the_log_written(
    registry: Registry, model: Signature, tmp_path: Path
) -> None:
    _with_reference(registry)

    def broken(sample: np.ndarray[Any, Any]) -> OutlierForest:
        raise MemoryError("no room for a forest")

    scorer = OutlierScorer(ReferenceStore(registry.db), fit=broken)
    log = PredictionLog(tmp_path, writer=InProcessWriter(tmp_path), scorer=scorer)
    policy = LogPolicy(outliers="m")
    log.record("dep", policy, 1, "r1", 0.001, {"X": _rows(1, 5)}, {})
    assert log.flush() == 1 and scorer.wait_idle()
    log.record("dep", policy, 1, "r2", 0.001, {"X": _rows(1, 6)}, {})
    assert log.flush() == 1
    table = read_predictions(tmp_path, "dep")
    assert table.column("request_id").to_pylist() == ["r1", "r2"]
    assert table.column("outlier_score").to_pylist() == [None, None]
    assert "no room for a forest" in (scorer.reason("m", 1) or "")
    log.close()


def test_the_log_writes_scores_for_deployments_that_ask_and_never_waits_for_a_fit(
    registry: Registry, model: Signature, tmp_path: Path
) -> None:
    _with_reference(registry)
    release = threading.Event()

    def slow(sample: np.ndarray[Any, Any]) -> OutlierForest:
        assert release.wait(30)
        return OutlierForest.fit(sample)

    scorer = OutlierScorer(ReferenceStore(registry.db), fit=slow)
    log = PredictionLog(tmp_path, writer=InProcessWriter(tmp_path), scorer=scorer)
    scored, plain = LogPolicy(outliers="m"), LogPolicy()
    far = {"X": _rows(1, 7) + 25}
    log.record("dep", scored, 1, "during-fit", 0.001, far, {})
    assert log.flush() == 1  # written while the fit waits: the writer does not
    release.set()
    assert scorer.wait_idle()
    log.record("dep", scored, 1, "near", 0.001, {"X": _rows(2, 8)}, {})
    log.record("dep", scored, 1, "far", 0.001, far, {})
    log.record("other", plain, 1, "plain", 0.001, far, {})
    assert log.flush() == 3
    rows = {r["request_id"]: r for r in read_predictions(tmp_path, "dep").to_pylist()}
    assert rows["during-fit"]["outlier_score"] is None and rows["during-fit"]["outlier"] is None
    assert rows["far"]["outlier"] is True and rows["near"]["outlier"] is False
    assert 0 < rows["near"]["outlier_score"] < rows["far"]["outlier_score"] <= 1
    (other,) = read_predictions(tmp_path, "other").to_pylist()
    assert other["outlier_score"] is None and other["outlier"] is None
    assert log.scored == {("dep", 1): 2} and log.outliers == {("dep", 1): 1}
    log.close()
