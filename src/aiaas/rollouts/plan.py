"""A rollout's plan checked on its own: the steps' weights and bake times, the guards' shape.

What needs the database (the version exists and is not already served, the guards' metrics
fit a deployment's version) is checked by :class:`~aiaas.rollouts.service.RolloutService`.
Every refusal is an :class:`~aiaas.errors.InvalidArgument` naming the field, such as
``steps[1].weight`` or ``guards[0].window``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from aiaas.alerts import METRICS, OPERATORS, parse_duration
from aiaas.entities.rollouts import Guard, Step
from aiaas.errors import InvalidArgument
from aiaas.schemas.setting_values import invalid
from aiaas.store import check_name

__all__ = ["MAX_BAKE_S", "MAX_STEPS", "check_guards", "check_steps"]

#: The longest bake of one step: one day.
MAX_BAKE_S = 86400.0
#: The most steps a rollout may have.
MAX_STEPS = 20
_GUARD_KEYS = ("name", "metric", "op", "threshold", "window", "for", "feature", "deployment", "version")


def check_steps(steps: Any) -> list[Step]:
    """Steps with weights strictly increasing from 1 to 100 (the last one 100: the promotion)."""
    if isinstance(steps, str | bytes | Mapping) or not isinstance(steps, Sequence) or not steps:
        raise invalid("steps", 'must be a non-empty list such as [{"weight": 10, "bake": "30s"}]', steps)
    if len(steps) > MAX_STEPS:
        raise invalid("steps", f"must be at most {MAX_STEPS} steps", len(steps))
    out: list[Step] = []
    for i, item in enumerate(steps):
        at = f"steps[{i}]"
        if not isinstance(item, Mapping):
            raise invalid(at, 'must be an object such as {"weight": 10, "bake": "30s"}', item)
        unknown = sorted(str(k) for k in item if k not in ("weight", "bake"))
        if unknown:
            raise invalid(f"{at}.{unknown[0]}", "is not a known key (known: weight, bake)", item[unknown[0]])
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= 100:
            raise invalid(f"{at}.weight", "must be an integer percent from 1 to 100", weight)
        if out and weight <= out[-1].weight:
            raise invalid(
                f"{at}.weight",
                f"must be greater than the step before ({out[-1].weight}): weights only increase",
                weight,
            )
        bake = parse_duration(item.get("bake", 0), f"{at}.bake", minimum=-1, maximum=MAX_BAKE_S)
        out.append(Step(weight, bake))
    if out[-1].weight != 100:
        raise invalid(
            f"steps[{len(out) - 1}].weight",
            "must be 100 on the last step (the promotion); add a last step at 100",
            out[-1].weight,
        )
    return out


def check_guards(guards: Any, deployment: str, version: int) -> list[Guard]:
    """Guards of ``version`` of ``deployment``: each one's shape, names unique; a guard that
    names another deployment or version is refused (a guard watches the new version)."""
    if guards is None:
        return []
    if isinstance(guards, str | bytes | Mapping) or not isinstance(guards, Sequence):
        raise invalid("guards", 'must be a list such as [{"metric": "error_rate", "op": ">", ...}]', guards)
    out: list[Guard] = []
    for i, item in enumerate(guards):
        at = f"guards[{i}]"
        if not isinstance(item, Mapping):
            raise invalid(at, "must be an object with metric, op, threshold and window", item)
        unknown = sorted(str(k) for k in item if k not in _GUARD_KEYS)
        if unknown:
            raise invalid(
                f"{at}.{unknown[0]}",
                f"is not a known key (known: {', '.join(_GUARD_KEYS)})",
                item[unknown[0]],
            )
        if item.get("deployment") not in (None, deployment):
            raise invalid(
                f"{at}.deployment",
                f"must be {deployment!r}: a guard watches the version being rolled out on this deployment",
                item.get("deployment"),
            )
        if item.get("version") not in (None, version):
            raise invalid(
                f"{at}.version",
                f"must be {version}: a guard watches the version being rolled out (leave it out)",
                item.get("version"),
            )
        metric = item.get("metric")
        info = METRICS.get(metric) if isinstance(metric, str) else None
        if info is None or info.scope != "deployment":
            known = [m for m, inf in METRICS.items() if inf.scope == "deployment"]
            raise InvalidArgument(
                f"{at}.metric must be a metric of a deployment's version, one of {', '.join(known)}; "
                f"got {metric!r}",
                details={"field": f"{at}.metric", "value": metric, "expected": known},
            )
        op = item.get("op")
        if op not in OPERATORS:
            raise invalid(f"{at}.op", f"must be one of {' '.join(OPERATORS)}", op)
        threshold = item.get("threshold")
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not math.isfinite(threshold)
        ):
            raise invalid(f"{at}.threshold", "must be a finite number", threshold)
        if "window" not in item:
            raise invalid(
                f"{at}.window", "is required: the window the metric is read over, such as 30s", None
            )
        window_s = parse_duration(item["window"], f"{at}.window")
        for_s = parse_duration(item.get("for", 0), f"{at}.for", minimum=-1)
        name = item.get("name") or metric
        check_name(str(name), field=f"{at}.name")
        if len(str(name)) > 64:
            raise invalid(f"{at}.name", "must be at most 64 characters", name)
        if any(g.name == name for g in out):
            raise invalid(f"{at}.name", "must be unique among the guards (give each a name)", name)
        feature = item.get("feature")
        if feature is not None and (metric != "drift" or not isinstance(feature, str)):
            raise invalid(f"{at}.feature", "is for the drift metric only, as a feature's name", feature)
        out.append(Guard(str(name), str(metric), str(op), float(threshold), window_s, for_s, feature))
    return out
