"""A retraining policy checked on its own: its trigger, data source, training overrides,
evaluation, rollout plan and cooldown.

What needs the database (the deployment, the dataset, the served version's training spec, the
guards' metrics) is checked by :class:`~aiaas.retraining.service.RetrainingService`. Every
refusal is an :class:`~aiaas.errors.InvalidArgument` naming the field, such as
``trigger.threshold`` or ``rollout.steps[1].weight``. The checked policy is plain JSON: it is
what the store keeps and what the driver reads back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aiaas.alerts import parse_duration
from aiaas.errors import InvalidArgument
from aiaas.rollouts import check_guards, check_steps
from aiaas.schemas.setting_values import invalid

__all__ = ["DEFAULT_STEPS", "MAX_COOLDOWN_S", "TRIGGERS", "check_policy"]

#: Trigger metrics: (operator, lowest threshold, highest threshold, what it is).
TRIGGERS: dict[str, tuple[str, float, float, str]] = {
    "drift_share": (
        ">",
        0.0,
        1.0,
        "share of the monitored columns (inputs and outputs) that drifted, 0 to 1",
    ),
    "drift": (">", 0.0, math.inf, "number of drifted features, or a feature's drift score with feature"),
    "accuracy": ("<", 0.0, 1.0, "accuracy of labelled answers (feedback), 0 to 1"),
    "f1": ("<", 0.0, 1.0, "macro F1 of labelled answers (feedback), 0 to 1"),
}
#: The canary when a policy names none: 10 % for a minute, then promotion watched a minute.
DEFAULT_STEPS: list[dict[str, Any]] = [{"weight": 10, "bake": "1m"}, {"weight": 100, "bake": "1m"}]
#: The longest cooldown: 30 days.
MAX_COOLDOWN_S = 30 * 86400.0
_TOP = ("trigger", "data", "training", "evaluation", "rollout", "cooldown")
#: Fields of a job spec a policy may override (the rest come from the served version's job).
TRAINING_KEYS = (
    "model",
    "optimizer",
    "schedule",
    "epochs",
    "batch_size",
    "early_stopping",
    "seed",
    "workers",
    "warm_start",
)


def _keys(value: Any, field: str, known: tuple[str, ...], example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(field, f"must be an object such as {example}", value)
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        at = f"{field}.{unknown[0]}" if field else unknown[0]
        raise invalid(at, f"is not a known key (known: {', '.join(known)})", value[unknown[0]])
    return value


def _number(value: Any, field: str, low: float, high: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(field, f"must be a number: the {what}", value)
    if not low <= value <= high:
        span = f"from {low:g} to {high:g}" if math.isfinite(high) else f"{low:g} or more"
        raise invalid(field, f"must be {span}: the {what}", value)
    return float(value)


def check_trigger(value: Any) -> dict[str, Any]:
    """``{metric, threshold, window, feature?}`` → the stored trigger (with its operator)."""
    item = _keys(
        value,
        "trigger",
        ("metric", "threshold", "window", "feature"),
        '{"metric": "drift_share", "threshold": 0.5, "window": "5m"}',
    )
    metric = item.get("metric")
    if metric not in TRIGGERS:
        raise InvalidArgument(
            f"trigger.metric must be one of {', '.join(TRIGGERS)}; got {metric!r}",
            details={"field": "trigger.metric", "value": metric, "expected": list(TRIGGERS)},
        )
    op, low, high, what = TRIGGERS[metric]
    if "threshold" not in item:
        raise invalid("trigger.threshold", f"is required: the {what} that starts a retraining", None)
    threshold = _number(item["threshold"], "trigger.threshold", low, high, what)
    if "window" not in item:
        raise invalid("trigger.window", "is required: the window the metric is read over, such as 5m", None)
    window_s = parse_duration(item["window"], "trigger.window")
    feature = item.get("feature")
    if feature is not None and (metric != "drift" or not isinstance(feature, str) or not feature):
        raise invalid("trigger.feature", "is for the drift metric only, as a feature's name", feature)
    return {"metric": metric, "op": op, "threshold": threshold, "window_s": window_s, "feature": feature}


def check_data(value: Any) -> dict[str, Any]:
    """``{dataset: NAME}`` (its newest version at each run) or ``{feedback: true}``."""
    item = _keys(value, "data", ("dataset", "feedback"), '{"dataset": "NAME"} or {"feedback": true}')
    dataset, feedback = item.get("dataset"), item.get("feedback", False)
    if not isinstance(feedback, bool):
        raise invalid("data.feedback", "must be true or false", feedback)
    if dataset is not None and feedback:
        raise invalid("data", "must name a dataset or ask for feedback, not both", dict(item))
    if feedback:
        return {"feedback": True}
    if not isinstance(dataset, str) or not dataset or ":" in dataset:
        raise invalid(
            "data.dataset",
            "must be a dataset's name (no version: each run trains on its newest version)",
            dataset,
        )
    return {"dataset": dataset}


def check_training(value: Any) -> dict[str, Any]:
    """Overrides of the served version's job spec; ``warm_start`` (default true) is a flag."""
    if value is None:
        return {}
    item = _keys(value, "training", TRAINING_KEYS, '{"epochs": 5, "warm_start": true}')
    warm = item.get("warm_start", True)
    if not isinstance(warm, bool):
        raise invalid("training.warm_start", "must be true (continue from the served version) or false", warm)
    return dict(item)


