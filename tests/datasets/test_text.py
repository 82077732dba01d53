"""Text datasets: a .txt corpus cut into documents, JSONL/CSV/Parquet rows with a text column or
chat pairs, text classification; their statistics checked against a count made here, the same
versioning and split as tabular data, and every kind of bad text refused with nothing stored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aiaas.datasets import DatasetService
from aiaas.errors import InvalidArgument, PayloadTooLarge
from aiaas.store import Database, FileArtifactStore
from tests.datasets.conftest import parquet_bytes, stored_blobs

PARAGRAPHS = [
    "The first paragraph has two lines,\nand a comma.",
    "Second: numbers 42 and 7, déjà vu — naïve café.",
    "Third one, short.",
    "   Indented fourth paragraph\nkeeps its indent.",
    "Fifth!",
]
CORPUS = ("\n\n".join(PARAGRAPHS[:3]) + "\n \n\n" + "\n\n".join(PARAGRAPHS[3:]) + "\n").encode()


def _tokens(text: str) -> int:
    """The documented token rule, written again with Python's re (letters, digits, the rest)."""
    return len(re.findall(r"[^\W\d_]+|\d+|[^\w\s]+|_+", text))


def test_txt_corpus_is_cut_at_blank_lines_by_default(datasets: DatasetService) -> None:
    v = datasets.create_version("corpus", CORPUS, filename="book.txt")
    assert (v.format, v.row_count, v.target, v.task) == ("text", 5, None, "text-generation")
    assert v.schema == [
        {"name": "text", "dtype": "string", "kind": "text", "nullable": False, "null_count": 0}
    ]
    assert v.text == {"columns": ["text"], "text_column": "text", "documents": "paragraph"}
    assert v.text_columns == ["text"]
    loaded = datasets.load("corpus")
    assert loaded.texts() == PARAGRAPHS  # line breaks inside a paragraph and its indent are kept
    assert datasets.load_data(v) == CORPUS


def test_txt_corpus_one_document_per_line(datasets: DatasetService) -> None:
    data = b"first line\r\nsecond line\r\n\r\n  \nthird line"
    v = datasets.create_version("lines", data, filename="lines.txt", documents="line")
    assert v.row_count == 3 and v.text == {"columns": ["text"], "text_column": "text", "documents": "line"}
    assert datasets.load("lines").texts() == ["first line", "second line", "third line"]
    # The same file cut the other way is another version of it, not the same one.
    other = datasets.create_version("lines", data, filename="lines.txt")
    assert other.version == 2 and other.row_count == 2


def test_text_statistics_count_documents_characters_and_tokens(datasets: DatasetService) -> None:
    v = datasets.create_version("stats", CORPUS, filename="book.txt")
    stats = v.statistics["columns"]["text"]
    chars = [len(p) for p in PARAGRAPHS]
    tokens = [_tokens(p) for p in PARAGRAPHS]
    assert stats["kind"] == "text" and (stats["count"], stats["null_count"]) == (5, 0)
    assert (stats["documents"], stats["empty_count"]) == (5, 0)
    assert stats["characters"] == sum(chars)  # code points: "é" is one character
    assert stats["tokens"] == sum(tokens)
    per_doc = stats["characters_per_document"]
    assert (per_doc["min"], per_doc["max"]) == (min(chars), max(chars))
    assert per_doc["mean"] == pytest.approx(np.mean(chars))
    np.testing.assert_allclose(
        per_doc["quantiles"]["values"], np.quantile(chars, per_doc["quantiles"]["probs"])
    )
    assert stats["tokens_per_document"]["max"] == max(tokens)
    assert v.statistics["text"] == {
        "columns": ["text"],
        "documents": 5,
        "characters": sum(chars),
        "tokens": sum(tokens),
    }
    assert "top" not in stats  # whole documents are not listed as categories


def _jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


REVIEWS = [
    {"id": i, "review": text, "stars": stars}
    for i, (text, stars) in enumerate(
        [
            ("Great product, works well.", "good"),
            ("Terrible. Broke after 2 days!", "bad"),
            ("Does what it says.", "good"),
            ("Would not buy again.", "bad"),
            ("Excellent value for money", "good"),
            ("Awful customer service...", "bad"),
            ("Five stars from me", "good"),
            ("It stopped working", "bad"),
            ("Happy with it", "good"),
            ("Waste of money", "bad"),
        ]
    )
]


