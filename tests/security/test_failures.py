"""Authentication failures reach the audit log from a background thread, at a bounded rate,
with a count of those not logged one by one (:class:`aiaas.security.FailureRecorder`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aiaas.security import ACTION_AUTHENTICATE, AuditEntry, AuditLog, FailureRecorder
from aiaas.security.failures import DROPPED_OUTCOME
from aiaas.store import Database
from aiaas.store.audit import AuditStore
from tests._servers import wait_until


@pytest.fixture
def log(migrated_database_url: str) -> Iterator[AuditLog]:
    db = Database(migrated_database_url)
    yield AuditLog(AuditStore(db))
    db.dispose()


def _counted(log: AuditLog) -> tuple[list[AuditEntry], int]:
    """The failures appended one by one, and the number appended as a count."""
    entries = [e for e in log.entries() if e.action == ACTION_AUTHENTICATE]
    singles = [e for e in entries if e.outcome != DROPPED_OUTCOME]
    return singles, sum(int(e.details["dropped"]) for e in entries if e.outcome == DROPPED_OUTCOME)


def _total(log: AuditLog) -> int:
    singles, dropped = _counted(log)
    return len(singles) + dropped


def test_a_flood_is_logged_at_the_rate_and_the_rest_counted(log: AuditLog) -> None:
    recorder = FailureRecorder(log, per_second=5, capacity=1000)
    recorder.start()
    try:
        began = time.monotonic()
        for i in range(200):
            recorder.record(f"/v2/models/m{i}/infer", "10.0.0.7", "unknown key", method="POST")
        # Queued, never written in the caller: 200 calls take no database time.
        assert time.monotonic() - began < 0.5
        wait_until(lambda: _total(log) == 200, timeout=10, what="every failure logged or counted")
    finally:
        recorder.close()
    singles, dropped = _counted(log)
    assert len(singles) + dropped == 200
    assert 5 <= len(singles) <= 10, "at most 5 a second (the flood spans one or two windows)"
    first = singles[0]
    assert (first.actor, first.resource, first.outcome, first.remote) == (
        "anonymous",
        "/v2/models/m0/infer",
        "401",
        "10.0.0.7",
    )
    assert first.details == {"method": "POST", "reason": "unknown key"}
    assert log.verify() is None


def test_a_full_queue_counts_what_it_cannot_hold(log: AuditLog) -> None:
    recorder = FailureRecorder(log, per_second=100, capacity=10)
    for _ in range(50):  # the thread not started yet: nothing drains the queue
        recorder.record("/metrics", None, "no Authorization header", method="GET")
    assert recorder.dropped == 40
    recorder.start()
    try:
        wait_until(lambda: _total(log) == 50, timeout=10, what="every failure logged or counted")
    finally:
        recorder.close()
    singles, dropped = _counted(log)
    assert (len(singles), dropped, recorder.dropped) == (10, 40, 0)
    assert log.verify() is None


def test_close_appends_what_waits(log: AuditLog) -> None:
    recorder = FailureRecorder(log, per_second=100, capacity=100)
    recorder.start()
    for _ in range(3):
        recorder.record("/v2", None, "unknown key", method="GET")
    recorder.close()
    assert len(_counted(log)[0]) == 3
