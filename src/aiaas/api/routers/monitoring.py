"""``/api/v1/deployments/{name}/predictions``: what a deployment was asked and answered.

The inference server writes the prediction log (Parquet segments under
``AIAAS_PREDICTION_LOG_DIR``); this router reads the same folder, so both processes must see
it (one machine, or a shared volume).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Response

from aiaas import schemas
from aiaas.api.deps import ServicesDep
from aiaas.api.params import Name
from aiaas.errors import InvalidArgument
from aiaas.schemas import MAX_ID
from aiaas.serving.predictions import read_predictions

__all__ = ["PARQUET_MEDIA_TYPE", "router", "time_range"]

router = APIRouter(prefix="/deployments", tags=["monitoring"])

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
#: A window such as ``90s``, ``15m``, ``24h`` or ``7d``.
WINDOW_PATTERN = r"^[0-9]{1,6}(\.[0-9]{1,3})?[smhd]$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The most rows one JSON answer holds; download Parquet for more.
MAX_ROWS = 10_000

Version = Query(default=None, ge=1, le=MAX_ID, description="Only this model version's rows.")
Start = Query(
    default=None,
    description="Rows at or after this time (ISO 8601; UTC if no zone).",
    json_schema_extra={"format": "date-time"},
)
End = Query(
    default=None,
    description="Rows before this time (ISO 8601; UTC if no zone).",
    json_schema_extra={"format": "date-time"},
)
Window = Query(
    default=None,
    description="Rows of the last 90s, 15m, 24h, 7d... (instead of start).",
    json_schema_extra={"pattern": WINDOW_PATTERN},
)


def time_range(
    start: str | None, end: str | None, window: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[start, end)`` as aware UTC datetimes, from ``start``/``end`` or ``window`` back from now.

    Raises:
        InvalidArgument: naming ``window`` (malformed, or given with ``start``) or ``end``
            (not after ``start``).
    """
    low, high = _time(start, "start"), _time(end, "end")
    if window is not None:
        if not re.fullmatch(WINDOW_PATTERN, window):
            raise InvalidArgument(
                f"window must be a number and a unit s, m, h or d, such as 15m or 7d; got {window!r}",
                details={"field": "window", "value": window},
            )
        if low is not None:
            raise InvalidArgument(
                "give window or start, not both", details={"field": "window", "value": window}
            )
        seconds = float(window[:-1]) * _UNITS[window[-1]]
        low = (high or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=seconds)
    if low is not None and high is not None and high <= low:
        raise InvalidArgument(
            f"end must be after start; got start {low.isoformat()} and end {high.isoformat()}",
            details={"field": "end", "value": high.isoformat()},
        )
    return low, high


@router.get(
    "/{name}/predictions",
    summary="The prediction log of a deployment: inputs, outputs, version, request id, latency",
    description="Rows oldest first, filtered by version and time (`start`/`end`, or `window` back "
    "from now). `format=parquet` downloads every matching row as one Parquet file; JSON holds at "
    "most `limit` rows. The inference server writes the log every few seconds "
    "(AIAAS_PREDICTION_LOG_FLUSH_INTERVAL_S), so the newest requests show up shortly after.",
    response_model=schemas.PredictionList,
    responses={200: {"content": {PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
def predictions(
    name: Name,
    services: ServicesDep,
    version: int | None = Version,
    start: str | None = Start,
    end: str | None = End,
    window: str | None = Window,
    limit: int = Query(default=100, ge=1, le=MAX_ROWS, description="The most rows in a JSON answer."),
    format: Literal["json", "parquet"] = Query(default="json", description="json, or parquet to download."),
) -> schemas.PredictionList | Response:
    services.deployments.get(name)  # an unknown deployment is a 404, not an empty log
    low, high = time_range(start, end, window)
    root = services.settings.resolved_prediction_log_dir()
    table = read_predictions(root, name, version=version, start=low, end=high)
    if format == "parquet":
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        headers = {"content-disposition": f'attachment; filename="{name}-predictions.parquet"'}
        return Response(sink.getvalue(), media_type=PARQUET_MEDIA_TYPE, headers=headers)
    return schemas.PredictionList(
        deployment=name,
        predictions=_rows(table.slice(0, limit)),
        truncated=table.num_rows > limit,
    )


def _rows(table: pa.Table) -> list[schemas.Prediction]:
    columns = table.to_pydict()
    return [
        schemas.Prediction(
            request_id=request_id,
            version=version,
            time=time,
            latency_ms=latency_ms,
            inputs=orjson.loads(inputs),
            outputs=orjson.loads(outputs),
        )
        for request_id, version, time, latency_ms, inputs, outputs in zip(
            columns["request_id"],
            columns["version"],
            columns["time"],
            columns["latency_ms"],
            columns["inputs"],
            columns["outputs"],
            strict=True,
        )
    ]


def _time(text: str | None, field: str) -> dt.datetime | None:
    """An ISO 8601 time as an aware UTC datetime (a naive one is taken as UTC)."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"{field} must be an ISO 8601 time such as 2026-12-01T09:30:00Z; got {text!r}",
            details={"field": field, "value": text},
        ) from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
