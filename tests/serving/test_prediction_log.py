"""The prediction log in-process: sampling, the per-deployment cap, the bounded queue, segments
on disk, reading them back by version and time, retention, and the deployment setting."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from aiaas.errors import InvalidArgument
from aiaas.serving.prediction_log import LogPolicy, PredictionLog, check_log_policy
from aiaas.serving.segment_writer import InProcessWriter, ProcessWriter
from aiaas.store.predictions import prune_segments, read_predictions
from tests._clock import Clock

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()


def _log(root: Path, clock: Clock, **kwargs: object) -> PredictionLog:
    """A log writing in this process (the child-process writer has its own tests below)."""
    return PredictionLog(root, clock=clock, monotonic=clock, writer=InProcessWriter(root), **kwargs)  # type: ignore[arg-type]


def test_rows_round_trip_with_their_inputs_outputs_version_and_time(tmp_path: Path) -> None:
    clock = Clock()
    log = _log(tmp_path, clock)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    labels = np.array(["setosa", "virginica"], dtype=object)
    assert log.record("iris", LogPolicy(), 2, "req-1", 0.0015, {"X": x}, {"label": labels})
    clock.now += 1
    assert log.record("iris", LogPolicy(), 3, "req-2", 0.002, {"X": x[:1]}, {"p": np.array([[0.25, 0.75]])})
    assert log.flush() == 2 and log.written == {"iris": 2}

    table = read_predictions(tmp_path, "iris")
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == ["req-1", "req-2"]
    assert [r["version"] for r in rows] == [2, 3]
    assert rows[0]["time"] == dt.datetime.fromtimestamp(T0, dt.UTC)
    assert rows[0]["latency_ms"] == pytest.approx(1.5)
    assert rows[0]["inputs"] == '{"X":[[0.0,1.0,2.0],[3.0,4.0,5.0]]}'
    assert rows[0]["outputs"] == '{"label":["setosa","virginica"]}'
    assert rows[1]["outputs"] == '{"p":[[0.25,0.75]]}'

    assert read_predictions(tmp_path, "iris", version=3).column("request_id").to_pylist() == ["req-2"]
    second = dt.datetime.fromtimestamp(T0 + 1, dt.UTC)
    assert read_predictions(tmp_path, "iris", start=second).column("request_id").to_pylist() == ["req-2"]
    assert read_predictions(tmp_path, "iris", end=second).column("request_id").to_pylist() == ["req-1"]
    only = read_predictions(tmp_path, "iris", request_ids=["req-2", "nope"])
    assert only.column("request_id").to_pylist() == ["req-2"]
    assert read_predictions(tmp_path, "other").num_rows == 0


def test_the_rate_cap_drops_and_counts_past_max_rows_per_s_and_refills(tmp_path: Path) -> None:
    clock = Clock()
    log = _log(tmp_path, clock)
    policy = LogPolicy(max_rows_per_s=10)
    kept = [log.record("d", policy, 1, f"r{i}", 0.0, {}, {}) for i in range(25)]
    assert sum(kept) == 10 and log.dropped_rate == {"d": 15}
    clock.now += 0.5  # half a second buys five more
    assert sum(log.record("d", policy, 1, f"s{i}", 0.0, {}, {}) for i in range(25)) == 5
    assert log.record("other", policy, 1, "x", 0.0, {}, {})  # each deployment has its own bucket


def test_a_full_queue_drops_and_counts_and_never_blocks(tmp_path: Path) -> None:
    clock = Clock()
    log = _log(tmp_path, clock, max_queued=3)
    policy = LogPolicy(max_rows_per_s=1000)
    assert [log.record("d", policy, 1, f"r{i}", 0.0, {}, {}) for i in range(5)] == [True] * 3 + [False] * 2
    assert log.dropped_full == {"d": 2} and log.queued == 3
    log.flush()
    assert log.record("d", policy, 1, "after", 0.0, {}, {})  # room again once written


def test_sampling_keeps_the_share_asked_for(tmp_path: Path) -> None:
    clock = Clock()
    log = _log(tmp_path, clock, max_queued=10_000)
    assert not any(log.record("d", LogPolicy(sample_rate=0.0), 1, "r", 0.0, {}, {}) for _ in range(100))
    kept = sum(
        log.record("d", LogPolicy(sample_rate=0.25, max_rows_per_s=100_000), 1, "r", 0.0, {}, {})
        for _ in range(4000)
    )
    assert 800 < kept < 1200


def test_close_writes_what_is_queued_and_the_thread_flushes_on_its_own(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_interval_s=0.05)  # segments written by a child process
    log.start()
    log.record("d", LogPolicy(), 1, "a", 0.0, {"x": np.array([1])}, {"y": np.array([2])})
    from tests._servers import wait_until

    wait_until(lambda: log.written.get("d") == 1, timeout=10, what="the writer thread to flush")
    log.record("d", LogPolicy(), 1, "b", 0.0, {"x": np.array([1])}, {"y": np.array([2])})
    log.close()
    assert read_predictions(tmp_path, "d").column("request_id").to_pylist() == ["a", "b"]


def test_retention_deletes_day_folders_past_it(tmp_path: Path) -> None:
    clock = Clock()
    log = _log(tmp_path, clock)
    log.record("d", LogPolicy(), 1, "old", 0.0, {}, {})
    log.flush()
    clock.now += 3 * 86400
    log.record("d", LogPolicy(), 1, "new", 0.0, {}, {})
    log.flush()
    now = dt.datetime.fromtimestamp(clock.now, dt.UTC)
    assert prune_segments(tmp_path, dt.timedelta(days=2), now) == 1
    assert read_predictions(tmp_path, "d").column("request_id").to_pylist() == ["new"]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "prediction_log"),
        ({"sample_rate": 1.5}, "prediction_log.sample_rate"),
        ({"sample_rate": True}, "prediction_log.sample_rate"),
        ({"max_rows_per_s": 0}, "prediction_log.max_rows_per_s"),
        ({"max_rows_per_s": float("nan")}, "prediction_log.max_rows_per_s"),
        ({"rate": 1}, "prediction_log.rate"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_key(value: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_log_policy(value)
    assert caught.value.details["field"] == field


def test_a_setting_keeps_what_was_given() -> None:
    assert check_log_policy({"sample_rate": 0.5, "max_rows_per_s": None}) == {"sample_rate": 0.5}
    assert LogPolicy.of({"sample_rate": 0.5}) == LogPolicy(sample_rate=0.5, max_rows_per_s=100.0)


def test_the_writer_process_is_started_again_after_it_died(tmp_path: Path) -> None:
    writer = ProcessWriter(tmp_path)
    log = PredictionLog(tmp_path, writer=writer)
    log.record("d", LogPolicy(), 1, "first", 0.0, {}, {})
    log.flush()
    assert writer._process is not None
    writer._process.kill()
    writer._process.wait()
    log.record("d", LogPolicy(), 1, "second", 0.0, {}, {})
    log.flush()
    log.close()
    assert log.write_errors == 0 and log.written == {"d": 2}
    assert read_predictions(tmp_path, "d").column("request_id").to_pylist() == ["first", "second"]


def test_a_segment_that_cannot_be_written_is_counted_as_lost(tmp_path: Path) -> None:
    (tmp_path / "d").write_text("a file where the deployment's folder should be")
    log = PredictionLog(tmp_path, writer=ProcessWriter(tmp_path))
    log.record("d", LogPolicy(), 1, "lost", 0.0, {}, {})
    log.flush()
    log.close()
    assert log.write_errors == 1 and log.written == {}
