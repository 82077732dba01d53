"""The control plane can die: inference goes on, and a restart loses nothing."""

from __future__ import annotations

import numpy as np

from tests._models import iris, iris_classifier
from tests.e2e.conftest import Platform


def test_killing_the_control_plane_does_not_stop_inference_and_restart_loses_nothing(
    platform: Platform,
) -> None:
    X, _ = iris()
    clf = iris_classifier(C=0.5)
    c = platform.client
    v = c.register_model("outage", clf, example=X[:5], metrics={"accuracy": 0.96})
    c.set_alias("outage", "production", v.version)
    c.deploy("outage", model="outage", alias="production")
    c.wait_until_served("outage", v.version)
    before = {
        "models": c.list_models(),
        "versions": c.list_versions("outage"),
        "aliases": c.list_aliases("outage"),
        "deployments": c.list_deployments(),
    }

    platform.api.kill()  # SIGKILL: no clean shutdown
    for _ in range(20):
        np.testing.assert_allclose(
            c.predict("outage", X)["probabilities"], clf.predict_proba(X), rtol=1e-5, atol=1e-7
        )

    platform.start_api()
    after = {
        "models": c.list_models(),
        "versions": c.list_versions("outage"),
        "aliases": c.list_aliases("outage"),
        "deployments": c.list_deployments(),
    }
    assert after == before
    assert c.download_artifact("outage", v.version) == c.download_artifact("outage", "production")
    # and it keeps working: a new version registers with the next number
    assert c.register_model("outage", clf, example=X[:5]).version == v.version + 1
