"""The monitoring router's own parsing, in-process: feedback bodies (JSON and CSV) and time
ranges. Each bad input is an InvalidArgument naming its field; the routes themselves run
through real servers in tests/e2e/test_observe.py."""

from __future__ import annotations

import datetime as dt

import pytest

from aiaas.api.routers.monitoring import _feedback_items, time_range
from aiaas.errors import InvalidArgument


def test_feedback_takes_one_many_a_list_or_a_csv() -> None:
    one = _feedback_items(b'{"request_id": "a", "label": "setosa"}', "application/json")
    assert [(i.request_id, i.label) for i in one] == [("a", "setosa")]
    many = _feedback_items(
        b'{"feedback": [{"request_id": "a", "label": 1}, {"request_id": "b", "label": [1, 2]}]}', ""
    )
    assert [(i.request_id, i.label) for i in many] == [("a", 1), ("b", [1, 2])]
    listed = _feedback_items(b'[{"request_id": "a", "label": 2.5}]', "application/json")
    assert listed[0].label == 2.5
    csv = _feedback_items(b"request_id,label\na,setosa\nb,3\nc,2.5\n", "text/csv; charset=utf-8")
    assert [(i.request_id, i.label) for i in csv] == [("a", "setosa"), ("b", 3), ("c", 2.5)]


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"{", "application/json", "body"),
        (b"42", "application/json", "body"),
        (b'{"request_id": "a", "label": {}}', "application/json", "label"),
        (b'{"request_id": "", "label": 1}', "application/json", "request_id"),
        (b'{"label": 1}', "application/json", "request_id"),
        (b'{"feedback": []}', "application/json", "feedback"),
        (b'{"feedback": [{"request_id": "a", "label": [1, {}]}]}', "application/json", "feedback[0].label"),
        (b'[{"request_id": "a", "label": 1}, {"request_id": "a", "label": 2}]', "", "feedback[1].request_id"),
        (b'{"request_id": "a", "label": 1, "extra": 1}', "application/json", "extra"),
        (b"id,label\na,1\n", "text/csv", "body"),
        (b"request_id,label\n,1\n", "text/csv", "feedback[0].request_id"),
        (b"\xff\xfe", "text/csv", "body"),
    ],
)
def test_a_bad_feedback_body_is_refused_naming_its_field(body: bytes, content_type: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _feedback_items(body, content_type)
    assert caught.value.details["field"] == field, caught.value.message


def test_a_time_range_from_start_end_or_window() -> None:
    assert time_range(None, None, None) == (None, None)
    low, high = time_range("2026-12-01T10:00:00", "2026-12-01T12:30:00+01:00", None)  # naive is UTC
    assert low == dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    assert high == dt.datetime(2026, 12, 1, 11, 30, tzinfo=dt.UTC)
    low, high = time_range(None, "2026-12-01T12:00:00Z", "90m")
    assert (low, high) == (
        dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize(
    ("start", "end", "window", "field"),
    [
        ("0.5", None, None, "start"),
        (None, "yesterday", None, "end"),
        (None, None, "1w", "window"),
        ("2026-12-01", None, "1h", "window"),
        ("2026-12-02", "2026-12-01", None, "end"),
    ],
)
def test_a_bad_time_range_is_refused_naming_its_field(
    start: str | None, end: str | None, window: str | None, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        time_range(start, end, window)
    assert caught.value.details["field"] == field
