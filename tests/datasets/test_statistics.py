"""Schema and statistics of a version, checked against numpy computed here from the data
that went into the file."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from aiaas.datasets import HISTOGRAM_BINS, QUANTILES, TOP_CATEGORIES, DatasetService
from tests.datasets.conftest import parquet_bytes

ROWS = 500


def _data() -> dict[str, list]:
    rng = np.random.default_rng(42)
    height = rng.normal(170.0, 12.0, ROWS)
    height[rng.choice(ROWS, 25, replace=False)] = np.nan
    words = [f"w{int(k)}" for k in rng.zipf(1.6, ROWS) % 40]
    words[3] = None
    return {
        "height": [None if np.isnan(h) else float(h) for h in height],
        "count": [int(c) for c in rng.integers(-5, 100, ROWS)],
        "word": words,
        "ok": [bool(b) for b in rng.integers(0, 2, ROWS)],
    }


def _csv(columns: dict[str, list]) -> bytes:
    out = io.BytesIO()
    pa_csv.write_csv(pa.table(columns), out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_numeric_statistics_match_numpy(datasets: DatasetService, fmt: str) -> None:
    columns = _data()
    data = _csv(columns) if fmt == "csv" else parquet_bytes(pa.table(columns))
    v = datasets.create_version("s", data, filename=f"s.{fmt}")
    assert v.statistics["format"] == 1 and v.statistics["row_count"] == ROWS
    for name in ("height", "count"):
        values = np.array([np.nan if x is None else x for x in columns[name]], dtype=np.float64)
        present = values[~np.isnan(values)]
        stats = v.statistics["columns"][name]
        assert stats["kind"] == "numeric"
        assert (stats["count"], stats["null_count"]) == (present.size, ROWS - present.size)
        assert stats["min"] == pytest.approx(present.min())
        assert stats["max"] == pytest.approx(present.max())
        assert stats["mean"] == pytest.approx(present.mean())
        assert stats["std"] == pytest.approx(present.std())
        assert stats["quantiles"]["probs"] == list(QUANTILES)
        np.testing.assert_allclose(stats["quantiles"]["values"], np.quantile(present, QUANTILES))
        counts, edges = np.histogram(present, bins=HISTOGRAM_BINS)
        np.testing.assert_allclose(stats["histogram"]["bin_edges"], edges)
        assert stats["histogram"]["counts"] == counts.tolist()
        assert sum(stats["histogram"]["counts"]) == present.size
    schema = {c["name"]: c for c in v.schema}
    assert schema["height"]["nullable"] and schema["height"]["null_count"] == 25
    assert not schema["count"]["nullable"] and schema["count"]["dtype"] == "int64"


def test_category_statistics_match_a_count(datasets: DatasetService) -> None:
    columns = _data()
    v = datasets.create_version("s", _csv(columns), filename="s.csv")
    stats = v.statistics["columns"]["word"]
    present = [w for w in columns["word"] if w is not None]
    counted = Counter(present)
    expected = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
    assert stats["kind"] == "string"
    assert (stats["count"], stats["null_count"], stats["distinct_count"]) == (len(present), 1, len(counted))
    assert len(counted) > TOP_CATEGORIES  # the list is capped ...
    assert [(t["value"], t["count"]) for t in stats["top"]] == expected[:TOP_CATEGORIES]
    assert stats["top"][0]["frequency"] == pytest.approx(expected[0][1] / ROWS)
    # ... and what it leaves out is counted
    assert stats["other_count"] == sum(c for _, c in expected[TOP_CATEGORIES:])

    flags = v.statistics["columns"]["ok"]
    trues = sum(columns["ok"])
    assert flags["kind"] == "bool" and flags["distinct_count"] == 2
    assert {t["value"]: t["count"] for t in flags["top"]} == {True: trues, False: ROWS - trues}


def test_infinities_and_empty_columns_keep_the_statistics_valid_json(datasets: DatasetService) -> None:
    table = pa.table(
        {"x": [1.0, float("inf"), 3.0, float("-inf")], "empty": pa.array([None] * 4, pa.float64())}
    )
    v = datasets.create_version("inf", parquet_bytes(table), filename="inf.parquet")
    x = v.statistics["columns"]["x"]
    assert (x["count"], x["min"], x["max"], x["mean"]) == (4, 1.0, 3.0, 2.0)
    empty = v.statistics["columns"]["empty"]
    assert (empty["count"], empty["null_count"], empty["mean"], empty["histogram"]) == (0, 4, None, None)


def test_other_columns_are_described_but_not_summarised(datasets: DatasetService) -> None:
    csv = b"when,y\n2024-01-01,1\n2024-01-02,2\n2024-01-03,3\n"
    v = datasets.create_version("dates", csv, filename="d.csv")
    assert v.schema[0]["kind"] == "other" and v.schema[0]["dtype"].startswith("date")
    assert v.statistics["columns"]["when"] == {"kind": "other", "count": 3, "null_count": 0}
