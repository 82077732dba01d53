"""Register, deploy, query, promote and roll back, through the SDK and both protocols."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from aiaas.errors import Conflict, InvalidArgument, NotFound
from tests._auth import AUTH
from tests._external_data import file_readers
from tests._models import iris, iris_classifier, torch_mlp, torch_outputs
from tests.e2e.conftest import Platform


def test_sklearn_classifier_served_over_v2_and_v1_matches_predict_proba(platform: Platform) -> None:
    X, _ = iris()
    clf = iris_classifier()
    c = platform.client
    version = c.register_model(
        "iris-e2e",
        clf,
        example=X[:5],
        metrics={"accuracy": float(clf.score(X, iris()[1]))},
        params={"C": 1.0},
    )
    assert version.version == 1 and version.flavor == "sklearn"
    assert [t["name"] for t in version.signature["outputs"]] == ["label", "probabilities"]

    c.deploy("iris-e2e", model="iris-e2e", version=1)
    c.wait_until_served("iris-e2e", 1)

    out = c.predict("iris-e2e", X)
    np.testing.assert_array_equal(out["label"], clf.predict(X))
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), rtol=1e-5, atol=1e-7)

    v1 = httpx.post(
        f"{platform.inference_url}/v1/models/iris-e2e:predict",
        json={"instances": X[:10].tolist()},
        headers=AUTH,
    )
    assert v1.status_code == 200, v1.text
    assert v1.headers["x-aiaas-model-version"] == "1"
    predictions = v1.json()["predictions"]
    np.testing.assert_array_equal([p["label"] for p in predictions], clf.predict(X[:10]))
    assert list(predictions[0]["probabilities"]) == ["0", "1", "2"]  # keyed by class label
    np.testing.assert_allclose(
        [list(p["probabilities"].values()) for p in predictions],
        clf.predict_proba(X[:10]),
        rtol=1e-5,
        atol=1e-7,
    )

    columnar = httpx.post(
        f"{platform.inference_url}/v1/models/iris-e2e:predict", json={"inputs": X[:3].tolist()}, headers=AUTH
    )
    assert columnar.status_code == 200, columnar.text
    np.testing.assert_allclose(
        columnar.json()["outputs"]["probabilities"], clf.predict_proba(X[:3]), rtol=1e-5, atol=1e-7
    )


def test_torch_mlp_served_over_v2_and_v1_matches_torch(platform: Platform) -> None:
    X, _ = iris()
    model = torch_mlp()
    c = platform.client
    version = c.register_model("mlp-e2e", model, example=X[:4], description="iris MLP")
    assert version.flavor == "pytorch"
    assert version.signature["inputs"][0]["shape"] == [-1, 4], "the batch axis must be dynamic"
    c.deploy("mlp-e2e", model="mlp-e2e")
    c.wait_until_served("mlp-e2e", version.version)

    expected = torch_outputs(model, X)
    got = c.predict("mlp-e2e", X)["output"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)

    v1 = httpx.post(
        f"{platform.inference_url}/v1/models/mlp-e2e:predict",
        json={"instances": X[:7].tolist()},
        headers=AUTH,
    )
    assert v1.status_code == 200, v1.text
    np.testing.assert_allclose(v1.json()["predictions"], expected[:7], rtol=1e-5, atol=1e-7)


def test_promote_by_moving_production_then_roll_back(platform: Platform) -> None:
    X, _ = iris()
    old, new = iris_classifier(C=1.0), iris_classifier(C=0.05)
    assert not np.allclose(old.predict_proba(X), new.predict_proba(X), rtol=1e-3), "versions must differ"
    c = platform.client
    v1 = c.register_model("churn", old, example=X[:5])
    v2 = c.register_model("churn", new, example=X[:5], parent_version=v1.version, source="retrained, C=0.05")
    assert (v1.version, v2.version, v2.parent_version) == (1, 2, 1)

    c.set_alias("churn", "production", 1)
    deployment = c.deploy("churn", model="churn", alias="production")
    assert (deployment.alias, deployment.serving_version) == ("production", 1)
    c.wait_until_served("churn", 1)
    np.testing.assert_allclose(
        c.predict("churn", X)["probabilities"], old.predict_proba(X), rtol=1e-5, atol=1e-7
    )

    moved = c.set_alias("churn", "production", 2)
    assert (moved.version, moved.previous_version) == (2, 1)
    assert c.get_deployment("churn").serving_version == 2
    c.wait_until_served("churn", 2)
    np.testing.assert_allclose(
        c.predict("churn", X)["probabilities"], new.predict_proba(X), rtol=1e-5, atol=1e-7
    )

    c.set_alias("churn", "production", 1)  # rollback
    c.wait_until_served("churn", 1)
    np.testing.assert_allclose(
        c.predict("churn", X)["probabilities"], old.predict_proba(X), rtol=1e-5, atol=1e-7
    )

    # a specific version stays reachable by URL whatever the alias says
    np.testing.assert_allclose(
        c.predict("churn", X[:3], version=2)["probabilities"], new.predict_proba(X[:3]), rtol=1e-5, atol=1e-7
    )

    comparison = c.compare("churn", 1, 2)
    assert comparison.same_signature
    label, probabilities = (
        next(a for a in comparison.agreement if a.output == k) for k in ("label", "probabilities")
    )
    assert probabilities.equal_fraction < 1.0 and probabilities.max_abs_diff
    assert 0.0 <= label.equal_fraction <= 1.0

    with pytest.raises(Conflict, match="deployments"):
        c.archive_version("churn", 1)  # production → served
    with pytest.raises(Conflict):
        c.delete_version("churn", 1)


def test_api_errors_come_back_as_the_same_exceptions(platform: Platform) -> None:
    c = platform.client
    with pytest.raises(NotFound, match="no-such-model"):
        c.get_model("no-such-model")
    with pytest.raises(InvalidArgument, match="name"):
        c.create_model("bad name!")
    with pytest.raises(NotFound):
        c.deploy("ghost", model="no-such-model")
    response = httpx.post(
        f"{platform.api_url}/api/v1/deployments",
        json={"name": "x", "model": "iris", "version": "two"},
        headers=AUTH,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["details"]["field"] == "version"
    upload = httpx.post(
        f"{platform.api_url}/api/v1/models/junk/versions",
        files={"file": ("junk.onnx", b"not onnx")},
        headers=AUTH,
    )
    assert upload.status_code == 400 and "ONNX" in upload.json()["error"]["message"]
    with pytest.raises(NotFound):
        c.get_model("junk")  # nothing half-registered
    bad_meta = httpx.post(
        f"{platform.api_url}/api/v1/models/junk/versions",
        files={"file": ("m.onnx", c.download_artifact("churn", 1))},
        data={"metadata": '{"flavor": "pickle"}'},
        headers=AUTH,
    )
    assert bad_meta.status_code == 400 and "metadata.flavor" in bad_meta.json()["error"]["message"]


@pytest.mark.parametrize("location", ["README.md", "pyproject.toml", "src/aiaas/__init__.py"])
def test_a_model_naming_a_server_file_is_refused_at_registration(platform: Platform, location: str) -> None:
    """A curl user uploads a model whose weights 'live' in a file of the server: 400, named."""
    data, tensor = file_readers(location)["initializer"]
    name = "reader-" + location.split("/")[-1].split(".")[0].lower()
    upload = httpx.post(
        f"{platform.api_url}/api/v1/models/{name}/versions", files={"file": ("m.onnx", data)}, headers=AUTH
    )
    assert upload.status_code == 400, upload.text
    error = upload.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert f"ONNX tensor {tensor!r}" in error["message"] and location in error["message"]
    assert error["details"] == {"field": "file", "tensor": tensor, "location": location}
    with pytest.raises(NotFound):
        platform.client.get_model(name)  # nothing stored


def test_a_classifier_with_text_labels_answers_them_through_sdk_v1_and_cli(platform: Platform) -> None:
    from sklearn.linear_model import LogisticRegression
    from typer.testing import CliRunner

    from aiaas.cli import app

    x = np.random.default_rng(5).normal(size=(120, 2)).astype(np.float32)
    y = np.where(x[:, 0] > 0.2, "east", "west")
    clf = LogisticRegression().fit(x, y)
    c = platform.client
    version = c.register_model("compass-sdk", clf, example=x[:3])
    assert version.signature["outputs"][1]["classes"] == ["east", "west"]
    c.register_model("compass-sdk", LogisticRegression(C=0.5).fit(x, y), example=x[:3])
    comparison = c.compare("compass-sdk", 1, 2)
    assert comparison.same_signature
    assert {a.output for a in comparison.agreement} == {"label", "probabilities"}
    assert next(a for a in comparison.agreement if a.output == "label").equal_fraction == 1.0

    c.deploy("compass-sdk", model="compass-sdk", version=1)
    c.wait_until_served("compass-sdk", 1)
    out = c.predict("compass-sdk", x)
    assert out["label"].tolist() == clf.predict(x).tolist()
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(x), rtol=1e-5, atol=1e-6)

    v1 = c.infer_json("compass-sdk", {"instances": x[:2].tolist()}, protocol="v1")
    assert [p["label"] for p in v1["predictions"]] == clf.predict(x[:2]).tolist()
    assert list(v1["predictions"][0]["probabilities"]) == ["east", "west"]

    result = CliRunner().invoke(
        app,
        ["--url", platform.api_url, "--inference-url", platform.inference_url, "predict", "compass-sdk", "-"],
        input='{"instances": [[1.5, 0.0], [-1.5, 0.0]]}',
    )
    assert result.exit_code == 0, result.output
    assert '"east"' in result.stdout and '"west"' in result.stdout
