"""Sending one notification: a signed JSON POST to a webhook, or a line in the log.

A webhook receives the transition as JSON with two headers:

- ``X-Aiaas-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the webhook's
  secret. The receiver computes the same over the body it read and compares with
  :func:`hmac.compare_digest`; a match proves the sender knows the secret and the body is
  unchanged (see :func:`verify`, and docs/alerts.md).
- ``X-Aiaas-Delivery: <uuid>``: the same on every attempt of one notification, so a receiver
  that got it once (and whose answer was lost) can drop the repeat.

Any 2xx answer is a delivery; anything else (another status, a timeout, a refused connection)
is a failed attempt, tried again later by the deliverer (:mod:`.evaluator`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import httpx
import orjson

from aiaas.entities.alerts import Delivery, Webhook

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "body_of", "send_log", "send_webhook", "sign", "verify"]

SIGNATURE_HEADER = "X-Aiaas-Signature"
DELIVERY_HEADER = "X-Aiaas-Delivery"
#: The most characters of a failed answer kept as the delivery's last error.
_ERROR_CHARS = 500

log = logging.getLogger("aiaas.alerts")


def body_of(delivery: Delivery) -> bytes:
    """The bytes POSTed for ``delivery``: its transition's payload and its delivery id."""
    return orjson.dumps(
        {**delivery.payload, "delivery_id": delivery.delivery_id}, option=orjson.OPT_SORT_KEYS
    )


def sign(secret: str, body: bytes) -> str:
    """The ``X-Aiaas-Signature`` value of ``body`` under ``secret``: ``sha256=<hex digest>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` (the header's value) is ``body``'s under ``secret``: what a receiver runs."""
    return hmac.compare_digest(sign(secret, body), signature)


def send_webhook(client: httpx.Client, webhook: Webhook, delivery: Delivery) -> str | None:
    """POST ``delivery`` to ``webhook``; None when it answered 2xx, else what went wrong."""
    body = body_of(delivery)
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(webhook.secret, body),
        DELIVERY_HEADER: delivery.delivery_id,
    }
    try:
        response = client.post(webhook.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text}"[:_ERROR_CHARS]


def send_log(delivery: Delivery) -> None:
    """Write the transition to the ``aiaas.alerts`` logger (warning when firing, info otherwise)."""
    payload = delivery.payload
    level = logging.WARNING if payload.get("state") == "firing" else logging.INFO
    log.log(
        level,
        "alert %s %s: %s %s %s (value %s)%s",
        payload.get("rule"),
        payload.get("state"),
        payload.get("metric"),
        payload.get("op"),
        payload.get("threshold"),
        payload.get("value"),
        f": {payload['reason']}" if payload.get("reason") else "",
    )
