"""The platform admin key of the test servers, and the header that carries it.

Authentication is on in every test server, as in a real install. Instead of reading a random
key each server makes on its first start, the tests hand every server the same key the way
an operator may: written to ``<AIAAS_HOME>/admin.key`` (mode 0600) before the first start,
where the servers register it (:func:`aiaas.security.ensure_admin_key`) and the CLI finds it.
:func:`tests.conftest.server_environment` writes it into each server's home, and the test
process sets ``AIAAS_API_KEY`` to it, so SDK clients made in tests send it without being told;
raw ``httpx`` calls pass ``headers=AUTH``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from aiaas.config import Settings
from aiaas.security import write_key_file

__all__ = ["ADMIN_KEY", "AUTH", "write_admin_key"]

#: A well-formed key (aiaas_<12 hex>_<secret>), the same in every test server.
ADMIN_KEY = "aiaas_7e5700000001_test-admin-key-of-the-test-servers-0000000"
#: The header of a request made with :data:`ADMIN_KEY`. Read-only: tritonclient adds its own
#: headers to the dict it is given, so it gets a copy, ``headers=dict(AUTH)``.
AUTH: Mapping[str, str] = MappingProxyType({"authorization": f"Bearer {ADMIN_KEY}"})


def write_admin_key(home: Path) -> None:
    """Give a server started on ``home`` the test admin key (see the module docstring)."""
    write_key_file(Settings(home=home).admin_key_path(), ADMIN_KEY)
