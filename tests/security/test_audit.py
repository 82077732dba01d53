"""The hash-chained audit log on a real database (SQLite and PostgreSQL): an intact chain
verifies, and an entry edited, deleted or reordered in the database is named by ``verify``."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from aiaas.security import GENESIS_HASH, AuditEntry, AuditLog, BreakReason, entry_hash
from aiaas.store import Database
from aiaas.store.audit import AuditStore


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Database]:
    database = Database(migrated_database_url)
    yield database
    database.dispose()


@pytest.fixture
def log(db: Database) -> AuditLog:
    return AuditLog(AuditStore(db))


def _fill(log: AuditLog, n: int = 6) -> list[AuditEntry]:
    return [
        log.append(
            f"key-{i % 2}",
            "POST /api/v1/models",
            f"/api/v1/models/m{i}",
            "201",
            "10.0.0.1",
            "default",
            {"i": i, "note": "naïve ✓", "nested": {"b": 1, "a": [1.5, None]}},
        )
        for i in range(1, n + 1)
    ]


def _sql(db: Database, *statements: str) -> None:
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_an_intact_chain_verifies_and_each_entry_names_the_one_before(log: AuditLog) -> None:
    appended = _fill(log)
    assert log.verify() is None
    stored = list(log.entries())
    assert stored == appended
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    assert stored[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(stored))
    assert all(entry_hash(e) == e.hash for e in stored)


def test_an_empty_log_verifies(log: AuditLog) -> None:
    assert log.verify() is None


def test_an_edited_field_is_named(db: Database, log: AuditLog) -> None:
    _fill(log)
    _sql(db, "UPDATE audit_log SET outcome = '200' WHERE seq = 4")
    broken = log.verify()
    assert broken is not None
    assert (broken.seq, broken.reason) == (4, BreakReason.EDITED)
    assert "entry 4" in broken.message


@pytest.mark.parametrize(
    "column, value",
    [
        ("actor", "'mallory'"),
        ("at", "at"),
        ("remote", "NULL"),
        ("details", "'{\"i\": 99}'"),
        ("details", "'[1, 2]'"),
        ("prev_hash", "hash"),
    ],
)
def test_any_field_edited_is_named(db: Database, log: AuditLog, column: str, value: str) -> None:
    _fill(log)
    if column == "at":
        _sql(db, "UPDATE audit_log SET at = (SELECT at FROM audit_log WHERE seq = 1) WHERE seq = 3")
    else:
        _sql(db, f"UPDATE audit_log SET {column} = {value} WHERE seq = 3")
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (3, BreakReason.EDITED)


def test_an_entry_edited_and_rehashed_is_named_by_the_next_ones_link(db: Database, log: AuditLog) -> None:
    entries = _fill(log)
    forged = AuditEntry(**{**entries[2].__dict__, "actor": "mallory"})
    forged_hash = entry_hash(forged)
    _sql(db, f"UPDATE audit_log SET actor = 'mallory', hash = '{forged_hash}' WHERE seq = 3")
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (3, BreakReason.EDITED)


def test_a_deleted_entry_is_named_by_the_first_entry_after_the_gap(db: Database, log: AuditLog) -> None:
    _fill(log)
    _sql(db, "DELETE FROM audit_log WHERE seq = 3")
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (4, BreakReason.MISSING)
    assert "entry 3" in broken.message


def test_the_first_entry_deleted_is_named(db: Database, log: AuditLog) -> None:
    _fill(log)
    _sql(db, "DELETE FROM audit_log WHERE seq = 1")
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (2, BreakReason.MISSING)


def test_entries_deleted_from_the_end_are_missing(db: Database, log: AuditLog) -> None:
    _fill(log)
    _sql(db, "DELETE FROM audit_log WHERE seq >= 5")
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (5, BreakReason.MISSING)
    assert "5 to 6" in broken.message


def test_deleted_and_renumbered_entries_are_missing(db: Database, log: AuditLog) -> None:
    _fill(log)
    _sql(
        db,
        "DELETE FROM audit_log WHERE seq = 3",
        "UPDATE audit_log SET seq = seq - 1 WHERE seq = 4",
        "UPDATE audit_log SET seq = seq - 1 WHERE seq = 5",
        "UPDATE audit_log SET seq = seq - 1 WHERE seq = 6",
        "UPDATE audit_head SET seq = 5",
    )
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (3, BreakReason.MISSING)


def test_two_entries_with_swapped_sequence_numbers_are_reordered(db: Database, log: AuditLog) -> None:
    _fill(log)
    _sql(
        db,
        "UPDATE audit_log SET seq = 1000 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 1000",
    )
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (3, BreakReason.REORDERED)
    assert "now numbered 4" in broken.message


def test_two_entries_with_swapped_contents_are_reordered(db: Database, log: AuditLog) -> None:
    _fill(log)
    columns = ["at", "actor", "action", "resource", "outcome", "remote", "project", "details", "prev_hash"]
    # The unique hash column moves through a placeholder; every other column is copied across.
    _sql(
        db,
        "CREATE TABLE swap AS SELECT * FROM audit_log WHERE seq IN (4, 5)",
        "UPDATE audit_log SET hash = 'x' WHERE seq = 4",
        "UPDATE audit_log SET hash = (SELECT hash FROM swap WHERE seq = 4) WHERE seq = 5",
        "UPDATE audit_log SET hash = (SELECT hash FROM swap WHERE seq = 5) WHERE seq = 4",
        *(
            f"UPDATE audit_log SET {c} = (SELECT {c} FROM swap WHERE swap.seq = 9 - audit_log.seq) "
            "WHERE seq IN (4, 5)"
            for c in columns
        ),
        "DROP TABLE swap",
    )
    assert [e.resource for e in log.entries()][3:5] == ["/api/v1/models/m5", "/api/v1/models/m4"]
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (4, BreakReason.REORDERED)


def test_a_tampered_head_is_found(db: Database, log: AuditLog) -> None:
    _fill(log)
    _sql(db, "UPDATE audit_head SET hash = (SELECT hash FROM audit_log WHERE seq = 2)")
    broken = log.verify()
    assert broken is not None and (broken.seq, broken.reason) == (6, BreakReason.EDITED)


def test_concurrent_appenders_keep_one_chain(db: Database, migrated_database_url: str) -> None:
    """Threads with their own connections (and engines) append at once: one chain, no gaps."""
    threads, per_thread = 6, 15
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        own = Database(migrated_database_url)
        try:
            log = AuditLog(AuditStore(own))
            barrier.wait()
            for i in range(per_thread):
                log.append(f"worker-{worker}", "POST /x", f"/x/{i}", "201", None, None)
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)
        finally:
            own.dispose()

    workers = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors, errors
    log = AuditLog(AuditStore(db))
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(1, threads * per_thread + 1))
    assert len({e.prev_hash for e in entries}) == len(entries)  # nobody chained to the same entry
    assert log.verify() is None


def test_export_writes_json_lines_that_verify_on_their_own(log: AuditLog) -> None:
    _fill(log, 4)
    out = io.StringIO()
    assert log.export(out) == 4
    lines = out.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[0]["details"]["note"] == "naïve ✓"
    previous = GENESIS_HASH
    for r in records:
        entry = AuditEntry(**{**r, "at": dt.datetime.fromisoformat(r["at"])})
        assert entry.prev_hash == previous and entry_hash(entry) == entry.hash
        previous = entry.hash


def test_odd_values_are_stored_as_hashed(log: AuditLog) -> None:
    """NaN, non-text keys, a NUL and an over-long path still give an entry that verifies."""
    entry = log.append(
        "a\x00b", "POST /x", "/" + "p" * 5000, "201", None, None, {"x": float("nan"), 3: "three"}
    )
    assert entry.actor == "a\ufffdb"
    assert len(entry.resource) == 1024
    assert entry.details == {"x": None, "3": "three"}
    assert list(log.entries()) == [entry]
    assert log.verify() is None


def test_an_authentication_failure_has_the_middlewares_shape(log: AuditLog) -> None:
    entry = log.authentication_failed(
        "/v2/models/m/infer", "10.0.0.9", "revoked key", method="POST", key_id="k1"
    )
    assert (entry.actor, entry.action, entry.outcome, entry.remote) == (
        "k1",
        "authenticate",
        "401",
        "10.0.0.9",
    )
    assert entry.details == {"method": "POST", "reason": "revoked key"}
    anonymous = log.authentication_failed("/metrics", None, "no Authorization header", method="GET")
    assert anonymous.actor == "anonymous"
    assert log.verify() is None


def test_search_filters_match_values_as_stored(log: AuditLog) -> None:
    entry = log.append("a\x00b", "POST /x", "/x", "201", None, None)
    log.append("other", "DELETE /x", "/x", "204", None, None)
    assert log.search(actor="a\x00b") == [entry]
    assert log.search(action="POST /x") == [entry]
    assert log.search(after=entry.seq, limit=5)[0].actor == "other"
    assert log.search(start=entry.at, end=entry.at) == []
