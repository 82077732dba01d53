"""A schemathesis check for the runs without a key (loaded with ``SCHEMATHESIS_HOOKS``): every
operation that needs a key answers 401, whatever was generated for it."""

from __future__ import annotations

from typing import Any

import schemathesis

#: Operations answered without a key on either server.
OPEN = frozenset({"/api/v1/health", "/v2/health/live", "/v2/health/ready", "/openapi.json"})


@schemathesis.check
def refused_without_a_key(ctx: Any, response: Any, case: Any) -> bool | None:
    if case.operation.path in OPEN:
        return None
    if response.status_code != 401:
        raise AssertionError(
            f"{case.operation.method.upper()} {case.operation.path} answered {response.status_code} "
            "without a key; expected 401"
        )
    return None
