"""``aiaas alerts ...``: alert rules on deployments' and jobs' metrics, their history, silences,
webhooks and metric series."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from aiaas.cli.context import JsonOption, client
from aiaas.cli.output import console, print_json, table
from aiaas.schemas import AlertRule

__all__ = ["alerts_app"]

alerts_app = typer.Typer(
    help="Alert rules on any metric of a deployment, version or job: create and list rules, see "
    "their history (pending, firing, resolved), silence them, send them to webhooks.",
    no_args_is_help=True,
)

_METRICS = (
    "latency_p50, latency_p99, error_rate, throughput, replica_restarts, cpu, memory, queue_depth, "
    "accuracy, f1, drift (of a deployment); job_failed, job_duration (of a job)"
)
_DURATION = "seconds, or 30s, 5m, 1h, 7d"
_ANOMALY_METRICS = (
    "latency_p50, latency_p99, error_rate, throughput, replica_restarts, cpu, memory, queue_depth, drift"
)


@alerts_app.command("rules")
def rules(ctx: typer.Context, json: JsonOption = False) -> None:
    """List alert rules: scope, condition, window, for, state and latest value."""
    result = client(ctx).list_alert_rules()
    if json:
        return print_json(result)
    table(
        "Alert rules",
        ["name", "scope", "condition", "window s", "for s", "state", "since", "value"],
        [
            (
                r.name,
                f"job {r.job}" if r.job else f"{r.deployment}" + (f" v{r.version}" if r.version else ""),
                _condition_of(r),
                f"{r.window_s:g}",
                f"{r.for_s:g}",
                r.state,
                r.state_since or "",
                "" if r.value is None else f"{r.value:.4g}",
            )
            for r in result
        ],
        keep=["name", "state"],
    )
    return None


@alerts_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique rule name.")],
    metric: Annotated[str, typer.Option(help=f"The metric: {_METRICS}.")],
    condition: Annotated[str, typer.Option(help="The comparison and threshold, such as '> 0.05' or '<0.9'.")],
    window: Annotated[str, typer.Option(help=f"How far back the metric is read: {_DURATION}.")],
    for_: Annotated[
        str, typer.Option("--for", help=f"How long the condition must hold before firing: {_DURATION}.")
    ] = "0",
    deployment: Annotated[str | None, typer.Option(help="The deployment (deployment metrics).")] = None,
    version: Annotated[int | None, typer.Option(help="Only this version of the deployment.")] = None,
    job: Annotated[int | None, typer.Option(help="The job (job metrics).")] = None,
    feature: Annotated[str | None, typer.Option(help="drift: this feature's score.")] = None,
    description: Annotated[str, typer.Option(help="Sent with notifications.")] = "",
    json: JsonOption = False,
) -> None:
    """Create an alert rule; it fires when the condition held over the window for --for."""
    op, threshold = _condition(condition)
    rule = client(ctx).create_alert_rule(
        name,
        metric=metric,
        op=op,
        threshold=threshold,
        window=_duration(window),
        for_=_duration(for_),
        deployment=deployment,
        version=version,
        job=job,
        feature=feature,
        description=description,
    )
    if json:
        return print_json(rule)
    console.print(f"rule {rule.name}: {rule.metric} {rule.op} {rule.threshold:g} over {rule.window_s:g} s")
    return None


@alerts_app.command("anomaly")
def anomaly(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique rule name.")],
    deployment: Annotated[str, typer.Option(help="The deployment whose windows are judged.")],
    window: Annotated[str, typer.Option(help=f"One window, the unit judged: {_DURATION}.")] = "1m",
    metrics: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated, of {_ANOMALY_METRICS}. Default: the first four."),
    ] = None,
    detector: Annotated[
        str, typer.Option(help="isolation_forest or lof (local outlier factor).")
    ] = "isolation_forest",
    training_window: Annotated[str, typer.Option(help=f"The history it learns from: {_DURATION}.")] = "1h",
    min_history: Annotated[int, typer.Option(help="History windows needed before it may fire (>= 8).")] = 20,
    contamination: Annotated[
        float | None, typer.Option(help="Share of anomalous windows in the history (0-0.5); default: none.")
    ] = None,
    for_: Annotated[
        str | None,
        typer.Option("--for", help=f"How long windows must stay anomalous: {_DURATION}; default one window."),
    ] = None,
    version: Annotated[int | None, typer.Option(help="Only this version of the deployment.")] = None,
    feature: Annotated[str | None, typer.Option(help="drift in metrics: this feature's score.")] = None,
    description: Annotated[str, typer.Option(help="Sent with notifications.")] = "",
    json: JsonOption = False,
) -> None:
    """Create an anomaly rule: an Isolation Forest or LOF judges each window of the deployment's
    metrics against its own history; no threshold to set."""
    rule = client(ctx).create_anomaly_rule(
        name,
        deployment=deployment,
        window=_duration(window),
        metrics=[m.strip() for m in metrics.split(",")] if metrics is not None else None,
        detector=detector,
        training_window=_duration(training_window),
        min_history=min_history,
        contamination=contamination,
        for_=None if for_ is None else _duration(for_),
        version=version,
        feature=feature,
        description=description,
    )
    if json:
        return print_json(rule)
    console.print(f"rule {rule.name}: {_condition_of(rule)} over {rule.window_s:g} s windows")
    return None


@alerts_app.command("delete")
def delete(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Rule to delete.")]) -> None:
    """Delete an alert rule (its history stays)."""
    client(ctx).delete_alert_rule(name)
    console.print(f"deleted rule {name}")


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    rule: Annotated[str | None, typer.Option(help="Only this rule's transitions.")] = None,
    limit: Annotated[int, typer.Option(help="The most transitions (1..1000).")] = 50,
    json: JsonOption = False,
) -> None:
    """Show alert history, newest first: each transition and how its notifications went."""
    events = client(ctx).list_alerts(rule=rule, limit=limit)
    if json:
        return print_json(events)
    table(
        "Alerts",
        ["time", "rule", "state", "value", "silenced by", "deliveries"],
        [
            (
                e.at,
                e.rule,
                e.state,
                "" if e.value is None else f"{e.value:.4g}",
                e.silenced_by or "",
                ", ".join(
                    f"{d.target}:{'ok' if d.delivered_at else 'failed' if d.failed_at else 'pending'}"
                    f"({d.attempts})"
                    for d in e.deliveries
                ),
            )
            for e in events
        ],
        keep=["rule", "state"],
    )
    return None


@alerts_app.command("silence")
def silence(
    ctx: typer.Context,
    rule: Annotated[str | None, typer.Option(help="Silence this rule.")] = None,
    deployment: Annotated[str | None, typer.Option(help="Silence this deployment's rules.")] = None,
    for_: Annotated[str | None, typer.Option("--for", help=f"How long: {_DURATION}.")] = None,
    until: Annotated[
        dt.datetime | None, typer.Option(help="Or until this time (ISO 8601, UTC if no zone).")
    ] = None,
    comment: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    json: JsonOption = False,
) -> None:
    """Silence alerts until a time: their transitions are recorded but not sent."""
    result = client(ctx).silence(
        rule=rule,
        deployment=deployment,
        ends_at=until,
        duration=_duration(for_) if for_ is not None else None,
        comment=comment,
    )
    if json:
        return print_json(result)
    console.print(f"silence {result.id} until {result.ends_at.isoformat()}")
    return None


@alerts_app.command("silences")
def silences(
    ctx: typer.Context,
    all: Annotated[bool, typer.Option("--all", help="Ended silences too.")] = False,
    json: JsonOption = False,
) -> None:
    """List silences (active ones unless --all)."""
    result = client(ctx).list_silences(all=all)
    if json:
        return print_json(result)
    table(
        "Silences",
        ["id", "rule", "deployment", "ends", "comment"],
        [(s.id, s.rule or "", s.deployment or "", s.ends_at, s.comment) for s in result],
        keep=["id"],
    )
    return None


@alerts_app.command("webhook")
def webhook(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique webhook name.")],
    url: Annotated[str, typer.Argument(help="http(s) URL transitions are POSTed to.")],
    secret: Annotated[
        str | None, typer.Option(help="16-256 characters to sign with (default: one is made).")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Add a webhook: firing and resolved transitions are POSTed to it, signed (X-Aiaas-Signature)."""
    result = client(ctx).add_webhook(name, url, secret=secret)
    if json:
        return print_json(result)
    console.print(f"webhook {result.name} -> {result.url}; secret (shown once): {result.secret}")
    return None


