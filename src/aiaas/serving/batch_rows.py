"""The row-wise contract of batching: what may share a batch, and joining and splitting rows.

Requests share a batch only when their batch key is equal (same input names, dtypes and
non-batch dimensions, same requested outputs), so a batch is one ``np.concatenate`` per
input along axis 0 and never needs padding or casts. After the model call, each request
gets its own rows back; an output without the batch axis first raises :class:`_NotRowWise`
for a batch of several requests, and the batcher then stops batching (see the rules in
:mod:`.batcher`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aiaas.formats import Signature

__all__ = ["supports_batching"]

_Array = np.ndarray[Any, Any]


def supports_batching(signature: Signature) -> bool:
    """Whether a signature allows batching: every input and output has a dynamic first dim.

    A fixed first dimension (``(1, 3)``), rank 0 or unknown rank (shape ``()``) means the
    model's tensors may have no row axis, so concatenating requests could change or break
    what the model computes.
    """
    specs = (*signature.inputs, *signature.outputs)
    return bool(specs) and all(len(spec.shape) >= 1 and spec.shape[0] < 0 for spec in specs)


class _NotRowWise(Exception):
    """A batched run returned an output without the batch axis first; rerun each request alone."""


@dataclass(eq=False, slots=True)
class _Item:
    """One queued request."""

    key: Hashable
    inputs: dict[str, _Array]
    output_names: list[str] | None
    rows: int
    future: asyncio.Future[dict[str, _Array]]
    enqueued_at: float
    queued: bool = True
    compute_s: float = 0.0  # run time of the batch it ran in


@dataclass(eq=False, slots=True)
class _Group:
    """Waiting items with one batch key, oldest first."""

    items: deque[_Item] = field(default_factory=deque)
    rows: int = 0


def _joined(batch: list[_Item]) -> tuple[dict[str, _Array], list[str] | None]:
    """The batch's inputs, concatenated along the row axis, and the outputs it asks for."""
    first = batch[0]
    if len(batch) == 1:
        inputs = dict(first.inputs)
    else:
        inputs = {name: np.concatenate([item.inputs[name] for item in batch]) for name in first.inputs}
    return inputs, list(first.output_names) if first.output_names is not None else None


def _split(batch: list[_Item], outputs: dict[str, _Array]) -> tuple[list[dict[str, _Array]], bool]:
    """Each item's rows of the outputs, and whether the outputs had the batch axis first.

    Raises:
        _NotRowWise: several requests ran and the outputs cannot be split.
    """
    rows = sum(item.rows for item in batch)
    bad = next(
        (
            f"output {name!r} has shape {list(value.shape)} for a batch of {rows} rows"
            for name, value in outputs.items()
            if np.ndim(value) == 0 or np.shape(value)[0] != rows
        ),
        None,
    )
    if bad is not None:
        if len(batch) == 1:
            return [outputs], False  # it ran alone, so its result is right as it is
        raise _NotRowWise(bad)
    if len(batch) == 1:
        return [outputs], True
    results = []
    offset = 0
    for item in batch:
        results.append({name: value[offset : offset + item.rows] for name, value in outputs.items()})
        offset += item.rows
    return results, True


def _leading_rows(inputs: Mapping[str, _Array]) -> int | None:
    """The row count all inputs share, or ``None`` when they do not share one."""
    rows = {array.shape[0] if array.ndim else None for array in inputs.values()}
    if len(rows) != 1:
        return None
    return rows.pop()


def _batch_key(inputs: Mapping[str, _Array], names: list[str] | None) -> Hashable:
    """Equal for requests that can be concatenated and asked for the same outputs."""
    tensors = tuple(
        sorted(
            # Strings of different widths concatenate fine, so their width stays out of it.
            (name, array.dtype.kind if array.dtype.kind in "SU" else array.dtype.str, array.shape[1:])
            for name, array in inputs.items()
        )
    )
    return (tensors, None if names is None else tuple(names))
