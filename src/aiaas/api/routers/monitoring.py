"""``/api/v1/deployments/{name}/predictions``, ``/feedback`` and ``/performance``: what a
deployment was asked and answered, the ground truth of its answers, and how right they were.

The inference server writes the prediction log (Parquet segments under
``AIAAS_PREDICTION_LOG_DIR``); this router reads the same folder, so both processes must see
it (one machine, or a shared volume).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any, Literal, TypeVar

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from aiaas import schemas
from aiaas.api.deps import Services, ServicesDep
from aiaas.api.params import Name
from aiaas.errors import AiaasError, InvalidArgument
from aiaas.monitoring.feedback import check_label
from aiaas.monitoring.performance import Task, score, task_of
from aiaas.schemas import MAX_FEEDBACK_ITEMS, MAX_ID
from aiaas.store.predictions import read_predictions
from aiaas.translate import problems

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
    table = read_predictions(root, services.deployment_key(name), version=version, start=low, end=high)
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


_Model = TypeVar("_Model", bound=BaseModel)

_FEEDBACK_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/FeedbackItem"},
                    {"$ref": "#/components/schemas/FeedbackBatch"},
                    {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/FeedbackItem"},
                        "minItems": 1,
                        "maxItems": MAX_FEEDBACK_ITEMS,
                    },
                ]
            }
        },
        "text/csv": {
            "schema": {"type": "string"},
            "example": "request_id,label\n4b1f0c...,setosa\n",
        },
    },
}


@router.post(
    "/{name}/feedback",
    summary="Ground truth for answered requests, by request id",
    description="One label (`{request_id, label}`), many (`{feedback: [...]}` or a list), or a CSV "
    "with a `request_id,label` header. Each request id must be in the deployment's prediction log; "
    "ids that are not are listed in `unknown_request_ids` and their labels not stored. A label is a "
    "class label or a target value, or a list of one per row for a request of several rows. "
    "Labels posted again for a request replace the old ones. A label that does not fit (wrong "
    "count of rows, not a number for a regressor) refuses the whole request, storing nothing.",
    openapi_extra={"requestBody": _FEEDBACK_BODY},
)
async def post_feedback(name: Name, request: Request, services: ServicesDep) -> schemas.FeedbackResult:
    items = _feedback_items(await request.body(), request.headers.get("content-type", ""))
    return await run_in_threadpool(_record_feedback, services, name, items)


@router.get(
    "/{name}/performance",
    summary="Live performance per version: the prediction log scored against feedback",
    description="For each version with labelled rows in the window (`window` back from now, or "
    "`start`/`end`; default: the whole log): the count of labelled rows and, for a classifier, "
    "accuracy, precision, recall, F1 (macro) and ROC-AUC (from the logged scores); for a "
    "regressor, MAE, RMSE and R². The values are scikit-learn's on those rows.",
)
def performance(
    name: Name,
    services: ServicesDep,
    start: str | None = Start,
    end: str | None = End,
    window: str | None = Window,
) -> schemas.Performance:
    deployment = services.deployments.get(name)
    low, high = time_range(start, end, window)
    table = read_predictions(
        services.settings.resolved_prediction_log_dir(), services.deployment_key(name), start=low, end=high
    )
    ids = table.column("request_id").to_pylist()
    labels = services.feedback.labels(services.deployment_key(name), ids) if ids else {}
    versions = score(table, labels, _tasks(services, deployment.model))
    return schemas.Performance(
        deployment=name,
        start=low,
        end=high,
        versions=[schemas.VersionPerformance.model_validate(v) for v in versions],
    )


def _record_feedback(
    services: Services, name: str, items: list[schemas.FeedbackItem]
) -> schemas.FeedbackResult:
    deployment = services.deployments.get(name)
    labels = {
        item.request_id: check_label(item.label, f"feedback[{i}].label") for i, item in enumerate(items)
    }
    root = services.settings.resolved_prediction_log_dir()
    logged = read_predictions(root, services.deployment_key(name), request_ids=list(labels)).to_pydict()
    tasks = _tasks(services, deployment.model)
    position = {item.request_id: i for i, item in enumerate(items)}
    for request_id, version, outputs in zip(
        logged["request_id"], logged["version"], logged["outputs"], strict=True
    ):
        _check_fits(labels[request_id], tasks(version), orjson.loads(outputs), position[request_id])
    known = set(logged["request_id"])
    services.feedback.record(services.deployment_key(name), {k: v for k, v in labels.items() if k in known})
    return schemas.FeedbackResult(
        deployment=name,
        accepted=len(known),
        unknown_request_ids=[k for k in labels if k not in known],
    )


def _check_fits(label: Any, task: Task, outputs: dict[str, Any], i: int) -> None:
    """A label has one value per row the request had, and numbers for a regressor."""
    if not task.value:
        return  # its version is gone: the label is kept, and scored with nothing
    rows = len(outputs.get(task.value) or [])
    given = label if isinstance(label, list) else [label]
    field = f"feedback[{i}].label"
    if rows and len(given) != rows:
        raise InvalidArgument(
            f"{field} has {len(given)} value(s) but its request had {rows} row(s); send one label per row",
            details={"field": field},
        )
    if task.classes is None and not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in given
    ):
        raise InvalidArgument(
            f"{field} must be a number: the version that answered is a regressor; got {label!r}",
            details={"field": field},
        )


def _tasks(services: Services, model: str) -> Any:
    """``version → Task`` of ``model``, each looked up once."""
    cache: dict[int, Task] = {}

    def task(version: int) -> Task:
        if version not in cache:
            try:
                cache[version] = task_of(services.registry.get_version(model, version).signature)
            except AiaasError:  # the version was deleted since: nothing to match its rows with
                cache[version] = Task(value="")
        return cache[version]

    return task


def _feedback_items(body: bytes, content_type: str) -> list[schemas.FeedbackItem]:
    """The labels of a feedback body (JSON or CSV), checked, each request id once."""
    if content_type.split(";")[0].strip().lower() == "text/csv":
        raw: Any = _csv_items(body)
    else:
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"body is not JSON: {exc}", details={"field": "body"}) from None
    items: list[schemas.FeedbackItem]
    if isinstance(raw, dict) and "feedback" in raw:
        items = _validated(schemas.FeedbackBatch, raw).feedback
    elif isinstance(raw, dict):
        items = [_validated(schemas.FeedbackItem, raw)]
    elif isinstance(raw, list):
        items = _validated(schemas.FeedbackBatch, {"feedback": raw}).feedback
    else:
        raise InvalidArgument(
            "body must be {request_id, label}, {feedback: [...]} or a list of them",
            details={"field": "body"},
        )
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.request_id in seen:
            raise InvalidArgument(
                f"feedback[{i}].request_id {item.request_id!r} is given twice; give each request once",
                details={"field": f"feedback[{i}].request_id"},
            )
        seen.add(item.request_id)
    return items


def _validated(model: type[_Model], raw: Any) -> _Model:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        field, message = problems(exc.errors())[0]
        loc = field.split(".") if field else []
        if "label" in loc:  # pydantic names each member of the union it tried: say it once
            loc = loc[: loc.index("label") + 1]
            message = "must be a class label or a number, or a list of them (one per row)"
        if loc[:1] == ["feedback"] and len(loc) > 1:
            loc = [f"feedback[{loc[1]}]", *loc[2:]]
        field = ".".join(loc) or "body"
        raise InvalidArgument(f"{field}: {message}", details={"field": field}) from None


def _csv_items(body: bytes) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument("the CSV body must be UTF-8", details={"field": "body"}) from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or {"request_id", "label"} - set(reader.fieldnames):
        raise InvalidArgument(
            f"the CSV must start with a request_id,label header; got {reader.fieldnames}",
            details={"field": "body"},
        )
    try:
        return [{"request_id": r["request_id"], "label": _csv_value(r["label"])} for r in reader]
    except csv.Error as exc:
        raise InvalidArgument(f"the CSV body is malformed: {exc}", details={"field": "body"}) from None


def _csv_value(text: str | None) -> Any:
    """A CSV cell as a label: a number when it reads as one (a regressor's target), else text."""
    if text is None:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


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
            outlier_score=outlier_score,
            outlier=outlier,
        )
        for request_id, version, time, latency_ms, inputs, outputs, outlier_score, outlier in zip(
            columns["request_id"],
            columns["version"],
            columns["time"],
            columns["latency_ms"],
            columns["inputs"],
            columns["outputs"],
            columns["outlier_score"],
            columns["outlier"],
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
