"""The control plane's OpenAPI document is the committed one: an API change shows in review.

A change to a route, a schema or an error status changes the document; this test fails with a
diff until the snapshot is refreshed (``make openapi-snapshot``, or this test with
``AIAAS_TEST_UPDATE_SNAPSHOTS=1``) and the refreshed file is committed with the change.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from aiaas.api import create_app
from aiaas.config import Settings

SNAPSHOT = Path(__file__).with_name("openapi-control-plane.json")
#: What refreshes the snapshot.
REFRESH = (
    "make openapi-snapshot (or: AIAAS_TEST_UPDATE_SNAPSHOTS=1 pytest "
    "tests/api/inprocess/test_openapi_snapshot.py)"
)
#: Lines of diff shown in a failure.
_DIFF_LINES = 80


def _document(home: Path) -> dict[str, Any]:
    """The document as ``aiaas up`` serves it by default (no API key), release-independent."""
    app = create_app(Settings(home=home, database_url=f"sqlite:///{home / 'unused.db'}"))
    document = app.openapi()
    return {**document, "info": {**document["info"], "version": "<version>"}}


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_the_openapi_document_is_the_committed_snapshot(tmp_path: Path) -> None:
    current = _text(_document(tmp_path))
    if os.environ.get("AIAAS_TEST_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
        return
    assert SNAPSHOT.exists(), f"no snapshot of the OpenAPI document at {SNAPSHOT}; make one: {REFRESH}"
    committed = SNAPSHOT.read_text()
    if current != committed:
        diff = difflib.unified_diff(
            committed.splitlines(), current.splitlines(), "committed", "current", lineterm="", n=2
        )
        shown = "\n".join(list(diff)[:_DIFF_LINES])
        raise AssertionError(
            f"the control plane's OpenAPI document differs from {SNAPSHOT.name}. If the change is "
            f"intended, refresh the snapshot and commit it: {REFRESH}\n{shown}"
        )
