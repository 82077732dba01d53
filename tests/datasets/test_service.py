"""The dataset service: versions of CSV and Parquet files, what each records, the choice for
identical uploads, every kind of bad data refused with nothing stored, and loading a
version back from another process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aiaas.datasets import DatasetService
from aiaas.errors import InvalidArgument, NotFound, PayloadTooLarge
from aiaas.store import MAX_JSON_DEPTH, MAX_TEXT_CHARS, Database, FileArtifactStore
from tests.datasets.conftest import CSV, parquet_bytes, stored_blobs

# -- creating and reading versions ---------------------------------------------------------


def test_csv_version_records_schema_rows_target_and_task(datasets: DatasetService) -> None:
    v = datasets.create_version("plants", CSV, filename="plants.csv", target="species", description="d1")
    assert (v.dataset, v.version, v.format, v.row_count, v.size_bytes) == ("plants", 1, "csv", 10, len(CSV))
    assert (v.target, v.task, v.description) == ("species", "classification", "d1")
    assert v.schema == [
        {"name": "length", "dtype": "float64", "kind": "numeric", "nullable": False, "null_count": 0},
        {"name": "width", "dtype": "float64", "kind": "numeric", "nullable": True, "null_count": 1},
        {"name": "flag", "dtype": "bool", "kind": "bool", "nullable": False, "null_count": 0},
        {"name": "species", "dtype": "string", "kind": "string", "nullable": False, "null_count": 0},
    ]
    assert v.metadata == {"filename": "plants.csv"}
    assert datasets.load_data(v) == CSV
    assert datasets.get_dataset("plants").latest_version == 1
    assert datasets.get_dataset("plants").description == "d1"


def test_parquet_version_matches_the_same_table_as_csv(datasets: DatasetService) -> None:
    table = pa.table(
        {
            "length": [1.5, 2.5, 3.0, 4.25],
            "count": pa.array([1, 2, None, 4], type=pa.int32()),
            "flag": [True, False, True, True],
            "species": pa.array(["a", "b", "a", "b"]).dictionary_encode(),
        }
    )
    data = parquet_bytes(table)
    v = datasets.create_version("pq", data, filename="upload.bin", target="species")
    assert v.format == "parquet"  # recognised by its content, whatever the name
    assert [(c["name"], c["dtype"], c["kind"], c["null_count"]) for c in v.schema] == [
        ("length", "float64", "numeric", 0),
        ("count", "int32", "numeric", 1),
        ("flag", "bool", "bool", 0),
        ("species", "string", "string", 0),
    ]
    loaded = datasets.load("pq")
    np.testing.assert_array_equal(loaded.columns["length"], [1.5, 2.5, 3.0, 4.25])
    np.testing.assert_array_equal(loaded.columns["count"], [1.0, 2.0, np.nan, 4.0])
    assert loaded.labels().tolist() == ["a", "b", "a", "b"]
    csv = b"length,count,flag,species\n1.5,1,true,a\n2.5,2,false,b\n3.0,,true,a\n4.25,4,true,b\n"
    as_csv = datasets.create_version("csv", csv, filename="t.csv", target="species")
    assert as_csv.statistics["columns"] == v.statistics["columns"]
    assert as_csv.split["train_rows"] == v.split["train_rows"]


def test_versions_are_numbered_and_latest_is_the_highest(datasets: DatasetService) -> None:
    numbers = [
        datasets.create_version("d", CSV, filename="d.csv", target="species", seed=seed).version
        for seed in (1, 2, 3)
    ]
    assert numbers == [1, 2, 3]
    assert [v.version for v in datasets.list_versions("d")] == [1, 2, 3]
    assert datasets.get_version("d").version == 3
    assert datasets.get_version("d", 2).split["seed"] == 2
    assert datasets.create_version("other", CSV, filename="d.csv").version == 1
    assert [d.name for d in datasets.list_datasets()] == ["d", "other"]


def test_identical_upload_returns_the_existing_version(
    datasets: DatasetService, artifacts_root: Path
) -> None:
    first = datasets.create_version("d", CSV, filename="a.csv", target="species", seed=7)
    blobs = len(stored_blobs(artifacts_root))
    again = datasets.create_version("d", CSV, filename="b.csv", target="species", seed=7, description="x")
    assert again == first
    assert len(datasets.list_versions("d")) == 1
    assert len(stored_blobs(artifacts_root)) == blobs
    # another target, seed or fraction is another version sharing the stored file
    other_seed = datasets.create_version("d", CSV, filename="a.csv", target="species", seed=8)
    other_fraction = datasets.create_version(
        "d", CSV, filename="a.csv", target="species", seed=7, validation_fraction=0.3
    )
    no_target = datasets.create_version("d", CSV, filename="a.csv", seed=7)
    assert [other_seed.version, other_fraction.version, no_target.version] == [2, 3, 4]
    assert {other_seed.artifact_digest, other_fraction.artifact_digest, no_target.artifact_digest} == {
        first.artifact_digest
    }


def test_unknown_dataset_or_version_is_not_found(datasets: DatasetService) -> None:
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        datasets.get_version("nope")
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        datasets.load("nope")
    datasets.create_version("d", CSV, filename="d.csv")
    with pytest.raises(NotFound, match=r"dataset 'd' has no version 5; its versions are \[1\]"):
        datasets.get_version("d", 5)


def test_concurrent_uploads_get_distinct_version_numbers(datasets: DatasetService) -> None:
    start = threading.Barrier(3)
    results: list[int] = []
    failures: list[BaseException] = []

    def upload(seed: int) -> None:
        start.wait()
        try:
            results.append(datasets.create_version("d", CSV, filename="d.csv", seed=seed).version)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=upload, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(results) == [1, 2, 3]


# -- bad data: the right error, and nothing stored -------------------------------------------

BAD_UPLOADS = [
    pytest.param(b"", "e.csv", {}, "file is empty", id="empty-file"),
    pytest.param(b"\n\n  \n", "e.csv", {}, "file is empty", id="blank-file"),
    pytest.param(b"a,b\n", "h.csv", {}, r"no rows: it holds only the header \['a', 'b'\]", id="header-only"),
    pytest.param(b"a,b\n1,2\n3,4,5\n", "x.csv", {}, "could not be parsed as CSV: .*columns", id="ragged-csv"),
    pytest.param(
        b"a,b\n\xff\xfe,1\nok,2\n",
        "x.csv",
        {},
        r"could not be parsed as CSV: columns \['a'\] hold text that is not UTF-8",
        id="not-utf8",
    ),
    pytest.param(b"PAR1 garbage PAR1", "x.parquet", {}, "could not be parsed as PARQUET", id="bad-parquet"),
    pytest.param(b"a,a\n1,2\n3,4\n", "x.csv", {}, r"repeats column names \['a'\]", id="repeated-column"),
    pytest.param(b"a,b\n1,2\n", "x.csv", {}, "at least 2 rows", id="one-row"),
    pytest.param(
        CSV,
        "x.csv",
        {"target": "kind"},
        r"target column 'kind' is not in the file; its columns are \['length', 'width', 'flag', 'species'\]",
        id="missing-target",
    ),
    pytest.param(
        CSV,
        "x.csv",
        {"target": "length"},
        r"feature columns must be numeric or bool; not so: 'species' \(string\)",
        id="string-feature",
    ),
    pytest.param(
        b"x,y\n1,a\n2,\n3,b\n",
        "x.csv",
        {"target": "y"},
        "target column 'y' has 1 missing values",
        id="null-label",
    ),
    pytest.param(CSV, "x.csv", {"validation_fraction": 0.0}, "validation_fraction must be", id="fraction-0"),
    pytest.param(CSV, "x.csv", {"validation_fraction": 1.0}, "validation_fraction must be", id="fraction-1"),
    pytest.param(CSV, "x.csv", {"validation_fraction": -0.5}, "strictly between 0 and 1", id="fraction-neg"),
    pytest.param(CSV, "x.csv", {"seed": -1}, "seed must be an integer from 0", id="negative-seed"),
]


@pytest.mark.parametrize(("data", "filename", "options", "message"), BAD_UPLOADS)
def test_bad_upload_is_refused_and_nothing_is_stored(
    datasets: DatasetService, artifacts_root: Path, data: bytes, filename: str, options: dict, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        datasets.create_version("bad", data, filename=filename, **options)
    assert info.value.code == "INVALID_ARGUMENT"
    assert info.value.details["field"] in ("file", "target", "validation_fraction", "seed")
    assert datasets.list_datasets() == []
    assert stored_blobs(artifacts_root) == []


def test_bad_upload_to_an_existing_dataset_adds_no_version(datasets: DatasetService) -> None:
    datasets.create_version("d", CSV, filename="d.csv", target="species")
    with pytest.raises(InvalidArgument, match="feature columns"):
        datasets.create_version("d", CSV, filename="d.csv", target="length")
    assert [v.version for v in datasets.list_versions("d")] == [1]


def test_file_over_the_size_limit_is_payload_too_large(
    migrated_database_url: str, artifacts_root: Path
) -> None:
    db = Database(migrated_database_url)
    db.upgrade()
    try:
        small = DatasetService(db, FileArtifactStore(artifacts_root), max_bytes=len(CSV) - 1)
        with pytest.raises(PayloadTooLarge, match=f"over the dataset limit of {len(CSV) - 1} bytes") as info:
            small.create_version("big", CSV, filename="big.csv")
        assert info.value.details == {"field": "file", "limit": len(CSV) - 1, "size": len(CSV)}
        assert small.list_datasets() == []
        assert stored_blobs(artifacts_root) == []
    finally:
        db.dispose()


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "x" * 129])
def test_bad_dataset_names_are_refused(datasets: DatasetService, name: str) -> None:
    with pytest.raises(InvalidArgument, match="name must be 1-128 characters"):
        datasets.create_version(name, CSV, filename="d.csv")
    assert datasets.list_datasets() == []


# -- loading from another process, as a training job does -----------------------------------

LOAD_IN_CHILD = """
import hashlib, json, sys
from aiaas.datasets import DatasetService
from aiaas.store import Database, open_artifact_store
service = DatasetService(Database(sys.argv[1]), open_artifact_store(sys.argv[2]))
data = service.load(sys.argv[3], int(sys.argv[4]))
x, names = data.features()
print(json.dumps({
    "shape": list(x.shape), "dtype": str(x.dtype), "names": names,
    "x": hashlib.sha256(x.tobytes()).hexdigest(),
    "labels": data.labels().tolist(),
    "train": data.train_indices.tolist(), "validation": data.validation_indices.tolist(),
}))
"""


def test_a_fresh_process_loads_the_same_arrays_and_split(
    datasets: DatasetService, migrated_database_url: str, artifacts_root: Path
) -> None:
    csv = b"a,b,label\n" + b"".join(f"{i},{i * 0.5},{'xyz'[i % 3]}\n".encode() for i in range(30))
    v = datasets.create_version("child", csv, filename="c.csv", target="label", seed=3)
    here = datasets.load("child", v.version)
    x, _ = here.features()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_IN_CHILD,
            migrated_database_url,
            f"file://{artifacts_root}",
            "child",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    there = json.loads(proc.stdout)
    assert (there["shape"], there["dtype"], there["names"]) == ([30, 2], "float32", ["a", "b"])
    import hashlib

    assert there["x"] == hashlib.sha256(x.tobytes()).hexdigest()
    assert there["labels"] == here.labels().tolist()
    assert (there["train"], there["validation"]) == (
        here.train_indices.tolist(),
        here.validation_indices.tolist(),
    )


def test_description_and_metadata_are_bounded_before_anything_is_stored(datasets: DatasetService) -> None:
    with pytest.raises(PayloadTooLarge, match=rf"description is {MAX_TEXT_CHARS + 1} characters long"):
        datasets.create_version("d", CSV, filename="d.csv", description="x" * (MAX_TEXT_CHARS + 1))
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(MAX_JSON_DEPTH):
        deep = {"a": deep}
    with pytest.raises(InvalidArgument, match=rf"metadata is nested deeper than {MAX_JSON_DEPTH} levels"):
        datasets.create_version("d", CSV, filename="d.csv", metadata=deep)
    assert datasets.list_datasets() == []
    assert list(datasets.artifacts.blobs()) == []  # refused before the data file was stored
