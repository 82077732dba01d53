"""The SDK's part for observing served models: the prediction log, feedback, performance, drift.

A mixin of :class:`aiaas.Client`, kept apart so the client module stays one concern per part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from aiaas import schemas
from aiaas.sdk._http import request

__all__ = ["MonitoringMethods"]


class MonitoringMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/deployments/{name}/predictions`` and kin."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def predictions(
        self,
        deployment: str,
        *,
        version: int | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        window: str | None = None,
        limit: int = 100,
    ) -> schemas.PredictionList:
        """Logged requests of ``deployment``, oldest first: inputs, outputs, version, request
        id, latency and time; at most ``limit`` (``truncated`` says when more match).

        Args:
            version: only this model version's rows.
            start: rows at or after this time; ``end``: rows before it (naive means UTC).
            window: instead of ``start``, the last ``"15m"``, ``"24h"``, ``"7d"``...
        """
        params = _params(version, start, end, window) | {"limit": str(limit)}
        response = self._get(f"/deployments/{deployment}/predictions", params=params)
        return schemas.PredictionList.model_validate_json(response.content)

    def download_predictions(
        self,
        deployment: str,
        *,
        version: int | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        window: str | None = None,
    ) -> bytes:
        """Every matching logged request as one Parquet file (read it with
        ``pyarrow.parquet.read_table(io.BytesIO(data))`` or ``pandas.read_parquet``)."""
        params = _params(version, start, end, window) | {"format": "parquet"}
        return self._get(f"/deployments/{deployment}/predictions", params=params).content

    def feedback(
        self,
        deployment: str,
        labels: Mapping[str, Any] | Sequence[schemas.FeedbackItem | Mapping[str, Any]] | str | Path,
    ) -> schemas.FeedbackResult:
        """Send the ground truth of answered requests, by request id.

        Args:
            labels: ``{request_id: label}``; or a list of ``{"request_id", "label"}``; or the
                path (or text) of a CSV file with a ``request_id,label`` header. A label is a
                class label or a target value, or a list of one per row of its request.

        Returns:
            How many labels were stored, and the request ids not in the prediction log (whose
            labels were not stored).
        """
        path = f"/deployments/{deployment}/feedback"
        if isinstance(labels, str | Path):
            text = Path(labels).read_text() if isinstance(labels, Path) or "\n" not in labels else labels
            response = request(self._api, "POST", path, content=text, headers={"content-type": "text/csv"})
        else:
            if isinstance(labels, Mapping):
                items: list[Any] = [{"request_id": k, "label": v} for k, v in labels.items()]
            else:
                items = [i.model_dump() if isinstance(i, schemas.FeedbackItem) else dict(i) for i in labels]
            response = request(self._api, "POST", path, json={"feedback": items})
        return schemas.FeedbackResult.model_validate_json(response.content)

    def performance(
        self,
        deployment: str,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        window: str | None = None,
    ) -> schemas.Performance:
        """Per version: labelled rows and accuracy, precision, recall, F1, ROC-AUC (classifier)
        or MAE, RMSE, R² (regressor), over the window (default: the whole log)."""
        params = _params(None, start, end, window)
        response = self._get(f"/deployments/{deployment}/performance", params=params)
        return schemas.Performance.model_validate_json(response.content)

    def drift(
        self,
        deployment: str,
        *,
        window: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        **thresholds: float | int | str,
    ) -> schemas.DeploymentDrift:
        """Per served version: each feature's (and output's) drift scores against the version's
        reference and a drifted flag, over the window (default: every count kept).

        Args:
            window: the last ``"15m"``, ``"1h"``, ``"7d"``... (instead of ``start``).
            thresholds: overrides of :class:`aiaas.schemas.DriftSettings` for this check:
                ``psi_threshold``, ``ks_threshold``, ``wasserstein_threshold``,
                ``jensen_shannon_threshold``, ``chi2_p_value``, ``min_rows``,
                ``numeric_method``, ``categorical_method``.
        """
        params = _params(None, start, end, window) | {k: str(v) for k, v in thresholds.items()}
        response = self._get(f"/deployments/{deployment}/drift", params=params)
        return schemas.DeploymentDrift.model_validate_json(response.content)


def _params(
    version: int | None, start: dt.datetime | None, end: dt.datetime | None, window: str | None
) -> dict[str, str]:
    given = {"version": version, "start": start, "end": end, "window": window}
    return {
        k: v.isoformat() if isinstance(v, dt.datetime) else str(v) for k, v in given.items() if v is not None
    }
