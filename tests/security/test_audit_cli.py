"""``aiaas audit verify`` and ``aiaas audit export``, the real console script against a real
database (SQLite and PostgreSQL); and appenders in several processes at once keep one chain."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from aiaas.security import AuditLog
from aiaas.store import Database
from aiaas.store.audit import AuditStore
from tests.conftest import server_environment

AIAAS = str(Path(sys.executable).with_name("aiaas"))
#: The keys of each exported line.
FIELDS = {"seq", "at", "actor", "action", "resource", "outcome", "remote", "project", "details"} | {
    "prev_hash",
    "hash",
}


@pytest.fixture
def env(home: Path, migrated_database_url: str) -> dict[str, str]:
    return server_environment(home, migrated_database_url)


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Database]:
    database = Database(migrated_database_url)
    yield database
    database.dispose()


def _aiaas(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIAAS, *args], capture_output=True, text=True, timeout=120, env=env)


def _fill(db: Database, n: int = 5) -> None:
    log = AuditLog(AuditStore(db))
    for i in range(1, n + 1):
        log.append("ci", "POST /api/v1/deployments", f"/api/v1/deployments/d{i}", "201", "10.0.0.2", None)


def test_verify_passes_an_intact_chain(env: dict[str, str], db: Database) -> None:
    _fill(db)
    done = _aiaas(env, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "audit log intact: 5 entries" in done.stdout
    done = _aiaas(env, "audit", "verify", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True


@pytest.mark.parametrize(
    ("tamper", "seq", "reason"),
    [
        (["UPDATE audit_log SET outcome = '200' WHERE seq = 3"], 3, "edited"),
        (["DELETE FROM audit_log WHERE seq = 2"], 3, "missing"),
        (
            [
                "UPDATE audit_log SET seq = 100 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = 100",
            ],
            3,
            "reordered",
        ),
    ],
    ids=["edited", "deleted", "reordered"],
)
def test_verify_fails_naming_the_first_broken_entry(
    env: dict[str, str], db: Database, tamper: list[str], seq: int, reason: str
) -> None:
    _fill(db)
    with db.engine.begin() as conn:
        for statement in tamper:
            conn.execute(text(statement))
    done = _aiaas(env, "audit", "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"audit log broken at entry {seq} ({reason})" in " ".join(done.stderr.split())
    done = _aiaas(env, "audit", "verify", "--json")
    assert done.returncode == 1
    assert {k: v for k, v in json.loads(done.stdout).items() if k != "message"} == {
        "ok": False,
        "seq": seq,
        "reason": reason,
    }


def test_export_writes_json_lines_to_a_file_and_to_stdout(
    env: dict[str, str], db: Database, home: Path
) -> None:
    _fill(db, 3)
    out = home / "audit.jsonl"
    done = _aiaas(env, "audit", "export", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "wrote 3 audit entries" in done.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert set(records[0]) == FIELDS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(records))
    done = _aiaas(env, "audit", "export")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == records


_APPENDER = """
import sys
from aiaas.security import AuditLog
from aiaas.store import Database
from aiaas.store.audit import AuditStore
db = Database(sys.argv[1])
log = AuditLog(AuditStore(db))
sys.stdin.readline()  # start together
for i in range(int(sys.argv[3])):
    log.append(sys.argv[2], "POST /x", f"/x/{i}", "201", None, None)
db.dispose()
"""


def test_appenders_in_several_processes_keep_one_chain(
    env: dict[str, str], db: Database, migrated_database_url: str
) -> None:
    processes, each = 4, 40
    started = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, migrated_database_url, f"p{n}", str(each)],
            stdin=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(processes)
    ]
    for p in started:  # each has imported and opened its database by the time it reads this line
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    for p in started:
        assert p.wait(timeout=120) == 0
    entries = list(AuditLog(AuditStore(db)).entries())
    assert [e.seq for e in entries] == list(range(1, processes * each + 1))
    assert len({e.actor for e in entries[: processes * each]}) == processes
    done = _aiaas(env, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
