"""Drift counts as the store keeps them and monitoring adds them up.

:class:`BinCounts` is defined here, below both :mod:`aiaas.store` (which reads and writes
them per interval) and :mod:`aiaas.monitoring` (which counts batches into them and checks
drift from them), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from aiaas.errors import InvalidArgument

__all__ = ["BinCounts"]


class _Profile(Protocol):
    """What :meth:`BinCounts.zeros` reads of a :class:`aiaas.monitoring.ReferenceProfile`."""

    @property
    def digest(self) -> str: ...

    @property
    def slots(self) -> int: ...


@dataclass(frozen=True, eq=False)
class BinCounts:
    """Counts per slot of one profile (``profile`` is its digest) over ``rows`` rows."""

    profile: str
    counts: np.ndarray
    rows: int

    def __add__(self, other: BinCounts) -> BinCounts:
        if other.profile != self.profile:
            raise InvalidArgument(
                f"counts of reference {other.profile} cannot be added to counts of reference "
                f"{self.profile}: they were binned differently",
                details={"field": "profile", "expected": self.profile, "got": other.profile},
            )
        return BinCounts(self.profile, self.counts + other.counts, self.rows + other.rows)

    @classmethod
    def zeros(cls, profile: _Profile) -> BinCounts:
        return cls(profile.digest, np.zeros(profile.slots, dtype=np.int64), 0)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a replica sends to be merged."""
        return {"profile": self.profile, "rows": self.rows, "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BinCounts:
        counts = np.asarray(data["counts"], dtype=np.int64)
        if counts.ndim != 1 or (counts < 0).any():
            raise InvalidArgument(
                "counts must be a list of non-negative integers", details={"field": "counts"}
            )
        return cls(str(data["profile"]), counts, int(data["rows"]))
