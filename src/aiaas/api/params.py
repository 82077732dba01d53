"""Path and query parameters shared by the routers, with the bounds the database can hold.

An id or version number past :data:`aiaas.schemas.MAX_ID` (2**31-1) can name nothing, and
sent to the database it overflows the query (a 500 before these bounds); a version written with
digits other than ASCII ones (``"²"``) is not a number either. Both are 400s that say so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from aiaas.errors import InvalidArgument
from aiaas.schemas import MAX_ID

__all__ = [
    "ALIAS_PATTERN",
    "NAME_PATTERN",
    "AliasName",
    "JobId",
    "Name",
    "VersionNumber",
    "version_ref",
]

#: The rule of :func:`aiaas.store.check_name` (models, datasets, deployments), for the docs;
#: the services check it and say what is wrong (a test keeps the two in step).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
#: The rule of :func:`aiaas.registry.check_alias_name`, for the docs.
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"

Name = Annotated[
    str,
    Path(
        description="1-128 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
AliasName = Annotated[
    str,
    Path(
        description="Up to 64 letters, digits, '_' or '-', starting with a letter (not 'latest').",
        json_schema_extra={"pattern": ALIAS_PATTERN},
    ),
]
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="The job's id.")]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_ID, description="A version number.")]


def version_ref(ref: str, *, field: str = "version", aliases: bool = True) -> str:
    """Check a version reference: a number from 1 to 2**31-1, ``latest`` or (with
    ``aliases``) an alias name, which the registry resolves.

    Raises:
        InvalidArgument: naming ``field``, for a number out of range or not in ASCII digits.
    """
    if ref.isdigit():
        if ref.isascii() and 1 <= int(ref) <= MAX_ID:
            return ref
    elif aliases or ref == "latest":
        return ref
    what = (
        "a number from 1 to 2**31-1, 'latest' or an alias"
        if aliases
        else "a number from 1 to 2**31-1 or 'latest'"
    )
    raise InvalidArgument(f"{field} must be {what}; got {ref!r}", details={"field": field, "value": ref})
