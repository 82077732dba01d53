"""Limits on stored free-form JSON and text, and the repair of records stored before them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiaas.errors import InvalidArgument, PayloadTooLarge
from aiaas.store import MAX_JSON_BYTES, MAX_JSON_DEPTH, check_json, check_text, readable_json, readable_text
from aiaas.store.limits import TOO_DEEP


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def test_json_at_the_depth_limit_passes_and_one_deeper_is_refused_naming_where() -> None:
    check_json(_nested(MAX_JSON_DEPTH), "tags")
    check_json([[[]]], "tags")
    with pytest.raises(
        InvalidArgument, match=r"tags is nested deeper than 32 levels .*at tags(\.a){32}\)"
    ) as info:
        check_json(_nested(MAX_JSON_DEPTH + 1), "tags")
    assert info.value.details["limit"] == MAX_JSON_DEPTH


def test_a_million_levels_are_refused_without_recursion() -> None:
    deep: list[Any] = []
    for _ in range(1_000_000):
        deep = [deep]
    with pytest.raises(InvalidArgument, match="nested deeper"):
        check_json(deep, "metrics")


def test_size_is_counted_as_compact_json_would_be() -> None:
    fits = {"k": "x" * (MAX_JSON_BYTES - 100)}
    assert len(json.dumps(fits, separators=(",", ":"))) < MAX_JSON_BYTES
    check_json(fits, "params")
    too_big = {"k": "é" * (MAX_JSON_BYTES // 2 + 1)}  # two UTF-8 bytes each
    with pytest.raises(PayloadTooLarge, match=rf"params is larger than the limit of {MAX_JSON_BYTES} bytes"):
        check_json(too_big, "params")
    many = {str(i): i for i in range(MAX_JSON_BYTES // 4)}
    with pytest.raises(PayloadTooLarge):
        check_json(many, "params")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": "\ud800"}, r"tags holds a lone UTF-16 surrogate \('\\ud800'\) at tags\.x"),
        ({"\udc00": 1}, "lone UTF-16 surrogate"),
        ({1: "a"}, "tags must have string keys; got key 1"),
        ({"x": {1, 2}}, "tags must hold only JSON values .*got set at tags.x"),
        ({"x": b"bytes"}, "got bytes"),
    ],
)
def test_values_no_response_could_encode_are_refused(value: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_json(value, "tags")


def test_text_limits() -> None:
    check_text("émoji 😀", "description")
    check_text(None, "description")
    with pytest.raises(InvalidArgument, match="description must be a string; got int"):
        check_text(3, "description")
    with pytest.raises(PayloadTooLarge, match="description is 11 characters long, over the limit of 10"):
        check_text("x" * 11, "description", max_chars=10)
    with pytest.raises(InvalidArgument, match="lone UTF-16 surrogate"):
        check_text("a\udfffb", "description")


def test_readable_json_returns_a_good_value_itself() -> None:
    value = {"a": [1, {"b": "c"}], "é": 2.5}
    assert readable_json(value) is value


def test_readable_json_repairs_what_older_releases_stored() -> None:
    repaired = readable_json({"ok": 1, "deep": _nested(300), "bad\udc00": ["\ud800x"]})
    assert repaired["ok"] == 1
    assert repaired["bad\ufffd\ufffd\ufffd"] == ["\ufffd\ufffd\ufffdx"]
    cut = repaired["deep"]
    for _ in range(MAX_JSON_DEPTH - 1):
        cut = cut["a"]
    assert cut == TOO_DEEP
    json.dumps(repaired).encode("utf-8")
    assert readable_text("fine") == "fine"
    assert readable_text("x\ud800").encode("utf-8") == "x\ufffd\ufffd\ufffd".encode()
