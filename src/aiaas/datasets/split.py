"""The reproducible train/validation split stored with every dataset version.

Same rows, seed and fraction give the same indices on any machine: the generator is
numpy's PCG64 (``np.random.default_rng(seed)``), whose stream numpy keeps stable across
versions and platforms, and the classes are visited in sorted order. A classification
target is split per class (stratified), so a rare class is not left out of validation.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiaas.errors import ArtifactCorrupted, InvalidArgument

__all__ = ["Split", "check_split_options", "decode_indices", "encode_indices", "make_split"]

Indices = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Split:
    train: Indices
    validation: Indices
    stratified: bool


def check_split_options(validation_fraction: float, seed: int) -> None:
    """Raises InvalidArgument naming the option that is out of range."""
    if (
        isinstance(validation_fraction, bool)
        or not isinstance(validation_fraction, int | float)
        or not 0 < validation_fraction < 1
    ):
        raise InvalidArgument(
            f"validation_fraction must be a number strictly between 0 and 1; got {validation_fraction!r}",
            details={"field": "validation_fraction", "value": validation_fraction},
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InvalidArgument(
            f"seed must be an integer from 0 to 2**63-1; got {seed!r}",
            details={"field": "seed", "value": seed},
        )


def make_split(
    rows: int, validation_fraction: float, seed: int, labels: np.ndarray[Any, Any] | None = None
) -> Split:
    """Split ``rows`` row indices; stratified by ``labels`` when given.

    The validation set gets ``round(rows * validation_fraction)`` rows, at least one and
    never all of them. With labels, each class gets its share rounded down and the rows left
    over go to the classes with the largest remainders (ties to the class that sorts first).

    Raises:
        InvalidArgument: fewer than two rows (nothing to split).
    """
    check_split_options(validation_fraction, seed)
    if rows < 2:
        raise InvalidArgument(
            f"a dataset needs at least 2 rows to split into train and validation; got {rows}",
            details={"field": "file", "rows": rows},
        )
    n_val = min(max(1, round(rows * validation_fraction)), rows - 1)
    rng = np.random.default_rng(seed)
    validation = rng.permutation(rows)[:n_val] if labels is None else _stratified(labels, n_val, rng)
    mask = np.zeros(rows, dtype=bool)
    mask[validation] = True
    all_rows = np.arange(rows, dtype=np.int64)
    return Split(train=all_rows[~mask], validation=all_rows[mask], stratified=labels is not None)


def _stratified(labels: np.ndarray[Any, Any], n_val: int, rng: np.random.Generator) -> Indices:
    classes, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(classes))]
    ideal = [len(m) * n_val / len(labels) for m in members]
    take = [math.floor(x) for x in ideal]
    left = n_val - sum(take)
    for k in sorted(range(len(members)), key=lambda k: (-(ideal[k] - take[k]), k)):
        if left == 0:
            break
        if take[k] < len(members[k]):
            take[k] += 1
            left -= 1
    chosen = [rng.permutation(m)[:t] for m, t in zip(members, take, strict=True)]
    return np.concatenate(chosen).astype(np.int64)


def encode_indices(split: Split) -> bytes:
    """The indices artifact: one int64 array, train indices then validation indices."""
    out = io.BytesIO()
    np.save(out, np.concatenate([split.train, split.validation]).astype(np.int64), allow_pickle=False)
    return out.getvalue()


def decode_indices(data: bytes, train_rows: int, validation_rows: int) -> tuple[Indices, Indices]:
    """(train, validation) from the indices artifact, checked against the recorded counts."""
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.ndim != 1 or array.size != train_rows + validation_rows:
        raise ArtifactCorrupted(
            f"split indices hold {array.size} entries, expected {train_rows + validation_rows}",
            details={"field": "split"},
        )
    array = array.astype(np.int64, copy=False)
    return array[:train_rows], array[train_rows:]
