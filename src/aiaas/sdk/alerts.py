"""The SDK's part for alerts: rules, history, silences, webhooks and metric series.

A mixin of :class:`aiaas.Client`, like :mod:`.monitoring`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from aiaas import schemas
from aiaas.sdk._deprecation import renamed
from aiaas.sdk._http import request

__all__ = ["AlertMethods"]


class AlertMethods:
    """Methods of :class:`aiaas.Client` over ``/api/v1/alerts``."""

    _api: httpx.Client  # set by Client

    def _get(self, path: str, **kwargs: Any) -> httpx.Response:  # provided by Client
        raise NotImplementedError

    def create_alert_rule(
        self,
        name: str,
        *,
        metric: str,
        op: str,
        threshold: float,
        window: float | str,
        for_: float | str = 0,
        deployment: str | None = None,
        version: int | None = None,
        job: int | None = None,
        feature: str | None = None,
        labels: dict[str, str] | None = None,
        description: str = "",
    ) -> schemas.AlertRule:
        """Create a rule: it fires when ``metric op threshold`` held over ``window`` for ``for_``.

        Args:
            window, for_: seconds, or ``"30s"``, ``"5m"``, ``"1h"``...
            deployment, version: the scope of a deployment metric (version: only that one).
            job: the scope of a job metric (``job_failed``, ``job_duration``).
            feature: for ``drift``, this feature's score (else the count of drifted features).

        Raises:
            InvalidArgument: naming the field of a rule that cannot be evaluated.
        """
        body = schemas.AlertRuleCreate(
            name=name,
            metric=metric,
            op=op,
            threshold=threshold,
            window=window,
            for_=for_,
            deployment=deployment,
            version=version,
            job=job,
            feature=feature,
            labels=labels or {},
            description=description,
        )
        return self._post_rule(body)

    def create_anomaly_rule(
        self,
        name: str,
        *,
        deployment: str,
        window: float | str,
        metrics: list[str] | None = None,
        detector: str = "isolation_forest",
        training_window: float | str = "1h",
        min_history: int = 20,
        contamination: float | None = None,
        for_: float | str | None = None,
        version: int | None = None,
        feature: str | None = None,
        labels: dict[str, str] | None = None,
        description: str = "",
    ) -> schemas.AlertRule:
        """Create an anomaly rule: each ``window`` of ``metrics`` of the deployment is judged by
        ``detector`` (``isolation_forest`` or ``lof``) against the ``training_window`` before it;
        no threshold to set. It fires when windows stay anomalous for ``for_`` (default: one window).

        Args:
            metrics: default latency_p50, latency_p99, error_rate, throughput.
            min_history: windows with a value needed before it may fire (at least 8).
            contamination: the share of anomalous windows the history is believed to hold.

        Raises:
            InvalidArgument: naming the field (an unknown metric, a history too short...).
        """
        body = schemas.AlertRuleCreate(
            name=name,
            kind="anomaly",
            window=window,
            for_=for_,
            deployment=deployment,
            version=version,
            feature=feature,
            metrics=metrics,
            detector=detector,
            training_window=training_window,
            min_history=min_history,
            contamination=contamination,
            labels=labels or {},
            description=description,
        )
        return self._post_rule(body)

    def _post_rule(self, body: schemas.AlertRuleCreate) -> schemas.AlertRule:
        """Create a threshold or anomaly rule from its wire body (``for`` by its alias)."""
        response = request(
            self._api,
            "POST",
            "/alerts/rules",
            content=body.model_dump_json(by_alias=True, exclude_none=True),
            headers={"content-type": "application/json"},
        )
        return schemas.AlertRule.model_validate_json(response.content)

    def list_alert_rules(self) -> list[schemas.AlertRule]:
        """Every rule, with its state (inactive, pending, firing) and latest value."""
        return schemas.AlertRuleList.model_validate_json(self._get("/alerts/rules").content).rules

    def get_alert_rule(self, name: str) -> schemas.AlertRule:
        return schemas.AlertRule.model_validate_json(self._get(f"/alerts/rules/{name}").content)

    def delete_alert_rule(self, name: str) -> None:
        request(self._api, "DELETE", f"/alerts/rules/{name}")

    def list_alerts(self, *, rule: str | None = None, limit: int = 100) -> list[schemas.AlertEvent]:
        """Transitions newest first (pending, firing, resolved, inactive), with their deliveries."""
        params: dict[str, str] = {"limit": str(limit)}
        if rule is not None:
            params["rule"] = rule
        return schemas.AlertEventList.model_validate_json(self._get("/alerts", params=params).content).events

    def silence(
        self,
        *,
        rule: str | None = None,
        deployment: str | None = None,
        ends_at: dt.datetime | None = None,
        duration: float | str | None = None,
        comment: str = "",
    ) -> schemas.Silence:
        """Silence a rule, a deployment's rules, or both, until ``ends_at`` or for ``duration``."""
        body = schemas.SilenceCreate(
            rule=rule, deployment=deployment, ends_at=ends_at, duration=duration, comment=comment
        )
        response = request(
            self._api,
            "POST",
            "/alerts/silences",
            content=body.model_dump_json(exclude_none=True),
            headers={"content-type": "application/json"},
        )
        return schemas.Silence.model_validate_json(response.content)

    def list_silences(self, *, all: bool = False) -> list[schemas.Silence]:
        """Active silences (ended ones too with ``all=True``)."""
        params = {"all": "true"} if all else {}
        return schemas.SilenceList.model_validate_json(
            self._get("/alerts/silences", params=params).content
        ).silences

    def delete_silence(self, silence_id: int) -> None:
        request(self._api, "DELETE", f"/alerts/silences/{silence_id}")

    def add_webhook(self, name: str, url: str, *, secret: str | None = None) -> schemas.Webhook:
        """Add a webhook; the answer carries its secret (made when not given), shown only here."""
        body = schemas.WebhookCreate(name=name, url=url, secret=secret)
        response = request(
            self._api,
            "POST",
            "/alerts/webhooks",
            content=body.model_dump_json(exclude_none=True),
            headers={"content-type": "application/json"},
        )
        return schemas.Webhook.model_validate_json(response.content)

    def list_webhooks(self) -> list[schemas.Webhook]:
        return schemas.WebhookList.model_validate_json(self._get("/alerts/webhooks").content).webhooks

    def delete_webhook(self, name: str) -> None:
        request(self._api, "DELETE", f"/alerts/webhooks/{name}")

    def metric_series(
        self,
        metric: str,
        *,
        deployment: str | None = None,
        version: int | None = None,
        job: int | None = None,
        feature: str | None = None,
        window: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        step: float | None = None,
    ) -> schemas.MetricSeries:
        """``metric`` of a deployment (or one version) or a job as a time series."""
        given: dict[str, Any] = {
            "metric": metric,
            "deployment": deployment,
            "version": version,
            "job": job,
            "feature": feature,
            "window": window,
            "start": start,
            "end": end,
            "step": step,
        }
        params = {
            k: v.isoformat() if isinstance(v, dt.datetime) else str(v)
            for k, v in given.items()
            if v is not None
        }
        return schemas.MetricSeries.model_validate_json(self._get("/alerts/series", params=params).content)

    # The names before the list_/get_ convention; removed in the next release.
    alert_rules = renamed(list_alert_rules, "alert_rules")
    alert_rule = renamed(get_alert_rule, "alert_rule")
    alerts = renamed(list_alerts, "alerts")
    silences = renamed(list_silences, "silences")
    webhooks = renamed(list_webhooks, "webhooks")
