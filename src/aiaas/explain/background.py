"""The background sample: the rows an explainer integrates over for a "hidden" feature.

A seeded sample of at most :data:`BACKGROUND_ROWS` training rows, stored with the version as
a ``.npy`` artifact when a training job registers it: explaining never re-reads a dataset,
and the same version always explains against the same rows.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = [
    "BACKGROUND_ROWS",
    "BACKGROUND_SEED",
    "decode_background",
    "encode_background",
    "sample_background",
]

#: The most training rows kept as a version's background sample. Each explained row costs
#: (model evaluations) x (background rows) model rows, so this bounds explanation cost.
BACKGROUND_ROWS = 100
#: Seed of the sample: the same training data always gives the same background.
BACKGROUND_SEED = 0

Array = np.ndarray[Any, Any]


def sample_background(x: Array, rows: int = BACKGROUND_ROWS, seed: int = BACKGROUND_SEED) -> Array:
    """At most ``rows`` rows of ``x``, drawn without replacement by a seeded generator, in
    their original order (float32, C-contiguous)."""
    if rows < 1:
        raise ValueError(f"rows must be >= 1; got {rows!r}")
    x = np.asarray(x)
    if len(x) > rows:
        picked = np.sort(np.random.default_rng(seed).choice(len(x), size=rows, replace=False))
        x = x[picked]
    return np.ascontiguousarray(x, dtype=np.float32)


def encode_background(x: Array) -> bytes:
    """The ``.npy`` bytes of a background sample (no pickle: a plain numeric array)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(x, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def decode_background(data: bytes) -> Array:
    """The array :func:`encode_background` wrote (refusing pickled objects)."""
    array: Array = np.load(io.BytesIO(data), allow_pickle=False)
    return array
