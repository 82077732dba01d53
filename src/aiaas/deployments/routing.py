"""The checks of a deployment's routes that need no database: their shape, their weights,
no route twice. What needs the registry (a route's version exists, is ready, takes the
primary's inputs) is checked by the service, in the transaction that stores them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiaas.deployments.entities import WEIGHT_TOTAL
from aiaas.errors import InvalidArgument
from aiaas.registry import check_alias_name
from aiaas.schemas.setting_values import invalid

__all__ = ["check_routing"]


def check_routing(
    traffic: Sequence[Mapping[str, Any]] | None, shadow: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The routes given (not ``None``), checked on their own and in their stored form: column
    name → value, where a stored ``None`` means none. Everything that needs the registry is
    left to the service; the settings are checked by
    :func:`~aiaas.schemas.deployment_settings.check_settings`."""
    given: dict[str, Any] = {}
    if traffic is not None:
        given["traffic"] = _check_traffic(traffic)
    if shadow is not None:
        given["shadow"] = _check_shadow(shadow)
    return given


def _check_int(value: Any, field: str, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(field, f"must be an integer from {lo} to {hi}", value)
    return value


def _check_ref(value: Any, field: str, *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{"version": N}`` or ``{"alias": A}`` (plus the ``extra`` keys, checked by the caller)."""
    if not isinstance(value, Mapping):
        raise invalid(field, 'must be an object such as {"version": 3} or {"alias": "staging"}', value)
    unknown = sorted(str(k) for k in value if k not in ("version", "alias", *extra))
    if unknown:
        allowed = ", ".join(("version", "alias", *extra))
        raise invalid(f"{field}.{unknown[0]}", f"is not a known key (known: {allowed})", value[unknown[0]])
    version, alias = value.get("version"), value.get("alias")
    if (version is None) == (alias is None):
        raise invalid(field, "must name exactly one of version or alias", dict(value))
    if version is not None:
        return {"version": _check_int(version, f"{field}.version", (1, 2**31 - 1))}
    return {"alias": check_alias_name(value["alias"], field=f"{field}.alias")}


def _check_traffic(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise invalid("traffic", 'must be a list of routes such as [{"version": 3, "weight": 10}]', value)
    routes: list[dict[str, Any]] = []
    seen: dict[tuple[str, Any], int] = {}
    for i, item in enumerate(value):
        at = f"traffic[{i}]"
        ref = _check_ref(item, at, extra=("weight",))
        if "weight" not in item:
            raise InvalidArgument(
                f"{at}.weight is required: the route's share of requests, 0 to 100; "
                f"got a route without one: {dict(item)!r}",
                details={"field": f"{at}.weight", "value": None},
            )
        weight = _check_int(item["weight"], f"{at}.weight", (0, WEIGHT_TOTAL))
        ((kind, target),) = ref.items()
        if (kind, target) in seen:
            raise invalid(
                f"{at}.{kind}",
                f"must name each route once, but {kind} {target!r} is also traffic[{seen[kind, target]}]",
                target,
            )
        seen[kind, target] = i
        routes.append({**ref, "weight": weight})
    total = sum(r["weight"] for r in routes)
    if total > WEIGHT_TOTAL:
        raise invalid(
            "traffic",
            f"weights must add up to at most {WEIGHT_TOTAL} (the primary gets {WEIGHT_TOTAL} minus "
            f"their sum), but they add up to {total}; lower them",
            [r["weight"] for r in routes],
        )
    return routes or None


def _check_shadow(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Mapping) and not value:
        return None
    return _check_ref(value, "shadow")
