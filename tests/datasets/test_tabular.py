"""Reading uploaded files: a header that is not UTF-8, and files that decode past the limit."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiaas.datasets.tabular import read_table
from aiaas.errors import InvalidArgument, PayloadTooLarge


def _parquet(table: pa.Table, **options: object) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **options)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("data", [b"caf\xe9,b\n1,2\n", b"a,\xff\xfe\n1,2\n"])
def test_a_csv_header_that_is_not_utf8_is_refused_in_words(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match=r"header row .* is not UTF-8") as info:
        read_table(data, "csv")
    assert info.value.details["field"] == "file"


def test_a_parquet_bomb_is_refused_from_its_metadata() -> None:
    rows = 2_000_000
    bomb = _parquet(pa.table({"x": pa.repeat(pa.scalar(0, pa.int64()), rows)}), compression="zstd")
    assert len(bomb) < 64 * 1024  # tiny on disk, 16 MB of int64 once read
    with pytest.raises(
        PayloadTooLarge, match=r"2000000 rows x 1 columns = 2000000 values.*AIAAS_MAX_DATASET_CELLS"
    ):
        read_table(bomb, "parquet", max_cells=1_000_000)


def test_a_parquet_file_of_long_text_is_measured_by_its_decoded_bytes() -> None:
    text = pa.array(["x" * 100_000] * 20)  # 20 values, 2 MB of text
    data = _parquet(pa.table({"t": text}), compression="zstd", use_dictionary=False)
    with pytest.raises(PayloadTooLarge, match=r"decodes to \d+ bytes, over the limit of 1056576 bytes"):
        read_table(data, "parquet", max_cells=1000)


def test_files_within_the_limits_read_as_before() -> None:
    table = read_table(_parquet(pa.table({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})), "parquet", max_cells=6)
    assert (table.row_count, table.names) == (3, ["a", "b"])
    table = read_table("café,b\n1,2\n".encode(), "csv", max_cells=2)
    assert table.names == ["café", "b"]
    with pytest.raises(PayloadTooLarge, match="= 4 values, over the limit of 3"):
        read_table(b"a,b\n1,2\n3,4\n", "csv", max_cells=3)
