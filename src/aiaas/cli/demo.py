"""The ``aiaas up --demo`` walk-through: train, register, promote, deploy, predict over V2 and V1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel

if TYPE_CHECKING:
    from aiaas.sdk import Client

__all__ = ["DEMO_MODEL", "run_demo"]

DEMO_MODEL = "iris"


def run_demo(client: Client, console: Console) -> dict[str, Any]:
    """Make sure the demo model is registered and deployed, then call it once per protocol.

    Re-running on the same home reuses what the last run registered instead of piling up
    versions. Returns the two responses (for tests and scripts).
    """
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from aiaas.errors import NotFound

    X, y = load_iris(return_X_y=True)
    try:
        version = client.get_version(DEMO_MODEL, "production")
        console.print(f"demo: {DEMO_MODEL} v{version.version} is already registered as production")
    except NotFound:
        with console.status("demo: training a scikit-learn classifier on the iris dataset..."):
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=0.3, random_state=0, stratify=y
            )
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(
                X_train, y_train
            )
            accuracy = float(clf.score(X_test, y_test))
        with console.status("demo: registering it..."):
            version = client.register_model(
                DEMO_MODEL,
                clf,
                example=X_test[:5],
                metrics={"accuracy": accuracy},
                params={"C": 1.0, "max_iter": 1000},
                description="Logistic regression on scikit-learn's bundled iris dataset (aiaas up --demo).",
                source="aiaas up --demo",
            )
            client.set_alias(DEMO_MODEL, "production", version.version)
        console.print(
            f"demo: registered {DEMO_MODEL} v{version.version} (accuracy {accuracy:.3f}) as production"
        )
    try:
        client.get_deployment(DEMO_MODEL)
    except NotFound:
        client.deploy(DEMO_MODEL, model=DEMO_MODEL, alias="production")
    with console.status("demo: waiting for the inference server to load it..."):
        client.wait_until_served(DEMO_MODEL)

    rows = X[[0, 75, 149]]
    input_name = version.signature["inputs"][0]["name"]
    v2_request = {
        "inputs": [
            {"name": input_name, "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        ]
    }
    v1_request = {"instances": rows.tolist()}
    v2_response = client.infer_json(DEMO_MODEL, v2_request, protocol="v2")
    v1_response = client.infer_json(DEMO_MODEL, v1_request, protocol="v1")
    base = client.inference_url
    console.print(
        Panel.fit(_show(v2_request, v2_response), title=f"V2  POST {base}/v2/models/{DEMO_MODEL}/infer")
    )
    console.print(
        Panel.fit(_show(v1_request, v1_response), title=f"V1  POST {base}/v1/models/{DEMO_MODEL}:predict")
    )
    job = _demo_training_job(client)
    console.print(
        f"demo: training job {job.id} ({job.status}) trains an MLP on the iris dataset and registers it "
        f"as {job.register_as}: follow it with [bold]aiaas jobs logs -f {job.id}[/]"
    )
    return {"v2": v2_response, "v1": v1_response, "job": job.id}


#: The demo's training job: a small MLP on the bundled iris sample, a few seconds of work.
DEMO_JOB = """\
dataset: iris
model: {family: mlp, hidden_sizes: [32]}
optimizer: {name: adam, lr: 0.02}
schedule: {name: cosine}
epochs: 30
batch_size: 16
early_stopping: {metric: val_loss, patience: 8}
register_as: iris-mlp
"""


def _demo_training_job(client: Client) -> Any:
    """The demo's training job: submitted on the first run, found again on later ones."""
    for job in client.list_jobs():
        if job.register_as == "iris-mlp":
            return job
    client.create_dataset("iris", sample="iris")
    return client.submit_job(DEMO_JOB)


def _show(request: dict[str, Any], response: dict[str, Any]) -> str:
    import orjson

    return (
        f"[bold]request[/]  {orjson.dumps(request).decode()}\n"
        f"[bold]response[/] {orjson.dumps(response).decode()}"
    )
