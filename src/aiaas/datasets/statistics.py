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
       "<other column>": {"kind": "other", "count": 150, "null_count": 0},
       "<text column>": {
         "kind": "text", "count": 95, "null_count": 0,
         "documents": 94, "empty_count": 1, "characters": 48210, "tokens": 10022,
         "characters_per_document": {"min": 3, "max": 2210, "mean": 512.9,
                                     "quantiles": {"probs": [...], "values": [...]}},
         "tokens_per_document": {...}}},
     "text": {"columns": ["text"], "documents": 94, "characters": 48210, "tokens": 10022}}

``"text"`` is there only for text datasets (see :mod:`aiaas.datasets.text`): ``documents``
counts the rows with text in at least one text column, the rest are sums over text columns.

Conventions: ``count`` is the number of present values (``row_count - null_count``); NaN is
missing; ``std`` is the population standard deviation (numpy's ``ddof=0``); quantiles use
numpy's default linear interpolation; the histogram has :data:`HISTOGRAM_BINS` equal-width
bins over ``[min, max]`` (numpy's ``np.histogram``; the last bin includes ``max``);
``frequency`` is ``count / row_count`` (missing values included in the denominator);
``top`` holds at most :data:`TOP_CATEGORIES` values, most frequent first (ties by value),
and ``other_count`` counts the present values outside it. ±inf values are counted as
present but left out of the numeric summaries, so every number stays valid JSON.
A column with no present value has ``null`` summaries.

Text columns: ``documents`` counts present, non-blank values and ``empty_count`` the present
blank ones; ``characters`` are Unicode code points; ``tokens`` count the matches of
:data:`TOKEN_PATTERN`; the per-document summaries are over the documents (``null`` when
there are none).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiaas.datasets.tabular import Column, Table

__all__ = [
    "HISTOGRAM_BINS",
    "QUANTILES",
    "STATISTICS_FORMAT",
    "TOKEN_PATTERN",
    "TOP_CATEGORIES",
    "schema_of",
    "statistics_of",
]

STATISTICS_FORMAT = 1
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 20
#: What the ``tokens`` of a text column count: runs of letters, runs of digits, and runs of
#: other non-space characters. These are the pieces a byte-level BPE tokenizer starts from
#: (its pre-tokens, whitespace aside), so a trained tokenizer's count is at least this; and it
#: is known at upload, before any tokenizer exists. RE2 syntax, counted by pyarrow.
TOKEN_PATTERN = r"\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+"


def schema_of(table: Table) -> list[dict[str, Any]]:
    """The schema entries of a table (see :mod:`aiaas.entities.datasets`)."""
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
    """Per-column statistics in the documented shape (with ``"text"`` when some are text)."""
    stats: dict[str, Any] = {
        "format": STATISTICS_FORMAT,
        "row_count": table.row_count,
        "columns": {c.name: _column_stats(c, table.row_count) for c in table.columns},
    }
    text = [c for c in table.columns if c.kind == "text"]
    if text:
        with_text = np.zeros(table.row_count, dtype=bool)
        for column in text:
            with_text |= _nonblank(_strings(column.values))
        entries = [stats["columns"][c.name] for c in text]
        stats["text"] = {
            "columns": [c.name for c in text],
            "documents": int(with_text.sum()),
            "characters": sum(e["characters"] for e in entries),
            "tokens": sum(e["tokens"] for e in entries),
        }
    return stats


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
    if column.kind == "text":
        return base | _text(column.values)
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


def _text(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    array = _strings(values)
    documents = array.filter(pa.array(_nonblank(array)))
    present = len(array) - array.null_count
    chars = np.asarray(pc.utf8_length(documents).to_numpy(zero_copy_only=False), dtype=np.int64)
    tokens = np.asarray(
        pc.count_substring_regex(documents, TOKEN_PATTERN).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    return {
        "documents": len(documents),
        "empty_count": present - len(documents),
        "characters": int(chars.sum()),
        "tokens": int(tokens.sum()),
        "characters_per_document": _counts_summary(chars),
        "tokens_per_document": _counts_summary(tokens),
    }


def _strings(values: np.ndarray[Any, Any]) -> pa.LargeStringArray:
    return pa.array(values.tolist(), type=pa.large_string())


def _nonblank(array: pa.LargeStringArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """True where a value is present and not only (Unicode) whitespace."""
    lengths = pc.utf8_length(pc.utf8_trim_whitespace(array))
    return np.asarray(pc.fill_null(pc.greater(lengths, 0), False).to_numpy(zero_copy_only=False), dtype=bool)


def _counts_summary(x: np.ndarray[Any, Any]) -> dict[str, Any] | None:
    if x.size == 0:
        return None
    return {
        "min": int(x.min()),
        "max": int(x.max()),
        "mean": float(x.mean()),
        "quantiles": {"probs": list(QUANTILES), "values": [float(q) for q in np.quantile(x, QUANTILES)]},
    }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
