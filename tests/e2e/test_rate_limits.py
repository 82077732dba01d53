"""Per-key request rates on a running inference server: a key made with ``--rate-limit 5
--burst 5`` is answered 429 with ``Retry-After`` once its burst is spent, another key is not
slowed by it, and the key is admitted again after the ``Retry-After`` it was told.

The wait after the 429 is the one sleep here, and it is the behaviour under test: a client
that honours ``Retry-After`` must then be let through.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import httpx
import pytest

from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests._servers import wait_until
from tests.e2e._cli import console_script
from tests.e2e.conftest import Platform

NAME = "rate-iris"
RATE, BURST = 5, 5


@pytest.fixture(scope="module")
def deployed(platform: Platform) -> Iterator[Platform]:
    X, _ = iris()
    platform.client.register_model(NAME, iris_classifier(), example=X[:5])
    platform.client.deploy(NAME, model=NAME, version=1)
    platform.client.wait_until_served(NAME, 1)
    yield platform


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_do_not(deployed: Platform) -> None:
    made = deployed.client.create_key("rate-limited", role="developer", rate_limit=RATE, rate_burst=BURST)
    assert (made.rate_limit, made.rate_burst) == (RATE, BURST)
    listed = {k.key_id: k for k in deployed.client.list_keys()}
    assert (listed[made.key_id].rate_limit, listed[made.key_id].rate_burst) == (RATE, BURST)
    url = f"{deployed.inference_url}/v2/models/{NAME}"
    with (
        httpx.Client(headers={"authorization": f"Bearer {made.key}"}, timeout=10) as limited,
        httpx.Client(headers=dict(AUTH), timeout=10) as other,
    ):
        _check(url, limited, other)


def _check(url: str, limited: httpx.Client, other: httpx.Client) -> None:
    # The inference server loads new keys within AIAAS_AUTH_REFRESH_S.
    wait_until(lambda: limited.get(url).status_code != 401, timeout=5, what="the new key to be accepted")

    # Spend the burst as fast as the server answers: a 429 comes within a few requests.
    started = time.monotonic()
    statuses = []
    refused = None
    for _ in range(50):
        response = limited.get(url)
        statuses.append(response.status_code)
        if response.status_code == 429:
            refused = response
            break
        assert response.status_code == 200, response.text
    assert refused is not None, f"no 429 after {len(statuses)} requests at full speed: {statuses}"
    elapsed = time.monotonic() - started
    assert statuses.count(200) <= BURST + math.ceil(elapsed * RATE) + 1, (statuses, elapsed)
    assert f"rate limit of {RATE} requests/s" in refused.json()["error"], refused.text
    retry_after = int(refused.headers["retry-after"])
    assert retry_after >= 1

    # Another key is not slowed by this one's bucket.
    for _ in range(3 * BURST):
        assert other.get(url).status_code == 200

    # Honouring Retry-After, the key is let through again.
    time.sleep(retry_after)
    assert limited.get(url).status_code == 200


def test_a_key_made_unlimited_is_never_refused(deployed: Platform) -> None:
    made = deployed.client.create_key("rate-unlimited", role="developer", rate_limit=0)
    url = f"{deployed.inference_url}/v2/models/{NAME}"
    with httpx.Client(headers={"authorization": f"Bearer {made.key}"}, timeout=10) as client:
        wait_until(lambda: client.get(url).status_code != 401, timeout=5, what="the new key to be accepted")
        assert all(client.get(url).status_code == 200 for _ in range(30))


def test_the_cli_makes_a_rate_limited_key_and_sets_a_project_s_quotas(deployed: Platform) -> None:
    args = ("keys", "create", "rate-cli", "--rate-limit", "2", "--burst", "3", "--json")
    out = console_script(deployed, *args)
    made = json.loads(out)
    assert (made["rate_limit"], made["rate_burst"]) == (2, 3)
    listed = console_script(deployed, "keys", "list", columns=200)
    assert "2/s, burst 3" in listed, listed
    deployed.client.create_project("rate-cli-project")
    out = console_script(
        deployed, "projects", "quota", "rate-cli-project", "--max-jobs", "2", "--max-bytes", "1000", "--json"
    )
    shown = json.loads(out)
    assert shown["quotas"]["max_jobs"] == 2 and shown["quotas"]["max_bytes"] == 1000
    assert shown["usage"] == {"jobs": 0, "slots": 0, "replicas": 0, "bytes": 0}
    out = console_script(deployed, "projects", "quota", "rate-cli-project", "--unlimited", "max-jobs")
    assert "max_jobs" in out and "0 used of unlimited" in out, out
    assert "0 used of 1000" in out, out
