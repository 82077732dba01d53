"""aiaas: the whole model lifecycle, self-hosted, behind standard inference protocols.

``aiaas.Client`` is imported lazily so that the servers, which never need the SDK,
do not pay for importing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiaas import errors
from aiaas._version import __version__

if TYPE_CHECKING:
    from aiaas.sdk import Client

__all__ = ["Client", "__version__", "errors"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from aiaas.sdk import Client

        return Client
    raise AttributeError(f"module 'aiaas' has no attribute {name!r}")
