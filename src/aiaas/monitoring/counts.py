"""Live counts: a batch of rows turned into per-bucket counts in a profile's flat slot layout.

Counting is the only work done per request. Each feature costs one ``np.searchsorted`` over
its column (numeric) or one sorted lookup (categorical) and one ``np.bincount``: O(rows x
features), no Python per row. The result, :class:`BinCounts`, is a plain int64 vector: counts
of several batches, replicas or intervals add up, and a drift check reads only them, never
raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from aiaas.entities.drift import BinCounts
from aiaas.errors import InvalidArgument
from aiaas.monitoring.reference import ReferenceProfile

__all__ = ["Batch", "BinCounts", "count_batch"]

#: Columns by name, or a 2-D array whose columns are the profile's features of that role in order.
Batch = Mapping[str, Any] | np.ndarray


def count_batch(profile: ReferenceProfile, inputs: Batch, outputs: Batch | None = None) -> BinCounts:
    """Count one batch of rows (and, when given, the model's outputs for them).

    Raises:
        InvalidArgument: a feature of the profile is missing from the batch, a column has
            another length, or a numeric feature gets values that are not numbers.
    """
    counts = np.zeros(profile.slots, dtype=np.int64)
    rows = _add_role(profile, counts, inputs, "input")
    if outputs is not None:
        out_rows = _add_role(profile, counts, outputs, "output")
        if rows is not None and out_rows is not None and out_rows != rows:
            raise InvalidArgument(
                f"outputs have {out_rows} rows, inputs {rows}", details={"field": "outputs", "rows": out_rows}
            )
        rows = rows if rows is not None else out_rows
    return BinCounts(profile.digest, counts, rows or 0)


def _add_role(profile: ReferenceProfile, counts: np.ndarray, batch: Batch, role: str) -> int | None:
    indices = [i for i, f in enumerate(profile.features) if f.role == role]
    if not indices:
        return None
    columns = _columns(profile, batch, indices, role)
    rows = None
    for i, column in zip(indices, columns, strict=True):
        feature = profile.features[i]
        if rows is None:
            rows = len(column)
        elif len(column) != rows:
            raise InvalidArgument(
                f"column {feature.name!r} has {len(column)} rows, the others {rows}",
                details={"field": feature.name},
            )
        start = int(profile.offsets[i])
        counts[start : start + feature.slots] += feature.count(column)
    return rows


def _columns(profile: ReferenceProfile, batch: Batch, indices: list[int], role: str) -> list[Any]:
    names = [profile.features[i].name for i in indices]
    if isinstance(batch, Mapping):
        missing = [n for n in names if n not in batch]
        if missing:
            raise InvalidArgument(
                f"the {role}s lack features of the reference: {missing}",
                details={"field": f"{role}s", "missing": missing},
            )
        return [np.asarray(batch[n]).reshape(-1) for n in names]
    array = np.asarray(batch)
    if array.ndim == 1 and len(names) == 1:
        return [array]
    if array.ndim != 2 or array.shape[1] != len(names):
        raise InvalidArgument(
            f"{role}s must be a 2-D array of {len(names)} columns ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}); got shape {array.shape}",
            details={"field": f"{role}s", "shape": list(array.shape)},
        )
    if array.dtype.kind in "iuf":
        array = np.asfortranarray(array)  # contiguous columns: searchsorted reads each in one sweep
    return [array[:, j] for j in range(len(names))]
