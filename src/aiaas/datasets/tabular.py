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

from aiaas.errors import InvalidArgument, PayloadTooLarge

__all__ = [
    "DEFAULT_MAX_DATASET_CELLS",
    "FORMATS",
    "Column",
    "Table",
    "decode_utf8",
    "detect_format",
    "read_table",
    "table_to_csv",
]

#: Most values (rows x columns) a new dataset version may hold (``AIAAS_MAX_DATASET_CELLS``).
DEFAULT_MAX_DATASET_CELLS = 25_000_000
#: Bytes one value takes once read: every column becomes int64, float64 or object (a pointer).
_CELL_BYTES = 8
#: Room for a Parquet file's page headers and dictionaries beside its values.
_PARQUET_OVERHEAD_BYTES = 1024 * 1024

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


def read_table(data: bytes, fmt: str, *, field: str = "file", max_cells: int | None = None) -> Table:
    """Parse ``data`` as ``fmt``.

    Args:
        max_cells: most values (rows x columns) the table may hold; ``None`` for no limit
            (a stored version, already accepted). A Parquet file is checked from its metadata
            before anything is decoded, since a few hundred KiB of it can hold 60 M rows.

    Raises:
        InvalidArgument: the file is empty, cannot be parsed, has no rows or no columns,
            repeats a column name, or has a header that is not UTF-8; the message says which
            and names ``field``.
        PayloadTooLarge: the table holds more than ``max_cells`` values, or its Parquet pages
            decode to more than ``max_cells`` x 8 bytes.
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
            if max_cells is not None:
                _check_parquet_size(data, max_cells, field)
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
    try:
        names = [str(n) for n in arrow.column_names]
    except UnicodeDecodeError as exc:  # pyarrow keeps the header's bytes, and fails decoding them
        raise InvalidArgument(
            f"{field} could not be parsed as {fmt.upper()}: the header row (column names) is not "
            f"UTF-8 (byte {exc.object[exc.start : exc.start + 1]!r} at {exc.start}); save the file as UTF-8",
            details={"field": field, "format": fmt},
        ) from None
    if max_cells is not None:
        _check_cells(arrow.num_rows, arrow.num_columns, max_cells, field)
    if fmt == "csv":
        # pyarrow reads text that is not UTF-8 as a binary column rather than failing.
        binary = [
            name
            for name, f in zip(names, arrow.schema, strict=True)
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
            f"{field} has no rows: it holds only the header {names}", details={"field": field}
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidArgument(
            f"{field} repeats column names {repeated}: every column needs its own name",
            details={"field": field, "columns": repeated},
        )
    columns = [_column(name, arrow.column(i)) for i, name in enumerate(names)]
    return Table(columns=columns, row_count=int(arrow.num_rows))


def _check_parquet_size(data: bytes, max_cells: int, field: str) -> None:
    """Refuse a Parquet file whose metadata says it decodes to more than the limit, before
    decoding it: rows x columns, and the uncompressed size of its pages (a highly
    compressible text column holds few values but many bytes)."""
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    _check_cells(metadata.num_rows, metadata.num_columns, max_cells, field)
    decoded = sum(
        metadata.row_group(g).column(c).total_uncompressed_size
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    )
    limit = max_cells * _CELL_BYTES + _PARQUET_OVERHEAD_BYTES
    if decoded > limit:
        raise PayloadTooLarge(
            f"{field} decodes to {decoded} bytes, over the limit of {limit} bytes ({max_cells} "
            "values of 8 bytes and 1 MiB of headers, AIAAS_MAX_DATASET_CELLS); upload fewer rows or columns",
            details={"field": field, "limit": limit, "size": decoded},
        )


def _check_cells(rows: int, columns: int, max_cells: int, field: str) -> None:
    cells = rows * columns
    if cells > max_cells:
        raise PayloadTooLarge(
            f"{field} holds {rows} rows x {columns} columns = {cells} values, over the limit of "
            f"{max_cells} (AIAAS_MAX_DATASET_CELLS); upload fewer rows or columns",
            details={"field": field, "limit": max_cells, "size": cells, "rows": rows, "columns": columns},
        )


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
