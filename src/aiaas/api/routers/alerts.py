"""``/api/v1/alerts``: rules, their history and state, silences, webhooks, and metric series.

Rules are evaluated by the control plane's alert loop (:mod:`aiaas.alerts.evaluator`), not
by these endpoints: creating a rule stores it, and its state moves at the next evaluation.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from aiaas import schemas
from aiaas.alerts import DEFAULT_METRICS, METRICS, MetricInfo, Scope, parse_duration
from aiaas.api.deps import ServicesDep
from aiaas.api.params import Name
from aiaas.api.routers.monitoring import End, Start, Window, time_range
from aiaas.entities.alerts import AlertEvent, AnomalySpec, Delivery, RuleSpec
from aiaas.errors import InvalidArgument
from aiaas.schemas import MAX_ID

__all__ = ["router"]

router = APIRouter(prefix="/alerts", tags=["alerts"])

_METRICS_DOC = "; ".join(f"`{name}`: {info.description} ({info.unit})" for name, info in METRICS.items())


@router.post(
    "/rules",
    status_code=status.HTTP_201_CREATED,
    summary="Create an alert rule",
    description="A rule fires when `metric op threshold` has held over `window` for `for`, and "
    "resolves when it no longer holds; each firing and resolved transition is sent to the log and "
    "to every webhook (unless silenced). Metrics: " + _METRICS_DOC + ". A bad rule (unknown "
    "metric, empty window, negative `for`, a version the deployment's model does not have) is a "
    "400 naming the field. `kind: anomaly` makes a rule with no threshold: each `window` of `metrics` "
    "is judged by an Isolation Forest or a Local Outlier Factor fitted on the deployment's own "
    "`training_window` of history, firing when the window is beyond the detector's own boundary and "
    "more outlying than every window of the history.",
)
def create_rule(body: schemas.AlertRuleCreate, services: ServicesDep) -> schemas.AlertRule:
    return schemas.AlertRule.model_validate(services.alerts.create_rule(_spec(body)))


def _spec(body: schemas.AlertRuleCreate) -> RuleSpec:
    """The rule asked for; a field that does not go with its kind is a 400 naming it."""
    anomaly_fields = ("metrics", "detector", "training_window", "min_history", "contamination")
    window_s = parse_duration(body.window, "window")
    default_for = window_s if body.kind == "anomaly" else 0.0
    common: dict[str, Any] = {
        "name": body.name,
        "window_s": window_s,
        "for_s": default_for if body.for_ is None else parse_duration(body.for_, "for", minimum=-1),
        "deployment": body.deployment,
        "version": body.version,
        "job": body.job,
        "feature": body.feature,
        "labels": dict(body.labels),
        "description": body.description,
    }
    if body.kind == "anomaly":
        for name in ("metric", "op", "threshold"):
            if getattr(body, name) is not None:
                raise InvalidArgument(
                    f"{name} does not go with an anomaly rule: the detector derives its boundary from "
                    "the deployment's history (give metrics for the metrics it watches)",
                    details={"field": name},
                )
        anomaly = AnomalySpec(
            metrics=tuple(body.metrics) if body.metrics is not None else DEFAULT_METRICS,
            detector=body.detector or "isolation_forest",
            training_window_s=parse_duration(
                "1h" if body.training_window is None else body.training_window, "training_window"
            ),
            min_history=20 if body.min_history is None else body.min_history,
            contamination=body.contamination,
        )
        return RuleSpec(metric="anomaly", op=">", threshold=0.0, kind="anomaly", anomaly=anomaly, **common)
    if body.kind != "threshold":
        raise InvalidArgument(
            f"kind must be threshold or anomaly; got {body.kind!r}",
            details={"field": "kind", "value": body.kind},
        )
    for name in anomaly_fields:
        if getattr(body, name) is not None:
            raise InvalidArgument(f"{name} is for anomaly rules (kind: anomaly)", details={"field": name})
    for name in ("metric", "op", "threshold"):
        if getattr(body, name) is None:
            raise InvalidArgument(f"a threshold rule needs {name}", details={"field": name})
    assert body.metric is not None and body.op is not None and body.threshold is not None
    return RuleSpec(metric=body.metric, op=body.op, threshold=body.threshold, **common)


@router.get("/rules", summary="List alert rules with their state and latest value")
def list_rules(services: ServicesDep) -> schemas.AlertRuleList:
    return schemas.AlertRuleList(
        rules=[schemas.AlertRule.model_validate(r) for r in services.alerts.list_rules()]
    )


@router.get("/rules/{name}", summary="Show an alert rule")
def get_rule(name: Name, services: ServicesDep) -> schemas.AlertRule:
    return schemas.AlertRule.model_validate(services.alerts.get_rule(name))


@router.delete("/rules/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an alert rule")
def delete_rule(name: Name, services: ServicesDep) -> None:
    services.alerts.delete_rule(name)


@router.get(
    "",
    summary="Alert history: transitions newest first, with their deliveries",
    description="Each transition of a rule (pending, firing, resolved; inactive: a pending "
    "condition that ended before `for`), its value, the silence that held it back if any, and per "
    "target (log, webhook) the delivery's attempts and outcome.",
)
def history(
    services: ServicesDep,
    rule: Annotated[str | None, Query(description="Only this rule's transitions.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="The most transitions.")] = 100,
) -> schemas.AlertEventList:
    return schemas.AlertEventList(
        events=[_event(e, d) for e, d in services.alerts.history(rule=rule, limit=limit)]
    )


@router.post(
    "/silences",
    status_code=status.HTTP_201_CREATED,
    summary="Silence a rule or a deployment's rules until a time",
    description="Transitions of matching rules are recorded with the silence's id and not sent. "
    "Give `rule`, `deployment` or both, and `ends_at` or `duration`.",
)
def create_silence(body: schemas.SilenceCreate, services: ServicesDep) -> schemas.Silence:
    if (body.ends_at is None) == (body.duration is None):
        raise InvalidArgument("give ends_at or duration (one of them)", details={"field": "ends_at"})
    if body.ends_at is not None:
        ends_at = body.ends_at if body.ends_at.tzinfo else body.ends_at.replace(tzinfo=dt.UTC)
    else:
        seconds = parse_duration(body.duration, "duration")
        ends_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    silence = services.alerts.silence(
        rule=body.rule, deployment=body.deployment, ends_at=ends_at, comment=body.comment
    )
    return schemas.Silence.model_validate(silence)


@router.get("/silences", summary="List silences (active ones unless all=true)")
def list_silences(
    services: ServicesDep,
    all: Annotated[bool, Query(description="Ended silences too.")] = False,
) -> schemas.SilenceList:
    silences = services.alerts.silences(active=not all)
    return schemas.SilenceList(silences=[schemas.Silence.model_validate(s) for s in silences])


@router.delete("/silences/{silence_id}", status_code=status.HTTP_204_NO_CONTENT, summary="End a silence now")
def delete_silence(silence_id: Annotated[int, Path(ge=1, le=MAX_ID)], services: ServicesDep) -> None:
    services.alerts.delete_silence(silence_id)


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    summary="Add a webhook: every firing and resolved transition is POSTed to it, signed",
    description="The body is the transition as JSON; `X-Aiaas-Signature: sha256=<hex>` is the "
    "HMAC-SHA256 of the body with the webhook's secret, `X-Aiaas-Delivery` a delivery id that is "
    "the same on every attempt. A non-2xx answer is retried with exponential backoff "
    "(AIAAS_ALERTS_RETRY_BASE_S, AIAAS_ALERTS_MAX_ATTEMPTS). The secret is shown in this answer only.",
)
def create_webhook(body: schemas.WebhookCreate, services: ServicesDep) -> schemas.Webhook:
    webhook = services.alerts.add_webhook(body.name, body.url, body.secret)
    return schemas.Webhook(
        id=webhook.id,
        name=webhook.name,
        url=webhook.url,
        created_at=webhook.created_at,
        secret=webhook.secret,
    )


@router.get("/webhooks", summary="List webhooks (without their secrets)")
def list_webhooks(services: ServicesDep) -> schemas.WebhookList:
    return schemas.WebhookList(
        webhooks=[
            schemas.Webhook(id=w.id, name=w.name, url=w.url, created_at=w.created_at)
            for w in services.alerts.webhooks()
        ]
    )


@router.delete("/webhooks/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a webhook")
def delete_webhook(name: Name, services: ServicesDep) -> None:
    services.alerts.delete_webhook(name)


@router.get(
    "/series",
    summary="Any metric of a deployment (or version) or a job as a time series",
    description="One point per metric sample interval (AIAAS_METRICS_INTERVAL_S), or per `step` "
    "seconds; the range is `window` back from now or `start`/`end` (default: the last hour). "
    "Metrics: " + _METRICS_DOC + ".",
)
def series(
    services: ServicesDep,
    metric: Annotated[str, Query(description="The metric's name.")],
    deployment: Annotated[str | None, Query(description="The deployment.")] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this version.")] = None,
    job: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The job (job metrics).")] = None,
    feature: Annotated[str | None, Query(max_length=256, description="drift: this feature.")] = None,
    step: Annotated[float | None, Query(gt=0, le=86400, description="Seconds per point.")] = None,
    start: str | None = Start,
    end: str | None = End,
    window: str | None = Window,
) -> schemas.MetricSeries:
    now = dt.datetime.now(dt.UTC)  # before the window's start is taken: a window is one step
    low, high = time_range(start, end, window)
    high = high or now
    low = low or high - dt.timedelta(hours=1)
    scope = Scope(deployment=deployment, version=version, job=job, feature=feature)
    points = services.alerts.series(metric, scope, low, high, step)
    info: MetricInfo = METRICS[metric]
    return schemas.MetricSeries(
        metric=metric,
        unit=info.unit,
        deployment=deployment,
        version=version,
        job=job,
        feature=feature,
        points=[schemas.SeriesPoint(start=p.start, value=p.value) for p in points],
    )


def _event(event: AlertEvent, deliveries: list[Delivery]) -> schemas.AlertEvent:
    return schemas.AlertEvent(
        id=event.id,
        rule=event.rule,
        state=event.state,
        value=event.value,
        at=event.at,
        silenced_by=event.silenced_by,
        deliveries=[schemas.AlertDelivery.model_validate(d) for d in deliveries],
        reason=event.payload.get("reason"),
        anomaly=event.payload.get("anomaly"),
    )