def test_jsonl_text_classification_is_stratified_by_its_label(datasets: DatasetService) -> None:
    v = datasets.create_version(
        "reviews", _jsonl(REVIEWS), filename="reviews.jsonl", text_column="review", target="stars"
    )
    assert (v.format, v.row_count, v.target, v.task) == ("jsonl", 10, "stars", "classification")
    assert [(c["name"], c["kind"]) for c in v.schema] == [
        ("id", "numeric"),
        ("review", "text"),
        ("stars", "string"),
    ]
    assert v.split["stratified"] and v.split["validation_rows"] == 2
    loaded = datasets.load("reviews")
    labels = loaded.labels()
    assert sorted(labels[loaded.validation_indices].tolist()) == ["bad", "good"]
    assert loaded.texts() == [r["review"] for r in REVIEWS]
    assert v.statistics["columns"]["stars"]["distinct_count"] == 2  # the label keeps category stats
    assert v.statistics["columns"]["review"]["tokens"] == sum(_tokens(r["review"]) for r in REVIEWS)
    # Tabular features cannot be text: asking for them says why.
    with pytest.raises(InvalidArgument, match="feature column 'review' has dtype string"):
        loaded.features()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_rows_can_hold_chat_pairs(datasets: DatasetService, fmt: str) -> None:
    prompts = ["hi", "what is 2+2?", None, "name a colour"]
    answers = ["hello!", "4", "nothing to answer", "blue"]
    table = pa.table({"question": prompts, "answer": answers})
    if fmt == "csv":
        data = b"question,answer\nhi,hello!\nwhat is 2+2?,4\n,nothing to answer\nname a colour,blue\n"
    else:
        data = parquet_bytes(table)
    v = datasets.create_version(
        f"chat-{fmt}", data, filename=f"chat.{fmt}", prompt_column="question", response_column="answer"
    )
    assert v.text == {
        "columns": ["question", "answer"],
        "prompt_column": "question",
        "response_column": "answer",
    }
    assert v.task == "text-generation"
    assert v.statistics["columns"]["question"]["null_count"] == 1
    assert v.statistics["text"]["documents"] == 4  # rows with text in some text column
    loaded = datasets.load(f"chat-{fmt}")
    assert loaded.texts("question") == prompts and loaded.texts("answer") == answers
    with pytest.raises(InvalidArgument, match="has text columns"):
        loaded.texts()


def test_the_same_text_with_the_same_options_is_the_same_version(datasets: DatasetService) -> None:
    first = datasets.create_version("same", CORPUS, filename="a.txt")
    assert datasets.create_version("same", CORPUS, filename="renamed.txt") == first
    rows = _jsonl(REVIEWS)
    as_text = datasets.create_version("same-rows", rows, filename="r.jsonl", text_column="review")
    assert datasets.create_version("same-rows", rows, filename="r.jsonl", text_column="review") == as_text
    assert datasets.create_version("same-rows", rows, filename="r.jsonl").version == 2  # tabular
    assert datasets.create_version("same-rows", rows, filename="r.jsonl", text_column="stars").version == 3
    assert [v.version for v in datasets.list_versions("same-rows")] == [1, 2, 3]


def test_split_of_a_corpus_is_seeded_and_partitions_the_documents(datasets: DatasetService) -> None:
    corpus = "\n\n".join(f"Document number {i}." for i in range(40)).encode()
    a = datasets.load(datasets.create_version("split", corpus, filename="c.txt", seed=5).dataset)
    assert len(a.validation_indices) == 8 and len(a.train_indices) == 32
    assert sorted([*a.train_indices, *a.validation_indices]) == list(range(40))
    again = datasets.create_version("split-again", corpus, filename="c.txt", seed=5)
    b = datasets.load(again.dataset)
    np.testing.assert_array_equal(a.validation_indices, b.validation_indices)
    other = datasets.load(datasets.create_version("split-seed", corpus, filename="c.txt", seed=6).dataset)
    assert not np.array_equal(a.validation_indices, other.validation_indices)


