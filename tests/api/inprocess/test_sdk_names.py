"""The SDK's names before the ``list_``/``get_`` convention still work for one release, and warn.

Each old name must give what its new name gives, and raise a ``DeprecationWarning`` that names
the replacement and points at the caller's line (so a user's test run with warnings as errors,
as this project's is, finds every call to migrate). The SDK talks to the control plane app in
this process (``conftest.py`` here).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

from aiaas.sdk import Client
from tests.api.inprocess.conftest import AppControlPlane

#: Old name → (new name, arguments): every rename of the convention.
RENAMED: dict[str, tuple[str, tuple[Any, ...]]] = {
    "datasets": ("list_datasets", ()),
    "dataset": ("get_dataset", ("names-d",)),
    "dataset_versions": ("list_dataset_versions", ("names-d",)),
    "dataset_version": ("get_dataset_version", ("names-d", 1)),
    "alert_rules": ("list_alert_rules", ()),
    "alert_rule": ("get_alert_rule", ("names-r",)),
    "alerts": ("list_alerts", ()),
    "silences": ("list_silences", ()),
    "webhooks": ("list_webhooks", ()),
}


@pytest.fixture(scope="module")
def client(app_control_plane: AppControlPlane) -> Client:
    """A client of a control plane holding a dataset, an alert rule, a silence and a webhook,
    so that every old name has something to return."""
    client = app_control_plane.sdk()
    if "names-d" not in [d.name for d in client.list_datasets()]:
        client.create_dataset("names-d", sample="iris")
        job = client.submit_job(
            {"dataset": "names-d", "model": {"family": "logistic"}, "register_as": "names-m"}
        )
        client.create_alert_rule("names-r", metric="job_failed", op=">", threshold=0, window="5m", job=job.id)
        client.silence(rule="names-r", duration="1h", comment="names")
        client.add_webhook("names-w", "http://127.0.0.1:9/hook")
    return client


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_an_old_name_returns_what_the_new_one_does_and_warns_naming_it(client: Client, old: str) -> None:
    new, args = RENAMED[old]
    expected = getattr(client, new)(*args)
    # The alert history stays empty: the queued job never fails here, so no rule transitions.
    assert expected or old == "alerts", f"{new}{args} returned nothing to compare"
    old_method: Callable[..., Any] = getattr(client, old)
    with pytest.warns(
        DeprecationWarning, match=rf"^{old}\(\) is deprecated .* next release; use {new}\(\)$"
    ) as seen:
        assert old_method(*args) == expected
    assert [w.filename for w in seen] == [__file__]  # pointed at the caller, not the SDK


def test_the_new_names_do_not_warn(client: Client) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for new, args in RENAMED.values():
            getattr(client, new)(*args)
