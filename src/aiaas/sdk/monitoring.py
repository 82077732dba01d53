"""The SDK's part for observing served models: the prediction log, feedback, performance.

A mixin of :class:`aiaas.Client`, kept apart so the client module stays one concern per part.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from aiaas import schemas

__all__ = ["MonitoringMethods"]


class MonitoringMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/deployments/{name}/predictions`` and kin."""

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


def _params(
    version: int | None, start: dt.datetime | None, end: dt.datetime | None, window: str | None
) -> dict[str, str]:
    given = {"version": version, "start": start, "end": end, "window": window}
    return {
        k: v.isoformat() if isinstance(v, dt.datetime) else str(v) for k, v in given.items() if v is not None
    }
