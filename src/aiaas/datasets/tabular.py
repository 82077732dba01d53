"""Reading an uploaded CSV, Parquet or JSONL file into columns, with pyarrow and numpy only.

Everything downstream (schema, statistics, split, training) works on the numpy columns
this module returns, so an upload, a bundled sample and a version loaded back by a
training process all go through the same few functions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from aiaas.errors import InvalidArgument

__all__ = ["FORMATS", "Column", "Table", "decode_utf8", "detect_format", "read_table", "table_to_csv"]

#: Table formats :func:`read_table` reads (a ``.txt`` corpus is read by :mod:`aiaas.datasets.text`).
FORMATS = ("csv", "parquet", "jsonl")

_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class Column:
    """One column as numpy: numbers as int64/float64 (missing values as NaN, which makes
    an integer column with gaps float64), bools as bool (object with None when some are
    missing), strings as an object array with None for missing values."""

    name: str
    dtype: str
    kind: str
    values: np.ndarray[Any, Any]
    null_count: int


@dataclass(frozen=True)
class Table:
    columns: list[Column]
    row_count: int

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def detect_format(filename: str, data: bytes) -> str:
    """``"parquet"`` for a ``.parquet``/``.pq`` name or the Parquet magic bytes; ``"jsonl"`` for
    ``.jsonl``/``.ndjson``/``.json``; ``"text"`` (a corpus) for ``.txt``/``.text``; else ``"csv"``.

    The content wins over the name when they disagree in the Parquet direction, because a
    Parquet file is unmistakable (``PAR1`` at both ends) and a CSV file is not.
    """
    lower = filename.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if data[:4] == _PARQUET_MAGIC and data[-4:] == _PARQUET_MAGIC:
        return "parquet"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith((".txt", ".text")):
        return "text"
    return "csv"


def decode_utf8(data: bytes, *, field: str = "file") -> str:
    """``data`` decoded as UTF-8, a leading byte-order mark dropped.

    Raises:
        InvalidArgument: the bytes are not UTF-8; the message gives the first bad offset.
    """
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(
            f"{field} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be "
            "decoded; save the file as UTF-8",
            details={"field": field, "offset": exc.start},
        ) from None


def read_table(data: bytes, fmt: str, *, field: str = "file") -> Table:
    """Parse ``data`` as ``fmt``.

    Raises:
        InvalidArgument: the file is empty, cannot be parsed, has no rows or no columns,
            or repeats a column name; the message says which and names ``field``.
    """
    if fmt not in FORMATS:
        raise InvalidArgument(
            f"format must be one of {list(FORMATS)}; got {fmt!r}", details={"field": "format"}
        )
    if not data.strip():
        raise InvalidArgument(
            f"{field} is empty: upload a CSV file with a header row, a Parquet file, or JSON lines",
            details={"field": field},
        )
    if fmt == "jsonl":
        decode_utf8(data, field=field)  # pyarrow would read other bytes as text silently
    try:
        if fmt == "parquet":
            arrow = pq.read_table(io.BytesIO(data))
        elif fmt == "jsonl":  # one JSON object per line; keys become columns
            arrow = pa_json.read_json(io.BytesIO(data))
        else:  # an empty cell is a missing value in a text column too, not the label ""
            options = pa_csv.ConvertOptions(strings_can_be_null=True)
            arrow = pa_csv.read_csv(io.BytesIO(data), convert_options=options)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgument(
            f"{field} could not be parsed as {fmt.upper()}: {reason}"
            + ("; expected one JSON object per line" if fmt == "jsonl" else ""),
            details={"field": field, "format": fmt},
        ) from None
    if fmt == "csv":
        # pyarrow reads text that is not UTF-8 as a binary column rather than failing.
        binary = [
            str(f.name)
            for f in arrow.schema
            if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
        ]
        if binary:
            raise InvalidArgument(
                f"{field} could not be parsed as CSV: columns {binary} hold text that is not UTF-8; "
                "save the file as UTF-8",
                details={"field": field, "format": fmt, "columns": binary},
            )
    if arrow.num_columns == 0:
        raise InvalidArgument(f"{field} has no columns", details={"field": field})
    if arrow.num_rows == 0:
        raise InvalidArgument(
            f"{field} has no rows: it holds only the header {arrow.column_names}", details={"field": field}
        )
    names = [str(n) for n in arrow.column_names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidArgument(
            f"{field} repeats column names {repeated}: every column needs its own name",
            details={"field": field, "columns": repeated},
        )
    columns = [_column(name, arrow.column(i)) for i, name in enumerate(names)]
    return Table(columns=columns, row_count=int(arrow.num_rows))


def table_to_csv(columns: dict[str, np.ndarray[Any, Any]]) -> bytes:
    """CSV bytes of numeric columns (the bundled samples); same input, same bytes."""
    arrow = pa.table({name: pa.array(values) for name, values in columns.items()})
    out = io.BytesIO()
    pa_csv.write_csv(arrow, out)
    return out.getvalue()


def _column(name: str, chunked: pa.ChunkedArray) -> Column:
    array = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    dtype = _dtype_name(array.type)
    if pa.types.is_decimal(array.type):
        array = array.cast(pa.float64())
    typ = array.type
    nulls = int(array.null_count)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        if pa.types.is_integer(typ) and nulls == 0:
            values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)
        else:
            values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
            nulls = int(np.isnan(values).sum())  # NaN stored in a float column is missing too
        return Column(name, dtype, "numeric", values, nulls)
    if pa.types.is_boolean(typ):
        values = array.to_numpy(zero_copy_only=False)
        values = values.astype(bool) if nulls == 0 else values.astype(object)
        return Column(name, dtype, "bool", values, nulls)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return Column(name, dtype, "string", _objects(array), nulls)
    return Column(name, dtype, "other", _objects(array), nulls)


def _objects(array: pa.Array) -> np.ndarray[Any, Any]:
    out = np.empty(len(array), dtype=object)
    out[:] = array.to_pylist()
    return out


def _dtype_name(typ: pa.DataType) -> str:
    """numpy-style names for numbers (``float64``, not Arrow's ``double``); Arrow's otherwise."""
    if pa.types.is_floating(typ):
        return f"float{typ.bit_width}"
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "string"
    return str(typ)  # int8 ... int64, uint8 ... uint64, decimal128(10, 2), timestamp[s], ...