def check_evaluation(value: Any) -> dict[str, Any]:
    """``{tolerance, dataset?}``: how much worse than the served version a candidate may be on the
    held-out data (the validation split of the training data, or of ``dataset`` when named)."""
    item = _keys(
        value if value is not None else {}, "evaluation", ("tolerance", "dataset"), '{"tolerance": 0.01}'
    )
    tolerance = _number(
        item.get("tolerance", 0.0),
        "evaluation.tolerance",
        0.0,
        1.0,
        "score a candidate may lose against the served version",
    )
    dataset = item.get("dataset")
    if dataset is not None:
        name, _, ref = str(dataset).partition(":") if isinstance(dataset, str) else ("", "", "")
        if not name or (ref and not ref.isdigit()):
            raise invalid("evaluation.dataset", "must be 'name' or 'name:version'", dataset)
    return {"tolerance": tolerance, "dataset": dataset}


def check_rollout(value: Any, deployment: str) -> dict[str, Any]:
    """The canary's ``steps`` and ``guards`` (checked again against the version when it starts)."""
    item = _keys(
        value if value is not None else {},
        "rollout",
        ("steps", "guards"),
        '{"steps": [{"weight": 10, "bake": "1m"}, {"weight": 100}], "guards": [...]}',
    )
    steps = item.get("steps", DEFAULT_STEPS)
    guards = item.get("guards") or []
    for i, guard in enumerate(guards if isinstance(guards, list) else []):
        if isinstance(guard, Mapping) and guard.get("version") is not None:
            raise invalid(
                f"rollout.guards[{i}].version",
                "must be left out: a guard watches the retrained version, not known before its run",
                guard["version"],
            )
    try:
        check_steps(steps)
        check_guards(guards, deployment, 0)
    except InvalidArgument as exc:
        field = f"rollout.{exc.details.get('field', 'steps')}"
        raise InvalidArgument(f"rollout.{exc.message}", details={**exc.details, "field": field}) from None
    return {"steps": list(steps), "guards": list(guards)}


def check_policy(value: Any, deployment: str) -> dict[str, Any]:
    """The stored form of a policy given as plain JSON; the first bad field is named."""
    item = _keys(value, "", _TOP, '{"trigger": {...}, "data": {...}}')
    if "trigger" not in item:
        raise invalid("trigger", "is required: when to retrain, such as drift_share > 0.5 over 5m", None)
    if "data" not in item:
        raise invalid("data", 'is required: {"dataset": "NAME"} or {"feedback": true}', None)
    trigger = check_trigger(item["trigger"])
    data = check_data(item["data"])
    return {
        "trigger": trigger,
        "data": data,
        "training": check_training(item.get("training")),
        "evaluation": check_evaluation(item.get("evaluation")),
        "rollout": check_rollout(item.get("rollout"), deployment),
        "cooldown_s": parse_duration(
            item.get("cooldown", "1h"), "cooldown", minimum=-1, maximum=MAX_COOLDOWN_S
        ),
    }
