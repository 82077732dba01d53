"""Name rules for models, aliases and deployments, checked before anything is stored.

Names appear in URLs (``/v2/models/{name}/infer``), so they are kept to characters that
need no escaping; aliases must not look like version numbers, or ``production`` and ``3``
could not both be a version reference.
"""

from __future__ import annotations

import re

from aiaas.errors import InvalidArgument
from aiaas.store import check_name

__all__ = ["check_alias_name", "check_name"]

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
RESERVED_ALIASES = frozenset({"latest"})


def check_alias_name(alias: str, *, field: str = "alias") -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias in RESERVED_ALIASES:
        raise InvalidArgument(
            f"{field} must start with a letter and hold up to 64 letters, digits, '_' or '-' "
            f"(and not be {sorted(RESERVED_ALIASES)}); got {alias!r}",
            details={"field": field, "value": alias},
        )
    return alias
