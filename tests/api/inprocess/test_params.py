"""Ids and version numbers the database cannot hold are a 400 naming the field, never a 500.

Before the bounds, a number >= 2**63 in a path, a query or a body reached the database and
overflowed the query (SQLite: OverflowError), a 500 on every route that takes one; on
PostgreSQL, whose columns are 32-bit, already from 2**31 (DataError).

Request handling only: the control plane app runs in this process (``conftest.py`` here).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests._api import api_error
from tests.api.inprocess.conftest import AppControlPlane

BIG = 2**63  # one past the largest signed 64-bit integer (SQLite's)
PAST_INT32 = 2**31  # one past the largest 32-bit one (PostgreSQL's INTEGER columns)


@pytest.fixture(scope="session")
def model(app_control_plane: AppControlPlane) -> str:
    """Model ``big-m`` with one version, dataset ``big-d`` and job 1, so lookups reach the database."""
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    with app_control_plane.sdk() as client:
        client.register_model("big-m", LogisticRegression().fit(x, y), example=x[:2])
        client.create_dataset("big-d", sample="iris")
        if not client.list_jobs():
            client.submit_job({"dataset": "big-d", "model": {"family": "logistic"}, "register_as": "big-t"})
    return "big-m"


def _job_id(app_control_plane: AppControlPlane) -> int:
    return int(app_control_plane.http.get("/jobs").json()["jobs"][-1]["id"])


PATHS = [
    ("GET", "/jobs/{n}", "job_id"),
    ("GET", "/jobs/{n}/metrics", "job_id"),
    ("GET", "/jobs/{n}/logs", "job_id"),
    ("POST", "/jobs/{n}/cancel", "job_id"),
    ("GET", "/jobs/{job}/logs?after={n}", "after"),
    ("GET", "/models/big-m/versions/{n}", "version"),
    ("GET", "/models/big-m/versions/{n}/artifact", "version"),
    ("POST", "/models/big-m/versions/{n}/archive", "version"),
    ("DELETE", "/models/big-m/versions/{n}", "version"),
    ("GET", "/models/big-m/compare?a=1&b={n}", "b"),
    ("GET", "/models/big-m/compare?a={n}&b=1", "a"),
    ("GET", "/datasets/big-d/versions/{n}", "version"),
    ("GET", "/datasets/big-d/versions/{n}/data", "version"),
]


@pytest.mark.parametrize("number", [BIG, PAST_INT32, 10**30], ids=["2**63", "2**31", "10**30"])
@pytest.mark.parametrize(("method", "path", "field"), PATHS, ids=[f"{m} {p}" for m, p, _ in PATHS])
def test_numbers_past_int64_in_paths_and_queries_are_a_400(
    app_control_plane: AppControlPlane, model: str, method: str, path: str, field: str, number: int
) -> None:
    url = path.format(n=number, job=_job_id(app_control_plane))
    error = api_error(app_control_plane.http.request(method, url), 400, "INVALID_ARGUMENT", field=field)
    assert str(number) in error["message"], error


BODIES = [
    ("PUT", "/models/big-m/aliases/prod", {"version": BIG}, "version"),
    (
        "POST",
        "/jobs",
        {
            "dataset": "big-d",
            "model": {"family": "logistic"},
            "warm_start": {"model": "big-m", "version": BIG},
        },
        "warm_start.version",
    ),
    ("POST", "/deployments", {"name": "big-dep", "model": "big-m", "version": BIG}, "version"),
    (
        "POST",
        "/deployments",
        {"name": "big-dep", "model": "big-m", "traffic": [{"version": BIG, "weight": 5}]},
        "traffic.0.version",
    ),
]


@pytest.mark.parametrize("number", [BIG, PAST_INT32], ids=["2**63", "2**31"])
@pytest.mark.parametrize(
    ("method", "path", "body", "field"), BODIES, ids=[f"{m} {p} {f}" for m, p, _, f in BODIES]
)
def test_numbers_past_int64_in_bodies_are_a_400(
    app_control_plane: AppControlPlane,
    model: str,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    number: int,
) -> None:
    sent = json.loads(json.dumps(body).replace(str(BIG), str(number)))
    error = api_error(app_control_plane.http.request(method, path, json=sent), 400, "INVALID_ARGUMENT")
    assert field in error["message"], error


@pytest.mark.parametrize("ref", ["²", "0", "-1", "1.0"])
def test_a_version_that_is_not_a_number_from_1_is_a_400(
    app_control_plane: AppControlPlane, model: str, ref: str
) -> None:
    paths = [f"/datasets/big-d/versions/{ref}"]
    if ref in ("²", "0"):  # for a model, other text may be an alias: "-1" is a 404 naming it
        paths.append(f"/models/big-m/versions/{ref}")
    for path in paths:
        error = api_error(app_control_plane.http.get(path), 400, "INVALID_ARGUMENT")
        assert "version must be a number from 1" in error["message"] and repr(ref) in error["message"]


def test_numbers_in_range_still_find_or_miss_what_they_name(
    app_control_plane: AppControlPlane, model: str
) -> None:
    assert app_control_plane.http.get("/models/big-m/versions/1").json()["version"] == 1
    assert app_control_plane.http.get("/models/big-m/versions/latest").json()["version"] == 1
    api_error(app_control_plane.http.get(f"/models/big-m/versions/{PAST_INT32 - 1}"), 404, "NOT_FOUND")
    api_error(app_control_plane.http.get(f"/jobs/{PAST_INT32 - 1}"), 404, "NOT_FOUND")
