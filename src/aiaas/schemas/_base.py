"""Base model of the wire schemas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Wire", "WireIn"]


class Wire(BaseModel):
    """A response body: read from the domain's frozen entities by attribute."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class WireIn(BaseModel):
    """A request body: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")
