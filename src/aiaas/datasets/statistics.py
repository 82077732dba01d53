"""Schema and per-column statistics of a dataset version, computed once at upload with numpy.

The statistics are the reference that drift checks compare live traffic against, so their
JSON shape is part of the contract::

    {"format": 1,
     "row_count": 150,
     "columns": {
       "<numeric column>": {
         "kind": "numeric", "count": 148, "null_count": 2,
         "min": 4.3, "max": 7.9, "mean": 5.84, "std": 0.83,
         "quantiles": {"probs": [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1], "values": [...]},
         "histogram": {"bin_edges": [... 21 edges ...], "counts": [... 20 counts ...]}},
       "<string or bool column>": {
         "kind": "string" | "bool", "count": 150, "null_count": 0, "distinct_count": 3,
         "top": [{"value": "setosa", "count": 50, "frequency": 0.3333}, ...],
         "other_count": 0},
       "<other column>": {"kind": "other", "count": 150, "null_count": 0}}}

Conventions: ``count`` is the number of present values (``row_count - null_count``); NaN is
missing; ``std`` is the population standard deviation (numpy's ``ddof=0``); quantiles use
numpy's default linear interpolation; the histogram has :data:`HISTOGRAM_BINS` equal-width
bins over ``[min, max]`` (numpy's ``np.histogram``; the last bin includes ``max``);
``frequency`` is ``count / row_count`` (missing values included in the denominator);
``top`` holds at most :data:`TOP_CATEGORIES` values, most frequent first (ties by value),
and ``other_count`` counts the present values outside it. ±inf values are counted as
present but left out of the numeric summaries, so every number stays valid JSON.
A column with no present value has ``null`` summaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiaas.datasets.tabular import Column, Table

__all__ = ["HISTOGRAM_BINS", "QUANTILES", "STATISTICS_FORMAT", "TOP_CATEGORIES", "schema_of", "statistics_of"]

STATISTICS_FORMAT = 1
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 20


def schema_of(table: Table) -> list[dict[str, Any]]:
    """The schema entries of a table (see :mod:`aiaas.datasets.entities`)."""
    return [
        {
            "name": c.name,
            "dtype": c.dtype,
            "kind": c.kind,
            "nullable": c.null_count > 0,
            "null_count": c.null_count,
        }
        for c in table.columns
    ]


def statistics_of(table: Table) -> dict[str, Any]:
    """Per-column statistics in the documented shape."""
    return {
        "format": STATISTICS_FORMAT,
        "row_count": table.row_count,
        "columns": {c.name: _column_stats(c, table.row_count) for c in table.columns},
    }


def _column_stats(column: Column, rows: int) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": column.kind,
        "count": rows - column.null_count,
        "null_count": column.null_count,
    }
    if column.kind == "numeric":
        return base | _numeric(column.values)
    if column.kind in ("string", "bool"):
        return base | _categorical(column.values, rows)
    return base


def _numeric(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    x = values.astype(np.float64, copy=False)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "quantiles": None, "histogram": None}
    counts, edges = np.histogram(x, bins=HISTOGRAM_BINS)
    return {
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "quantiles": {
            "probs": list(QUANTILES),
            "values": [float(q) for q in np.quantile(x, QUANTILES)],
        },
        "histogram": {"bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _categorical(values: np.ndarray[Any, Any], rows: int) -> dict[str, Any]:
    present = [v for v in values.tolist() if v is not None]
    if not present:
        return {"distinct_count": 0, "top": [], "other_count": 0}
    uniques, counts = np.unique(np.asarray(present), return_counts=True)
    order = sorted(range(len(uniques)), key=lambda i: (-int(counts[i]), str(uniques[i])))
    top = [
        {"value": _plain(uniques[i]), "count": int(counts[i]), "frequency": int(counts[i]) / rows}
        for i in order[:TOP_CATEGORIES]
    ]
    return {
        "distinct_count": len(uniques),
        "top": top,
        "other_count": len(present) - sum(t["count"] for t in top),
    }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
