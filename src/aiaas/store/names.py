"""The name rule for everything stored under a name: models, datasets, deployments.

Names appear in URLs (``/v2/models/{name}/infer``, ``/api/v1/datasets/{name}``), so they
are kept to characters that need no escaping. The rule lives here, below every domain, so
the registry and the datasets check exactly the same thing.
"""

from __future__ import annotations

import re

from aiaas.errors import InvalidArgument

__all__ = ["check_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str, *, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(
            f"{field} must be 1-128 characters of letters, digits, '.', '_' or '-', starting "
            f"with a letter or digit; got {name!r}",
            details={"field": field, "value": name},
        )
    return name
