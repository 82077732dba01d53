"""The stored split: reproducible from the file, seed and fraction, stratified by a class
target, and the same when computed in another process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from aiaas.datasets import DatasetService
from aiaas.datasets.split import make_split

# 97 rows, classes of 60 / 30 / 7: uneven on purpose, so rounding per class matters.
LABELS = ["big"] * 60 + ["mid"] * 30 + ["rare"] * 7
CSV = b"x,label\n" + b"".join(f"{i * 0.1:.1f},{label}\n".encode() for i, label in enumerate(LABELS))


def _indices(datasets: DatasetService, name: str) -> tuple[list[int], list[int]]:
    loaded = datasets.load(name)
    return loaded.train_indices.tolist(), loaded.validation_indices.tolist()


def test_split_partitions_the_rows(datasets: DatasetService) -> None:
    v = datasets.create_version("d", CSV, filename="d.csv", target="label", validation_fraction=0.25, seed=5)
    train, validation = _indices(datasets, "d")
    assert sorted(train + validation) == list(range(len(LABELS)))
    assert train == sorted(train) and validation == sorted(validation)
    assert (v.split["train_rows"], v.split["validation_rows"]) == (len(train), len(validation))
    assert len(validation) == round(len(LABELS) * 0.25)
    assert v.split["seed"] == 5 and v.split["validation_fraction"] == 0.25 and v.split["stratified"]


def test_same_file_seed_and_fraction_give_the_same_split(datasets: DatasetService) -> None:
    datasets.create_version("a", CSV, filename="d.csv", target="label", seed=11)
    datasets.create_version("b", CSV, filename="other-name.csv", target="label", seed=11)
    datasets.create_version("c", CSV, filename="d.csv", target="label", seed=12)
    assert _indices(datasets, "a") == _indices(datasets, "b")
    assert _indices(datasets, "a") != _indices(datasets, "c")
    assert (
        datasets.get_version("a").split["indices_digest"] == datasets.get_version("b").split["indices_digest"]
    )


def test_class_target_is_split_per_class(datasets: DatasetService) -> None:
    datasets.create_version("d", CSV, filename="d.csv", target="label", validation_fraction=0.2, seed=0)
    _, validation = _indices(datasets, "d")
    picked = [LABELS[i] for i in validation]
    for label, total in (("big", 60), ("mid", 30), ("rare", 7)):
        share = picked.count(label)
        assert abs(share - total * 0.2) < 1, (label, share)
    assert picked.count("rare") >= 1


def test_regression_target_and_no_target_split_at_random(datasets: DatasetService) -> None:
    numbers = b"x,y\n" + b"".join(f"{i},{i * 1.5 + 0.25}\n".encode() for i in range(40))
    v = datasets.create_version("r", numbers, filename="r.csv", target="y")
    assert (v.task, v.split["stratified"]) == ("regression", False)
    none = datasets.create_version("n", CSV, filename="d.csv")
    assert (none.task, none.target, none.split["stratified"]) == (None, None, False)


def test_split_is_the_same_in_another_process() -> None:
    labels = np.array(LABELS)
    here = make_split(len(labels), 0.3, 2024, labels)
    code = (
        "import json, numpy as np\n"
        "from aiaas.datasets.split import make_split\n"
        f"labels = np.array({LABELS!r})\n"
        "s = make_split(len(labels), 0.3, 2024, labels)\n"
        "print(json.dumps([s.train.tolist(), s.validation.tolist()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == [here.train.tolist(), here.validation.tolist()]


@pytest.mark.parametrize(
    ("rows", "fraction", "expected"), [(2, 0.01, 1), (2, 0.99, 1), (10, 0.5, 5), (3, 0.2, 1)]
)
def test_validation_set_is_never_empty_nor_everything(rows: int, fraction: float, expected: int) -> None:
    split = make_split(rows, fraction, 0)
    assert (len(split.validation), len(split.train)) == (expected, rows - expected)