@alerts_app.command("webhooks")
def webhooks(ctx: typer.Context, json: JsonOption = False) -> None:
    """List webhooks (without their secrets)."""
    result = client(ctx).list_webhooks()
    if json:
        return print_json(result)
    table(
        "Webhooks", ["name", "url", "created"], [(w.name, w.url, w.created_at) for w in result], keep=["name"]
    )
    return None


@alerts_app.command("series")
def series(
    ctx: typer.Context,
    metric: Annotated[str, typer.Argument(help=f"The metric: {_METRICS}.")],
    deployment: Annotated[str | None, typer.Option(help="The deployment.")] = None,
    version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
    job: Annotated[int | None, typer.Option(help="The job (job metrics).")] = None,
    feature: Annotated[str | None, typer.Option(help="drift: this feature.")] = None,
    window: Annotated[str, typer.Option(help="The last 90s, 15m, 24h, 7d...")] = "1h",
    step: Annotated[float | None, typer.Option(help="Seconds per point (default: one per interval).")] = None,
    json: JsonOption = False,
) -> None:
    """Show a metric of a deployment (or version) or a job as a time series."""
    result = client(ctx).metric_series(
        metric, deployment=deployment, version=version, job=job, feature=feature, window=window, step=step
    )
    if json:
        return print_json(result)
    table(
        f"{metric} ({result.unit})",
        ["start", "value"],
        [(p.start, "" if p.value is None else f"{p.value:.4g}") for p in result.points],
    )
    return None


def _condition_of(rule: AlertRule) -> str:
    if rule.anomaly is not None:
        a = rule.anomaly
        return f"anomaly {a.detector}({','.join(a.metrics)}) over {a.training_window_s:g} s"
    return f"{rule.metric}{'[' + rule.feature + ']' if rule.feature else ''} {rule.op} {rule.threshold:g}"


def _condition(text: str) -> tuple[str, float]:
    stripped = text.replace(" ", "")
    for op in (">=", "<=", "==", "!=", ">", "<"):
        if stripped.startswith(op):
            try:
                return op, float(stripped[len(op) :])
            except ValueError:
                break
    raise typer.BadParameter(
        f"expected a comparison and a number such as '> 0.05'; got {text!r}", param_hint="--condition"
    )


def _duration(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