BAD_TEXT = [
    pytest.param(b"", "c.txt", {}, "file is empty", "file", id="empty"),
    pytest.param(b" \n\n \t\n", "c.txt", {}, "file is empty", "file", id="blank"),
    pytest.param(
        b"caf\xe9 au lait\n\nmore", "c.txt", {}, r"not UTF-8 text: byte 0xe9 at offset 3", "file", id="latin1"
    ),
    pytest.param(
        b'{"text": "caf\xe9"}\n{"text": "b"}\n',
        "c.jsonl",
        {"text_column": "text"},
        "not UTF-8",
        "file",
        id="jsonl-latin1",
    ),
    pytest.param(
        b"one single paragraph\nof two lines\n",
        "c.txt",
        {},
        "at least 2 documents.*documents=line",
        "file",
        id="one-doc",
    ),
    pytest.param(
        b'{"text": "a"}\n{"text": 3}\n',
        "c.jsonl",
        {},
        "could not be parsed as JSONL",
        "file",
        id="jsonl-types",
    ),
    pytest.param(b"[1, 2]\n", "c.jsonl", {}, "one JSON object per line", "file", id="jsonl-array"),
    pytest.param(
        _jsonl(REVIEWS),
        "r.jsonl",
        {"text_column": "body"},
        r"text_column 'body' is not in the file",
        "text_column",
        id="no-column",
    ),
    pytest.param(
        _jsonl(REVIEWS),
        "r.jsonl",
        {"text_column": "id"},
        "must hold strings",
        "text_column",
        id="numeric-text",
    ),
    pytest.param(
        b"t,x\n,1\n  ,2\n", "c.csv", {"text_column": "t"}, "holds no text", "text_column", id="no-text"
    ),
    pytest.param(
        _jsonl(REVIEWS),
        "r.jsonl",
        {"text_column": "review", "target": "review"},
        "cannot be the text",
        "target",
        id="target-is-text",
    ),
    pytest.param(
        _jsonl(REVIEWS),
        "r.jsonl",
        {"prompt_column": "review"},
        "need both prompt_column and response_column",
        "response_column",
        id="half-pair",
    ),
    pytest.param(
        _jsonl(REVIEWS),
        "r.jsonl",
        {"text_column": "review", "prompt_column": "review", "response_column": "stars"},
        "not both",
        "text_column",
        id="both-kinds",
    ),
    pytest.param(
        CORPUS, "c.txt", {"text_column": "body"}, "one column, 'text'", "text_column", id="txt-column"
    ),
    pytest.param(
        CORPUS, "c.txt", {"documents": "sentence"}, "documents must be one of", "documents", id="mode"
    ),
    pytest.param(
        _jsonl(REVIEWS),
        "r.jsonl",
        {"documents": "line"},
        "applies to .txt corpora only",
        "documents",
        id="mode-jsonl",
    ),
    pytest.param(
        CORPUS,
        "c.txt",
        {"target": "label"},
        "target column 'label' is not in the file",
        "target",
        id="txt-target",
    ),
]


@pytest.mark.parametrize(("data", "filename", "options", "message", "field"), BAD_TEXT)
def test_bad_text_is_refused_naming_the_problem_and_nothing_is_stored(
    datasets: DatasetService,
    artifacts_root: Path,
    data: bytes,
    filename: str,
    options: dict[str, str],
    message: str,
    field: str,
) -> None:
    with pytest.raises(InvalidArgument, match=message) as raised:
        datasets.create_version("bad-text", data, filename=filename, **options)
    assert raised.value.details["field"] == field
    assert datasets.list_datasets() == []
    assert stored_blobs(artifacts_root) == []


def test_a_corpus_over_the_size_limit_is_refused(migrated_database_url: str, artifacts_root: Path) -> None:
    db = Database(migrated_database_url)
    db.upgrade()
    try:
        small = DatasetService(db, FileArtifactStore(artifacts_root), max_bytes=len(CORPUS) - 1)
        with pytest.raises(PayloadTooLarge, match=f"over the dataset limit of {len(CORPUS) - 1} bytes"):
            small.create_version("big", CORPUS, filename="c.txt")
        assert small.list_datasets() == [] and stored_blobs(artifacts_root) == []
    finally:
        db.dispose()
