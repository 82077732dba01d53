"""The audit log through the real control plane process: concurrent changes over sockets are
appended in one chain, each entry readable as soon as its answer arrived."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiaas.security import GENESIS_HASH, AuditEntry, entry_hash
from tests.api.conftest import ControlPlane


def _all_entries(control_plane: ControlPlane) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = control_plane.http.get("/audit", params={"after": after, "limit": 1000}).json()
        found += page["entries"]
        if page["next_after"] is None:
            return found
        after = page["next_after"]


def test_concurrent_changes_are_appended_in_one_chain_before_their_answers(
    control_plane: ControlPlane,
) -> None:
    tag = uuid.uuid4().hex[:8]

    def change(i: int) -> bool:
        path = f"/alerts/rules/audit-{tag}-{i}"
        response = control_plane.http.delete(path)
        assert response.status_code == 404, response.text
        # The answer has arrived: its entry is committed already.
        page = control_plane.http.get(
            "/audit", params={"action": "DELETE /api/v1/alerts/rules/{name}"}
        ).json()
        seen = [e["resource"] for e in page["entries"]]
        after = page["next_after"]
        while after is not None:
            page = control_plane.http.get(
                "/audit", params={"action": "DELETE /api/v1/alerts/rules/{name}", "after": after}
            ).json()
            seen += [e["resource"] for e in page["entries"]]
            after = page["next_after"]
        return f"/api/v1{path}" in seen

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert all(pool.map(change, range(48)))

    entries = _all_entries(control_plane)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    previous = GENESIS_HASH
    for record in entries:
        entry = AuditEntry(**{**record, "at": dt.datetime.fromisoformat(record["at"])})
        assert entry.prev_hash == previous and entry_hash(entry) == entry.hash, record
        previous = entry.hash
    ours = [e for e in entries if f"audit-{tag}-" in e["resource"]]
    assert len(ours) == 48 and {e["outcome"] for e in ours} == {"404"}
