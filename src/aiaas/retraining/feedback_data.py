"""Training data from what a deployment answered and was told: the prediction log joined with
its feedback, registered as the next version of the dataset ``<deployment>-feedback``.

Each labelled request of one row (a single input tensor of one row of the served version's
features) becomes a row: the features under the names the served version was trained on, the
label under its target. Requests of several rows, or without a label, are left out: a label
belongs to a request, not to one of its rows.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from aiaas.datasets import DatasetService, DatasetVersion
from aiaas.errors import InvalidArgument
from aiaas.registry import ModelVersion
from aiaas.store.feedback import FeedbackStore
from aiaas.store.predictions import read_predictions

__all__ = ["feedback_dataset", "feedback_rows"]


def feedback_rows(
    inputs: list[str], ids: list[str], labels: dict[str, Any]
) -> tuple[list[list[float]], list[Any]]:
    """The one-row labelled requests among logged ``inputs`` (JSON text) as features and labels."""
    xs: list[list[float]] = []
    ys: list[Any] = []
    for request_id, text in zip(ids, inputs, strict=True):
        if request_id not in labels or labels[request_id] is None:
            continue
        tensors = json.loads(text)
        if not isinstance(tensors, dict) or len(tensors) != 1:
            continue
        try:
            row = np.asarray(next(iter(tensors.values())), dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if row.ndim == 2 and row.shape[0] == 1:
            row = row[0]
        if row.ndim != 1:
            continue
        xs.append([float(v) for v in row])
        ys.append(labels[request_id])
    return xs, ys


def feedback_dataset(
    deployment: str,
    served: ModelVersion,
    datasets: DatasetService,
    feedback: FeedbackStore,
    log_dir: Path,
    *,
    key: str | None = None,
) -> DatasetVersion:
    """Register the labelled requests of ``deployment`` as the next version of
    ``<deployment>-feedback`` (the same rows again give the same version back).

    ``key`` is how the inference server names the deployment in the prediction log and the
    feedback (:func:`aiaas.entities.projects.qualified_name`); the plain name when omitted
    (the ``default`` project's).

    Raises:
        InvalidArgument: no labelled one-row request, or rows whose width is not the served
            version's features (field ``data.feedback``).
    """
    logged_as = key or deployment
    table = read_predictions(log_dir, logged_as)
    ids = [str(i) for i in table.column("request_id").to_pylist()]
    labels = feedback.labels(logged_as, ids) if ids else {}
    xs, ys = feedback_rows([str(t) for t in table.column("inputs").to_pylist()], ids, labels)
    lineage = served.lineage or {}
    names = list(lineage.get("feature_names") or [])
    target = str(lineage.get("target") or "label")
    width = {len(x) for x in xs}
    if len(xs) < 2 or len(width) != 1 or (names and width != {len(names)}):
        raise InvalidArgument(
            f"data.feedback: deployment {deployment!r} has {len(xs)} labelled one-row requests of "
            f"widths {sorted(width)} in its prediction log; training needs at least 2, each with the "
            f"{len(names) or 'same number of'} features of the served version",
            details={"field": "data.feedback", "rows": len(xs)},
        )
    names = names or [f"x{i}" for i in range(width.pop())]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*names, target])
    for x, y in zip(xs, ys, strict=True):
        writer.writerow([*x, y])
    return datasets.create_version(
        f"{deployment}-feedback",
        out.getvalue().encode(),
        filename="feedback.csv",
        target=target,
        description=f"labelled requests of deployment {deployment} (prediction log joined with feedback)",
    )
